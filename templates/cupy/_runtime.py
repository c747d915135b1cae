"""Helpers the generated CuPy rules call.

Hand-written, not generated: ``python cli.py generate`` copies this file, under its header, into
generated/cupy/.  The helpers CuPy shares with NumPy and JAX (checks, pads, solves, permutations)
come from templates/_runtime_shared.py, computing with the array module of _array_module.py.

The structural steps (tril, triu, copyltu, sym, skew, re, im, diag) launch the kernels of
the generated ``_kernels.cu``, compiled once per process by NVRTC on first use.  Solves use
cuSOLVER/cuBLAS through CuPy: triangular solves go through ``cupyx.scipy.linalg``'s
``solve_triangular`` (trsm, batched trsm for a stack), general ones through
``cupy.linalg.solve``.
"""
import pathlib as _pathlib

import cupy as _cp
import numpy as _np

from ._runtime_shared import (
    _is_complex,
    _diagonal_skew, _skew_diag,
    _accumulate, _add_eye, _broadcast, _check_input, _check_tangent, _columns, _complex,
    _cotangent_in, _cotangent_out, _check, _checked_jvp, _checked_vjp, _raise_if_failed,
    _empty_like, _host_unbatched, _indices, _indices_permutation, _LazyModule, _pad, _pad_cols,
    _pad_rows, _permute_cols, _permute_rows, _pivots_permutation as _host_pivots, _solve,
    _sylvester_by_eigh as _solve_sylvester, _hessenberg_sylvester_by_columns,
    _tril_sylvester_by_columns,
    _to_field, _transposed, _unbatched, _unit_tril, _native_shapes, _unpacked, _version_tuple,
    _zeros_like)

# SciPy, for the host fallbacks alone (their calls name _scipy.linalg): imported on first use
_scipy = _LazyModule("scipy", ("linalg",))

# what the generated rules import from here
__all__ = [
    "_is_complex",
    "_diagonal_skew", "_skew_diag",
    "_accumulate", "_add_eye", "_unit_tril",
    "_check_input", "_check_tangent", "_columns", "_complex", "_copyltu", "_cotangent_in",
    "_check", "_checked_jvp", "_checked_vjp", "_raise_if_failed", "_cotangent_out", "_cupyx",
    "_diag", "_empty_like", "_im", "_indices", "_indices_permutation", "_np", "_on_host", "_pad",
    "_pad_cols", "_pad_rows", "_pairwise_inv", "_permute_cols", "_permute_rows",
    "_pivots_permutation", "_re", "_scipy", "_skew", "_solve",
    "_solve_hessenberg_sylvester", "_solve_sylvester", "_solve_tril_sylvester",
    "_solve_triangular", "_sym",
    "_to_field", "_transposed", "_tril", "_triu", "_unbatched", "_native_shapes", "_unpacked",
    "_version_tuple",
    "_zeros_like"]

KERNEL_SOURCE = (_pathlib.Path(__file__).with_name("_kernels.cu")).read_text()
KERNEL_NAMES = tuple(f"fr_{op}_{suffix}" for op in ("tril", "triu", "copyltu", "sym", "skew",
                                                     "re", "im", "diag")
                     for suffix in ("f32", "f64", "c64", "c128"))
_SUFFIX = {_np.dtype(_np.float32): "f32", _np.dtype(_np.float64): "f64",
           _np.dtype(_np.complex64): "c64", _np.dtype(_np.complex128): "c128"}
# CuPy's complex.cuh includes Thrust, which needs C++17 (CuPy's own default dialect).
KERNEL_OPTIONS = ("--std=c++17",)
_THREADS = 256
_module = None


def _kernel(op, dtype):
    global _module
    if _module is None:
        _module = _cp.RawModule(code=KERNEL_SOURCE, options=KERNEL_OPTIONS)
    return _module.get_function(f"fr_{op}_{_SUFFIX[_np.dtype(dtype)]}")


