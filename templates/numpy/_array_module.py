"""The array module the shared runtime helpers (templates/_runtime_shared.py) compute with in
the NumPy backend, and the integer dtype of the row numbers they gather with."""
import numpy as xp

INDEX_DTYPE = xp.intp

__all__ = ["INDEX_DTYPE", "xp"]
