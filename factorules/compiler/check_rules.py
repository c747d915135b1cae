"""A variant's rules: its defining equations, and under each case's condition the JVP and
VJP programs (the VJP transposed from the JVP where the spec gives none), with the shapes
of every result checked and nothing left that no backend prints.
"""
from __future__ import annotations

import dataclasses
import itertools

import sympy as sp

from . import derive
from . import expr as expr_mod
from . import ops
from .check_dims import case_condition, case_dims, matrix_symbol
from .check_degenerate import parse_degenerate
from .check_gauge import parse_gauge
from .checked import CheckedCase, CheckedVariant, Checks, DimDef, PartialVjp, Rule
from .program import build_program
from .spec import Spec, SpecError, Text, Variant


def _parse_program(spec: Spec, text: Text, names, dims, what: str):
    try:
        return expr_mod.Parser(names, dims).program(text.text)
    except expr_mod.ExprError as err:
        raise SpecError(spec.path, text.line + err.line - 1, f"{what}: {err}") from None


def _unprintable(e, zero_ok: bool = False) -> str | None:
    """What no backend prints: a zero matrix that is not a block of a stack with a block
    that is not zero (the backends print zero blocks as padding, never as an array), and a
    size that is still a min/max once the case condition has been applied."""
    if isinstance(e, sp.ZeroMatrix) and not zero_ok:
        return ("zeros(rows, cols) can only be a block of hstack/vstack beside a block that "
                "is not zeros")
    if isinstance(e, sp.MatrixExpr):
        for size in (*e.shape, *(e.bounds if isinstance(e, ops.Block) else ())):
            if ops.as_expr(size).has(sp.Min, sp.Max):
                shown = str(size).replace("Min(", "min(").replace("Max(", "max(")
                return f"the size {shown} is a min/max that the case condition does not settle"
    # a stack pads its zero blocks onto its other blocks: it needs one that is not zeros
    padded = isinstance(e, (ops.HStack, ops.VStack)) and \
        not all(isinstance(a, sp.ZeroMatrix) for a in e.args)
    for arg in e.args:
        problem = _unprintable(arg, padded)
        if problem:
            return problem
    return None


def _rule(spec, variant, case, kind, text, names, dims, results: dict[str, sp.MatrixSymbol]):
    what = f"{kind} of {variant.label} when {case.when}"
    statements = _parse_program(spec, text, names, dims, what)
    for s in statements:
        problem = _unprintable(s.expr)
        if problem:
            raise SpecError(spec.path, text.line + s.line - 1, f"{what}: {problem}")
    assigned = {s.name: s for s in statements}
    for name, expected in results.items():
        if name not in assigned:
            raise SpecError(spec.path, text.line, f"{what}: never assigns '{name}'")
        got = assigned[name].expr
        if not all(sp.simplify(a - b) == 0 for a, b in zip(got.shape, expected.shape)):
            raise SpecError(spec.path, text.line + assigned[name].line - 1,
                            f"{what}: '{name}' is {got.rows}x{got.cols} but must be "
                            f"{expected.rows}x{expected.cols}")
    params = tuple(names)
    return Rule(kind, build_program(params, statements, tuple(results)), tuple(statements))


def _derived_vjp(spec, variant, case, jvp: Rule, diff_outputs, jvp_names, vjp_names,
                 results) -> Rule:
    """The VJP of a case that gives none: the JVP transposed (factorules.compiler.derive)."""
    jvp_steps = [(s.name, s.expr) for s in jvp.statements]
    tangent_inputs = {"d" + t.name: jvp_names["d" + t.name] for t in spec.inputs}
    cotangents = {"d" + t.name: vjp_names["g" + t.name] for t in diff_outputs}
    try:
        steps = derive.transpose_program(
            jvp_steps, tangent_inputs, cotangents,
            {"d" + t.name: "g" + t.name for t in spec.inputs})
    except derive.DeriveError as err:
        raise SpecError(spec.path, case.jvp.line, f"jvp of {variant.label} when {case.when}: "
                                                  f"no vjp given and the jvp cannot be "
                                                  f"transposed: {err}") from None
    if any(step.expr.has(sp.I) for step in steps):
        raise SpecError(spec.path, case.jvp.line, f"jvp of {variant.label} when {case.when}: "
                                                  f"no vjp given, and the transpose of im() "
                                                  f"(i re(G)) is not printed for real inputs; "
                                                  f"write the vjp")
    params = tuple(vjp_names)
    return Rule("vjp", build_program(params, steps, tuple(results)), tuple(steps), True)


