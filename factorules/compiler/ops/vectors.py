"""Diagonals and vectors: ``diagonal(X)``, ``diag(v)``, ``pairwise_inv(v)``, ``recip(v)``.

Vectors are ``k x 1`` columns.  ``diagonal`` and ``diag`` are each other's adjoints (up to
the zero padding of a non-square X); ``pairwise_inv`` and ``recip`` are constants of the
primal in rules and are never differentiated.
"""
from __future__ import annotations

import numpy as np
import sympy as sp
from sympy import Integer

from . import arrays
from .algebra import unless_zero
from .base import Call, OneOperand, ShapeError, dims_equal, fmt_shape, is_vector
from .blocks import embed


class Diagonal(OneOperand):
    """diagonal(X): the main diagonal of X as a min(rows, cols) x 1 column."""

    spec_name = "diagonal"
    call = Call(1)
    latex_atomic = True

    def __new__(cls, arg):
        return super().__new__(cls, arg)

    @property
    def shape(self):
        return (sp.Min(self.arg.rows, self.arg.cols), Integer(1))

    def linearize(self, d):
        return unless_zero(Diagonal, d(self.arg), self.shape)

    def cotangents(self, g, is_linear):
        yield self.arg, embed(Diag(g), self.arg.rows, self.arg.cols, 0, 0)

    def evaluate(self, value_of, evaluator):
        return arrays.diagonal(value_of(self.arg))

    def latex(self, printer):
        return printer._function("diagonal", self.arg)

    def code(self, printer):
        if getattr(self.arg, "spec_name", "") == "skew" and "diagonal_skew" in printer.OPS:
            # i im(X_jj): zeros for a real X, which the runtime makes from X's shape alone
            # (JAX's linearization then leaves the term out of the linear map)
            return printer._op("diagonal_skew", x=printer._print(self.arg.arg))
        products = two_factor_products(self.arg) if printer.diagonal_of_products else None
        if products:
            # sum_k X_ik Y_ki for each term c X Y: O(n^2), the product itself is O(n^3)
            text = ""
            for coeff, x, y in products:
                term = printer._op("diagonal_of_product", a=printer._print(x),
                                   b=printer._print(y))
                sign = "-" if coeff.is_negative else "+"
                if abs(coeff) != 1:
                    term = f"{printer._scalar(abs(coeff))} * {term}"
                text = (f"{text} {sign} {term}" if text else
                        term if sign == "+" else f"-{term}")
            return text
        return printer._op("diagonal", x=printer._operand("diagonal", self.arg))


def two_factor_products(e):
    """[(c, X, Y), ...] when e is a square product c X @ Y (c a number) or a sum of them,
    else None."""
    terms = e.args if isinstance(e, sp.MatAdd) else (e,)
    products = []
    for term in terms:
        if not isinstance(term, sp.MatMul):
            return None
        mats = [a for a in term.args if isinstance(a, sp.MatrixExpr)]
        coeff = sp.Mul(*(a for a in term.args if not isinstance(a, sp.MatrixExpr)))
        if not (len(mats) == 2 and coeff.is_number and coeff.is_real
                and dims_equal(term.rows, term.cols)):
            return None
        products.append((coeff, *mats))
    return products


class Diag(OneOperand):
    """diag(v): the square diagonal matrix with the column v on its diagonal."""

    spec_name = "diag"
    call = Call(1)
    latex_atomic = True

    def __new__(cls, arg):
        if not dims_equal(arg.cols, 1):
            raise ShapeError(f"diag: needs a column vector, got {fmt_shape(arg)}")
        return super().__new__(cls, arg)

    @property
    def shape(self):
        return (self.arg.rows, self.arg.rows)

    def linearize(self, d):
        return unless_zero(Diag, d(self.arg), self.shape)

    def cotangents(self, g, is_linear):
        yield self.arg, Diagonal(g)

    def evaluate(self, value_of, evaluator):
        return arrays.diag(value_of(self.arg), evaluator.field)

    def latex(self, printer):
        return printer._function("diag", self.arg)

    def code(self, printer):
        return printer._op("diag", v=printer._arg(self.arg), n=printer._dim(self.rows))


class _OfVector(OneOperand):
    """An operation of one vector (an n x 1 column)."""

    hint = ""  # added to the shape error

    def __new__(cls, arg):
        if not is_vector(arg):
            raise ShapeError(f"{cls.spec_name}: needs a vector, got {fmt_shape(arg)}{cls.hint}")
        return super().__new__(cls, arg)


class PairwiseInv(_OfVector):
    """pairwise_inv(v): the n x n matrix F with F[i, j] = 1 / (v[j] - v[i]), and 0 at ties:
    the diagonal, and values equal up to rounding (|v[j] - v[i]| <= n eps max|v| in the
    backends, where eps is the dtype's; exactly equal in the high-precision audit).

    The factor of eigenvector and singular-vector derivatives (e.g. Giles 2008, Sec. 3.1).
    Rules use it as a constant of the primal: it is never differentiated.
    """

    spec_name = "pairwise_inv"
    call = Call(1)

    @property
    def shape(self):
        return (self.arg.rows, self.arg.rows)

    def evaluate(self, value_of, evaluator):
        v = value_of(self.arg)
        gaps = np.swapaxes(v, -1, -2) - v
        out = evaluator.field.zeros(gaps.shape)
        nonzero = gaps != 0
        out[nonzero] = 1 / gaps[nonzero]
        return out

    def latex(self, printer):
        return printer._function("pairwise\\_inv", self.arg)

    def code(self, printer):
        return printer._op("pairwise_inv", x=printer._print(self.arg))


class Recip(_OfVector):
    """recip(v): the elementwise reciprocal 1 / v of a vector (v without zeros), e.g. S^-1
    as diag(recip(S)).  A constant of the primal in rules: never differentiated."""

    spec_name = "recip"
    call = Call(1)
    hint = " (for a matrix use solve)"

    @property
    def shape(self):
        return self.arg.shape

    def evaluate(self, value_of, evaluator):
        return evaluator.field.scalar(sp.Integer(1)) / value_of(self.arg)

    def latex(self, printer):
        return printer._function("recip", self.arg)

    def code(self, printer):
        return printer._op("recip", x=printer._arg(self.arg))
