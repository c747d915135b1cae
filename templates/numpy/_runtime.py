"""Helpers the generated NumPy rules call: batch-aware structural operations and checks.

Hand-written, not generated: ``python cli.py generate`` copies this file, under its header, into
generated/numpy/.  Most helpers are the ones CuPy and JAX share (templates/_runtime_shared.py,
computing with the array module of _array_module.py); the few that are NumPy's own are here.
Every function works on (..., rows, cols) stacks, including zero-size ones.
"""
import numpy as _np
import scipy as _scipy
import scipy.linalg as _sla

from ._runtime_shared import (
    _is_complex,
    _diagonal_skew, _skew_diag,
    _accumulate, _add_eye, _broadcast, _check_input, _check_tangent, _columns, _complex,
    _cotangent_in, _cotangent_out, _check, _checked_jvp, _checked_vjp, _raise_if_failed, _diag,
    _empty_like, _indices, _indices_permutation, _pad, _pad_cols, _pad_rows, _pairwise_inv,
    _joined_rows, _permute_cols, _permute_rows, _pivots_permutation, _row_blocked,
    _row_blocks, _solve, _sylvester_by_eigh as _solve_sylvester,
    _hessenberg_sylvester_by_columns, _tril_sylvester_by_columns,
    _sum_rows, _to_field, _transposed, _unbatched, _unit_tril, _native_shapes, _unpacked,
    _version_tuple,
    _zeros_like)

# what the generated rules (and sparse_qr.py) import from here
__all__ = [
    "_is_complex",
    "_diagonal_skew", "_skew_diag",
    "_accumulate", "_add_eye", "_unit_tril", "_joined_rows", "_put_rows", "_row_blocked",
    "_row_blocks", "_sum_rows",
    "_adjoint", "_check_input", "_check_tangent", "_columns", "_complex", "_copyltu", "_check",
    "_checked_jvp", "_checked_vjp", "_raise_if_failed", "_cotangent_in", "_cotangent_out", "_diag",
    "_empty_like", "_indices", "_indices_permutation", "_pad", "_pad_cols", "_pad_rows",
    "_pairwise_inv", "_permute_cols", "_permute_rows", "_pivots_permutation", "_scipy", "_skew",
    "_solve", "_solve_hessenberg_sylvester", "_solve_sylvester", "_solve_tril_sylvester",
    "_solve_triangular", "_sym",
    "_to_field", "_transposed",
    "_unbatched",
    "_native_shapes", "_unpacked",
    "_version_tuple", "_zeros_like"]


# -- rules evaluated a block of rows at a time (factorules/compiler/row_blocks.py; the blocks
# and the sums over them: templates/_runtime_shared.py) ---------------------------------------

def _put_rows(out, rows, start, total):
    """``rows`` written into rows start: of ``out``, a stack of ``total``-row matrices made at
    the first block (``out`` None) with the block's batch shape and type."""
    if out is None:
        out = _np.empty(rows.shape[:-2] + (total, rows.shape[-1]), rows.dtype)
    out[..., start:start + rows.shape[-2], :] = rows
    return out


def _adjoint(x):
    """The conjugate transpose; a view for real arrays (np.conj would copy them)."""
    t = _np.swapaxes(x, -1, -2)
    return _np.conj(t) if _np.iscomplexobj(t) else t


def _copyltu(x):
    lower = _np.tril(x, -1)
    return lower + _adjoint(lower) + _diag(_np.real(_np.diagonal(x, 0, -2, -1))[..., :, None])


def _sym(x):
    return (x + _adjoint(x)) / 2


def _skew(x):
    return (x - _adjoint(x)) / 2


def _solve_tril_sylvester(t, c, adjoint=False):
    """The strictly lower X with tril(X S - S X, -1) = tril(C, -1), S = triu(T) or T^H."""
    return _tril_sylvester_by_columns(t, c, adjoint, _solve_triangular)


def _solve_hessenberg_sylvester(h, c, adjoint=False):
    """The skew-Hermitian Om, first row and column zero, with C - (Om S - S Om) Hessenberg
    with a real subdiagonal, S = triu(H, -1) (adjoint=True: its transpose)."""
    return _hessenberg_sylvester_by_columns(h, c, adjoint)


def _solve_triangular(t, b, upper, left=True, unit=False):
    """T^-1 B (left) or B T^-1 (right), T read from one triangle."""
    t, b, dtype = _broadcast(t, b)
    if b.size == 0 or t.shape[-1] == 0:
        return _np.zeros(b.shape, dtype)
    if left:
        return _sla.solve_triangular(t, b, lower=not upper, unit_diagonal=unit,
                                     check_finite=False).astype(dtype, copy=False)
    # X T = B  <=>  T^T X^T = B^T, and T^T has the other triangle
    xt = _sla.solve_triangular(_np.swapaxes(t, -1, -2), _np.swapaxes(b, -1, -2), lower=upper,
                               unit_diagonal=unit, check_finite=False)
    return _np.swapaxes(xt, -1, -2).astype(dtype, copy=False)
