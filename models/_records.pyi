"""Types of the compiled record copier (models/_records.c)."""

import numpy as np

def copy(
    out: np.ndarray,
    cursor: np.ndarray,
    rows: np.ndarray | None,
    lengths: np.ndarray | None,
    width: int,
    src: np.ndarray,
    stride: int,
    /,
) -> None: ...
