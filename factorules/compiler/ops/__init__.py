"""Structural matrix operations as SymPy expression classes, one home each.

Every operation the spec language offers beyond SymPy's own MatMul/MatAdd/Adjoint/Transpose
is a ``StructuralOp`` subclass (``base``) in one of the family modules below, which holds all
there is to know about it: how a spec calls it, its shape rule, linearization, transpose,
numeric evaluation, LaTeX and the table key backends print it by.  (What the printers make of
products by diag(v) or by a permutation is in ``factorules.compiler.product_folding``.)

    base         shape helpers, the errors, ``Call`` and ``StructuralOp``
    algebra      sums and products that stay tidy (no zero terms, no identity factors)
    arrays       array helpers of the numeric evaluation (mpmath or complex128)
    blocks       X[r0:r1, c0:c1], embed, hstack, vstack, eye, flip_rows, flip_cols
    elementwise  .conj, re, im (and ``adjoint``, the simplifying X^H)
    vectors      diagonal, diag, pairwise_inv, recip
    triangular   tril, triu, copyltu, sym, skew
    solves       solve_triangular, solve, solve_sylvester, solve_tril_sylvester,
                 solve_hessenberg_sylvester

A new operation is a class in one family module (all of it), and one entry per backend
table for the key its ``code`` prints (``printers/``); the spec language's function table
(``STRUCTURAL_OPS``, read by ``factorules.compiler.expr``) finds it by its ``call``.
"""
from __future__ import annotations

from . import blocks, elementwise, solves, triangular, vectors
from .algebra import add, mul, unless_zero, zeros_like
from .base import (Call, CallError, DeriveError, EvalError, LinearMap, OneOperand, ShapeError,
                   Size, StructuralOp, as_expr, as_flag, bound, dims_equal, fmt_shape,
                   is_vector, require_same_shape, require_square, split_product)
from .blocks import Block, Embed, Eye, FlipCols, FlipRows, HStack, VStack, embed
from .elementwise import Conj, Im, Re, adjoint
from .solves import (Solve, SolveHessenbergSylvester, SolveSylvester, SolveTrilSylvester,
                     SolveTriangular)
from .triangular import CopyLtu, Skew, Sym, Tril, Triu
from .vectors import Diag, Diagonal, PairwiseInv, Recip, two_factor_products

__all__ = [
    "Block", "Call", "CallError", "Conj", "CopyLtu", "DeriveError", "Diag", "Diagonal", "Embed",
    "EvalError", "Eye", "FlipCols", "FlipRows", "HStack", "Im", "LinearMap", "OPERATIONS",
    "OneOperand", "PairwiseInv", "Re", "Recip", "STRUCTURAL_OPS", "ShapeError", "Size", "Skew",
    "Solve", "SolveHessenbergSylvester", "SolveSylvester", "SolveTrilSylvester", "SolveTriangular", "StructuralOp", "Sym",
    "Tril", "Triu", "VStack", "add", "adjoint", "as_expr", "as_flag", "bound", "dims_equal",
    "embed", "fmt_shape", "is_vector", "mul", "require_same_shape", "require_square",
    "split_product", "two_factor_products", "unless_zero", "zeros_like",
]

_FAMILIES = (triangular, elementwise, vectors, solves, blocks)

# Every operation of the family modules, in the order they are defined there.
OPERATIONS: tuple[type[StructuralOp], ...] = tuple(
    cls for module in _FAMILIES for cls in vars(module).values()
    if isinstance(cls, type) and issubclass(cls, StructuralOp)
    and cls.__module__ == module.__name__ and not cls.__name__.startswith("_"))

# Names of the spec language's functions -> their operations (each says how it is called).
STRUCTURAL_OPS: dict[str, type[StructuralOp]] = {
    cls.spec_name: cls for cls in OPERATIONS if cls.call is not None}
