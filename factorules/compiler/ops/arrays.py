"""Array helpers of the operations' numeric evaluation (``StructuralOp.evaluate``).

Values are NumPy arrays whose last two axes are the matrix, of ``object`` dtype holding
mpmath numbers or of complex128; leading axes are a batch.  ``factorules.audit.numeric``
makes the numbers and evaluates the generic nodes (sums, products, adjoints); the solves here
are exact Gaussian elimination, never a LAPACK call, so that they work at any precision.
"""
from __future__ import annotations

import mpmath
import numpy as np

from .base import EvalError

_re = np.frompyfunc(lambda z: mpmath.re(z), 1, 1)
_im = np.frompyfunc(lambda z: mpmath.im(z), 1, 1)
_abs = np.frompyfunc(lambda z: mpmath.fabs(z), 1, 1)


def real(x):
    return _re(x) if x.dtype == object else np.real(x).astype(np.complex128)


def imag(x):
    return _im(x) if x.dtype == object else np.imag(x).astype(np.complex128)


def conj(x):
    return np.conjugate(x)


def adjoint(x):
    return conj(np.swapaxes(x, -1, -2))


_adjoint = adjoint  # for functions whose flag is named adjoint


def band(x, offset: int, lower: bool):
    """tril(x, offset) (``lower``) or triu(x, offset) of every matrix of the batch."""
    rows, cols = x.shape[-2:]
    i = np.arange(rows)[:, None]
    j = np.arange(cols)[None, :]
    keep = (j - i <= offset) if lower else (j - i >= offset)
    out = x.copy()
    out[..., ~keep] = 0 if x.dtype != object else mpmath.mpf(0)
    return out


def diagonal(x):
    """The main diagonal as a column."""
    return np.diagonal(x, 0, -2, -1)[..., :, None].copy()


def diag(v, field):
    """The square matrix with the column v on its diagonal, zeros made by ``field``."""
    n = v.shape[-2]
    out = field.zeros(v.shape[:-2] + (n, n))
    for i in range(n):
        out[..., i, i] = v[..., i, 0]
    return out


def solve_triangular(t, b, upper: bool, unit: bool):
    """T^-1 B reading only the upper (lower) triangle of T; T is one matrix, B may be a batch."""
    if t.ndim != 2:
        raise EvalError("solve_triangular: the triangular factor must not be batched here")
    n = t.shape[0]
    x = np.zeros(b.shape, dtype=np.result_type(t.dtype, b.dtype))
    if x.dtype == object:
        x.fill(mpmath.mpf(0))
    order = range(n - 1, -1, -1) if upper else range(n)
    for i in order:
        rest = slice(i + 1, n) if upper else slice(0, i)
        acc = b[..., i, :] - (t[i:i + 1, rest] @ x[..., rest, :])[..., 0, :]
        if not unit and t[i, i] == 0:
            raise EvalError("solve_triangular: a zero on the diagonal")
        x[..., i, :] = acc if unit else acc / t[i, i]
    return x


def solve(a, b):
    """A^-1 B by Gaussian elimination with partial pivoting; A one matrix, B may be a batch."""
    if a.ndim != 2:
        raise EvalError("solve: the matrix must not be batched here")
    n = a.shape[0]
    a = a.copy()
    b = np.array(b, dtype=np.result_type(a.dtype, b.dtype))
    size = _abs if a.dtype == object else np.abs
    for k in range(n):
        p = k + int(np.argmax([float(v) for v in size(a[k:, k])]))
        if a[p, k] == 0:
            raise EvalError("solve: the matrix is singular")
        if p != k:
            a[[k, p]] = a[[p, k]]
            b[..., [k, p], :] = b[..., [p, k], :]
        for i in range(k + 1, n):
            factor = a[i, k] / a[k, k]
            a[i, k:] = a[i, k:] - factor * a[k, k:]
            b[..., i, :] = b[..., i, :] - factor * b[..., k, :]
    return solve_triangular(a, b, upper=True, unit=False)



def solve_sylvester(a, b, c):
    """X with A X + X B = C (A r x r, B s x s, one matrix each; C r x s, may be a batch),
    from the r s x r s system of the row-major entries of X:
    (A X + X B)[i, j] = sum_k A[i, k] X[k, j] + sum_l X[i, l] B[l, j]."""
    if a.ndim != 2 or b.ndim != 2:
        raise EvalError("solve_sylvester: A and B must not be batched here")
    r, s = a.shape[0], b.shape[0]
    dtype = np.result_type(a.dtype, b.dtype, c.dtype)
    k = np.zeros((r * s, r * s), dtype=dtype)
    if dtype == object:
        k.fill(mpmath.mpf(0))
    for i in range(r):
        for j in range(s):
            for q in range(r):
                k[i * s + j, q * s + j] += a[i, q]
            for q in range(s):
                k[i * s + j, i * s + q] += b[q, j]
    if r * s == 0:
        return np.array(c, dtype=dtype)
    x = solve(k, np.reshape(c, c.shape[:-2] + (r * s, 1)))
    return np.reshape(x, c.shape)


