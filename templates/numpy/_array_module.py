"""The array module the shared runtime helpers (templates/_runtime_shared.py) compute with in
the NumPy backend, and the integer dtype of the row numbers they gather with."""
import numpy as xp

INDEX_DTYPE = xp.intp

DOT_OPTIONS = {}  # keywords of matmul and einsum: none
UNSUPPORTED_DTYPE = TypeError  # numpy.linalg's error for float16


def inexact_dtype(dtype):
    """The dtype numpy.linalg computes an integer or boolean array in: float64."""
    return xp.result_type(float)


__all__ = ["DOT_OPTIONS", "INDEX_DTYPE", "UNSUPPORTED_DTYPE", "inexact_dtype", "xp"]
