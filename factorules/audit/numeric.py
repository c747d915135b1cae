"""Evaluate spec-language expressions on numbers: mpmath at high precision, or float.

The audit evaluates every equation and rule it checks with this module, never with the
generated code: values are NumPy arrays whose last two axes are the matrix, either of
``object`` dtype holding mpmath numbers (``Field.mp``) or of complex128 (``Field.float``).
Leading axes are a batch (used to push many tangent directions through at once).
Dimensions are bound to integers by ``Evaluator(dims)``.  This module makes the numbers and
evaluates SymPy's own nodes (sums, products, adjoints); each structural operation evaluates
itself (``StructuralOp.evaluate``, with the array helpers of ``factorules.compiler.ops.arrays``).
"""
from __future__ import annotations

from dataclasses import dataclass

import mpmath
import numpy as np
import sympy as sp
from sympy import (Adjoint, HadamardProduct, Identity, MatAdd, MatMul, MatrixSymbol, Transpose,
                   ZeroMatrix)

from ..compiler import ops
from ..compiler.ops import EvalError
from ..compiler.ops.arrays import adjoint, conj
from ..compiler.ops.arrays import imag as imag, real as real  # the audit reads them here


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
        self._dims: dict = {}  # dimension expression -> its value (subs is slow)

    def dim(self, e) -> int:
        e = ops.as_expr(e)
        if e not in self._dims:
            value = e.subs(self.subs)
            if not value.is_Integer:
                raise EvalError(f"dimension {e} is not a number once dimensions are bound")
            self._dims[e] = int(value)
        return self._dims[e]

    def shape(self, e) -> tuple[int, int]:
        return self.dim(e.rows), self.dim(e.cols)

    def __call__(self, e, env: dict):
        return self.evaluate(e, env)

    def evaluate(self, e, env):
        ev = lambda x: self.evaluate(x, env)  # noqa: E731
        f = self.field
        if isinstance(e, MatrixSymbol):
            if e.name not in env:
                raise EvalError(f"no value for {e.name}")
            return env[e.name]
        if isinstance(e, ZeroMatrix):
            return f.zeros(self.shape(e))
        if isinstance(e, Identity):
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
        if isinstance(e, ops.StructuralOp):
            return e.evaluate(ev, self)
        raise EvalError(f"the evaluator has no rule for {type(e).__name__}: {e}")


def inner_c(x, y):
    """sum(conj(x) * y), complex (mp arrays)."""
    return mpmath.fsum((conj(x) * y).reshape(-1))
