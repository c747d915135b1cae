"""Printing-only rewrites of matrix products, so that no backend builds a diagonal or a
permutation matrix to multiply by it.

``fold_diagonal_products`` writes each product with diag(v) as ``ScaleCols`` / ``ScaleRows``
(a column or row scaling); ``fold_permutation_products`` writes each product with a
permutation output P as ``PermuteRows`` / ``PermuteCols`` (a gather).  The rewritten
expression has the same value; only the printers see it (the audit and the derivations see
the products).  None of these classes is spec-language syntax; each prints itself (its
backend table entry, and in LaTeX as the product it stands for).
"""
from __future__ import annotations

import dataclasses
import functools

import sympy as sp
from sympy import Basic, MatrixExpr

from .ops import (Conj, Diag, Embed, HStack, Re, Solve, SolveTriangular, StructuralOp, Sym,
                  VStack, adjoint, as_expr, as_flag, split_product)


class _Scale(StructuralOp):
    """Not spec-language syntax: what the printers make of a product with diag(v)
    (``fold_diagonal_products``), so that no backend builds the diagonal matrix."""

    def __new__(cls, arg, vector):
        return super().__new__(cls, arg, vector)

    arg = property(lambda self: self.args[0])
    vector = property(lambda self: self.args[1])

    @property
    def shape(self):
        return self.arg.shape

    def code(self, printer):
        return printer._op(self.table_key, x=printer._arg(self.arg), v=printer._arg(self.vector))


class ScaleCols(_Scale):
    """X @ diag(v): column j of X times v[j]."""

    table_key = "scale_cols"

    def latex(self, printer):
        return printer._print(sp.MatMul(self.arg, Diag(self.vector)))


class ScaleRows(_Scale):
    """diag(v) @ X: row i of X times v[i]."""

    table_key = "scale_rows"

    def latex(self, printer):
        return printer._print(sp.MatMul(Diag(self.vector), self.arg))


def _diagonal(m):
    """v when ``m`` is diag(v), diag(v)^T or diag(v)^H (then conj(v)); else None."""
    if isinstance(m, Diag):
        return m.arg
    if isinstance(m, sp.Transpose) and isinstance(m.arg, Diag):
        return m.arg.arg
    if isinstance(m, sp.Adjoint) and isinstance(m.arg, Diag):
        return Conj(m.arg.arg)
    return None


def _solves_of_diagonals_merged(mats, sizes=()):
    """Factors of a product with each solve of a diagonal right side taking in its neighbour:
    A^-1 diag(v) Y as A^-1 (diag(v) Y), Y diag(v) A^-1 as (Y diag(v)) A^-1 -- the neighbour
    scaled and solved, where it was multiplied by the solve's result (eig's VJP of its
    eigenvalues, V^-H diag(gL) V^H: one solve, no product)."""
    out = list(mats)
    i = 0
    while i < len(out) - 1:
        a, b = out[i], out[i + 1]
        if isinstance(a, (Solve, SolveTriangular)) and a.left and _diagonal(a.rhs) is not None:
            out[i:i + 2] = [a.func(*((a.args[0], fold_diagonal_products(
                sp.MatMul(a.rhs, b), sizes)) + a.args[2:]))]
            continue
        if isinstance(b, (Solve, SolveTriangular)) and not b.left and \
                _diagonal(b.rhs) is not None:
            out[i:i + 2] = [b.func(*((b.args[0], fold_diagonal_products(
                sp.MatMul(a, b.rhs), sizes)) + b.args[2:]))]
            i = max(i - 1, 0)
            continue
        i += 1
    return out


def _entries(m, sizes) -> int | None:
    """The number of entries of matrix ``m`` at ``sizes`` (None where a size is not a
    number there)."""
    try:
        return int(as_expr(m.rows * m.cols).subs(dict(sizes)))
    except (TypeError, ValueError):
        return None


def _scales_next(before, after, sizes) -> bool:
    """Whether a diagonal between ``before`` and ``after`` scales the rows of ``after``
    rather than the columns of ``before``: where ``after`` has fewer entries at ``sizes``
    (svdvals' U diag(gS) Vh of a tall A scales the n x n Vh, not the m x n U)."""
    small, large = _entries(after, sizes), _entries(before, sizes)
    return small is not None and large is not None and small < large


