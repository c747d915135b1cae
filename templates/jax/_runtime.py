"""Helpers the generated JAX rules call: checks, batch-aware solves and structural operations.

Hand-written, not generated: ``python cli.py generate`` copies this file, under its header, into
generated/jax/.  The helpers JAX shares with NumPy and CuPy (checks, pads, permutations) come
from templates/_runtime_shared.py, computing with the array module of _array_module.py.

Cotangents: the spec's VJPs follow PyTorch's convention; ``_cotangent_in/_out`` convert from
and to JAX's (the two differ by complex conjugation).
"""
import jax as _jax
import jax.numpy as _jnp
import jax.scipy.linalg  # noqa: F401  (signature calls name jax.scipy.linalg)
import numpy as _np

from ._runtime_shared import (
    _check_input, _check_tangent, _columns, _complex, _diag, _host_gauge_check,
    _indices_permutation, _pad, _pad_cols, _pad_rows, _pairwise_inv, _permute_cols,
    _permute_rows, _to_field, _unpacked, _version_tuple, _zeros_like)

# what the generated rules import from here
__all__ = [
    "_check_input", "_check_tangent", "_columns", "_complex", "_copyltu", "_cotangent_in",
    "_cotangent_out", "_diag", "_diag_part", "_empty_like", "_gauge_check", "_gauge_checked",
    "_indices", "_indices_permutation", "_neg_mm", "_pad", "_pad_cols", "_pad_rows",
    "_pairwise_inv", "_permute_cols", "_permute_rows", "_pivots_permutation", "_skew", "_solve",
    "_solve_triangular", "_sym", "_to_field", "_transposed", "_unbatched", "_unpacked",
    "_version_tuple", "_zero_tangent", "_zeros_like"]


def _cotangent_in(g):
    return _jnp.conj(g)


def _cotangent_out(g):
    return _jnp.conj(g)


def _empty_like(x):
    return _jnp.zeros((0,), dtype=x.dtype)


def _diag_part(x):
    """diag(diagonal(x)) of a square (..., n, n) x: a select, which XLA fuses (no gather)."""
    return _jnp.where(_jnp.eye(x.shape[-1], dtype=bool), x, _jnp.zeros((), x.dtype))


def _neg_mm(a, b):
    """-(a @ b), negating the smallest of a, b and a @ b (shapes are static under tracing)."""
    size_a, size_b = a.shape[-2] * a.shape[-1], b.shape[-2] * b.shape[-1]
    size_ab = a.shape[-2] * b.shape[-1]
    if size_b <= min(size_a, size_ab):
        return a @ -b
    if size_a <= size_ab:
        return -a @ b
    return -(a @ b)


def _copyltu(x):
    lower = _jnp.tril(x, -1)
    return lower + lower.mT.conj() + _diag_part(_jnp.real(x))


def _sym(x):
    return (x + x.mT.conj()) / 2


def _skew(x):
    return (x - x.mT.conj()) / 2


def _broadcast(a, b):
    batch = _jnp.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    return (_jnp.broadcast_to(a, batch + a.shape[-2:]), _jnp.broadcast_to(b, batch + b.shape[-2:]))


def _solve_triangular(t, b, upper, left=True, unit=False):
    """T^-1 B (left) or B T^-1 (right), T read from one triangle."""
    t, b = _broadcast(t, b)
    if b.size == 0 or t.shape[-1] == 0:
        return _jnp.zeros(b.shape, _jnp.result_type(t, b))
    return _jax.lax.linalg.triangular_solve(t, b, left_side=left, lower=not upper,
                                            unit_diagonal=unit)


def _solve(a, b, left=True):
    """A^-1 B (left) or B A^-1 (right)."""
    a, b = _broadcast(a, b)
    if b.size == 0 or a.shape[-1] == 0:
        return _jnp.zeros(b.shape, _jnp.result_type(a, b))
    if left:
        return _jnp.linalg.solve(a, b)
    return _jnp.linalg.solve(a.mT, b.mT).mT


def _gauge_checked(check_gauge, cotangents):
    """Whether to run the gauge check: when asked to and the cotangents are concrete."""
    return check_gauge and not any(isinstance(g, _jax.core.Tracer) for g in cotangents)


def _gauge_check(op, values, cotangents, message):
    """Raise when a loss depends on the gauge: one of ``values`` (all zero for a
    gauge-invariant loss) larger than sqrt(eps) times the largest cotangent entry.  Only
    concrete values are checked: under jit or a transformation (tracers) there is no value
    to raise on."""
    if any(isinstance(x, _jax.core.Tracer) for x in (*values, *cotangents)):
        return
    _host_gauge_check(op, values, cotangents, message)


def _transposed(outputs, flags):
    """Outputs a call returns transposed (the spec's 'transposed'), turned back."""
    return tuple(_jnp.swapaxes(y, -1, -2) if f else y for y, f in zip(outputs, flags))


def _unbatched(fn, *arrays):
    """``fn`` of single matrices (jax.scipy.linalg.lu takes one) vectorized over the batch
    axes with jax.vmap; a tuple of its results."""
    batch = arrays[0].shape[:-2]
    flat = [a.reshape((_np.prod(batch, dtype=int),) + tuple(a.shape[-2:])) for a in arrays]
    out = _jax.vmap(fn)(*flat)
    return tuple(y.reshape(batch + y.shape[1:]) for y in out)


def _pivots_permutation(pivots, like):
    """The permutation matrix P (A = P L U) of LAPACK pivots held as a (..., k, 1) column
    (row i swapped with row pivots[i] - 1, in order); like's dtype, m = its rows."""
    m = like.shape[-2]
    perm = _jax.lax.linalg.lu_pivots_to_permutation(pivots[..., 0] - 1, m)
    # LU = P^T A, whose row i is A's row perm[i]: P's column i is e_perm[i]
    return (perm[..., None, :] == _jnp.arange(m)[:, None]).astype(like.dtype)


def _zero_tangent(y):
    """The zero tangent of an output that has none: float0 for integers (pivots), as JAX
    requires, zeros of y's dtype otherwise."""
    if _jnp.issubdtype(y.dtype, _jnp.integer):
        return _np.zeros(y.shape, dtype=_jax.dtypes.float0)
    return _jnp.zeros_like(y)


def _indices(indices, like):
    """Column numbers a call returned (a (..., n, 1) column), as returned to users: for a
    matrix with no rows every order is a pivoting, and the identity order (SciPy's) is
    returned whatever the call gave (JAX's pivoted QR gives zeros, jax 0.10.2)."""
    if like.shape[-2] == 0:
        count = _jnp.arange(like.shape[-1], dtype=indices.dtype)[:, None]
        return _jnp.broadcast_to(count, indices.shape)
    return indices
