"""What every structural operation shares: shape helpers, the errors, and ``StructuralOp``.

An operation of the spec language is a ``StructuralOp`` subclass, and its class is its one
home: how a spec calls it (``spec_name``, ``call`` or ``attribute``), its shape rule
(``__new__`` checks the operands and raises ``ShapeError``; ``shape``), its linearization
(``linearize``), its transpose (``cotangents``), its value on numbers (``evaluate``), its
LaTeX (``latex``) and how a backend prints it (``code``: the backend's table entry, through
``printer._op``).  The generic parts stay where they are: ``factorules.compiler.derive``
linearizes and transposes sums, products, adjoints and symbols and asks the operation for
the rest; ``factorules.audit.numeric``, ``factorules.audit.latex`` and the backend printers
likewise.  Each backend spells an operation in its own table (``printers/<backend>.py``).

Vectors (``diagonal(X)``) are ``k x 1`` column matrices.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import sympy as sp
from sympy import Basic, Integer, MatrixExpr
from sympy.logic.boolalg import BooleanAtom


class ShapeError(ValueError):
    """Operand shapes that do not fit together."""


class CallError(ValueError):
    """Arguments of a spec-language call that its operation does not take (the parser adds
    the line)."""


class DeriveError(ValueError):
    """A rule that cannot be linearized or transposed (e.g. it is not linear)."""


class EvalError(ValueError):
    """An expression the evaluator has no rule for, or a singular solve."""


def as_expr(value) -> sp.Expr:
    """A SymPy expression from a SymPy object or a Python int; never parses text."""
    if isinstance(value, Basic):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Integer(value)
    raise TypeError(f"expected a SymPy expression or an int, got {type(value).__name__}")


def dims_equal(a, b) -> bool:
    """True when two symbolic dimensions are provably equal."""
    return _difference_is_zero(as_expr(a) - as_expr(b))


@functools.lru_cache(maxsize=4096)
def _difference_is_zero(d: sp.Expr) -> bool:
    if d == 0:
        return True
    if d.is_Number:
        return False
    if not d.has(sp.Min, sp.Max):  # a polynomial in the sizes: expanding decides
        return sp.expand(d) == 0
    return sp.simplify(d) == 0


def split_product(e) -> tuple[sp.Expr, list]:
    """(scalar coefficient, matrix factors) of a product, nested products flattened;
    (1, [e]) for anything else."""
    if not isinstance(e, sp.MatMul):
        return Integer(1), [e]
    coeff, mats = Integer(1), []
    for a in e.args:
        if isinstance(a, sp.MatMul):
            c, m = split_product(a)
            coeff, mats = coeff * c, mats + m
        elif isinstance(a, MatrixExpr):
            mats.append(a)
        else:
            coeff *= a
    return coeff, mats


def fmt_shape(x) -> str:
    return f"{x.rows}x{x.cols}"


def require_same_shape(op: str, x, y) -> None:
    if not (dims_equal(x.rows, y.rows) and dims_equal(x.cols, y.cols)):
        raise ShapeError(f"{op}: operands have shapes {fmt_shape(x)} and {fmt_shape(y)}")


def require_square(op: str, x) -> None:
    if not dims_equal(x.rows, x.cols):
        raise ShapeError(f"{op}: needs a square matrix, got {fmt_shape(x)}")


def is_vector(x) -> bool:
    """A vector: a column whose width is the literal 1 (matrix dimensions are symbols)."""
    return as_expr(x.cols) == 1


def as_flag(value) -> BooleanAtom:
    """A boolean argument of an operation, held as SymPy's true/false."""
    return sp.true if value else sp.false


class Size(sp.Atom):
    """A block bound held as an atom, so that common-subexpression elimination does not name
    it (factorules.compiler.program): a block whose bound became a name would no longer line up with
    the matrices whose shapes keep the expression (m - 1)."""

    def __new__(cls, value):
        obj = sp.Atom.__new__(cls)
        obj.value = as_expr(value)
        return obj

    def _hashable_content(self):
        return (self.value,)


def bound(b) -> sp.Expr:
    """A block bound or size as an expression, whether held as a ``Size`` or not."""
    return b.value if isinstance(b, Size) else as_expr(b)


