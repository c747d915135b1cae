"""Tall rules evaluated a block of rows at a time (the spec's ``large_dim``).

A rule of a tall m x n input (geqrf's pullback at 200000 x 32) holds several m x n
temporaries at once: V, Q, their cotangents.  But the structure of such rules (triangles,
identities, the blocks of R) sits in the first s rows (s = n, or k), and below them every
m x c value is a row-wise function of the inputs' rows and of small matrices.  So:

1. ``split`` rewrites a rule's statements with each m x c value X as its top X[:s] (a
   small statement) and its rows below (``X_rows``: rows of a block, ``ROWS`` of them),
   the m x c inputs likewise (their rows ``P_rows``); a product that contracts the m rows
   (V^H V) becomes the top's product plus a sum over the blocks (``_sumK``).  Where a
   value's structure reaches below row s (or it is m x m) there is no split (None).
2. ``plan`` orders the program in phases: the small statements that the sums of the
   earlier phases make computable, then one loop over the row blocks that adds up the
   phase's sums and writes the rows of the results the phase completes.  A block's
   statements are computed again in each loop that needs them (a few flops more for no
   m x c array; Q's rows are I - V W's).
3. The results are written into one m x c array each, the top rows last.

Printing is the backend's (``factorules.compiler.rule_body``); a backend opts in with
``BLOCKS_ROWS``.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from sympy import Adjoint, MatAdd, MatMul, MatrixSymbol, ZeroMatrix

from . import ops
from .product_folding import ScaleCols
from .program import Statement

ROWS = sp.Symbol("_nrows", positive=True, integer=True)  # rows of one block
SUM_PREFIX = "_sum"


class NoSplit(Exception):
    """A value the rows cannot be split off (its structure reaches below the top)."""


@dataclass(frozen=True)
class _Tall:
    """An m x c value: its top s rows (None: it is the rows below them alone, as
    X[s:, :]) and the rows of a block below them."""
    top: object
    rows: object


@dataclass(frozen=True)
class _Wide:
    """The adjoint of a tall value: c x m, split by columns likewise."""
    top: object
    rows: object


def _eq(a, b) -> bool:
    return ops.dims_equal(a, b)


class _Splitter:
    def __init__(self, tall: set, s, params: dict):
        self.tall = tall  # the symbols of the large dimension (m, and r where r == m)
        self.s = s
        self.params = params  # name -> MatrixSymbol of the rule's inputs
        self.env: dict[str, object] = {}
        self.sums: dict = {}  # expression -> its name
        self.new_sums: list[Statement] = []

    def is_tall_dim(self, d) -> bool:
        return any(_eq(d, t) for t in self.tall)

    def is_lower_dim(self, d) -> bool:  # the rows below the top: m - s
        return any(_eq(d, t - self.s) for t in self.tall)

    # -- one expression --------------------------------------------------------------------
    def split(self, e):
        """A small expression, a _Tall or a _Wide."""
        if not isinstance(e, sp.MatrixExpr):
            return e
        if isinstance(e, MatrixSymbol):
            return self._symbol(e)
        if isinstance(e, ZeroMatrix):
            if self.is_tall_dim(e.rows):
                return _Tall(ZeroMatrix(self.s, e.cols), ZeroMatrix(ROWS, e.cols))
            if self.is_tall_dim(e.cols):
                raise NoSplit(f"{e}: m columns")
            return e
        if isinstance(e, MatMul):
            return self._product(e)
        if isinstance(e, MatAdd):
            return self._sum(e)
        if isinstance(e, Adjoint):
            x = self.split(e.arg)
            if isinstance(x, _Tall):
                return _Wide(None if x.top is None else ops.adjoint(x.top), ops.adjoint(x.rows))
            if isinstance(x, _Wide):
                return _Tall(None if x.top is None else ops.adjoint(x.top), ops.adjoint(x.rows))
            return ops.adjoint(x)
        handler = getattr(self, f"_{type(e).__name__}", None)
        if handler is not None:
            return handler(e)
        return self._generic(e)

    def _generic(self, e):
        """An operation of small operands (which may contract the rows inside)."""
        args = [self.split(a) for a in e.args]
        if any(isinstance(a, (_Tall, _Wide)) for a in args):
            raise NoSplit(f"{type(e).__name__} of an m-row operand")
        if self.is_tall_dim(e.rows) or self.is_tall_dim(e.cols) \
                or self.is_lower_dim(e.rows) or self.is_lower_dim(e.cols):
            raise NoSplit(f"{type(e).__name__} with m rows or columns")
        return e.func(*args) if args != list(e.args) else e

    def _symbol(self, e):
        if e.name in self.env:
            return self.env[e.name]
        if self.is_tall_dim(e.cols) or self.is_lower_dim(e.rows) or self.is_lower_dim(e.cols):
            raise NoSplit(f"{e.name} is {e.rows} x {e.cols}")
        if self.is_tall_dim(e.rows):
            if e.name not in self.params:
                raise NoSplit(f"{e.name}: an m-row value of no statement")
            return _Tall(MatrixSymbol(f"{e.name}_top", self.s, e.cols),
                         MatrixSymbol(f"{e.name}_rows", ROWS, e.cols))
        return e

    def _sum(self, e):
        parts = [self.split(t) for t in e.args]
        kinds = {type(p) for p in parts}
        if kinds <= {_Tall} or kinds <= {_Wide}:
            kind = kinds.pop()
            tops = [p.top for p in parts]
            if any(t is None for t in tops) and not all(t is None for t in tops):
                raise NoSplit("a sum of an m-row value and the rows below its top")
            top = None if tops[0] is None else ops.add(tops, tops[0].shape)
            return kind(top, ops.add([p.rows for p in parts], parts[0].rows.shape))
        if kinds & {_Tall, _Wide}:
            raise NoSplit("a sum of m-row and small values")
        return ops.add(parts, e.shape)

    def _row_sum(self, wide: _Wide, tall: _Tall):
        """wide @ tall: a small matrix, the rows' part summed over the blocks."""
        if (wide.top is None) != (tall.top is None):
            raise NoSplit("a product of an m-row value and the rows below a top")
        rows = ops.mul(wide.rows, tall.rows)
        if isinstance(rows, ZeroMatrix):
            total = rows = ZeroMatrix(wide.rows.rows, tall.rows.cols)
        else:
            name = self.sums.get(rows)
            if name is None:
                name = self.sums[rows] = f"{SUM_PREFIX}{len(self.sums)}"
                self.new_sums.append(Statement(name, rows))
            total = MatrixSymbol(name, *rows.shape)
        if wide.top is None:
            return total
        return ops.add([ops.mul(wide.top, tall.top), total], total.shape)

    def _product(self, e):
        coeff, factors = ops.split_product(e)
        parts = [self.split(f) for f in factors]
        i = 0
        while i < len(parts) - 1:  # the contractions over the m rows first
            if isinstance(parts[i], _Wide) and isinstance(parts[i + 1], _Tall):
                parts[i:i + 2] = [self._row_sum(parts[i], parts[i + 1])]
                i = max(i - 1, 0)
            else:
                i += 1
        acc = parts[0]
        for p in parts[1:]:
            small = not isinstance(p, (_Tall, _Wide))
            if not isinstance(acc, (_Tall, _Wide)) and small:
                acc = ops.mul(acc, p)
            elif isinstance(acc, _Tall) and small:
                acc = _Tall(None if acc.top is None else ops.mul(acc.top, p),
                            ops.mul(acc.rows, p))
            elif not isinstance(acc, (_Tall, _Wide)) and isinstance(p, _Wide):
                acc = _Wide(None if p.top is None else ops.mul(acc, p.top), ops.mul(acc, p.rows))
            else:
                raise NoSplit(f"an m x m product in {e}")
        return self._scaled(coeff, acc)

    @staticmethod
    def _scaled(coeff, x):
        if coeff == 1:
            return x
        if isinstance(x, (_Tall, _Wide)):
            return type(x)(None if x.top is None else ops.mul(coeff, x.top), ops.mul(coeff, x.rows))
        return ops.mul(coeff, x)

    # -- structural operations (the handlers ``split`` finds by class name) ----------------
    def _Block(self, e):
        x = self.split(e.arg)
        r0, r1, c0, c1 = e.bounds
        if not isinstance(x, _Tall):
            if isinstance(x, _Wide):
                raise NoSplit(f"{e}: a block of an m-column value")
            return ops.Block(x, r0, r1, c0, c1) if x is not e.arg else e

        def cols(v, rows):
            return ops.Block(v, 0, rows, c0, c1)
        if x.top is None:  # rows below the top alone: only whole rows
            if _eq(r0, 0) and _eq(r1, e.arg.rows):
                return _Tall(None, cols(x.rows, ROWS))
            raise NoSplit(f"{e}: rows of the rows below the top")
        if _eq(r0, 0) and self.is_tall_dim(r1):
            return _Tall(cols(x.top, self.s), cols(x.rows, ROWS))
        if _eq(r0, self.s) and self.is_tall_dim(r1):
            return _Tall(None, cols(x.rows, ROWS))
        if sp.simplify(r1 - self.s).is_nonpositive or _eq(r1, self.s):
            return ops.Block(x.top, r0, r1, c0, c1)
        raise NoSplit(f"{e}: a block across the top's last row")

    def _Embed(self, e):
        x = self.split(e.arg)
        if not self.is_tall_dim(e.rows):
            return self._generic(e)
        cols, row0, col0 = e.cols, e.row0, e.col0
        if isinstance(x, _Tall):
            if x.top is None and _eq(row0, self.s):
                return _Tall(ZeroMatrix(self.s, cols), ops.embed(x.rows, ROWS, cols, 0, col0))
            if x.top is not None and _eq(row0, 0):
                return _Tall(ops.embed(x.top, self.s, cols, 0, col0),
                             ops.embed(x.rows, ROWS, cols, 0, col0))
            raise NoSplit(f"{e}: rows placed across the top's last row")
        if isinstance(x, _Wide):
            raise NoSplit(f"{e}: an m-column value")
        if _eq(row0 + x.rows, self.s) or sp.simplify(row0 + x.rows - self.s).is_nonpositive:
            return _Tall(ops.embed(x, self.s, cols, row0, col0), ZeroMatrix(ROWS, cols))
        raise NoSplit(f"{e}: a small block below the top")

    def _VStack(self, e):
        if not self.is_tall_dim(e.rows):
            return self._generic(e)
        parts = [self.split(b) for b in e.args]
        if len(parts) == 2 and not isinstance(parts[0], (_Tall, _Wide)) \
                and _eq(parts[0].rows, self.s) and isinstance(parts[1], _Tall) \
                and parts[1].top is None:
            return _Tall(parts[0], parts[1].rows)
        raise NoSplit(f"{e}: blocks that are not the top and the rows below it")

    def _band(self, e, below_keeps_all: bool):
        x = self.split(e.arg)
        if not isinstance(x, _Tall):
            if isinstance(x, _Wide):
                raise NoSplit(f"{e}: an m-column value")
            return type(e)(x, e.offset) if x is not e.arg else e
        if x.top is None:
            raise NoSplit(f"{e}: a band of the rows below the top")
        # below the top, row i >= s: tril(X, d) keeps columns j <= i + d, all of them where
        # cols <= s + d + 1; triu(X, d) keeps j >= i + d, none where cols <= s + d
        edge = self.s + e.offset + (1 if below_keeps_all else 0)
        if not sp.simplify(e.arg.cols - edge).is_nonpositive:
            raise NoSplit(f"{e}: its band reaches below the top")
        rows = x.rows if below_keeps_all else ZeroMatrix(ROWS, e.arg.cols)
        return _Tall(type(e)(x.top, e.offset), rows)

    def _Tril(self, e):
        return self._band(e, True)

    def _Triu(self, e):
        return self._band(e, False)

    def _Eye(self, e):
        if not self.is_tall_dim(e.rows):
            return self._generic(e)
        if not _eq(e.cols, self.s) and not sp.simplify(e.cols - self.s).is_nonpositive:
            raise NoSplit(f"{e}: its diagonal reaches below the top")
        return _Tall(ops.Eye(self.s, e.cols), ZeroMatrix(ROWS, e.cols))

    def _SolveTriangular(self, e):
        t, b = self.split(e.tri), self.split(e.rhs)
        if isinstance(t, (_Tall, _Wide)) or isinstance(b, _Wide):
            raise NoSplit(f"{e}: an m x m triangle")
        if not isinstance(b, _Tall):
            return e.func(t, b, *e.args[2:])
        if e.left:
            raise NoSplit(f"{e}: a solve from the left of m rows")
        return _Tall(None if b.top is None else e.func(t, b.top, *e.args[2:]),
                     e.func(t, b.rows, *e.args[2:]))

    def _columnwise(self, e, build):
        x = self.split(e.args[0])
        if isinstance(x, _Tall):
            return _Tall(None if x.top is None else build(x.top), build(x.rows))
        if isinstance(x, _Wide):
            raise NoSplit(f"{e}: an m-column value")
        return self._generic(e)

    def _Conj(self, e):
        return self._columnwise(e, ops.Conj)

    def _Re(self, e):
        return self._columnwise(e, ops.Re)

    def _Im(self, e):
        return self._columnwise(e, ops.Im)

    def _ScaleCols(self, e):
        if isinstance(self.split(e.vector), (_Tall, _Wide)):
            raise NoSplit(f"{e}: a scale of m entries")
        return self._columnwise(e, lambda x: ScaleCols(x, e.vector))

    def _ScaleRows(self, e):
        if self.is_tall_dim(e.rows):
            raise NoSplit(f"{e}: m rows scaled")
        return self._generic(e)


