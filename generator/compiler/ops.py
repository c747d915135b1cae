"""Structural matrix operations as SymPy expression classes.

Every operation the spec language offers beyond SymPy's own MatMul/MatAdd/Adjoint/Transpose
is a ``MatrixExpr`` subclass here.  Each class checks its operands' shapes when it is built
(raising ``ShapeError``) and knows its own shape; printers render it with ``_print_<Class>``.
The classes are pure data: no backend knows anything about them beyond its printer.
(What the printers make of products by diag(v) or by a permutation is in
``generator.compiler.product_folding``.)

Vectors (``diagonal(X)``) are ``k x 1`` column matrices.
"""
from __future__ import annotations

import functools

import sympy as sp
from sympy import Basic, Integer, MatrixExpr, ZeroMatrix
from sympy.logic.boolalg import BooleanAtom


class ShapeError(ValueError):
    """Operand shapes that do not fit together."""


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


def as_flag(value) -> BooleanAtom:
    """A boolean argument of an operation, held as SymPy's true/false."""
    return sp.true if value else sp.false


class _Unary(MatrixExpr):
    """An operation of one matrix operand that keeps its shape; of a zero matrix, that zero
    matrix."""

    is_commutative = False
    spec_name = ""  # the operation's name in the spec language (its shape errors say it)
    needs_square = False  # True: the operand must be square

    def __new__(cls, arg):
        if isinstance(arg, ZeroMatrix):
            return arg
        if cls.needs_square:
            require_square(cls.spec_name, arg)
        return super().__new__(cls, arg)

    @property
    def arg(self):
        return self.args[0]

    @property
    def shape(self):
        return self.arg.shape


class _Band(MatrixExpr):
    """tril/triu: keep the entries on and below/above diagonal ``offset``."""

    is_commutative = False

    def __new__(cls, arg, offset=0):
        if isinstance(arg, ZeroMatrix):
            return arg
        return super().__new__(cls, arg, Integer(offset))

    @property
    def arg(self):
        return self.args[0]

    @property
    def offset(self) -> int:
        return int(self.args[1])

    @property
    def shape(self):
        return self.arg.shape


class Tril(_Band):
    """tril(X, k): entries X[i, j] with j - i <= k, zero elsewhere."""


class Triu(_Band):
    """triu(X, k): entries X[i, j] with j - i >= k, zero elsewhere."""


class CopyLtu(_Unary):
    """copyltu(X) = tril(X, -1) + tril(X, -1)^H + diag(re(diagonal(X))).

    The Hermitian matrix whose lower triangle is that of X (with a real diagonal); the
    adjoint of "take the upper triangle of X + X^H" (Walter & Lehmann 2018, eq. for QR).
    """

    spec_name = "copyltu"
    needs_square = True


class Sym(_Unary):
    """sym(X) = (X + X^H) / 2, the Hermitian part."""

    spec_name = "sym"
    needs_square = True


class Skew(_Unary):
    """skew(X) = (X - X^H) / 2, the skew-Hermitian part."""

    spec_name = "skew"
    needs_square = True


class Re(_Unary):
    """re(X): elementwise real part."""

    spec_name = "re"


class Im(_Unary):
    """im(X): elementwise imaginary part (zero for real X)."""

    spec_name = "im"


class Conj(_Unary):
    """X.conj: elementwise complex conjugate."""

    spec_name = "conj"


class Diagonal(MatrixExpr):
    """diagonal(X): the main diagonal of X as a min(rows, cols) x 1 column."""

    is_commutative = False

    def __new__(cls, arg):
        return super().__new__(cls, arg)

    @property
    def arg(self):
        return self.args[0]

    @property
    def shape(self):
        return (sp.Min(self.arg.rows, self.arg.cols), Integer(1))


class Diag(MatrixExpr):
    """diag(v): the square diagonal matrix with the column v on its diagonal."""

    is_commutative = False

    def __new__(cls, arg):
        if not dims_equal(arg.cols, 1):
            raise ShapeError(f"diag: needs a column vector, got {fmt_shape(arg)}")
        return super().__new__(cls, arg)

    @property
    def arg(self):
        return self.args[0]

    @property
    def shape(self):
        return (self.arg.rows, self.arg.rows)


def is_vector(x) -> bool:
    """A vector: a column whose width is the literal 1 (matrix dimensions are symbols)."""
    return as_expr(x.cols) == 1


