"""The array module the shared runtime helpers (templates/_runtime_shared.py) compute with in
the JAX backend, the integer dtype of the row numbers they gather with (JAX's default
integer width: int64 needs jax_enable_x64), the keywords of its matrix products and
einsums: full precision, as jax.lax.linalg's rules ask (the default on GPUs and TPUs rounds
float32 operands to TF32 or bfloat16), and what jax.numpy.linalg does with other dtypes."""
import jax
import jax.numpy as xp

INDEX_DTYPE = xp.int32
DOT_OPTIONS = {"precision": jax.lax.Precision.HIGHEST}
# jax.numpy.linalg's error for float16 and bfloat16 ("Unsupported dtype float16")
UNSUPPORTED_DTYPE = NotImplementedError


def inexact_dtype(dtype):
    """The dtype jax.numpy.linalg computes an integer or boolean array in: float32 up to 32
    bits, float64 for 64-bit integers (float32 without jax_enable_x64)."""
    wide = xp.dtype(dtype).itemsize == 8
    return jax.dtypes.canonicalize_dtype(xp.float64 if wide else xp.float32)


__all__ = ["DOT_OPTIONS", "INDEX_DTYPE", "UNSUPPORTED_DTYPE", "inexact_dtype", "xp"]