@dataclass(frozen=True)
class Split:
    """A rule's statements with the large dimension's rows split off."""
    statements: tuple[Statement, ...]  # the top's, the rows', the sums', in order
    results: tuple[str, ...]  # the names the program must keep (a tall result: top, rows)
    # each m-row result: (its name, the name of its rows (None: zero), its top, its rows m)
    joined: tuple[tuple[str, str | None, object, object], ...]
    start: object  # s: the first row below the top
    below: object  # the rows below the top: m - s
    # (top name, rows name, input) of the m-row inputs: the top is input[:s], read before the
    # rule, the rows are a block's, read in each loop
    params: tuple[tuple[str, str, MatrixSymbol], ...]


def split(statements, results, tall: set, candidates) -> Split | None:
    """The statements with the rows below the top split off, at the first of
    ``candidates`` (the split row s) that every statement allows; None if none does or
    nothing is tall."""
    params = {}
    for st in statements:
        for x in sorted(st.expr.atoms(MatrixSymbol), key=lambda x: x.name):
            params.setdefault(x.name, x)
    defined = {st.name for st in statements}
    params = {n: x for n, x in params.items() if n not in defined}
    if not any(any(_eq(x.rows, t) for t in tall) for x in params.values()):
        return None
    for s in candidates:
        try:
            return _split_at(statements, results, tall, s, params)
        except NoSplit:
            continue
    return None


