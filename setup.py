"""The one compiled module, which pyproject.toml cannot declare in a stable way yet.

Record assembly's copying loop (models/_records.c) is built by `pip install`, which then
needs a C compiler and the Python headers (python3-dev), as any package that compiles does.
Everything else about the package is in pyproject.toml.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("models._records", ["models/_records.c"])])