def _without_zeros(values, present: dict[str, sp.MatrixSymbol]) -> tuple:
    """A check's values with the cotangents not in ``present`` zero: those that vanish left
    out, and the zero blocks of a stack of conditions (each block's columns must vanish on
    their own) left out of it."""
    out = []
    for e in values:
        e = derive.linearize(e, present)  # linear in the cotangents: e without the absent
        if isinstance(e, ops.VStack):
            parts = [p for p in e.args if not isinstance(p, sp.ZeroMatrix)]
            e = parts[0] if len(parts) == 1 else ops.VStack(*parts) if parts else e
        if not isinstance(e, sp.ZeroMatrix):
            out.append(e)
    return tuple(out)


def _products(program) -> int:
    """How many matrix products a program computes (each distinct product once, as its
    common-subexpression elimination leaves them)."""
    found = {m for s in program.statements for m in s.expr.atoms(sp.MatMul)}
    return sum(len(ops.split_product(m)[1]) - 1 for m in found)


def _partial_vjps(vjp: Rule, checks: Checks, cotangents: dict[str, sp.MatrixSymbol],
                  results) -> tuple[PartialVjp, ...]:
    """The VJP and its checks for each proper subset of the cotangents given, the others
    zero.  A subset has none (the full rule runs on zeros there) where leaving the others
    out saves no matrix product (svd's gS alone adds a diagonal), where an input would get
    no cotangent, or where the rule would print a zero block that no backend prints."""
    names = list(cotangents)
    statements = [(s.name, s.expr) for s in vjp.statements]
    full = _products(vjp.program)
    out = []
    for count in range(1, len(names)):
        for absent in itertools.combinations(names, count):
            steps, zero = derive.specialise(statements, cotangents, set(absent))
            if any(r in zero for r in results) or any(
                    _unprintable(s.expr) for s in steps):
                continue
            program = build_program(vjp.program.params, steps, tuple(results))
            if _products(program) >= full:
                continue
            present = {n: s for n, s in cotangents.items() if n not in absent}
            specialised = dataclasses.replace(
                checks,
                pivot_cotangents=_without_zeros(checks.pivot_cotangents, present),
                tie_cotangents=_without_zeros(checks.tie_cotangents, present),
                gauge_cotangents=_without_zeros(checks.gauge_cotangents, present))
            rule = Rule("vjp", program, tuple(steps), vjp.derived)
            out.append(PartialVjp(absent, rule, specialised))
    return tuple(out)


def _defining(spec, texts, names, dims) -> list:
    out = []
    for eq in texts:
        try:
            out.append(expr_mod.Parser(names, dims).equation(eq.text))
        except expr_mod.ExprError as err:
            raise SpecError(spec.path, eq.line, f"defining equation: {err}") from None
    return out


def _no_constant_hidden(spec: Spec, variant: Variant, case, rule: Rule) -> None:
    """A rule that reads a hidden output needs the frameworks to differentiate the operation
    as another spec's ('framework'), which returns that output: otherwise they would
    differentiate the rule (second derivatives) with the hidden output held constant.
    Locally constant outputs (permutations) are constants."""
    if spec.framework is not None:
        return
    hidden = {t.name for t in variant.outputs if t.returned == "hidden" and not t.constant}
    read = {s.name for st in rule.statements for s in st.expr.atoms(sp.MatrixSymbol)}
    for name in sorted(read & hidden):
        text = case.jvp if rule.kind == "jvp" else case.vjp
        raise SpecError(spec.path, text.line,
                        f"the {rule.kind} of {variant.label} when {case.when} reads the hidden "
                        f"output {name}: torch and JAX would differentiate it (second "
                        f"derivatives) with {name} held constant; return {name}, or "
                        f"differentiate the operation as another spec's that returns it "
                        f"('framework')")