def _split_at(statements, results, tall, s, params) -> Split:
    sp_ = _Splitter(tall, s, params)
    out: list[Statement] = []
    for st in statements:
        value = sp_.split(st.expr)
        out.extend(sp_.new_sums)
        sp_.new_sums.clear()
        if isinstance(value, _Wide):
            raise NoSplit(f"{st.name}: an m-column value")
        if isinstance(value, _Tall):
            top = value.top
            if top is not None and not isinstance(top, ZeroMatrix):
                out.append(Statement(f"{st.name}_top", top))
                top = MatrixSymbol(f"{st.name}_top", *top.shape)
            rows = value.rows
            if not isinstance(rows, ZeroMatrix):
                out.append(Statement(f"{st.name}_rows", rows))
                rows = MatrixSymbol(f"{st.name}_rows", *rows.shape)
            sp_.env[st.name] = _Tall(top, rows)
        else:
            out.append(Statement(st.name, value))
            sp_.env[st.name] = MatrixSymbol(st.name, *value.shape) \
                if isinstance(value, sp.MatrixExpr) and not isinstance(value, ZeroMatrix) \
                else value
    kept, joined = [], []
    rows_of = {st.name: st.expr.rows for st in statements}
    for r in results:
        v = sp_.env[r]
        if isinstance(v, _Tall):
            if v.top is None:
                raise NoSplit(f"{r}: a result of the rows below the top alone")
            rows = None if isinstance(v.rows, ZeroMatrix) else v.rows.name
            kept.extend(x.name for x in (v.top, v.rows) if isinstance(x, MatrixSymbol))
            joined.append((r, rows, v.top, rows_of[r]))
        else:
            kept.append(r)
    rows_params = tuple((f"{n}_top", f"{n}_rows", x) for n, x in params.items()
                        if any(_eq(x.rows, t) for t in tall))
    below = next(x.rows for _, _, x in rows_params) - s
    return Split(tuple(out), tuple(dict.fromkeys(kept)), tuple(joined), s, below, rows_params)