def fold_diagonal_products(e, sizes=()):
    """``e`` with every matrix product by diag(v) (or its transpose or adjoint) written as
    ScaleCols / ScaleRows (the same value; printing only: the audit and the derivations see
    the products).  ``sizes``: representative (dimension, value) pairs
    (factorules/compiler/chain_sizes.py) at which a diagonal between two factors scales
    the smaller one; none: the one before it."""
    if not isinstance(e, Basic) or not e.args:
        return e
    if isinstance(e, sp.MatMul) and any(isinstance(a, sp.MatMul) for a in e.args[:1]):
        # a product nested on the left is one chain with the rest (diag(tau) @ V^H @ V
        # parses as (diag(tau) @ V^H) @ V): a diagonal at its end scales the whole chain's
        # product, tau * (V^H V), not the m x n factor it stands next to
        e = sp.MatMul(*e.args[0].args, *e.args[1:], evaluate=False)
        return fold_diagonal_products(e, sizes)
    args = [fold_diagonal_products(a, sizes) for a in e.args]
    if isinstance(e, sp.MatMul):
        coeff, mats = split_product(e.func(*args))
        mats = _solves_of_diagonals_merged(mats, sizes)
        if len(mats) == 1:
            return mats[0] if coeff == 1 else sp.MatMul(coeff, mats[0])
        if not any(_diagonal(m) is not None for m in mats) or len(mats) < 2:
            return e.func(*args)
        # diagonals at either end scale the product of the rest, which stays one product
        # (its order is the printer's to choose, and the same product elsewhere is shared)
        lead, trail = [], []
        while len(mats) > 1 and _diagonal(mats[0]) is not None:
            lead.append(_diagonal(mats.pop(0)))
        while len(mats) > 1 and _diagonal(mats[-1]) is not None:
            trail.append(_diagonal(mats.pop()))
        if lead or trail:
            inner = fold_diagonal_products(mats[0] if len(mats) == 1 else sp.MatMul(*mats),
                                           sizes)
            for v in reversed(lead):
                inner = ScaleRows(inner, v)
            for v in trail:
                inner = ScaleCols(inner, v)
            return inner if coeff == 1 else sp.MatMul(coeff, inner)
        out, pending = [], []
        for i, m in enumerate(mats):
            v = _diagonal(m)
            following = next((x for x in mats[i + 1:] if _diagonal(x) is None), None)
            if v is not None and out and not (
                    following is not None and _scales_next(out[-1], following, sizes)):
                out[-1] = ScaleCols(out[-1], v)
            elif v is not None:
                pending.append(v)
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


def _hermitian(e) -> bool:
    """Whether ``e`` is Hermitian by its form: sym(X), diag(re(v)), a real multiple of
    A M A^H with M Hermitian (or of A A^H), a sum of such."""
    if isinstance(e, Sym) or (isinstance(e, Diag) and isinstance(e.arg, Re)):
        return True
    if isinstance(e, sp.MatAdd):
        return all(_hermitian(t) for t in e.args)
    if isinstance(e, sp.MatMul):
        coeff, mats = split_product(e)
        if not (coeff.is_real and len(mats) >= 2):
            return False
        half = len(mats) // 2
        if any(mats[i] != adjoint(mats[-1 - i]) for i in range(half)):
            return False
        return len(mats) % 2 == 0 or _hermitian(mats[half])
    return False


def drop_redundant_sym(e):
    """``e`` with sym(X) written X where X is Hermitian by its form (eigvalsh's gradient
    sym(Q diag(re(gw)) Q^H)): no pass over a matrix that changes nothing (printing only)."""
    if not isinstance(e, Basic) or not e.args:
        return e
    args = [drop_redundant_sym(a) for a in e.args]
    e = e.func(*args) if args != list(e.args) else e
    return e.arg if isinstance(e, Sym) and _hermitian(e.arg) else e


def stack_adjacent_embeds(e):
    """``e`` with a sum of two zero-padded blocks that tile a matrix written as their stack:
    ``embed(X, r, c, 0, 0) + embed(Y, r, c, rows(X), 0)`` as ``vstack(X, Y)`` (columns
    likewise), one array where the pads and their sum made three (geqrf's cotangent of Q;
    the same value, printing only)."""
    if not isinstance(e, Basic) or not e.args:
        return e
    args = [stack_adjacent_embeds(a) for a in e.args]
    e = e.func(*args) if args != list(e.args) else e
    if not isinstance(e, sp.MatAdd):
        return e
    terms = list(e.args)
    for i, a in enumerate(terms):
        for j, b in enumerate(terms):
            stacked = _tiled(a, b) if i != j else None
            if stacked is not None:
                rest = [t for k, t in enumerate(terms) if k not in (i, j)]
                return stacked if not rest else stack_adjacent_embeds(sp.MatAdd(stacked, *rest))
    return e


def _signed_embed(t):
    """(block, embed) of ``t`` = c * embed(X, ...): the block c * X; None for other terms."""
    coeff, mats = split_product(t)
    if len(mats) != 1 or not isinstance(mats[0], Embed):
        return None
    block = mats[0].arg
    return (block if coeff == 1 else sp.MatMul(coeff, block)), mats[0]


def _tiled(a, b):
    """vstack/hstack of the blocks of ``a`` (first) and ``b`` where their embeds tile one
    matrix, else None."""
    first, second = _signed_embed(a), _signed_embed(b)
    if first is None or second is None:
        return None
    (x, ex), (y, ey) = first, second
    if ex.shape != ey.shape:
        return None

    def same(u, v):
        return sp.simplify(u - v) == 0

    rows, cols = ex.shape
    if (same(ex.col0, 0) and same(ey.col0, 0) and same(x.cols, cols) and same(y.cols, cols)
            and same(ex.row0, 0) and same(ey.row0, x.rows) and same(ey.row0 + y.rows, rows)):
        return VStack(x, y)
    if (same(ex.row0, 0) and same(ey.row0, 0) and same(x.rows, rows) and same(y.rows, rows)
            and same(ex.col0, 0) and same(ey.col0, x.cols) and same(ey.col0 + y.cols, cols)):
        return HStack(x, y)
    return None


