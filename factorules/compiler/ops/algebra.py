"""Small constructors that keep derived expressions tidy: sums and products without zero
terms or identity factors, and an operation of a zero that is that zero.

The linearization and transpose rules of the operations build with them, as does
``factorules.compiler.derive`` (which re-exports them).
"""
from __future__ import annotations

import sympy as sp
from sympy import Identity, MatAdd, MatMul, MatrixExpr, ZeroMatrix


def zeros_like(e: MatrixExpr) -> ZeroMatrix:
    return ZeroMatrix(*e.shape)


def add(terms, shape) -> MatrixExpr:
    terms = [t for t in terms if not isinstance(t, ZeroMatrix)]
    if not terms:
        return ZeroMatrix(*shape)
    return terms[0] if len(terms) == 1 else MatAdd(*terms).doit(deep=False)


def mul(*factors) -> MatrixExpr:
    """Product of scalars and matrices; zero if any matrix factor is zero."""
    mats = [f for f in factors if isinstance(f, MatrixExpr)]
    coeff = sp.Integer(1)
    for f in factors:
        if not isinstance(f, MatrixExpr):
            coeff *= f
    if any(isinstance(m, ZeroMatrix) for m in mats) or coeff == 0:
        return ZeroMatrix(mats[0].rows, mats[-1].cols)
    mats = [m for m in mats if not isinstance(m, Identity)] or mats[:1]
    if coeff == 1 and len(mats) == 1:
        return mats[0]
    return MatMul(*([coeff] if coeff != 1 else []), *mats)


def unless_zero(op, arg, shape) -> MatrixExpr:
    """``op(arg)``, or the zero of ``shape`` when ``arg`` is a zero matrix."""
    return ZeroMatrix(*shape) if isinstance(arg, ZeroMatrix) else op(arg)