def size_arg(b):
    """A bound or size as an argument of an operation: a ``Size`` kept, anything else an
    expression."""
    return b if isinstance(b, Size) else as_expr(b)


@dataclass(frozen=True)
class Call:
    """How the spec language calls an operation: ``name(operands, args, keyword=flag)``."""

    operands: int | str  # how many matrix operands come first; "*": any number, nothing else
    args: tuple[str, ...] = ()  # then dimension expressions, by name ...
    required_args: int = 0  # ... the first this many of them required
    keywords: tuple[str, ...] = ()  # keyword arguments, each True or False
    required_keywords: tuple[str, ...] = ()


class StructuralOp(MatrixExpr):
    """An operation of the spec language, or one that derived rules or printing produce.

    A subclass holds everything about its operation; a hook it leaves out is an error when
    reached (the same error the caller raises for an expression it has no rule for).
    """

    is_commutative = False
    spec_name = ""  # its name in the spec language (shape errors say it)
    call: Call | None = None  # how a spec calls it; None: it is not a function of the language
    attribute: str | None = None  # a postfix spelling instead (``X.conj``)
    latex_atomic = False  # its LaTeX takes a superscript or subscript as it is
    latex_product = False  # its LaTeX is a product (``T^{-1} B``): bracketed in a Hadamard product

    @classmethod
    def from_call(cls, operands: list, args: list, flags: dict):
        """The operation of a spec-language call: its matrix operands, its other positional
        arguments (dimension expressions) and its keyword flags, as ``call`` describes them."""
        return cls(*operands, *args, **flags)

    def linearize(self, d):
        """The differential of this operation, ``d(x)`` being that of a sub-expression x."""
        raise DeriveError(f"cannot linearize {type(self).__name__}: {self}")

    def cotangents(self, g, is_linear):
        """(operand, contribution) for each operand linear in the tangents
        (``is_linear(x)``), given the cotangent ``g`` of this operation: the adjoint of the
        operation under ``<X, Y> = Re sum(conj(X) * Y)`` applied to g."""
        raise DeriveError(f"no transpose rule for {type(self).__name__}: {self}")

    def evaluate(self, value_of, evaluator):
        """The value on numbers, ``value_of(x)`` being a sub-expression's array (mpmath or
        complex128, see ``factorules.compiler.ops.arrays``); ``evaluator`` binds dimensions
        (``dim``, ``shape``) and makes numbers (``field``: ``zeros``, ``eye``, ``scalar``)."""
        raise EvalError(f"the evaluator has no rule for {type(self).__name__}: {self}")

    def latex(self, printer) -> str:
        """LaTeX through ``factorules.audit.latex.LatexPrinter``'s notation helpers."""
        raise NotImplementedError(f"no LaTeX for {type(self).__name__}")

    def code(self, printer) -> str:
        """Code through a backend printer: its table entry, ``printer._op(key, fields)``."""
        return printer.emptyPrinter(self)


class OneOperand(StructuralOp):
    """An operation of one matrix operand, ``arg``."""

    @property
    def arg(self):
        return self.args[0]


class LinearMap(OneOperand):
    """A linear map of one matrix operand that keeps its shape (of a zero matrix, that zero
    matrix): its differential is itself applied to the operand's differential.  A backend
    prints it from its table entry ``spec_name`` (the operand as ``x``), LaTeX as
    ``\\operatorname{<latex_name>}(X)``."""

    needs_square = False  # True: the operand must be square
    latex_atomic = True
    latex_name = ""  # "": spec_name

    def __new__(cls, arg):
        if isinstance(arg, sp.ZeroMatrix):
            return arg
        if cls.needs_square:
            require_square(cls.spec_name, arg)
        return super().__new__(cls, arg)

    @property
    def shape(self):
        return self.arg.shape

    def linearize(self, d):
        return type(self)(d(self.arg))

    def latex(self, printer):
        return printer._function(self.latex_name or self.spec_name, self.arg)

    def code(self, printer):
        return printer._op(self.spec_name, x=printer._operand(self.spec_name, self.arg))