class _OfVector(MatrixExpr):
    """An operation of one vector (an n x 1 column)."""

    is_commutative = False
    spec_name = ""
    hint = ""

    def __new__(cls, arg):
        if not is_vector(arg):
            raise ShapeError(f"{cls.spec_name}: needs a vector, got {fmt_shape(arg)}{cls.hint}")
        return super().__new__(cls, arg)

    @property
    def arg(self):
        return self.args[0]


class PairwiseInv(_OfVector):
    """pairwise_inv(v): the n x n matrix F with F[i, j] = 1 / (v[j] - v[i]), and 0 at ties:
    the diagonal, and values equal up to rounding (|v[j] - v[i]| <= n eps max|v| in the
    backends, where eps is the dtype's; exactly equal in the high-precision audit).

    The factor of eigenvector and singular-vector derivatives (e.g. Giles 2008, Sec. 3.1).
    Rules use it as a constant of the primal: it is never differentiated.
    """

    spec_name = "pairwise_inv"

    @property
    def shape(self):
        return (self.arg.rows, self.arg.rows)


class Recip(_OfVector):
    """recip(v): the elementwise reciprocal 1 / v of a vector (v without zeros), e.g. S^-1
    as diag(recip(S)).  A constant of the primal in rules: never differentiated."""

    spec_name = "recip"
    hint = " (for a matrix use solve)"

    @property
    def shape(self):
        return self.arg.shape


class SolveTriangular(MatrixExpr):
    """solve_triangular(T, B, upper=, left=True, unit=False).

    left=True gives T^{-1} B, left=False gives B T^{-1}; T is read from its upper (lower)
    triangle only, with a unit diagonal assumed when unit=True.
    """

    is_commutative = False

    def __new__(cls, tri, rhs, upper, left=True, unit=False):
        require_square("solve_triangular", tri)
        inner = rhs.rows if left else rhs.cols
        if not dims_equal(tri.rows, inner):
            side = "rows" if left else "columns"
            raise ShapeError(
                f"solve_triangular: T is {fmt_shape(tri)} but B has {inner} {side} "
                f"(B is {fmt_shape(rhs)}, left={bool(left)})")
        return super().__new__(cls, tri, rhs, as_flag(upper), as_flag(left), as_flag(unit))

    tri = property(lambda self: self.args[0])
    rhs = property(lambda self: self.args[1])
    upper = property(lambda self: bool(self.args[2]))
    left = property(lambda self: bool(self.args[3]))
    unit = property(lambda self: bool(self.args[4]))

    @property
    def shape(self):
        return self.rhs.shape


class Solve(MatrixExpr):
    """solve(A, B, left=True): A^{-1} B, or B A^{-1} when left=False, A square."""

    is_commutative = False

    def __new__(cls, mat, rhs, left=True):
        require_square("solve", mat)
        inner = rhs.rows if left else rhs.cols
        if not dims_equal(mat.rows, inner):
            raise ShapeError(f"solve: A is {fmt_shape(mat)} but B is {fmt_shape(rhs)} "
                             f"(left={bool(left)})")
        return super().__new__(cls, mat, rhs, as_flag(left))

    mat = property(lambda self: self.args[0])
    rhs = property(lambda self: self.args[1])
    left = property(lambda self: bool(self.args[2]))

    @property
    def shape(self):
        return self.rhs.shape


class Size(sp.Atom):
    """A block bound held as an atom, so that common-subexpression elimination does not name
    it (generator.compiler.program): a block whose bound became a name would no longer line up with
    the matrices whose shapes keep the expression (m - 1)."""

    def __new__(cls, value):
        obj = sp.Atom.__new__(cls)
        obj.value = as_expr(value)
        return obj

    def _hashable_content(self):
        return (self.value,)


def _bound(b) -> sp.Expr:
    return b.value if isinstance(b, Size) else as_expr(b)


