"""Triangles and Hermitian parts: ``tril``, ``triu``, ``copyltu``, ``sym``, ``skew``.

All are linear.  A band (``tril``/``triu``) is a coordinate projection and ``sym``/``skew``
are orthogonal projections, so each is its own transpose under ``<X, Y> = Re sum(conj(X) *
Y)``; ``copyltu`` is the transpose of "the upper triangle of X + X^H".
"""
from __future__ import annotations

import sympy as sp
from sympy import ZeroMatrix

from . import arrays
from .algebra import add
from .base import Call, LinearMap, OneOperand, as_expr
from .elementwise import Re, adjoint
from .vectors import Diag, Diagonal


class _Band(OneOperand):
    """tril/triu: keep the entries on and below/above diagonal ``offset``: an integer or a
    dimension expression (full-mode RQ's triu(X, n - m), the upper trapezoid of a wide R)."""

    call = Call(1, ("offset",))
    latex_atomic = True
    lower = True  # tril: on and below the diagonal; triu: on and above

    def __new__(cls, arg, offset=0):
        if isinstance(arg, ZeroMatrix):
            return arg
        return super().__new__(cls, arg, as_expr(offset))

    @property
    def offset(self) -> sp.Expr:
        """The diagonal offset: an Integer, or an expression of dimensions."""
        return self.args[1]

    @property
    def shape(self):
        return self.arg.shape

    def linearize(self, d):
        return type(self)(d(self.arg), self.offset)

    def cotangents(self, g, is_linear):
        yield self.arg, type(self)(g, self.offset)  # a coordinate projection is self-adjoint

    def evaluate(self, value_of, evaluator):
        return arrays.band(value_of(self.arg), evaluator.dim(self.offset), lower=self.lower)

    def latex(self, printer):
        offset = "" if self.offset == 0 else (
            str(self.offset) if self.offset.is_Integer else printer._print(self.offset))
        return printer._function(self.spec_name, self.arg, offset)

    def code(self, printer):
        return printer._op(self.spec_name, x=printer._operand(self.spec_name, self.arg),
                           offset=printer._dim(self.offset))


class Tril(_Band):
    """tril(X, k): entries X[i, j] with j - i <= k, zero elsewhere."""

    spec_name = "tril"
    lower = True


class Triu(_Band):
    """triu(X, k): entries X[i, j] with j - i >= k, zero elsewhere."""

    spec_name = "triu"
    lower = False


class CopyLtu(LinearMap):
    """copyltu(X) = tril(X, -1) + tril(X, -1)^H + diag(re(diagonal(X))).

    The Hermitian matrix whose lower triangle is that of X (with a real diagonal); the
    adjoint of "take the upper triangle of X + X^H" (Walter & Lehmann 2018, eq. for QR).
    """

    spec_name = "copyltu"
    call = Call(1)
    needs_square = True

    def cotangents(self, g, is_linear):
        # <G, tril(X,-1) + tril(X,-1)^H + diag(re diag X)>
        #     = <tril(G + G^H, -1) + diag(re diag G), X>
        yield self.arg, add([Tril(g + adjoint(g), -1), Diag(Re(Diagonal(g)))], self.shape)

    def evaluate(self, value_of, evaluator):
        x = value_of(self.arg)
        low = arrays.band(x, -1, lower=True)
        return low + arrays.adjoint(low) + arrays.diag(arrays.real(arrays.diagonal(x)),
                                                       evaluator.field)


class Sym(LinearMap):
    """sym(X) = (X + X^H) / 2, the Hermitian part."""

    spec_name = "sym"
    call = Call(1)
    needs_square = True

    def cotangents(self, g, is_linear):
        yield self.arg, Sym(g)  # an orthogonal projection: self-adjoint

    def evaluate(self, value_of, evaluator):
        x = value_of(self.arg)
        return (x + arrays.adjoint(x)) * evaluator.field.scalar(sp.Rational(1, 2))


class Skew(LinearMap):
    """skew(X) = (X - X^H) / 2, the skew-Hermitian part."""

    spec_name = "skew"
    call = Call(1)
    needs_square = True

    def cotangents(self, g, is_linear):
        yield self.arg, Skew(g)  # an orthogonal projection: self-adjoint

    def code(self, printer):
        if isinstance(self.arg, Diag) and "skew_diag" in printer.OPS:
            # diag(i im(v)): zeros for a real v, with no diagonal matrix built to subtract
            return printer._op("skew_diag", v=printer._print(self.arg.arg))
        return super().code(printer)

    def evaluate(self, value_of, evaluator):
        x = value_of(self.arg)
        return (x - arrays.adjoint(x)) * evaluator.field.scalar(sp.Rational(1, 2))