def check_variant(spec: Spec, dims: tuple[DimDef, ...], variant: Variant) -> CheckedVariant:
    declared = {t.name for t in spec.inputs} | {t.name for t in variant.outputs}
    for t in variant.outputs:
        if t.name in {x.name for x in dims}:
            raise SpecError(spec.path, t.line, f"'{t.name}' names both a dimension and an output")
        if t.name in {x.name for x in spec.inputs}:
            raise SpecError(spec.path, t.line, f"'{t.name}' names both an input and an output")
        for d in t.shape:
            if d not in {x.name for x in dims}:
                raise SpecError(spec.path, t.line, f"output {t.name}: unknown dimension '{d}'")
    for t in (*spec.inputs, *variant.outputs):
        for prefix in ("d", "g"):
            if prefix + t.name in declared:
                raise SpecError(spec.path, t.line, f"'{prefix}{t.name}' would name both a "
                                                   f"matrix and the derivative of '{t.name}'")
        if t.structure == "permutation" and t.shape[0] != t.shape[1]:
            raise SpecError(spec.path, t.line, f"output {t.name}: a permutation is square")
        if t.from_pivots is not None and not any(
                o.name == t.from_pivots and o.structure == "pivots" for o in variant.outputs) \
                and not any(name == t.from_pivots and len(shape) == 1
                            for name, shape in variant.primal_returns):
            raise SpecError(spec.path, t.line, f"output {t.name}: from_pivots must name a "
                                               f"pivots output of the variant or a vector the "
                                               f"primal call returns")
        if t.from_indices is not None and not any(
                o.name == t.from_indices and o.structure == "indices"
                and o.shape == t.shape[:1] for o in variant.outputs):
            raise SpecError(spec.path, t.line, f"output {t.name}: from_indices must name an "
                                               f"indices output of the variant as long as "
                                               f"{t.name} is wide")
        if t.eigenbasis is not None:
            values, vectors = (next((o for o in variant.outputs if o.name == x), None)
                               for x in t.eigenbasis)
            size = t.shape[0]
            if values is None or values.shape != (size,) or vectors is None \
                    or vectors.shape != (size, size):
                raise SpecError(spec.path, t.line, f"output {t.name}: eigenbasis must name a "
                                                   f"vector output of size {size} and a "
                                                   f"{size} x {size} output of the variant")
        if t.from_indices is not None and (variant.primal_returns or variant.primal_outputs):
            raise SpecError(spec.path, t.line, f"output {t.name}: from_indices needs the "
                                               f"indices from the call itself (no 'primal')")
    diff_outputs = [o for o in variant.outputs if o.returned == "value" and not o.constant]
    # pivots are integer data for users; the rules see the permutation they encode
    matrices = [t for t in variant.outputs if not t.is_index]

    cases = []
    defining = None
    for case in variant.cases:
        cond = case_condition(spec, case, {d.name: d.expr for d in dims})
        cdims = case_dims(dims, cond)
        primal = {t.name: matrix_symbol(t, cdims) for t in (*spec.inputs, *matrices)}
        case_defining = _defining(spec, (*variant.defining, *case.defining), primal, cdims)
        if defining is None:
            defining = case_defining[:len(variant.defining)]
        for t in matrices:
            if not any(t.name in {s.name for s in (eq.lhs - eq.rhs).atoms(sp.MatrixSymbol)}
                       for eq in case_defining):
                raise SpecError(spec.path, t.line,
                                f"output {t.name} of {variant.label} appears in no defining "
                                f"equation{' when ' + case.when if case.defining else ''}; "
                                f"state what it is (e.g. 'A = Q @ R')")
        jvp_names = dict(primal)
        jvp_names.update({"d" + t.name: matrix_symbol(t, cdims, "d" + t.name)
                          for t in spec.inputs})
        jvp_results = {"d" + t.name: matrix_symbol(t, cdims, "d" + t.name) for t in diff_outputs}
        vjp_names = dict(primal)
        vjp_names.update({"g" + t.name: matrix_symbol(t, cdims, "g" + t.name)
                          for t in diff_outputs})
        vjp_results = {"g" + t.name: matrix_symbol(t, cdims, "g" + t.name) for t in spec.inputs}
        jvp = _rule(spec, variant, case, "jvp", case.jvp, jvp_names, cdims, jvp_results)
        _no_constant_hidden(spec, variant, case, jvp)
        if case.vjp is None:
            vjp = _derived_vjp(spec, variant, case, jvp, diff_outputs, jvp_names, vjp_names,
                               vjp_results)
        else:
            vjp = _rule(spec, variant, case, "vjp", case.vjp, vjp_names, cdims, vjp_results)
            _no_constant_hidden(spec, variant, case, vjp)
        # the run-time checks, with the case's sizes (blocks that are whole under its
        # condition are the matrix itself, as in its rules)
        checks = parse_degenerate(spec, variant, diff_outputs, cdims)
        if variant.gauge:
            checks = dataclasses.replace(checks, gauge_cotangents=parse_gauge(
                spec, variant, diff_outputs, cdims)[1])
        cotangents = {"g" + t.name: vjp_names["g" + t.name] for t in diff_outputs}
        cases.append(CheckedCase(cond, tuple(cdims.items()), jvp, vjp, case.line,
                                 tuple(case_defining), case, checks,
                                 _partial_vjps(vjp, checks, cotangents, vjp_results)))
    gauge = (parse_gauge(spec, variant, diff_outputs, {d.name: d.expr for d in dims})
             if variant.gauge else ())
    return CheckedVariant(variant, tuple(defining), tuple(cases), (), (), *gauge)
