"""Elementwise parts of a complex matrix: ``X.conj``, ``re(X)``, ``im(X)``; and ``adjoint``,
the one-level simplifying X^H that rules are built with.

The transposes are under the real inner product ``<X, Y> = Re sum(conj(X) * Y)``:
Re<G, conj X> = Re<conj G, X>, Re<G, re X> = Re<re G, X>, Re<G, im X> = Re<i re G, X>.
"""
from __future__ import annotations

import sympy as sp
from sympy import Adjoint, Identity, MatMul, MatrixExpr, Transpose, ZeroMatrix

from . import arrays
from .algebra import mul
from .base import Call, LinearMap, split_product
from .blocks import Eye


def adjoint(e: MatrixExpr) -> MatrixExpr:
    """e^H, simplified one level: (X^H)^H = X, (X^T)^H = conj(X), (ABC)^H = C^H B^H A^H."""
    if isinstance(e, ZeroMatrix):
        return ZeroMatrix(e.cols, e.rows)
    if isinstance(e, (Identity, Eye)) and e.rows == e.cols:
        return e
    if isinstance(e, Adjoint):
        return e.arg
    if isinstance(e, Transpose):
        return Conj(e.arg)
    if isinstance(e, Conj):
        return Transpose(e.arg)
    if isinstance(e, MatMul):
        coeff, mats = split_product(e)
        return mul(sp.conjugate(coeff), *[adjoint(m) for m in reversed(mats)])
    return Adjoint(e)


class Conj(LinearMap):
    """X.conj: elementwise complex conjugate."""

    spec_name = "conj"
    attribute = "conj"

    def cotangents(self, g, is_linear):
        yield self.arg, Conj(g)

    def evaluate(self, value_of, evaluator):
        return arrays.conj(value_of(self.arg))

    def latex(self, printer):
        return rf"\overline{{{printer._print(self.arg)}}}"


class Re(LinearMap):
    """re(X): elementwise real part."""

    spec_name = "re"
    call = Call(1)
    latex_name = "Re"

    def cotangents(self, g, is_linear):
        yield self.arg, Re(g)

    def evaluate(self, value_of, evaluator):
        return arrays.real(value_of(self.arg))


class Im(LinearMap):
    """im(X): elementwise imaginary part (zero for real X)."""

    spec_name = "im"
    call = Call(1)
    latex_name = "Im"

    def cotangents(self, g, is_linear):
        yield self.arg, mul(sp.I, Re(g))

    def evaluate(self, value_of, evaluator):
        return arrays.imag(value_of(self.arg))
