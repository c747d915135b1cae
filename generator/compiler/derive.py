"""Derivations: linearize defining equations, transpose a linear program.

Two mechanical steps the audit (and a spec without a VJP) rely on:

* ``linearize(expr, tangent)`` differentiates a matrix expression of the spec language by
  the product rule: every primal symbol ``X`` with a tangent gets ``dX``, every other symbol
  is constant.  ``d(T^-1 B) = T^-1 (dB - dT T^-1 B)``, and a triangular solve only reads one
  triangle of ``T``, so only that triangle of ``dT`` enters.
* ``transpose_program(statements, ...)`` turns a JVP -- a straight-line program linear in the
  input tangents -- into the VJP that is its adjoint under the real inner product
  ``<X, Y> = Re sum(conj(X) * Y)`` (PyTorch's convention), by reverse accumulation with one
  transpose rule per primitive (``_transpose`` below).

``structure_equations`` states an output's declared structure (triangular, orthonormal,
real diagonal, ...) as equations, so the linearization check covers it too.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from sympy import (Adjoint, HadamardProduct, Identity, MatAdd, MatMul, MatrixExpr,
                   MatrixSymbol, Transpose, ZeroMatrix)

from . import ops


class DeriveError(ValueError):
    """A rule that cannot be linearized or transposed (e.g. it is not linear)."""


@dataclass(frozen=True)
class Residual:
    """One equation as ``lhs - rhs = 0``; ``text`` says where it came from."""

    text: str
    expr: MatrixExpr


# -- small constructors that keep expressions tidy ------------------------------------------
def zeros_like(e: MatrixExpr) -> ZeroMatrix:
    return ZeroMatrix(*e.shape)


def add(terms, shape) -> MatrixExpr:
    terms = [t for t in terms if not isinstance(t, ZeroMatrix)]
    if not terms:
        return ZeroMatrix(*shape)
    return terms[0] if len(terms) == 1 else MatAdd(*terms).doit(deep=False)


def mul(*factors) -> MatrixExpr:
    """Product of scalars and matrices; zero if any matrix factor is zero."""
    mats = [f for f in factors if isinstance(f, MatrixExpr)]
    coeff = sp.Integer(1)
    for f in factors:
        if not isinstance(f, MatrixExpr):
            coeff *= f
    if any(isinstance(m, ZeroMatrix) for m in mats) or coeff == 0:
        return ZeroMatrix(mats[0].rows, mats[-1].cols)
    mats = [m for m in mats if not isinstance(m, Identity)] or mats[:1]
    if coeff == 1 and len(mats) == 1:
        return mats[0]
    return MatMul(*([coeff] if coeff != 1 else []), *mats)


def adjoint(e: MatrixExpr) -> MatrixExpr:
    """e^H, simplified one level: (X^H)^H = X, (X^T)^H = conj(X), (ABC)^H = C^H B^H A^H."""
    if isinstance(e, ZeroMatrix):
        return ZeroMatrix(e.cols, e.rows)
    if isinstance(e, (Identity, ops.Eye)) and e.rows == e.cols:
        return e
    if isinstance(e, Adjoint):
        return e.arg
    if isinstance(e, Transpose):
        return ops.Conj(e.arg)
    if isinstance(e, ops.Conj):
        return Transpose(e.arg)
    if isinstance(e, MatMul):
        coeff, mats = ops.split_product(e)
        return mul(sp.conjugate(coeff), *[adjoint(m) for m in reversed(mats)])
    return Adjoint(e)


def _same(a, b) -> bool:
    return ops.dims_equal(a, b)


def embed(x: MatrixExpr, rows, cols, row0, col0) -> MatrixExpr:
    """``x`` placed at (row0, col0) in a rows x cols zero matrix."""
    if isinstance(x, ZeroMatrix):
        return ZeroMatrix(rows, cols)
    if _same(row0, 0) and _same(col0, 0) and _same(x.rows, rows) and _same(x.cols, cols):
        return x
    return ops.Embed(x, rows, cols, row0, col0)


# -- structure as equations ---------------------------------------------------------------
def structure_equations(symbol: MatrixSymbol, structure: str, diagonal: str) -> list[Residual]:
    """The declared structure of an output as residuals that vanish (primal form)."""
    x, name = symbol, symbol.name
    out = []
    if structure == "orthonormal_columns":
        out.append(Residual(f"{name}.H @ {name} = I", mul(adjoint(x), x) - Identity(x.cols)))
    elif structure == "orthonormal_rows":
        out.append(Residual(f"{name} @ {name}.H = I", mul(x, adjoint(x)) - Identity(x.rows)))
    elif structure == "unitary":
        out.append(Residual(f"{name}.H @ {name} = I", mul(adjoint(x), x) - Identity(x.cols)))
        out.append(Residual(f"{name} @ {name}.H = I", mul(x, adjoint(x)) - Identity(x.rows)))
    elif structure == "upper_triangular":
        out.append(Residual(f"tril({name}, -1) = 0", ops.Tril(x, -1)))
    elif structure == "lower_triangular":
        out.append(Residual(f"triu({name}, 1) = 0", ops.Triu(x, 1)))
    elif structure == "hermitian":
        out.append(Residual(f"{name} = {name}.H", x - adjoint(x)))
    elif structure == "diagonal":
        out.append(Residual(f"{name} = diag(diagonal({name}))",
                            x - embed(ops.Diag(ops.Diagonal(x)), x.rows, x.cols, 0, 0)))
    elif structure == "unit_columns":
        out.append(Residual(f"diagonal({name}.H @ {name}) = 1",
                            ops.Diagonal(mul(adjoint(x), x)) - ops.Diagonal(Identity(x.cols))))
    elif structure in ("real", "positive"):  # vectors
        out.append(Residual(f"im({name}) = 0", ops.Im(x)))
    if diagonal in ("real", "positive"):
        out.append(Residual(f"im(diagonal({name})) = 0", ops.Im(ops.Diagonal(x))))
    elif diagonal == "unit":
        out.append(Residual(f"diagonal({name}) = 1",
                            ops.Diagonal(x) - ops.Diagonal(ops.Eye(x.rows, x.cols))))
    return out


# -- linearization ------------------------------------------------------------------------
def linearize(e: MatrixExpr, tangent: dict[str, MatrixExpr]) -> MatrixExpr:
    """The differential of ``e``: symbol X -> tangent[X.name], constants -> 0."""
    d = lambda x: linearize(x, tangent)  # noqa: E731
    if isinstance(e, MatrixSymbol):
        return tangent.get(e.name, zeros_like(e))
    if isinstance(e, (ZeroMatrix, Identity, ops.Eye)):
        return zeros_like(e)
    if isinstance(e, MatAdd):
        return add([d(t) for t in e.args], e.shape)
    if isinstance(e, MatMul):
        coeff, mats = ops.split_product(e)
        terms = [mul(coeff, *mats[:i], d(m), *mats[i + 1:]) for i, m in enumerate(mats)]
        return add(terms, e.shape)
    if isinstance(e, HadamardProduct):
        terms = []
        for i, a in enumerate(e.args):
            da = d(a)
            if not isinstance(da, ZeroMatrix):
                terms.append(HadamardProduct(*e.args[:i], da, *e.args[i + 1:]))
        return add(terms, e.shape)
    if isinstance(e, Adjoint):
        return _wrap(Adjoint, d(e.arg), (e.cols, e.rows))
    if isinstance(e, Transpose):
        return _wrap(Transpose, d(e.arg), (e.cols, e.rows))
    if isinstance(e, (ops.Conj, ops.CopyLtu, ops.Sym, ops.Skew, ops.Re, ops.Im)):
        return type(e)(d(e.arg))
    if isinstance(e, (ops.Tril, ops.Triu)):
        return type(e)(d(e.arg), e.offset)
    if isinstance(e, (ops.Diagonal, ops.Diag)):
        return _wrap(type(e), d(e.arg), e.shape)
    if isinstance(e, ops.Block):
        return _wrap(lambda x: ops.Block(x, *e.bounds), d(e.arg), e.shape)
    if isinstance(e, ops.Embed):
        return embed(d(e.arg), e.rows, e.cols, e.row0, e.col0)
    if isinstance(e, (ops.HStack, ops.VStack)):
        parts = [d(a) for a in e.args]
        if all(isinstance(p, ZeroMatrix) for p in parts):
            return zeros_like(e)
        return type(e)(*parts)
    if isinstance(e, ops.SolveTriangular):
        x = e  # T^-1 B (left) or B T^-1 (right)
        dt = linearize(_triangle(e), tangent)
        db = d(e.rhs)
        inner = add([db, -mul(dt, x) if e.left else -mul(x, dt)], e.shape)
        return _wrap(lambda r: ops.SolveTriangular(e.tri, r, upper=e.upper, left=e.left,
                                                   unit=e.unit), inner, e.shape)
    if isinstance(e, ops.Solve):
        dm = d(e.mat)
        db = d(e.rhs)
        inner = add([db, -mul(dm, e) if e.left else -mul(e, dm)], e.shape)
        return _wrap(lambda r: ops.Solve(e.mat, r, left=e.left), inner, e.shape)
    raise DeriveError(f"cannot linearize {type(e).__name__}: {e}")


def _triangle(e: ops.SolveTriangular) -> MatrixExpr:
    """The part of T a triangular solve reads."""
    offset = 1 if e.unit else 0
    return ops.Triu(e.tri, offset) if e.upper else ops.Tril(e.tri, -offset)


def _wrap(op, arg, shape) -> MatrixExpr:
    return ZeroMatrix(*shape) if isinstance(arg, ZeroMatrix) else op(arg)


def linearize_residual(r: Residual, tangent: dict[str, MatrixExpr]) -> Residual:
    return Residual(f"d({r.text})", linearize(r.expr, tangent))


# -- transposition ------------------------------------------------------------------------
def depends(e: MatrixExpr, names: set[str]) -> bool:
    return any(s.name in names for s in e.atoms(MatrixSymbol))


def _transpose(e: MatrixExpr, g: MatrixExpr, linear: set[str], out: list) -> None:
    """Append (symbol name, contribution) for every linear symbol in ``e`` given the
    cotangent ``g`` of ``e``: the adjoint of X -> e(X) applied to g."""
    if not depends(e, linear):
        raise DeriveError(f"the term {e} does not depend on the tangents: the rule is not "
                          f"linear (an affine term)")
    t = lambda x, gx: _transpose(x, gx, linear, out)  # noqa: E731
    if isinstance(e, MatrixSymbol):
        out.append((e.name, g))
    elif isinstance(e, MatAdd):
        for term in e.args:
            t(term, g)
    elif isinstance(e, MatMul):
        coeff, mats = ops.split_product(e)
        hits = [i for i, m in enumerate(mats) if depends(m, linear)]
        if len(hits) != 1:
            raise DeriveError(f"the product {e} is not linear in the tangents")
        i = hits[0]
        left = [adjoint(m) for m in reversed(mats[:i])]
        right = [adjoint(m) for m in reversed(mats[i + 1:])]
        t(mats[i], mul(sp.conjugate(coeff), *left, g, *right))
    elif isinstance(e, HadamardProduct):
        hits = [i for i, a in enumerate(e.args) if depends(a, linear)]
        if len(hits) != 1:
            raise DeriveError(f"the elementwise product {e} is not linear in the tangents")
        others = [ops.Conj(a) for j, a in enumerate(e.args) if j != hits[0]]
        t(e.args[hits[0]], HadamardProduct(*others, g))
    elif isinstance(e, Adjoint):
        t(e.arg, adjoint(g))
    elif isinstance(e, Transpose):
        t(e.arg, Transpose(g))
    elif isinstance(e, ops.Conj):
        t(e.arg, ops.Conj(g))
    elif isinstance(e, (ops.Tril, ops.Triu)):
        t(e.arg, type(e)(g, e.offset))       # a coordinate projection is self-adjoint
    elif isinstance(e, (ops.Sym, ops.Skew)):
        t(e.arg, type(e)(g))                 # orthogonal projections: self-adjoint
    elif isinstance(e, ops.CopyLtu):
        # <G, tril(X,-1) + tril(X,-1)^H + diag(re diag X)> = <tril(G + G^H, -1) + diag(re diag G), X>
        t(e.arg, add([ops.Tril(g + adjoint(g), -1), ops.Diag(ops.Re(ops.Diagonal(g)))],
                     e.shape))
    elif isinstance(e, ops.Re):
        t(e.arg, ops.Re(g))                  # Re<G, re X> = <re G, X>
    elif isinstance(e, ops.Im):
        t(e.arg, mul(sp.I, ops.Re(g)))       # Re<G, im X> = <i re G, X>
    elif isinstance(e, ops.Diagonal):
        t(e.arg, embed(ops.Diag(g), e.arg.rows, e.arg.cols, 0, 0))
    elif isinstance(e, ops.Diag):
        t(e.arg, ops.Diagonal(g))
    elif isinstance(e, ops.Block):
        r0, _, c0, _ = e.bounds
        t(e.arg, embed(g, e.arg.rows, e.arg.cols, r0, c0))
    elif isinstance(e, ops.Embed):
        t(e.arg, ops.Block(g, e.row0, e.row0 + e.arg.rows, e.col0, e.col0 + e.arg.cols))
    elif isinstance(e, (ops.HStack, ops.VStack)):
        at = 0
        for part in e.args:
            if isinstance(e, ops.HStack):
                piece = ops.Block(g, 0, e.rows, at, at + part.cols)
                at = at + part.cols
            else:
                piece = ops.Block(g, at, at + part.rows, 0, e.cols)
                at = at + part.rows
            if depends(part, linear):
                t(part, piece)
            elif not isinstance(part, ZeroMatrix):
                raise DeriveError(f"the block {part} of {e} does not depend on the tangents")
    elif isinstance(e, ops.SolveTriangular):
        if depends(e.tri, linear):
            raise DeriveError(f"{e}: the triangular factor depends on the tangents")
        t(e.rhs, ops.SolveTriangular(adjoint(e.tri), g, upper=not e.upper, left=e.left,
                                     unit=e.unit))
    elif isinstance(e, ops.Solve):
        if depends(e.mat, linear):
            raise DeriveError(f"{e}: the matrix solved with depends on the tangents")
        t(e.rhs, ops.Solve(adjoint(e.mat), g, left=e.left))
    else:
        raise DeriveError(f"no transpose rule for {type(e).__name__}: {e}")


@dataclass(frozen=True)
class Step:
    name: str
    expr: MatrixExpr


def transpose_program(statements, tangent_inputs: dict[str, MatrixSymbol],
                      cotangents: dict[str, MatrixSymbol],
                      results: dict[str, str]) -> list[Step]:
    """The VJP of a JVP program, by reverse accumulation.

    statements: ``(name, expr)`` pairs of the JVP in order; tangent_inputs: tangent name ->
    symbol (``dA``); cotangents: JVP result name -> cotangent symbol (``dQ`` -> ``gQ``);
    results: tangent input name -> name of the VJP result (``dA`` -> ``gA``).  Statements that
    do not depend on the tangents are primal work and are kept in order; the others are
    transposed, last first.  Cotangents of intermediates are named ``_g_<name>``.
    """
    linear = set(tangent_inputs)
    primal, tangent_steps = [], []
    for name, e in statements:
        if depends(e, linear):
            linear.add(name)
            tangent_steps.append((name, e))
        else:
            primal.append(Step(name, e))
    shapes = {name: e.shape for name, e in statements}
    shapes.update({n: s.shape for n, s in tangent_inputs.items()})
    contributions: dict[str, list] = {n: [] for n in linear}
    for name, sym in cotangents.items():
        if name not in linear:
            continue  # a result that does not depend on the inputs' tangents: constant zero
        contributions[name].append(sym)
    steps = list(primal)
    for name, e in reversed(tangent_steps):
        total = add(contributions.pop(name), shapes[name])
        if isinstance(total, ZeroMatrix):
            continue
        if isinstance(total, MatrixSymbol):
            g = total
        else:
            g = MatrixSymbol(f"_g_{name}", *shapes[name])
            steps.append(Step(g.name, total))
        found: list = []
        _transpose(e, g, linear, found)
        for target, value in found:
            contributions[target].append(value)
    for name, target in results.items():
        steps.append(Step(target, add(contributions.get(name, []), shapes[name])))
    return steps
