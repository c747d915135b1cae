"""The checked spec: what ``factorules.compiler.check.check_spec`` makes of a loaded ``Spec``.

The dimension table, and for every variant and case the parsed defining equations and the
JVP/VJP as straight-line programs whose shapes agree under the case's condition (e.g.
``k = min(m, n) = n`` when ``m >= n``).
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from . import expr as expr_mod
from .program import Program
from .spec import Case, Spec, Tensor, Variant


@dataclass(frozen=True)
class DimDef:
    name: str
    source: tuple[str, int] | None  # (input name, axis -2/-1) for primitive dims
    expr: sp.Expr                   # SymPy value in terms of the primitive dims


@dataclass(frozen=True)
class Condition:
    lhs: sp.Expr
    op: str
    rhs: sp.Expr
    text: str


@dataclass(frozen=True)
class Rule:
    """One JVP or VJP program of one case."""

    kind: str  # 'jvp' or 'vjp'
    program: Program  # after dead-code and common-subexpression elimination
    statements: tuple = ()  # the statements as written (or as derived), before elimination
    derived: bool = False  # True: transposed from the JVP, the spec gives none


@dataclass(frozen=True)
class Checks:
    """What a case's rules check at run time: the variant's 'pivots', 'ties' and gauge
    'cotangent', parsed with the case's sizes."""

    pivots: tuple[sp.MatrixExpr, ...] = ()  # vectors of primal values the rules divide by
    # where the pivots have conditions (one vector of k values): k-column expressions whose
    # column j must vanish where pivot j is zero; empty: a zero pivot fails whatever they are
    pivot_tangents: tuple[sp.MatrixExpr, ...] = ()  # of primal values and input tangents
    pivot_cotangents: tuple[sp.MatrixExpr, ...] = ()  # of primal values and cotangents
    ties: sp.MatrixExpr | None = None  # the vector whose ties matter
    tie_tangents: tuple[sp.MatrixExpr, ...] = ()  # k x k, of primal values and input tangents
    tie_cotangents: tuple[sp.MatrixExpr, ...] = ()  # k x k, of primal values and cotangents
    gauge_cotangents: tuple[sp.MatrixExpr, ...] = ()  # the gauge's cotangent conditions


@dataclass(frozen=True)
class PartialVjp:
    """A case's VJP specialised to some of its cotangents, the others zero (None at run
    time): the absent ones' terms are never computed (svdvals' pullback through svd, which
    gives gS alone).  One for each proper subset of the differentiable outputs' cotangents
    whose rule gives every input a cotangent and prints (factorules.compiler.check_rules)."""

    absent: tuple[str, ...]  # the cotangents that are zero ('gU', 'gVh'), in output order
    vjp: Rule  # the case's VJP with them zero (factorules.compiler.derive.specialise)
    checks: Checks  # the case's checks, their cotangent conditions with them zero


@dataclass(frozen=True)
class CheckedCase:
    condition: Condition
    dims: tuple[tuple[str, sp.Expr], ...]  # every dim's value under the condition
    jvp: Rule
    vjp: Rule
    line: int
    defining: tuple[expr_mod.Equation, ...] = ()  # the variant's and the case's own
    case: Case | None = None
    checks: Checks = Checks()  # whether the derivative exists, tested at run time
    partial_vjps: tuple[PartialVjp, ...] = ()  # the VJP given some of its cotangents


@dataclass(frozen=True)
class CheckedVariant:
    variant: Variant
    defining: tuple[expr_mod.Equation, ...]
    cases: tuple[CheckedCase, ...]
    from_native: tuple[tuple[str, sp.MatrixExpr], ...] = ()  # parsed 'from_native'
    primal_outputs: tuple[tuple[str, sp.MatrixExpr], ...] = ()  # parsed 'primal.outputs'
    # the gauge (spec.Gauge) parsed with the variant's dims (k = min(m, n) unsettled): the
    # tangent and cotangent conditions, and the blocks carrying phases and rotations
    gauge_tangents: tuple[sp.MatrixExpr, ...] = ()
    gauge_cotangents: tuple[sp.MatrixExpr, ...] = ()
    gauge_phases: tuple[sp.MatrixExpr, ...] = ()
    gauge_rotations: tuple[sp.MatrixExpr, ...] = ()
    sample: tuple[tuple[str, sp.MatrixExpr], ...] = ()  # parsed 'sample'
    requires: tuple = ()  # parsed 'requires' (Condition)

    @property
    def gauge_tangent(self):
        """The first tangent condition, or None without a gauge."""
        return self.gauge_tangents[0] if self.gauge_tangents else None

    @property
    def gauge_cotangent(self):
        """The first cotangent condition, or None when nothing is checked at run time."""
        return self.gauge_cotangents[0] if self.gauge_cotangents else None

    @property
    def differentiable_outputs(self) -> tuple[Tensor, ...]:
        return tuple(o for o in self.variant.outputs
                     if o.returned == "value" and not o.constant)


@dataclass(frozen=True)
class CheckedSpec:
    spec: Spec
    dims: tuple[DimDef, ...]
    variants: tuple[CheckedVariant, ...]
