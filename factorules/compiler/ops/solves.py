"""Linear solves: ``solve_triangular(T, B, upper=, left=, unit=)``, ``solve(A, B, left=)``,
``solve_sylvester(A, B, C)``, ``solve_tril_sylvester(T, C, adjoint=)`` and
``solve_hessenberg_sylvester(H, C, adjoint=)``.

With X = T^-1 B: dX = T^-1 (dB - dT X), and with X = B T^-1: dX = (dB - X dT) T^-1.  A
triangular solve only reads one triangle of T, so only that triangle of dT enters.  A solve
is linear in B (T held constant): its transpose solves with T^H, on the same side.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from . import arrays
from .algebra import add, mul, unless_zero
from .base import (Call, DeriveError, ShapeError, StructuralOp, as_flag, dims_equal, fmt_shape,
                   require_square)
from .elementwise import adjoint
from .triangular import Tril, Triu


def _right_side(solve, a, b, *flags):
    """B A^-1 = (A^-T B^T)^T with ``solve`` solving from the left."""
    return np.swapaxes(solve(np.swapaxes(a, -1, -2), np.swapaxes(b, -1, -2), *flags), -1, -2)


class SolveTriangular(StructuralOp):
    """solve_triangular(T, B, upper=, left=True, unit=False).

    left=True gives T^{-1} B, left=False gives B T^{-1}; T is read from its upper (lower)
    triangle only, with a unit diagonal assumed when unit=True.
    """

    spec_name = "solve_triangular"
    call = Call(2, keywords=("upper", "left", "unit"), required_keywords=("upper",))
    latex_product = True

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

    def triangle(self):
        """The part of T this solve reads."""
        offset = 1 if self.unit else 0
        return Triu(self.tri, offset) if self.upper else Tril(self.tri, -offset)

    def with_rhs(self, rhs):
        return SolveTriangular(self.tri, rhs, upper=self.upper, left=self.left, unit=self.unit)

    def linearize(self, d):
        dt = d(self.triangle())
        db = d(self.rhs)
        inner = add([db, -mul(dt, self) if self.left else -mul(self, dt)], self.shape)
        return unless_zero(self.with_rhs, inner, self.shape)

    def cotangents(self, g, is_linear):
        if is_linear(self.tri):
            raise DeriveError(f"{self}: the triangular factor depends on the tangents")
        yield self.rhs, SolveTriangular(adjoint(self.tri), g, upper=not self.upper,
                                        left=self.left, unit=self.unit)

    def evaluate(self, value_of, evaluator):
        t, b = value_of(self.tri), value_of(self.rhs)
        if self.left:
            return arrays.solve_triangular(t, b, self.upper, self.unit)
        # T^T swaps the triangle read
        return _right_side(arrays.solve_triangular, t, b, not self.upper, self.unit)

    def latex(self, printer):
        if self.unit:  # the triangle it reads, with ones on the diagonal: (tril_{-1}(T) + I)^{-1}
            band = Triu(self.tri, 1) if self.upper else Tril(self.tri, -1)
            return printer._solve(sp.MatAdd(band, sp.Identity(self.tri.rows)), self.rhs,
                                  self.left)
        return printer._solve(self.tri, self.rhs, self.left)

    def code(self, printer):
        return printer._op("solve_triangular", t=printer._print(self.tri),
                           b=printer._print(self.rhs), upper=self.upper, left=self.left,
                           unit=self.unit)


class Solve(StructuralOp):
    """solve(A, B, left=True): A^{-1} B, or B A^{-1} when left=False, A square."""

    spec_name = "solve"
    call = Call(2, keywords=("left",))
    latex_product = True

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

    def linearize(self, d):
        dm = d(self.mat)
        db = d(self.rhs)
        inner = add([db, -mul(dm, self) if self.left else -mul(self, dm)], self.shape)
        return unless_zero(lambda r: Solve(self.mat, r, left=self.left), inner, self.shape)

    def cotangents(self, g, is_linear):
        if is_linear(self.mat):
            raise DeriveError(f"{self}: the matrix solved with depends on the tangents")
        yield self.rhs, Solve(adjoint(self.mat), g, left=self.left)

    def evaluate(self, value_of, evaluator):
        a, b = value_of(self.mat), value_of(self.rhs)
        if self.left:
            return arrays.solve(a, b)
        return _right_side(arrays.solve, a, b)

    def latex(self, printer):
        return printer._solve(self.mat, self.rhs, self.left)

    def code(self, printer):
        return printer._op("solve", a=printer._print(self.mat), b=printer._print(self.rhs),
                           left=self.left)


class SolveSylvester(StructuralOp):
    """solve_sylvester(A, B, C): the X with A X + X B = C, for Hermitian A (r x r) and B
    (s x s) with no eigenvalue of A the negative of one of B's (then X is unique).

    The backends solve it in the eigenvector bases of A and B (one Hermitian eigensolver
    each; the same one when A and B are one matrix), where the equation is elementwise:
    X = Q_A ((Q_A^H C Q_B) / (a_i + b_j)) Q_B^H.  Differentiating A X + X B = C:
    A dX + dX B = dC - dA X - X dB, so dX = solve_sylvester(A, B, dC - dA X - X dB).
    Linear in C; its transpose under <X, Y> = Re tr(X^H Y) solves with A^H and B^H, which
    are A and B: the transpose is the same solve.  The frameworks differentiate it by that
    rule too (never through the eigensolver: its derivative is singular where A has tied
    eigenvalues, where this solve is not).
    """

    spec_name = "solve_sylvester"
    call = Call(3)

    def __new__(cls, a, b, c):
        require_square("solve_sylvester", a)
        require_square("solve_sylvester", b)
        if not (dims_equal(a.rows, c.rows) and dims_equal(b.rows, c.cols)):
            raise ShapeError(f"solve_sylvester: A is {fmt_shape(a)} and B is {fmt_shape(b)}, "
                             f"so C must be {a.rows}x{b.rows}, but it is {fmt_shape(c)}")
        return super().__new__(cls, a, b, c)

    a = property(lambda self: self.args[0])
    b = property(lambda self: self.args[1])
    rhs = property(lambda self: self.args[2])

    @property
    def shape(self):
        return self.rhs.shape

    def linearize(self, d):
        inner = add([d(self.rhs), -mul(d(self.a), self), -mul(self, d(self.b))], self.shape)
        return unless_zero(lambda r: SolveSylvester(self.a, self.b, r), inner, self.shape)

    def cotangents(self, g, is_linear):
        if is_linear(self.a) or is_linear(self.b):
            raise DeriveError(f"{self}: the matrices of the Sylvester equation depend on the "
                              f"tangents")
        yield self.rhs, SolveSylvester(self.a, self.b, g)

    def evaluate(self, value_of, evaluator):
        return arrays.solve_sylvester(value_of(self.a), value_of(self.b), value_of(self.rhs))

    def latex(self, printer):
        return (rf"\operatorname{{sylv}}({printer._print(self.a)}, {printer._print(self.b)}, "
                rf"{printer._print(self.rhs)})")

    def code(self, printer):
        # where A or B is a name whose eigendecomposition the rules have (an output's
        # 'eigenbasis'), the array backends are handed it: (values, vectors), or None
        known = getattr(printer, "eigenbases", {})
        bases = [f"({', '.join(known[x.name])})"
                 if isinstance(x, sp.MatrixSymbol) and x.name in known else "None"
                 for x in (self.a, self.b)]
        eigenbases = "" if bases == ["None", "None"] else \
            f", eig_a={bases[0]}, eig_b={bases[1]}"
        return printer._op("solve_sylvester", a=printer._print(self.a),
                           b=printer._print(self.b), c=printer._print(self.rhs),
                           eigenbases=eigenbases)


class SolveTrilSylvester(StructuralOp):
    """solve_tril_sylvester(T, C, adjoint=False): for T n x n upper triangular (read from its
    upper triangle only), the strictly lower triangular X with

        tril(X S - S X, -1) = tril(C, -1),    S = T (adjoint=False) or T^H (adjoint=True),

    unique where T's diagonal entries are distinct.  It is the Schur form's equation: with
    A = Z T Z^H and Om = Z^H dZ = X - X^H, the strictly lower part of Z^H dA Z = dT + Om T - T Om
    is that of X T - T X (X^H T and T X^H are strictly upper).  Entry (i, j), i > j, reads
    X[i, j] (S[j, j] - S[i, i]) + sum_(k != j) X[i, k] S[k, j] - sum_(k > i) S[i, k] X[k, j]
    = C[i, j]: column j is one triangular solve once the columns k with S[k, j] != 0 are
    known (those left of it for S = T, right of it for S = T^H).

    Differentiating: tril(dX S - S dX, -1) = tril(dC - X dS + dS X, -1), so
    dX = solve_tril_sylvester(T, dC - X dS + dS X, adjoint).  Linear in C (reading tril(C, -1));
    under <X, Y> = Re tr(X^H Y) the adjoint of X -> tril(X S - S X, -1) on strictly lower
    matrices is G -> tril(G S^H - S^H G, -1), so the transpose is the solve with the other
    ``adjoint``.  The backends solve it column by column in operations their frameworks
    differentiate (rational in T and C: every order is right).
    """

    spec_name = "solve_tril_sylvester"
    call = Call(2, keywords=("adjoint",))

    def __new__(cls, tri, rhs, adjoint=False):
        require_square("solve_tril_sylvester", tri)
        if not (dims_equal(tri.rows, rhs.rows) and dims_equal(tri.cols, rhs.cols)):
            raise ShapeError(f"solve_tril_sylvester: T is {fmt_shape(tri)}, so C must be "
                             f"{tri.rows}x{tri.rows}, but it is {fmt_shape(rhs)}")
        return super().__new__(cls, tri, rhs, as_flag(adjoint))

    tri = property(lambda self: self.args[0])
    rhs = property(lambda self: self.args[1])
    adjoint = property(lambda self: bool(self.args[2]))

    @property
    def shape(self):
        return self.rhs.shape

    def linearize(self, d):
        dt = d(Triu(self.tri))
        ds = adjoint(dt) if self.adjoint else dt
        inner = add([d(self.rhs), -mul(self, ds), mul(ds, self)], self.shape)
        return unless_zero(lambda r: SolveTrilSylvester(self.tri, r, self.adjoint), inner,
                           self.shape)

    def cotangents(self, g, is_linear):
        if is_linear(self.tri):
            raise DeriveError(f"{self}: the triangular matrix of the equation depends on the "
                              f"tangents")
        yield self.rhs, SolveTrilSylvester(self.tri, g, not self.adjoint)

    def evaluate(self, value_of, evaluator):
        return arrays.solve_tril_sylvester(value_of(self.tri), value_of(self.rhs),
                                           self.adjoint)

    def latex(self, printer):
        name = r"\operatorname{sylv}_{<}" + ("^{*}" if self.adjoint else "")
        return rf"{name}({printer._print(self.tri)}, {printer._print(self.rhs)})"

    def code(self, printer):
        return printer._op("solve_tril_sylvester", t=printer._print(self.tri),
                           c=printer._print(self.rhs), adjoint=self.adjoint)


class SolveHessenbergSylvester(StructuralOp):
    """solve_hessenberg_sylvester(H, C, adjoint=False): for H n x n upper Hessenberg (read
    from triu(H, -1) only), the skew-Hermitian Om, first row and column zero, with

        tril(Om H - H Om, -2) = tril(C, -2),  im(subdiag(Om H - H Om)) = im(subdiag(C)),

    unique where H's subdiagonal entries are nonzero (their real parts, for the second
    equation).  It is the Hessenberg form's equation: with A = Q H Q^H, Q e1 = e1 and H's
    subdiagonal real (LAPACK gehrd), Om = Q^H dQ and M = Q^H dA Q = dH + Om H - H Om, so
    M - (Om H - H Om) is Hessenberg with a real subdiagonal.  Write Om = X - X^H + i diag(phi),
    X strictly lower with first column zero: X^H H and H X^H are upper triangular, so entry
    (i, j), i >= j + 2, reads (X H - H X)[i, j] = C[i, j], in which X[i, j + 1] H[j + 1, j] is
    the one entry of column j + 1: column j + 1 from the columns before it.  The subdiagonal
    entry (j + 1, j) gives phi[j + 1] = phi[j] + im(C - X H + H X)[j + 1, j] / re(H[j + 1, j]),
    phi[0] = 0.  Linear over the reals (not over the complex numbers: im), under
    <X, Y> = Re tr(X^H Y).

    Differentiating: dOm = solve_hessenberg_sylvester(H, dC - Om dS + dS Om, adjoint), dS the
    tangent of triu(H, -1) (adjoint=True: of its adjoint).  The transpose of C -> Om is the
    solve with adjoint=True: G -> the Y, zero on and above the diagonal with an imaginary
    subdiagonal, for which Y H^H - H^H Y has G's skew-Hermitian part away from the first row
    and column; its transpose is the solve with adjoint=False.  The backends solve both a
    column at a time (from the first column; from the last for adjoint=True) in operations
    their frameworks differentiate (rational in the real and imaginary parts of H and C:
    every order is right).
    """

    spec_name = "solve_hessenberg_sylvester"
    call = Call(2, keywords=("adjoint",))

    def __new__(cls, hess, rhs, adjoint=False):
        require_square("solve_hessenberg_sylvester", hess)
        if not (dims_equal(hess.rows, rhs.rows) and dims_equal(hess.cols, rhs.cols)):
            raise ShapeError(f"solve_hessenberg_sylvester: H is {fmt_shape(hess)}, so C must "
                             f"be {hess.rows}x{hess.rows}, but it is {fmt_shape(rhs)}")
        return super().__new__(cls, hess, rhs, as_flag(adjoint))

    hess = property(lambda self: self.args[0])
    rhs = property(lambda self: self.args[1])
    adjoint = property(lambda self: bool(self.args[2]))

    @property
    def shape(self):
        return self.rhs.shape

    def linearize(self, d):
        dh = d(Triu(self.hess, -1))
        ds = adjoint(dh) if self.adjoint else dh
        inner = add([d(self.rhs), -mul(self, ds), mul(ds, self)], self.shape)
        return unless_zero(lambda r: SolveHessenbergSylvester(self.hess, r, self.adjoint),
                           inner, self.shape)

    def cotangents(self, g, is_linear):
        if is_linear(self.hess):
            raise DeriveError(f"{self}: the Hessenberg matrix of the equation depends on the "
                              f"tangents")
        yield self.rhs, SolveHessenbergSylvester(self.hess, g, not self.adjoint)

    def evaluate(self, value_of, evaluator):
        return arrays.solve_hessenberg_sylvester(value_of(self.hess), value_of(self.rhs),
                                                 self.adjoint)

    def latex(self, printer):
        name = r"\operatorname{sylv}_{H}" + ("^{*}" if self.adjoint else "")
        return rf"{name}({printer._print(self.hess)}, {printer._print(self.rhs)})"

    def code(self, printer):
        return printer._op("solve_hessenberg_sylvester", h=printer._print(self.hess),
                           c=printer._print(self.rhs), adjoint=self.adjoint)