def factor_common_products(e):
    """``e`` with the terms of a sum that end (or begin) with the same matrix factor summed
    first: ``A @ F + B @ F`` as ``(A + B) @ F``, one product by F instead of two (the same
    value; printing only, like fold_diagonal_products).  A diagonal factor is left alone:
    fold_diagonal_products makes its products scalings."""
    if not isinstance(e, Basic) or not e.args:
        return e
    args = [factor_common_products(a) for a in e.args]
    e = e.func(*args) if args != list(e.args) else e
    if not isinstance(e, sp.MatAdd):
        return e
    for side in (-1, 0):
        factored = _factor_side(list(e.args), side)
        if factored is not None:
            return factor_common_products(factored)
    return e


def _factor_side(terms, side: int):
    """The sum of ``terms`` with those sharing their last (side -1) or first (side 0) factor
    grouped, or None when no two share one."""
    groups: dict = {}
    for i, t in enumerate(terms):
        if isinstance(t, sp.MatMul):
            coeff, mats = split_product(t)
            if len(mats) >= 2 and _diagonal(mats[side]) is None:
                groups.setdefault(mats[side], []).append(i)
    shared = next((f for f, members in groups.items() if len(members) >= 2), None)
    if shared is None:
        return None
    members = groups[shared]
    rests = []
    for i in members:
        coeff, mats = split_product(terms[i])
        rest = mats[:-1] if side == -1 else mats[1:]
        rest = rest[0] if len(rest) == 1 else sp.MatMul(*rest)
        rests.append(rest if coeff == 1 else sp.MatMul(coeff, rest))
    grouped = sp.MatAdd(*rests)
    product = sp.MatMul(grouped, shared) if side == -1 else sp.MatMul(shared, grouped)
    others = [t for i, t in enumerate(terms) if i not in members]
    return product if not others else sp.MatAdd(product, *others)


class _Permuted(StructuralOp):
    """A product of X with a permutation matrix P (or P^T when ``transpose``), as a gather."""

    def __new__(cls, perm, arg, transpose):
        return super().__new__(cls, perm, arg, as_flag(transpose))

    perm = property(lambda self: self.args[0])
    arg = property(lambda self: self.args[1])
    transpose = property(lambda self: bool(self.args[2]))

    @property
    def shape(self):
        return self.arg.shape

    def _factor(self):
        """P, or P^T when ``transpose``."""
        return sp.Transpose(self.perm) if self.transpose else self.perm

    def code(self, printer):
        return printer._op(self.table_key, p=printer._arg(self.perm), x=printer._arg(self.arg),
                           transpose=bool(self.transpose))


class PermuteRows(_Permuted):
    """Not spec-language syntax: P @ X, or P^T @ X when ``transpose``, for a permutation
    matrix P (``fold_permutation_products``): a gather of X's rows, no m x m product."""

    table_key = "permute_rows"

    def latex(self, printer):
        return printer._print(sp.MatMul(self._factor(), self.arg))


class PermuteCols(_Permuted):
    """Not spec-language syntax: X @ P, or X @ P^T when ``transpose``, for a permutation
    matrix P (``fold_permutation_products``): a gather of X's columns, no n x n product."""

    table_key = "permute_cols"

    def latex(self, printer):
        return printer._print(sp.MatMul(self.arg, self._factor()))


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


def inline_diagonals(statements, results):
    """``statements`` with each one whose value is diag(v) (not a result) written into the
    statements after it, so that the products it enters fold to scalings (a rule whose other
    terms vanish for a None cotangent leaves svd's ``g_dP = diag(gS)`` alone, and
    ``U g_dP V^H`` would multiply by a built diagonal; folded: ``(U * gS^T) V^H``).  The same
    values; printing only."""
    inlined, out = {}, []
    for s in statements:
        expr = s.expr.xreplace(inlined) if inlined and isinstance(s.expr, Basic) else s.expr
        if s.name not in results and isinstance(expr, MatrixExpr) and \
                _diagonal(expr) is not None:
            inlined[sp.MatrixSymbol(s.name, *expr.shape)] = expr
            continue
        out.append(s if expr is s.expr else dataclasses.replace(s, expr=expr))
    return out


@functools.lru_cache(maxsize=16384)
def folded(e, permutations: frozenset, sizes: tuple = ()):
    """The rewriting of products every statement of a rule gets before printing, the same in
    every backend (kept: each backend asks for it); ``permutations``: the names of the
    permutation matrices (fold_permutation_products); ``sizes``: the case's representative
    sizes as sorted (dimension, value) pairs (fold_diagonal_products)."""
    return fold_permutation_products(
        fold_diagonal_products(factor_common_products(stack_adjacent_embeds(
            drop_redundant_sym(e))), sizes), permutations)
