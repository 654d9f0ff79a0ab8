"""A content fingerprint of a data frame, so a model card names the exact data it learnt from.

Two frames with the same columns, dtypes and cell values (in the same row order) get the same
fingerprint in any process; changing one cell, a column name or a dtype changes it. The index
is ignored because loaders renumber rows and that is not a change in the data.
"""

from __future__ import annotations

import hashlib
import json

import pandas as pd


def frame_fingerprint(frame: pd.DataFrame) -> str:
    """The sha256 hex digest of the frame's columns, dtypes, shape and row hashes."""
    digest = hashlib.sha256()
    header = {
        "columns": [str(name) for name in frame.columns],
        "dtypes": [str(dtype) for dtype in frame.dtypes],
        "rows": len(frame),
    }
    digest.update(json.dumps(header).encode())
    # One uint64 per row combining every cell; little-endian so the digest is platform-stable.
    rows = pd.util.hash_pandas_object(frame, index=False)
    digest.update(rows.to_numpy().astype("<u8").tobytes())
    return digest.hexdigest()
