/* The one loop of record assembly that numpy cannot do without an index per byte.
 *
 * models.packing.Records lays each account's record out as parts (a header, reason slots,
 * values), part after part. numpy can only scatter a part's bytes into the records through a
 * position per byte, which is most of the time a scoring run spends assembling records; this
 * copies each account's piece of a part with one memcpy instead. Each piece is checked
 * against the buffers' bounds before it is copied, so a wrong length is a ValueError, never a
 * write outside the records.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

PyDoc_STRVAR(copy_doc,
"copy(out, cursor, rows, lengths, width, src, stride)\n"
"\n"
"Append one part to the records: for each i, the piece of account rows[i] (i when rows is\n"
"None), lengths[i] bytes (width when lengths is None), goes to out[cursor[row]:] and\n"
"cursor[row] moves past it. Piece i starts at src[i * stride], or right after piece i - 1\n"
"when stride is 0. rows, lengths and cursor hold int64; out and src bytes.");

/* A C-contiguous buffer of signed 64-bit integers (numpy int64: format 'l' or 'q'). */
static int int64_buffer(PyObject *obj, Py_buffer *view, int flags, const char *name) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | flags) < 0) return -1;
    const char *format = view->format ? view->format : "B";
    char code = format[strlen(format) - 1];
    if (view->itemsize != (Py_ssize_t)sizeof(int64_t) || (code != 'l' && code != 'q')) {
        PyErr_Format(PyExc_ValueError, "%s is not a buffer of int64", name);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static PyObject *copy(PyObject *module, PyObject *args) {
    (void)module;
    Py_buffer out, cursor, src, rows = {0}, lengths = {0};
    PyObject *cursor_obj, *rows_obj, *lengths_obj;
    Py_ssize_t width, stride;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "w*OOOny*n", &out, &cursor_obj, &rows_obj, &lengths_obj, &width,
                          &src, &stride))
        return NULL;
    if (int64_buffer(cursor_obj, &cursor, PyBUF_WRITABLE, "cursor") < 0) {
        PyBuffer_Release(&out);
        PyBuffer_Release(&src);
        return NULL;
    }
    if (rows_obj != Py_None && int64_buffer(rows_obj, &rows, 0, "rows") < 0) goto done;
    if (lengths_obj != Py_None && int64_buffer(lengths_obj, &lengths, 0, "lengths") < 0)
        goto done;
    if (width < 0 || stride < 0) {
        PyErr_SetString(PyExc_ValueError, "width and stride cannot be negative");
        goto done;
    }

    int64_t *cur = (int64_t *)cursor.buf;
    const int64_t *row = rows.obj ? (const int64_t *)rows.buf : NULL;
    const int64_t *len = lengths.obj ? (const int64_t *)lengths.buf : NULL;
    Py_ssize_t accounts = cursor.len / (Py_ssize_t)sizeof(int64_t);
    Py_ssize_t n = row ? rows.len / (Py_ssize_t)sizeof(int64_t)
                 : len ? lengths.len / (Py_ssize_t)sizeof(int64_t)
                       : accounts;
    if (row && len && lengths.len != rows.len) {
        PyErr_SetString(PyExc_ValueError, "rows and lengths differ in length");
        goto done;
    }
    unsigned char *o = (unsigned char *)out.buf;
    const unsigned char *s = (const unsigned char *)src.buf;
    Py_ssize_t bad = -1, at = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t r = row ? row[i] : (int64_t)i;
        int64_t l = len ? len[i] : (int64_t)width;
        int64_t from = stride ? (int64_t)i * stride : at;
        if (r < 0 || r >= accounts || l < 0 || cur[r] < 0 || cur[r] > out.len - l ||
            from > src.len - l) {
            bad = i;
            break;
        }
        memcpy(o + cur[r], s + from, (size_t)l);
        cur[r] += l;
        at = from + l;
    }
    Py_END_ALLOW_THREADS
    if (bad >= 0) {
        PyErr_Format(PyExc_ValueError,
                     "piece %zd of the part does not fit: its account, length or source lies "
                     "outside the buffers",
                     bad);
        goto done;
    }
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&out);
    PyBuffer_Release(&src);
    PyBuffer_Release(&cursor);
    if (rows.obj) PyBuffer_Release(&rows);
    if (lengths.obj) PyBuffer_Release(&lengths);
    return result;
}

static PyMethodDef methods[] = {
    {"copy", copy, METH_VARARGS, copy_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_records",
    "Record assembly's copying loop (see models.packing.Records).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__records(void) { return PyModule_Create(&module); }
