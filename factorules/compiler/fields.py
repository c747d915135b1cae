"""The number field of every value a rule computes, and the explicit casts for a backend that
does not promote implicitly (JAX under ``jax_numpy_dtype_promotion="strict"``).

Three fields, each contained in the next:

    REAL     real whatever the input: re(X), im(X), singular values, eigenvalues of eigh
    INPUT    the input's dtype, real or complex (A, dA, Q, R, eye(n), ...)
    COMPLEX  complex whatever the input (eig's eigenpairs: ``dtype: complex``)

A sum, product, stack or solve is in the largest field of its operands (and a product with
an imaginary coefficient is COMPLEX); ``explicit_casts`` wraps each operand of a smaller field
in a ``Cast`` to the result's, which is the promotion NumPy, PyTorch and JAX's default mode
do implicitly, made visible: the values are the same.  Real operations (``re``, ``im``) are
REAL; every other operation keeps its operand's field.  A ``Cast`` is not spec-language
syntax: only the printers see it (the audit and the derivations see the uncast expression).
"""
from __future__ import annotations

import enum

import sympy as sp
from sympy import HadamardProduct, MatAdd, MatMul, MatrixExpr, MatrixSymbol

from .ops import Eye, HStack, Im, OneOperand, Re, Solve, SolveSylvester, SolveTriangular, VStack
from .product_folding import PermuteCols, PermuteRows, ScaleCols, ScaleRows


class Field(enum.IntEnum):
    """Where a value's entries lie; each field contains the ones before it."""

    REAL = 0
    INPUT = 1
    COMPLEX = 2


def tensor_field(tensor) -> Field:
    """The field of a spec input or output (``factorules.compiler.spec.Tensor``), and of its
    tangent and cotangent."""
    if tensor.complex_valued:
        return Field.COMPLEX
    if tensor.is_vector and tensor.structure in ("real", "positive"):
        return Field.REAL
    return Field.INPUT


def tensor_fields(inputs, outputs) -> dict[str, Field]:
    """The field of each name a rule reads: the inputs, the outputs, their tangents
    (``dX``) and cotangents (``gX``)."""
    fields = {}
    for t in (*inputs, *outputs):
        fields[t.name] = fields["d" + t.name] = fields["g" + t.name] = tensor_field(t)
    return fields


# Operations whose operands (all of them matrices) are brought to one field: the result's.
_COMBINING = (MatAdd, MatMul, HadamardProduct, HStack, VStack, Solve, SolveTriangular,
              SolveSylvester)


def field_of(e, fields: dict[str, Field]) -> Field:
    """The field of ``e``'s value, ``fields`` giving those of the names it reads (a name not
    there is in the input's field)."""
    if isinstance(e, MatrixSymbol):
        return fields.get(e.name, Field.INPUT)
    if isinstance(e, (Re, Im)):
        return Field.REAL
    if isinstance(e, sp.ZeroMatrix):
        return Field.REAL
    if isinstance(e, (Eye, sp.Identity)):
        return Field.INPUT
    if isinstance(e, Cast):
        return e.field
    if isinstance(e, (PermuteRows, PermuteCols)):
        return field_of(e.arg, fields)
    operands = [a for a in e.args if isinstance(a, MatrixExpr)]
    field = max((field_of(a, fields) for a in operands), default=Field.REAL)
    if isinstance(e, MatMul) and any(not isinstance(a, MatrixExpr) and a.has(sp.I)
                                     for a in e.args):
        field = Field.COMPLEX
    return field


def explicit_casts(e, fields: dict[str, Field]):
    """``e`` with each operand of a sum, product, stack or solve (and of a row or column
    scaling) that lies in a smaller field than the result cast to the result's field."""
    if not isinstance(e, MatrixExpr) or isinstance(e, (MatrixSymbol, Cast)) or not e.args:
        return e
    if isinstance(e, (PermuteRows, PermuteCols)):
        return e.func(e.perm, explicit_casts(e.arg, fields), e.transpose)
    args = [explicit_casts(a, fields) if isinstance(a, MatrixExpr) else a for a in e.args]
    if isinstance(e, (*_COMBINING, ScaleCols, ScaleRows)):
        want = field_of(e.func(*args) if args != list(e.args) else e, fields)
        args = [Cast(a, want) if isinstance(a, MatrixExpr) and field_of(a, fields) < want
                and not isinstance(a, sp.ZeroMatrix) else a for a in args]
    if args == list(e.args):
        return e
    return e.func(*args)


class Cast(OneOperand):
    """Not spec-language syntax: its operand's value in the field ``field`` (the input's
    dtype, or complex of the input's precision), which a backend prints from its table
    entry ``cast_input`` or ``cast_complex``."""

    def __new__(cls, arg, field):
        return super().__new__(cls, arg, sp.Integer(int(field)))

    field = property(lambda self: Field(int(self.args[1])))

    @property
    def shape(self):
        return self.arg.shape

    def code(self, printer):
        key = "cast_input" if self.field == Field.INPUT else "cast_complex"
        return printer._op(key, x=printer._operand(key, self.arg))

    def latex(self, printer):
        return printer._print(self.arg)