# -- phases ----------------------------------------------------------------------------------

def of_rows(e) -> bool:
    """Whether an expression's value is a block's rows (or their adjoint)."""
    return any(ops.dims_equal(d, ROWS) for d in e.shape)


@dataclass(frozen=True)
class Phase:
    """Small statements, then one loop over the row blocks."""
    before: tuple[Statement, ...]  # the small statements computable now
    loop: tuple[Statement, ...]  # the block's statements the loop needs, in order
    sums: tuple[str, ...]  # the sums the loop adds up
    outputs: tuple[str, ...]  # the rows of results it writes


def plan(statements, row_results) -> tuple[Phase, ...]:
    """``statements`` (a split program, common subexpressions named) in phases;
    ``row_results``: the names of the results' rows.  A statement's phase is the first
    whose loop has added up every sum it reads."""
    by_name = {s.name: s for s in statements}
    kind = kinds(statements)
    phase: dict[str, int] = {}
    for st in statements:
        phase[st.name] = max((phase[x.name] + (kind[x.name] == "sum")
                              for x in st.expr.atoms(MatrixSymbol) if x.name in by_name),
                             default=0)
    phases = []
    for p in range(max(phase.values(), default=0) + 1):
        sums = tuple(s.name for s in statements if kind[s.name] == "sum" and phase[s.name] == p)
        outputs = tuple(n for n in row_results if phase[n] == p)
        needed: set[str] = set()
        stack = [*sums, *outputs]
        while stack:
            x = stack.pop()
            if x not in needed:
                needed.add(x)
                stack.extend(d.name for d in by_name[x].expr.atoms(MatrixSymbol)
                             if kind.get(d.name) == "rows")
        phases.append(Phase(
            tuple(s for s in statements if kind[s.name] == "small" and phase[s.name] == p),
            tuple(s for s in statements if s.name in needed and kind[s.name] == "rows"),
            sums, outputs))
    return tuple(phases)


