"""Structural matrix operations as SymPy expression classes.

Every operation the spec language offers beyond SymPy's own MatMul/MatAdd/Adjoint/Transpose
is a ``MatrixExpr`` subclass here.  Each class checks its operands' shapes when it is built
(raising ``ShapeError``) and knows its own shape; printers render it with ``_print_<Class>``.
The classes are pure data: no backend knows anything about them beyond its printer.

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


def _flag(value) -> BooleanAtom:
    return sp.true if value else sp.false


class _Unary(MatrixExpr):
    """An operation of one matrix operand that keeps its shape."""

    is_commutative = False

    def __new__(cls, arg):
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

    def __new__(cls, arg):
        if isinstance(arg, ZeroMatrix):
            return arg
        require_square("copyltu", arg)
        return super().__new__(cls, arg)


class Sym(_Unary):
    """sym(X) = (X + X^H) / 2, the Hermitian part."""

    def __new__(cls, arg):
        if isinstance(arg, ZeroMatrix):
            return arg
        require_square("sym", arg)
        return super().__new__(cls, arg)


class Skew(_Unary):
    """skew(X) = (X - X^H) / 2, the skew-Hermitian part."""

    def __new__(cls, arg):
        if isinstance(arg, ZeroMatrix):
            return arg
        require_square("skew", arg)
        return super().__new__(cls, arg)


class Re(_Unary):
    """re(X): elementwise real part."""

    def __new__(cls, arg):
        if isinstance(arg, ZeroMatrix):
            return arg
        return super().__new__(cls, arg)


class Im(_Unary):
    """im(X): elementwise imaginary part (zero for real X)."""

    def __new__(cls, arg):
        if isinstance(arg, ZeroMatrix):
            return arg
        return super().__new__(cls, arg)


class Conj(_Unary):
    """X.conj: elementwise complex conjugate."""

    def __new__(cls, arg):
        if isinstance(arg, ZeroMatrix):
            return arg
        return super().__new__(cls, arg)


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
        return super().__new__(cls, tri, rhs, _flag(upper), _flag(left), _flag(unit))

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
        return super().__new__(cls, mat, rhs, _flag(left))

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


class _Scale(MatrixExpr):
    """Not spec-language syntax: what the printers make of a product with diag(v)
    (``fold_diagonal_products``), so that no backend builds the diagonal matrix."""

    is_commutative = False

    def __new__(cls, arg, vector):
        return super().__new__(cls, arg, vector)

    arg = property(lambda self: self.args[0])
    vector = property(lambda self: self.args[1])

    @property
    def shape(self):
        return self.arg.shape


class ScaleCols(_Scale):
    """X @ diag(v): column j of X times v[j]."""


class ScaleRows(_Scale):
    """diag(v) @ X: row i of X times v[i]."""


def fold_diagonal_products(e):
    """``e`` with every matrix product by diag(v) written as ScaleCols / ScaleRows (the
    same value; printing only: the audit and the derivations see the products)."""
    if not isinstance(e, Basic) or not e.args:
        return e
    args = [fold_diagonal_products(a) for a in e.args]
    if isinstance(e, sp.MatMul):
        coeff, mats = split_product(e.func(*args))
        if not any(isinstance(m, Diag) for m in mats) or len(mats) < 2:
            return e.func(*args)
        out, pending = [], []
        for m in mats:
            if isinstance(m, Diag) and out:
                out[-1] = ScaleCols(out[-1], m.arg)
            elif isinstance(m, Diag):
                pending.append(m.arg)
            else:
                for v in pending:
                    m = ScaleRows(m, v)
                out.append(m)
                pending = []
        for v in pending:  # only diagonals: their product, scaled
            out[-1] = ScaleCols(out[-1], v) if out else Diag(v)
        product = out[0] if len(out) == 1 else sp.MatMul(*out)
        return product if coeff == 1 else sp.MatMul(coeff, product)
    if isinstance(e, MatrixExpr) or any(isinstance(a, MatrixExpr) for a in args):
        return e.func(*args)
    return e


class _Permuted(MatrixExpr):
    """A product of X with a permutation matrix P (or P^T when ``transpose``), as a gather."""

    is_commutative = False

    def __new__(cls, perm, arg, transpose):
        return super().__new__(cls, perm, arg, _flag(transpose))

    perm = property(lambda self: self.args[0])
    arg = property(lambda self: self.args[1])
    transpose = property(lambda self: bool(self.args[2]))

    @property
    def shape(self):
        return self.arg.shape


class PermuteRows(_Permuted):
    """Not spec-language syntax: P @ X, or P^T @ X when ``transpose``, for a permutation
    matrix P (``fold_permutation_products``): a gather of X's rows, no m x m product."""


class PermuteCols(_Permuted):
    """Not spec-language syntax: X @ P, or X @ P^T when ``transpose``, for a permutation
    matrix P (``fold_permutation_products``): a gather of X's columns, no n x n product."""


def _permutation_factor(m, names: frozenset) -> tuple[sp.MatrixSymbol, bool] | None:
    """(P, transposed) when ``m`` is a permutation P, P.T, P.H or conj(P) (P is real)."""
    transposed = False
    while True:
        if isinstance(m, (sp.Transpose, sp.Adjoint)):
            transposed, m = not transposed, m.arg
        elif isinstance(m, Conj):
            m = m.arg
        else:
            break
    if isinstance(m, sp.MatrixSymbol) and m.name in names:
        return m, transposed
    return None


def fold_permutation_products(e, names: frozenset):
    """``e`` with every product P @ X, P^T @ X of a permutation output P (named in
    ``names``) written as PermuteRows, and X @ P, X @ P^T as PermuteCols (the same value;
    printing only, like fold_diagonal_products)."""
    if not names or not isinstance(e, Basic) or not e.args:
        return e
    args = [fold_permutation_products(a, names) for a in e.args]
    if isinstance(e, sp.MatMul):
        coeff, mats = split_product(e.func(*args))
        found = [_permutation_factor(m, names) for m in mats]
        if not any(found) or len(mats) < 2:
            return e.func(*args)
        # permutation factors at the end gather the columns of everything before them
        trailing = []
        while len(mats) > 1 and found[-1]:
            trailing.append(found.pop())
            mats = mats[:-1]
        # right to left: a permutation factor gathers the rows of everything after it
        out = mats[-1]
        for m, perm in zip(reversed(mats[:-1]), reversed(found[:-1])):
            out = PermuteRows(perm[0], out, perm[1]) if perm else sp.MatMul(m, out)
        for perm in reversed(trailing):  # the innermost first
            out = PermuteCols(perm[0], out, perm[1])
        return out if coeff == 1 else sp.MatMul(coeff, out)
    if isinstance(e, MatrixExpr) or any(isinstance(a, MatrixExpr) for a in args):
        return e.func(*args)
    return e


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
