"""Straight-line programs: dead-code elimination and common-subexpression elimination.

A program is a list of ``name = expression`` statements over declared parameters, ending in
named results.  Statements no result needs are dropped; sub-expressions computed more than
once (within or across statements) get one temporary, named ``_c0, _c1, ...`` in order.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import sympy as sp
from sympy import MatrixExpr, MatrixSymbol

from . import ops
from .chain_order import cheapest


@dataclass(frozen=True)
class Statement:
    name: str
    expr: MatrixExpr


@dataclass(frozen=True)
class Program:
    params: tuple[str, ...]
    statements: tuple[Statement, ...]
    results: tuple[str, ...]

    def uses(self) -> set[str]:
        """Parameters the statements read."""
        defined = {s.name for s in self.statements}
        names = set()
        for s in self.statements:
            names |= {x.name for x in s.expr.atoms(MatrixSymbol)}
        names |= set(self.results)
        return {n for n in names if n in self.params and n not in defined}


def live(statements, results) -> list:
    """The statements that ``results`` need, in order."""
    needed = set(results)
    kept = []
    for s in reversed(statements):
        if s.name in needed:
            kept.append(s)
            needed |= {x.name for x in s.expr.atoms(MatrixSymbol)}
    return kept[::-1]


def _temporaries():
    i = 0
    while True:
        yield sp.Symbol(f"_c{i}")
        i += 1


def _sizes_as_atoms(e, wrap: bool):
    """``e`` with every block's bounds held as ``ops.Size`` atoms (or back), so that
    common-subexpression elimination never names a size such as m - 1."""
    if not isinstance(e, sp.Basic) or e.is_Atom or isinstance(e, MatrixSymbol):
        return e
    if isinstance(e, (ops.Block, ops.Embed, ops.Eye)):  # their sizes and bounds
        def size(a):
            if getattr(a, "is_Matrix", False):
                return _sizes_as_atoms(a, wrap)
            plain = a.value if isinstance(a, ops.Size) else a
            return ops.Size(plain) if wrap else plain
        return e.func(*(size(a) for a in e.args))
    args = [_sizes_as_atoms(a, wrap) for a in e.args]
    return e.func(*args) if args != list(e.args) else e


class _Held(MatrixExpr):
    """A product held apart from its scalar factor while common subexpressions are found
    (``-(A @ B)`` is one product with -1 to SymPy, so ``A @ B`` elsewhere would not be
    seen as the same)."""

    is_commutative = False

    @property
    def shape(self):
        return self.args[0].shape


def _hold_products(e, hold: bool):
    """``e`` with each product ``c * A @ B`` written ``c * _Held(A @ B)`` (or back)."""
    if not isinstance(e, sp.Basic) or e.is_Atom or isinstance(e, MatrixSymbol):
        return e
    args = [_hold_products(a, hold) for a in e.args]
    if not hold and isinstance(e, _Held):
        return args[0]
    rebuilt = e.func(*args) if args != list(e.args) else e
    if hold and isinstance(rebuilt, sp.MatMul):
        coeff, mats = ops.split_product(rebuilt)
        if coeff != 1 and len(mats) >= 2:
            return sp.MatMul(coeff, _Held(sp.MatMul(*mats)))
    return rebuilt


def _held_as_atoms(e, held: dict):
    """``e`` with each identity ``eye(r, c)`` and each diagonal of a product of two matrices
    held as a name of its own (``held``: name -> what it holds), so that
    common-subexpression elimination never stores the one nor shares the product inside the
    other: printers add an identity to the diagonal of what it is summed with (``I - V W``),
    which a stored m x n identity would cost an array for, and print diagonal(X Y) from X
    and Y (O(n^2), where the product is O(n^3)), which a shared X Y would leave to read
    from the product: eig's dL = diagonal(Y V) beside X = Y V, whose transposition (JAX's
    pullback) would then multiply by V^H where the eigenvalues alone have a cotangent."""
    if not isinstance(e, sp.Basic) or e.is_Atom or isinstance(e, MatrixSymbol):
        return e
    if isinstance(e, ops.Eye) or (isinstance(e, ops.Diagonal)
                                  and ops.two_factor_products(e.arg) is not None):
        prefix = "_eye" if isinstance(e, ops.Eye) else "_diagonal"
        name = next((n for n, x in held.items() if x == e), None) or f"{prefix}{len(held)}"
        held[name] = e
        return MatrixSymbol(name, *e.shape)
    args = [_held_as_atoms(a, held) for a in e.args]
    return e.func(*args) if args != list(e.args) else e


def _chains(e, found: list) -> None:
    """Every product of two or more matrices in ``e`` (its factors), into ``found``."""
    if not isinstance(e, sp.Basic) or e.is_Atom:
        return
    if isinstance(e, sp.MatMul):  # its factors, nested products flattened
        _, mats = ops.split_product(e)
        if len(mats) >= 2:
            found.append(tuple(mats))
        for m in mats:
            _chains(m, found)
        return
    for a in e.args:
        _chains(a, found)


def _chain_cost(mats, sizes) -> int | None:
    """The cost of the product of ``mats`` in its cheapest order at ``sizes`` (None: a size
    is no number there)."""
    found = cheapest(mats, sizes) if len(mats) > 1 else (0, None)
    return None if found is None else found[0]


def _shared_subchains(e, products: set, sizes):
    """``e`` with each longer product that contains a product computed elsewhere
    (``products``: factor tuples) holding it as one factor, so that common-subexpression
    elimination computes it once (``U^H dA V`` beside ``dA V``: ``U^H (dA V)``)."""
    if not isinstance(e, sp.Basic) or e.is_Atom or isinstance(e, MatrixSymbol):
        return e
    args = [_shared_subchains(a, products, sizes) for a in e.args]
    e = e.func(*args) if args != list(e.args) else e
    if not isinstance(e, sp.MatMul):
        return e
    coeff, mats = ops.split_product(e)
    if len(mats) < 3:
        return e
    for size in range(len(mats) - 1, 1, -1):  # the longest shared sub-product first
        for i in range(len(mats) - size + 1):
            if tuple(mats[i:i + size]) in products:
                inner = _Held(sp.MatMul(*mats[i:i + size]))
                rest = [*mats[:i], inner, *mats[i + size:]]
                best = _chain_cost(mats, sizes)
                grouped = _chain_cost(rest, sizes)
                if best is None or grouped is None or grouped + _chain_cost(
                        mats[i:i + size], sizes) > best:
                    continue  # only in an order no costlier than the cheapest
                grouped = sp.MatMul(*rest)
                return grouped if coeff == 1 else sp.MatMul(coeff, grouped)
    return e


def build_program(params, assignments, results, shared_by=None, sizes=None) -> Program:
    """Program from parsed assignments (``factorules.compiler.expr.Assignment``).
    With ``sizes`` (representative dimension values, as the printers order chains by), a
    longer product computes a product that another computes too, where that order costs no
    more than its cheapest; ``shared_by``: the names of the statements whose products it may
    share (default: all; a rule's checks, computed only when they can fail, are left out).
    A function of its arguments' values, kept for the same arguments (every backend builds
    each rule's program, and ``cli.py diff`` both sides')."""
    return _built(tuple(params), tuple((a.name, a.expr) for a in assignments), tuple(results),
                  None if shared_by is None else frozenset(shared_by),
                  None if sizes is None else tuple(sorted(sizes.items(), key=str)))


@functools.lru_cache(maxsize=4096)
def _built(params, assignments, results, shared_by, sizes) -> Program:
    """build_program on hashable arguments: ``assignments`` (name, expression) pairs,
    ``sizes`` (dimension, value) pairs."""
    sizes = None if sizes is None else dict(sizes)
    statements = live([Statement(name, expr) for name, expr in assignments], results)
    if not statements:
        return Program(tuple(params), (), tuple(results))
    found: list = []
    for st in statements:
        if shared_by is None or st.name in shared_by:
            _chains(st.expr, found)
    products = {f for f in found if any(
        len(g) > len(f) and any(g[i:i + len(f)] == f for i in range(len(g) - len(f) + 1))
        for g in found)}
    exprs = [_shared_subchains(s.expr, products, sizes) if sizes else s.expr
             for s in statements]
    held: dict = {}
    replacements, reduced = sp.cse(
        [_hold_products(_sizes_as_atoms(_held_as_atoms(e, held), True), True) for e in exprs],
        symbols=_temporaries(), order="none")
    back = {MatrixSymbol(n, *x.shape): x for n, x in held.items()}

    def restored(e):
        return _sizes_as_atoms(_hold_products(e, False), False).xreplace(back)

    replacements = [(sym, restored(value)) for sym, value in replacements]
    reduced = [restored(e) for e in reduced]
    # a zero block shared by two stacks stays in each: it is padding, never an array
    zeros = {sym: value for sym, value in replacements if isinstance(value, sp.ZeroMatrix)}
    if zeros:
        replacements = [(sym, value.xreplace(zeros)) for sym, value in replacements
                        if sym not in zeros]
        reduced = [e.xreplace(zeros) for e in reduced]
    # Temporaries go right before the first statement that uses them, so each statement is
    # computed once and in order.
    ordered: list[Statement] = []
    pending = [Statement(str(sym), value) for sym, value in replacements]
    placed: set[str] = set()

    def place(name: str) -> None:
        for temp in pending:
            if temp.name == name and name not in placed:
                for dep in sorted(x.name for x in temp.expr.atoms(MatrixSymbol)):
                    place(dep)
                placed.add(name)
                ordered.append(temp)

    for s, expr in zip(statements, reduced):
        for dep in sorted(x.name for x in expr.atoms(MatrixSymbol)):
            place(dep)
        ordered.append(Statement(s.name, expr))
    return Program(tuple(params), tuple(ordered), tuple(results))
