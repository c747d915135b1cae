"""Derivations: linearize defining equations, transpose a linear program.

Two mechanical steps the audit (and a spec without a VJP) rely on:

* ``linearize(expr, tangent)`` differentiates a matrix expression of the spec language by
  the product rule: every primal symbol ``X`` with a tangent gets ``dX``, every other symbol
  is constant; a structural operation differentiates itself (``StructuralOp.linearize`` in
  ``factorules.compiler.ops``).
* ``transpose_program(statements, ...)`` turns a JVP -- a straight-line program linear in the
  input tangents -- into the VJP that is its adjoint under the real inner product
  ``<X, Y> = Re sum(conj(X) * Y)`` (PyTorch's convention), by reverse accumulation with one
  transpose rule per primitive: sums, products, adjoints and symbols in ``_transpose`` below,
  each structural operation in its ``StructuralOp.cotangents``.

``structure_equations`` states an output's declared structure (triangular, orthonormal,
real diagonal, ...) as equations, so the linearization check covers it too.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from sympy import (Adjoint, HadamardProduct, Identity, MatAdd, MatMul, MatrixExpr,
                   MatrixSymbol, Transpose, ZeroMatrix)

from . import ops
# The tidy constructors rules are built with live with the operations; derived rules and
# the audit take them from here.
from .ops import DeriveError, add, adjoint, embed, mul, unless_zero, zeros_like


@dataclass(frozen=True)
class Residual:
    """One equation as ``lhs - rhs = 0``; ``text`` says where it came from."""

    text: str
    expr: MatrixExpr


# -- structure as equations ---------------------------------------------------------------
def structure_equations(symbol: MatrixSymbol, structure: str, diagonal: str,
                        offset=0) -> list[Residual]:
    """The declared structure of an output as residuals that vanish (primal form); ``offset``:
    the diagonal that bounds a triangular one (an integer or a dimension expression)."""
    x, name = symbol, symbol.name
    out = []
    if offset != 0 and structure in ("upper_triangular", "lower_triangular"):
        # the band beyond diagonal ``offset`` vanishes; a real diagonal is that diagonal's
        # (tril(triu(X, k), k) keeps diagonal k alone, for either sign of k)
        if structure == "upper_triangular":
            out.append(Residual(f"tril({name}, {offset} - 1) = 0", ops.Tril(x, offset - 1)))
        else:
            out.append(Residual(f"triu({name}, {offset} + 1) = 0", ops.Triu(x, offset + 1)))
        if diagonal in ("real", "positive"):
            out.append(Residual(f"im(tril(triu({name}, {offset}), {offset})) = 0",
                                ops.Im(ops.Tril(ops.Triu(x, offset), offset))))
        return out
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
    if not any(s.name in tangent for s in e.atoms(MatrixSymbol)):
        return zeros_like(e)  # a constant (ZeroMatrix, Identity, primal values only)
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
        return unless_zero(Adjoint, d(e.arg), (e.cols, e.rows))
    if isinstance(e, Transpose):
        return unless_zero(Transpose, d(e.arg), (e.cols, e.rows))
    if isinstance(e, ops.StructuralOp):
        return e.linearize(d)
    raise DeriveError(f"cannot linearize {type(e).__name__}: {e}")


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
    elif isinstance(e, ops.StructuralOp):
        for operand, contribution in e.cotangents(g, lambda x: depends(x, linear)):
            t(operand, contribution)
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


# -- specialisation to the cotangents given -----------------------------------------------------
def specialise(statements, linear: dict[str, MatrixSymbol], absent: set[str]):
    """A program linear in ``linear`` (a VJP in its cotangents) with the symbols named in
    ``absent`` zero, the zeros carried through: a statement that becomes zero is dropped and
    reads as zero in the statements after it (its terms are never computed).  A statement
    that reads linear symbols is linear in them, so its linearization along the present ones
    is the statement itself without the absent ones' terms.

    statements: ``(name, expr)`` pairs in order.  Returns the kept ``Step``s and the names of
    the statements that became zero."""
    reads_linear = set(linear)
    zero = set(absent)
    kept: list[Step] = []
    for name, e in statements:
        if not depends(e, reads_linear):
            kept.append(Step(name, e))  # primal work
            continue
        reads_linear.add(name)
        present = {s.name: s for s in e.atoms(MatrixSymbol)
                   if s.name in reads_linear and s.name not in zero}
        value = linearize(e, present)
        if isinstance(value, ZeroMatrix):
            zero.add(name)
        else:
            kept.append(Step(name, value))
    return kept, zero - set(absent)