def _launch(op, x, out_shape, *scalars):
    x = _cp.ascontiguousarray(x)
    out = _cp.empty(out_shape, dtype=x.dtype)
    count = out.size
    if count:
        rows, cols = out_shape[-2], out_shape[-1]
        blocks = (count + _THREADS - 1) // _THREADS
        _kernel(op, x.dtype)((blocks,), (_THREADS,),
                             (x, out, _np.int64(count), _np.int64(rows), _np.int64(cols),
                              *(_np.int64(s) for s in scalars)))
    return out


def _tril(x, offset):
    return _launch("tril", x, x.shape, offset)


def _triu(x, offset):
    return _launch("triu", x, x.shape, offset)


def _check_square(op, x):
    """The kernels of square-only operations read X^H: a non-square X is an error."""
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{op}: expected a square matrix or a stack of square matrices, "
                         f"got shape {x.shape}")
    return x


def _copyltu(x):
    return _launch("copyltu", _check_square("copyltu", x), x.shape)


def _sym(x):
    return _launch("sym", _check_square("sym", x), x.shape)


def _skew(x):
    return _launch("skew", _check_square("skew", x), x.shape)


def _re(x):
    """re(x), real dtype for complex x (as NumPy's): the kernel's result, its real part."""
    out = _launch("re", x, x.shape)
    return _cp.ascontiguousarray(out.real) if out.dtype.kind == "c" else out


def _im(x):
    """im(x), real dtype for complex x (as NumPy's)."""
    out = _launch("im", x, x.shape)
    return _cp.ascontiguousarray(out.real) if out.dtype.kind == "c" else out


def _diag(v):
    """diag of a (..., n, 1) column: (..., n, n)."""
    return _launch("diag", v, v.shape[:-1] + (v.shape[-2],))


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
        return _cp.zeros(b.shape, dtype)
    if not left:  # X T = B  <=>  T^T X^T = B^T, and T^T has the other triangle
        return _cp.swapaxes(_solve_triangular(_cp.swapaxes(t, -1, -2), _cp.swapaxes(b, -1, -2),
                                              not upper, True, unit), -1, -2)
    # Imported here: cupyx.scipy.linalg loads cuBLAS, which importing this module must not need.
    from cupyx.scipy.linalg import solve_triangular
    # solve_triangular computes in T's dtype: cast both, or a real T would drop B's imaginary part.
    return solve_triangular(t.astype(dtype, copy=False), b.astype(dtype, copy=False),
                            lower=not upper, unit_diagonal=unit)


def _pairwise_inv(v):
    """F[..., i, j] = 1 / (v_j - v_i) for a (..., n, 1) column v; 0 at ties: where
    |v_j - v_i| <= n eps max|v| (equal up to rounding), the diagonal included."""
    gaps = _cp.swapaxes(v, -1, -2) - v
    scale = _cp.abs(v).max(axis=(-2, -1), keepdims=True) if v.size else _cp.zeros(())
    tie = _cp.abs(gaps) <= v.shape[-2] * _np.finfo(v.dtype).eps * scale
    return _cp.where(tie, 0, 1 / _cp.where(tie, 1, gaps))


# ``cupyx`` for the signature calls, imported on first use: cupyx.scipy.linalg loads cuBLAS
# and cuSOLVER, which importing a generated module must not need
_cupyx = _LazyModule("cupyx", ("scipy.linalg",))


def _pivots_permutation(pivots, like):
    """The permutation matrix P (A = P L U) of LAPACK pivots held as a (..., k, 1) column:
    row i was swapped with row pivots[i] - 1, in order.  The swaps are replayed on the host
    (k integers per matrix); P has like's dtype and m = its rows."""
    return _cp.asarray(_host_pivots(_cp.asnumpy(pivots), like))


def _on_host(fn, arrays, batched):
    """``fn``, NumPy/SciPy code for a routine CuPy lacks (the spec's 'host: true'), on host
    copies of the arrays; its results are copied back to the device (one copy each way).
    batched=False: fn takes one matrix and is mapped over the batch axes."""
    host = [_cp.asnumpy(a) for a in arrays]
    results = fn(*host) if batched else _host_unbatched(fn, host)
    return tuple(_cp.asarray(_np.ascontiguousarray(y)) for y in results)
