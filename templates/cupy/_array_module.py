"""The array module the shared runtime helpers (templates/_runtime_shared.py) compute with in
the CuPy backend, and the integer dtype of the row numbers they gather with."""
import cupy as xp
import numpy as _np

INDEX_DTYPE = _np.int64

__all__ = ["INDEX_DTYPE", "xp"]