def solve_tril_sylvester(t, c, adjoint: bool):
    """The strictly lower X with tril(X S - S X, -1) = tril(C, -1), S = triu(T) or its
    adjoint (T one matrix, C may be a batch), from the system of X's strictly lower entries:
    (X S - S X)[i, j] = sum_k X[i, k] S[k, j] - sum_k S[i, k] X[k, j]."""
    if t.ndim != 2:
        raise EvalError("solve_tril_sylvester: T must not be batched here")
    s = band(t, 0, lower=False)
    s = conj(s.T) if adjoint else s
    n = s.shape[0]
    dtype = np.result_type(s.dtype, c.dtype)
    entries = [(i, j) for i in range(n) for j in range(i)]
    at = {e: q for q, e in enumerate(entries)}
    size = len(entries)
    x = np.zeros(c.shape, dtype=dtype)
    if dtype == object:
        x.fill(mpmath.mpf(0))
    if size == 0:
        return x
    k = np.zeros((size, size), dtype=dtype)
    if dtype == object:
        k.fill(mpmath.mpf(0))
    for q, (i, j) in enumerate(entries):
        for kk in range(n):
            if (i, kk) in at:
                k[q, at[i, kk]] += s[kk, j]
            if (kk, j) in at:
                k[q, at[kk, j]] -= s[i, kk]
    rhs = np.stack([c[..., i, j] for i, j in entries], axis=-1)[..., None]
    values = solve(k, rhs)
    for q, (i, j) in enumerate(entries):
        x[..., i, j] = values[..., q, 0]
    return x



def _complex_values(*xs) -> bool:
    """Whether any value is complex (mpmath's mpc; complex128 arrays always are)."""
    return any(x.dtype != object or any(isinstance(v, mpmath.mpc) for v in x.flat) for x in xs)


def solve_hessenberg_sylvester(h, c, adjoint: bool):
    """solve_hessenberg_sylvester (factorules/compiler/ops/solves.py) of one H and C (may be a
    batch), column by column with the recurrences of its docstring: adjoint=False gives the
    skew-Hermitian Om (first row and column zero) with tril(Om S - S Om, -2) = tril(C, -2) and
    im(subdiag(Om S - S Om)) = im(subdiag(C)), S = triu(H, -1); adjoint=True its transpose,
    the Y (below the subdiagonal, imaginary on it) with Y S^H - S^H Y equal to skew(C) times
    two below the diagonal and im(Y S^H - S^H Y) = im(C) on it, rows and columns 1: only."""
    if h.ndim != 2:
        raise EvalError("solve_hessenberg_sylvester: H must not be batched here")
    s = band(h, -1, lower=False)
    n = s.shape[0]
    dtype = np.result_type(s.dtype, c.dtype)
    zero = mpmath.mpf(0) if dtype == object else 0
    x = np.zeros(c.shape, dtype=dtype)
    x.fill(zero)
    phases = _complex_values(h, c)
    if not adjoint:
        for j in range(n - 2):
            rhs = c[..., :, j:j + 1] - x @ s[:, j:j + 1] + s @ x[..., :, j:j + 1]
            x[..., j + 2:, j + 1] = rhs[..., j + 2:, 0] / s[j + 1, j]
        out = x - _adjoint(x)
        if phases:
            residual = c - x @ s + s @ x
            phi = zero
            for j in range(n - 1):
                phi = phi + imag(np.asarray(residual[..., j + 1, j])) / real(np.asarray(s[j + 1, j]))
                out[..., j + 1, j + 1] = 1j * phi
        return out
    g = c - _adjoint(c)
    sh = _adjoint(s)
    if phases:
        total = zero
        for j in range(n - 2, -1, -1):
            total = total + imag(np.asarray(c[..., j + 1, j + 1]))
            x[..., j + 1, j] = 1j * total / real(np.asarray(s[j + 1, j]))
    for j in range(n - 3, -1, -1):
        rhs = g[..., :, j + 1:j + 2] - x @ sh[:, j + 1:j + 2] + sh @ x[..., :, j + 1:j + 2]
        x[..., j + 2:, j] = rhs[..., j + 2:, 0] / conj(s[j + 1, j])
    return x
