"""The array module the shared runtime helpers (templates/_runtime_shared.py) compute with in
the JAX backend, and the integer dtype of the row numbers they gather with (JAX's default
integer width: int64 needs jax_enable_x64)."""
import jax.numpy as xp

INDEX_DTYPE = xp.int32

__all__ = ["INDEX_DTYPE", "xp"]