class Block(MatrixExpr):
    """X[r0:r1, c0:c1] with symbolic bounds."""

    is_commutative = False

    def __new__(cls, arg, r0, r1, c0, c1):
        given = [b if isinstance(b, Size) else as_expr(b) for b in (r0, r1, c0, c1)]
        bounds = [_bound(b) for b in given]
        if all(dims_equal(b, full) for b, full in zip(bounds, (0, arg.rows, 0, arg.cols))):
            return arg  # the whole matrix (e.g. U[:, :n] of an n x n U when m == n)
        return super().__new__(cls, arg, *given)

    arg = property(lambda self: self.args[0])
    bounds = property(lambda self: tuple(_bound(b) for b in self.args[1:]))

    def slices(self, dim) -> tuple[str, str]:
        """Python-style 'lo:hi' for rows and columns, bounds printed by ``dim``; a start at 0
        and a stop at the full size are left out."""
        r0, r1, c0, c1 = self.bounds

        def piece(lo, hi, size):
            lo_text = "" if sp.simplify(lo) == 0 else dim(lo)
            hi_text = "" if sp.simplify(hi - size) == 0 else dim(hi)
            return f"{lo_text}:{hi_text}"

        return piece(r0, r1, self.arg.rows), piece(c0, c1, self.arg.cols)

    @property
    def shape(self):
        r0, r1, c0, c1 = self.bounds
        return (r1 - r0, c1 - c0)


class _Stack(MatrixExpr):
    is_commutative = False

    def __new__(cls, *blocks):
        if len(blocks) < 2:
            raise ShapeError(f"{cls.spec_name}: needs at least two blocks")
        for b in blocks[1:]:
            if not dims_equal(cls._shared(b), cls._shared(blocks[0])):
                shapes = ", ".join(fmt_shape(x) for x in blocks)
                raise ShapeError(f"{cls.spec_name}: blocks do not line up ({shapes})")
        return super().__new__(cls, *blocks)


class HStack(_Stack):
    """hstack(X, Y, ...): blocks side by side (same number of rows)."""

    spec_name = "hstack"
    _shared = staticmethod(lambda b: b.rows)

    @property
    def shape(self):
        return (self.args[0].rows, sp.Add(*(b.cols for b in self.args)))


class VStack(_Stack):
    """vstack(X, Y, ...): blocks one above the other (same number of columns)."""

    spec_name = "vstack"
    _shared = staticmethod(lambda b: b.cols)

    @property
    def shape(self):
        return (sp.Add(*(b.rows for b in self.args)), self.args[0].cols)


class Eye(MatrixExpr):
    """eye(r, c): the r x c matrix with ones on its main diagonal."""

    is_commutative = False

    def __new__(cls, rows, cols):
        return super().__new__(cls, *(b if isinstance(b, Size) else as_expr(b)
                                      for b in (rows, cols)))

    @property
    def shape(self):
        return (_bound(self.args[0]), _bound(self.args[1]))


class Embed(MatrixExpr):
    """embed(X, r, c, r0, c0): the r x c matrix that is X at [r0:r0+rows(X), c0:c0+cols(X)]
    and zero elsewhere; the adjoint of taking that block.

    Not spec-language syntax: derived rules produce it (a block's cotangent).
    """

    is_commutative = False

    def __new__(cls, arg, rows, cols, row0, col0):
        given = [b if isinstance(b, Size) else as_expr(b) for b in (rows, cols, row0, col0)]
        rows, cols, row0, col0 = (_bound(b) for b in given)
        # Reject what provably does not fit; what depends on the case condition passes.
        for lo, size, inner, axis in ((row0, rows, arg.rows, "rows"),
                                      (col0, cols, arg.cols, "columns")):
            lo_s = sp.simplify(lo)
            over = sp.simplify(lo + inner - size)
            if lo_s.is_negative or over.is_positive:
                raise ShapeError(f"embed: a {fmt_shape(arg)} block at {axis} {lo}:{lo + inner} "
                                 f"does not fit in {size} {axis}")
        if isinstance(arg, ZeroMatrix):
            return ZeroMatrix(rows, cols)
        return super().__new__(cls, arg, *given)

    arg = property(lambda self: self.args[0])
    row0 = property(lambda self: _bound(self.args[3]))
    col0 = property(lambda self: _bound(self.args[4]))

    @property
    def shape(self):
        return (_bound(self.args[1]), _bound(self.args[2]))


# Names of the spec language's functions -> how many matrix operands they take.
# (The parser maps keyword arguments; this table is the single list of what exists.)
STRUCTURAL_OPS: dict[str, type[Basic]] = {
    "tril": Tril,
    "triu": Triu,
    "copyltu": CopyLtu,
    "sym": Sym,
    "skew": Skew,
    "re": Re,
    "im": Im,
    "diagonal": Diagonal,
    "diag": Diag,
    "pairwise_inv": PairwiseInv,
    "recip": Recip,
    "solve_triangular": SolveTriangular,
    "solve": Solve,
    "hstack": HStack,
    "vstack": VStack,
    "eye": Eye,
}
