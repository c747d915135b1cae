"""Evaluate spec-language expressions on numbers: mpmath at high precision, or float.

The audit evaluates every equation and rule it checks with this module, never with the
generated code: values are NumPy arrays whose last two axes are the matrix, either of
``object`` dtype holding mpmath numbers (``Field.mp``) or of complex128 (``Field.float``).
Leading axes are a batch (used to push many tangent directions through at once).
Dimensions are bound to integers by ``Evaluator(dims)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import mpmath
import numpy as np
import sympy as sp
from sympy import (Adjoint, HadamardProduct, Identity, MatAdd, MatMul, MatrixSymbol, Transpose,
                   ZeroMatrix)

from ..compiler import ops


class EvalError(ValueError):
    """An expression the evaluator has no rule for, or a singular solve."""


@dataclass(frozen=True)
class Field:
    """How numbers are made: mpmath objects at ``dps`` digits, or complex128."""

    kind: str  # 'mp' or 'float'
    dps: int = 50

    def scalar(self, c):
        c = sp.nsimplify(c) if isinstance(c, sp.Float) else c
        if self.kind == "float":
            return complex(c)
        re, im = c.as_real_imag()
        return mpmath.mpc(_mpf(re), _mpf(im)) if im != 0 else _mpf(re)

    def array(self, values):
        """A float/complex array converted to this field (exactly, for mp)."""
        values = np.asarray(values)
        if self.kind == "float":
            return values.astype(np.complex128)
        out = np.empty(values.shape, dtype=object)
        flat, src = out.reshape(-1), values.reshape(-1)
        for i, v in enumerate(src):
            v = complex(v)
            flat[i] = mpmath.mpc(v.real, v.imag) if v.imag else mpmath.mpf(v.real)
        return out

    def zeros(self, shape):
        if self.kind == "float":
            return np.zeros(shape, dtype=np.complex128)
        out = np.empty(shape, dtype=object)
        out.fill(mpmath.mpf(0))
        return out

    def eye(self, rows, cols):
        out = self.zeros((rows, cols))
        for i in range(min(rows, cols)):
            out[i, i] = mpmath.mpf(1) if self.kind == "mp" else 1.0
        return out


def _mpf(c) -> mpmath.mpf:
    c = sp.Rational(c) if c.is_Rational else c
    if c.is_Rational:
        return mpmath.mpf(int(c.p)) / int(c.q)
    raise EvalError(f"scalar {c} is not a rational number")


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


def norm(x) -> float:
    """Frobenius norm (over every axis) as a float, or an mpf for mp arrays."""
    if x.size == 0:
        return 0.0
    if x.dtype == object:
        return mpmath.sqrt(mpmath.fsum(mpmath.fabs(v) ** 2 for v in x.reshape(-1)))
    return float(np.linalg.norm(x.reshape(-1)))


def inner(x, y):
    """Re <x, y> = Re sum(conj(x) * y)."""
    if x.dtype == object or y.dtype == object:
        return mpmath.re(mpmath.fsum((conj(x) * y).reshape(-1)))
    return float(np.real(np.sum(np.conj(x) * y)))


class Evaluator:
    """Evaluates matrix expressions given values of the symbols and integer dimensions."""

    def __init__(self, dims: dict, field: Field):
        self.subs = {sp.Symbol(k, integer=True, nonnegative=True) if isinstance(k, str) else k:
                     int(v) for k, v in dims.items()}
        self.field = field

    def dim(self, e) -> int:
        value = ops.as_expr(e).subs(self.subs)
        if not value.is_Integer:
            raise EvalError(f"dimension {e} is not a number once dimensions are bound")
        return int(value)

    def shape(self, e) -> tuple[int, int]:
        return self.dim(e.rows), self.dim(e.cols)

    def __call__(self, e, env: dict):
        return self.evaluate(e, env)

    def evaluate(self, e, env):  # noqa: C901 (one dispatch over the op vocabulary)
        ev = lambda x: self.evaluate(x, env)  # noqa: E731
        f = self.field
        if isinstance(e, MatrixSymbol):
            if e.name not in env:
                raise EvalError(f"no value for {e.name}")
            return env[e.name]
        if isinstance(e, ZeroMatrix):
            return f.zeros(self.shape(e))
        if isinstance(e, (Identity, ops.Eye)):
            return f.eye(*self.shape(e))
        if isinstance(e, MatAdd):
            parts = [ev(t) for t in e.args]
            out = parts[0]
            for p in parts[1:]:
                out = out + p
            return out
        if isinstance(e, MatMul):
            coeff, mats = ops.split_product(e)
            out = ev(mats[0])
            for m in mats[1:]:
                out = out @ ev(m)
            return out if coeff == 1 else f.scalar(coeff) * out
        if isinstance(e, HadamardProduct):
            out = ev(e.args[0])
            for a in e.args[1:]:
                out = out * ev(a)
            return out
        if isinstance(e, Adjoint):
            return adjoint(ev(e.arg))
        if isinstance(e, Transpose):
            return np.swapaxes(ev(e.arg), -1, -2)
        if isinstance(e, ops.Conj):
            return conj(ev(e.arg))
        if isinstance(e, ops.Tril):
            return _band(ev(e.arg), e.offset, lower=True)
        if isinstance(e, ops.Triu):
            return _band(ev(e.arg), e.offset, lower=False)
        if isinstance(e, ops.CopyLtu):
            x = ev(e.arg)
            low = _band(x, -1, lower=True)
            return low + adjoint(low) + _diag(real(_diagonal(x)), f)
        if isinstance(e, ops.Sym):
            x = ev(e.arg)
            return (x + adjoint(x)) * f.scalar(sp.Rational(1, 2))
        if isinstance(e, ops.Skew):
            x = ev(e.arg)
            return (x - adjoint(x)) * f.scalar(sp.Rational(1, 2))
        if isinstance(e, ops.Re):
            return real(ev(e.arg))
        if isinstance(e, ops.Im):
            return imag(ev(e.arg))
        if isinstance(e, ops.Diagonal):
            return _diagonal(ev(e.arg))
        if isinstance(e, ops.Diag):
            return _diag(ev(e.arg), f)
        if isinstance(e, ops.Recip):
            return f.scalar(sp.Integer(1)) / ev(e.arg)
        if isinstance(e, ops.PairwiseInv):
            v = ev(e.arg)
            gaps = np.swapaxes(v, -1, -2) - v
            out = f.zeros(gaps.shape)
            nonzero = gaps != 0
            out[nonzero] = 1 / gaps[nonzero]
            return out
        if isinstance(e, ops.Block):
            r0, r1, c0, c1 = (self.dim(b) for b in e.bounds)
            return ev(e.arg)[..., r0:r1, c0:c1]
        if isinstance(e, (ops.HStack, ops.VStack)):
            parts = [ev(a) for a in e.args]
            batch = np.broadcast_shapes(*(p.shape[:-2] for p in parts))
            parts = [np.broadcast_to(p, batch + p.shape[-2:]) for p in parts]
            return np.concatenate(parts, axis=-1 if isinstance(e, ops.HStack) else -2)
        if type(e).__name__ == "Embed":
            x = ev(e.arg)
            rows, cols = self.shape(e)
            r0, c0 = self.dim(e.row0), self.dim(e.col0)
            out = f.zeros(x.shape[:-2] + (rows, cols))
            out[..., r0:r0 + x.shape[-2], c0:c0 + x.shape[-1]] = x
            return out
        if isinstance(e, ops.SolveTriangular):
            t, b = ev(e.tri), ev(e.rhs)
            if e.left:
                return _solve_triangular(t, b, e.upper, e.unit)
            # B T^-1 = (T^-T B^T)^T, and T^T swaps the triangle read
            return np.swapaxes(_solve_triangular(np.swapaxes(t, -1, -2), np.swapaxes(b, -1, -2),
                                                 not e.upper, e.unit), -1, -2)
        if isinstance(e, ops.Solve):
            a, b = ev(e.mat), ev(e.rhs)
            if e.left:
                return _solve(a, b)
            return np.swapaxes(_solve(np.swapaxes(a, -1, -2), np.swapaxes(b, -1, -2)), -1, -2)
        raise EvalError(f"the evaluator has no rule for {type(e).__name__}: {e}")


def _band(x, offset: int, lower: bool):
    rows, cols = x.shape[-2:]
    i = np.arange(rows)[:, None]
    j = np.arange(cols)[None, :]
    keep = (j - i <= offset) if lower else (j - i >= offset)
    out = x.copy()
    out[..., ~keep] = 0 if x.dtype != object else mpmath.mpf(0)
    return out


def _diagonal(x):
    return np.diagonal(x, 0, -2, -1)[..., :, None].copy()


def _diag(v, f: Field):
    n = v.shape[-2]
    out = f.zeros(v.shape[:-2] + (n, n))
    for i in range(n):
        out[..., i, i] = v[..., i, 0]
    return out


def _solve_triangular(t, b, upper: bool, unit: bool):
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


def _solve(a, b):
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
    return _solve_triangular(a, b, upper=True, unit=False)


def inner_c(x, y):
    """sum(conj(x) * y), complex (mp arrays)."""
    return mpmath.fsum((conj(x) * y).reshape(-1))