def kinds(statements) -> dict[str, str]:
    """name -> 'small', 'rows' or 'sum' (a small value summed over the blocks)."""
    by_name = {s.name for s in statements}
    kind: dict[str, str] = {}
    for st in statements:
        syms = st.expr.atoms(MatrixSymbol)
        if of_rows(st.expr):
            kind[st.name] = "rows"
        elif any(kind.get(x.name) == "rows" or (x.name not in by_name and of_rows(x))
                 for x in syms):
            kind[st.name] = "sum"
        else:
            kind[st.name] = "small"
    return kind


def large_rows(row_blocks, dim_symbols: dict, case) -> tuple[frozenset, object] | None:
    """(the symbols of the large dimension, the split row s) of a case, from the spec's
    ``row_blocks`` (rows name, below name, line) and ``dim_symbols`` (name -> symbol); None
    where the spec has none or the case's top is no smaller dimension (m == n: k is m)."""
    if row_blocks is None:
        return None
    rows, below, _ = row_blocks
    tall = {dim_symbols[rows]}
    cond = case.condition
    if cond.op == "==" and tall & {cond.lhs, cond.rhs}:
        tall |= {cond.lhs, cond.rhs}
    s = dict(case.dims).get(below, dim_symbols[below])
    if any(s.has(t) for t in tall) or s.has(sp.Min, sp.Max):
        return None
    return frozenset(tall), s
