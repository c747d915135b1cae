"""Static checks: names, shapes and structure of every rule in a spec.

Turns a loaded ``Spec`` into a ``CheckedSpec``: the dimension table, and for every variant
and case the parsed defining equations and the JVP/VJP as straight-line programs whose
shapes agree under the case's condition (e.g. ``k = min(m, n) = n`` when ``m >= n``).
"""
from __future__ import annotations

import ast
import keyword
from dataclasses import dataclass, replace

import sympy as sp

from . import derive
from . import expr as expr_mod
from . import ops
from .program import Program, build_program
from .spec import ALWAYS, Case, Spec, SpecError, Tensor, Text, Variant

# The primitive dimensions are the input's rows and columns; a dimension symbol is a
# non-negative integer, which is what lets zero-size matrices through every rule.
_DIM_FUNCS = {"min": sp.Min, "max": sp.Max}
_COMPARE = {ast.GtE: ">=", ast.Gt: ">", ast.LtE: "<=", ast.Lt: "<", ast.Eq: "=="}


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
class CheckedCase:
    condition: Condition
    dims: tuple[tuple[str, sp.Expr], ...]  # every dim's value under the condition
    jvp: Rule
    vjp: Rule
    line: int
    defining: tuple[expr_mod.Equation, ...] = ()  # the variant's and the case's own
    case: Case | None = None


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


def _dim_expr(node, known: dict[str, sp.Expr], inputs: dict[str, Tensor], fail):
    def operand(sub):
        value, source = _dim_expr(sub, known, inputs, fail)
        if source is not None:
            fail(f"{ast.unparse(sub)} must be a dimension's whole definition; name it and "
                 f"use the name")
        return value

    if isinstance(node, ast.Name):
        if node.id not in known:
            fail(f"unknown dimension '{node.id}'")
        return known[node.id], None
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return sp.Integer(node.value), None
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        a, b = operand(node.left), operand(node.right)
        return (a + b if isinstance(node.op, ast.Add) else a - b), None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        func = node.func.id
        if func in ("rows", "cols") and len(node.args) == 1 and isinstance(node.args[0], ast.Name):
            name = node.args[0].id
            if name not in inputs:
                fail(f"{func}({name}): '{name}' is not an input")
            return None, (name, -2 if func == "rows" else -1)
        if func in _DIM_FUNCS and len(node.args) == 2:
            args = [operand(a) for a in node.args]
            return _DIM_FUNCS[func](*args), None
    fail(f"'{ast.unparse(node)}' is not a dimension definition "
         f"(use rows(X), cols(X), min(a, b), max(a, b), +, -)")


def _parse_python_expression(text: str, fail, message: str) -> ast.AST:
    """A dimension, case condition or signature call as an ``ast`` tree, never evaluated."""
    try:
        return ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        fail(message)


def _dim_value(node, known, inputs, fail):
    try:
        return _dim_expr(node, known, inputs, fail)
    except RecursionError:
        fail("nested too deeply")


def _dims(spec: Spec) -> tuple[DimDef, ...]:
    line = spec.line_of.get("dims", 1)

    def fail(msg):
        raise SpecError(spec.path, line, f"dims: {msg}")

    inputs = {t.name: t for t in spec.inputs}
    known: dict[str, sp.Expr] = {}
    out = []
    for name, text in spec.dims:
        line = spec.line_of.get(f"dims.{name}", spec.line_of.get("dims", 1))
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_") \
                or name == "I":
            fail(f"'{name}' is not a valid dimension name")
        if name in inputs:
            fail(f"'{name}' names both a dimension and an input")
        node = _parse_python_expression(text, fail, f"cannot parse '{text}'")
        value, source = _dim_value(node, known, inputs, fail)
        if source is not None:
            value = sp.Symbol(name, integer=True, nonnegative=True)
        known[name] = value
        out.append(DimDef(name, source, value))
    for t in spec.inputs:
        for d in t.shape:
            if d not in known:
                raise SpecError(spec.path, t.line, f"input {t.name}: unknown dimension '{d}'")
    for d in out:
        if d.source is not None:
            name, axis = d.source
            if inputs[name].is_vector and axis == -1:
                raise SpecError(spec.path, inputs[name].line,
                                f"input {name} is a vector: its size is rows({name})")
            given = inputs[name].shape[0 if inputs[name].is_vector else axis]
            if given != d.name:
                func = "rows" if axis == -2 else "cols"
                raise SpecError(spec.path, inputs[name].line,
                                f"input {name}: its {func} are '{given}', but dims says "
                                f"{d.name} = {func}({name})")
    return tuple(out)


def _condition(spec: Spec, case: Case, dims: dict[str, sp.Expr]) -> Condition:
    def fail(msg):
        raise SpecError(spec.path, case.line, f"case condition '{case.when}': {msg}")

    if case.when.strip() == ALWAYS:
        zero = sp.Integer(0)
        return Condition(zero, "==", zero, ALWAYS)
    node = _parse_python_expression(case.when, fail, "cannot parse it")
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1
            and type(node.ops[0]) in _COMPARE):
        fail("expected one comparison such as 'm >= n'")
    lhs, _ = _dim_value(node.left, dims, {}, fail)
    rhs, _ = _dim_value(node.comparators[0], dims, {}, fail)
    return Condition(lhs, _COMPARE[type(node.ops[0])], rhs, case.when.strip())


def _under(cond: Condition, value: sp.Expr) -> sp.Expr:
    """Resolve min/max of the condition's two sides, knowing the condition holds."""
    if cond.op in (">=", ">", "=="):
        big, small = cond.lhs, cond.rhs
    else:
        big, small = cond.rhs, cond.lhs
    return value.replace(
        lambda e: isinstance(e, (sp.Min, sp.Max)) and set(e.args) == {big, small},
        lambda e: small if isinstance(e, sp.Min) else big)


def _case_dims(dims: tuple[DimDef, ...], cond: Condition) -> dict[str, sp.Expr]:
    values = {d.name: _under(cond, d.expr) for d in dims}
    if cond.op == "==" and isinstance(cond.rhs, sp.Symbol):  # e.g. m == n: write n as m
        values = {k: ops.as_expr(v).subs(cond.rhs, cond.lhs) for k, v in values.items()}
    elif cond.op == "==" and isinstance(cond.lhs, sp.Symbol) and cond.rhs.is_Integer:
        values = {k: ops.as_expr(v).subs(cond.lhs, cond.rhs) for k, v in values.items()}
    return values


def matrix_symbol(t: Tensor, dims: dict[str, sp.Expr], name: str | None = None) -> sp.MatrixSymbol:
    """A matrix, or a vector as a column (the backends hold it as a (..., n) array)."""
    rows, cols = (dims[d] for d in t.shape) if not t.is_vector else (dims[t.shape[0]], 1)
    return sp.MatrixSymbol(name or t.name, rows, cols)


_matrix = matrix_symbol


def _parse_program(spec: Spec, text: Text, names, dims, what: str):
    try:
        return expr_mod.Parser(names, dims).program(text.text)
    except expr_mod.ExprError as err:
        raise SpecError(spec.path, text.line + err.line - 1, f"{what}: {err}") from None


def _unprintable(e, zero_ok: bool = False) -> str | None:
    """What no backend prints: a zero block other than the last of two stacked blocks, and a
    size that is still a min/max once the case condition has been applied."""
    if isinstance(e, sp.ZeroMatrix) and not zero_ok:
        return "zeros(rows, cols) can only be the last of two blocks of hstack/vstack"
    if isinstance(e, sp.MatrixExpr):
        for size in (*e.shape, *(e.bounds if isinstance(e, ops.Block) else ())):
            if ops.as_expr(size).has(sp.Min, sp.Max):
                shown = str(size).replace("Min(", "min(").replace("Max(", "max(")
                return f"the size {shown} is a min/max that the case condition does not settle"
    pair = isinstance(e, (ops.HStack, ops.VStack)) and len(e.args) == 2
    for i, arg in enumerate(e.args):
        problem = _unprintable(arg, pair and i == 1)
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
    """The VJP of a case that gives none: the JVP transposed (generator.compiler.derive)."""
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


def _defining(spec, texts, names, dims) -> list:
    out = []
    for eq in texts:
        try:
            out.append(expr_mod.Parser(names, dims).equation(eq.text))
        except expr_mod.ExprError as err:
            raise SpecError(spec.path, eq.line, f"defining equation: {err}") from None
    return out


def _variant(spec: Spec, dims: tuple[DimDef, ...], variant: Variant) -> CheckedVariant:
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
        if t.from_indices is not None and (variant.primal_returns or variant.primal_outputs):
            raise SpecError(spec.path, t.line, f"output {t.name}: from_indices needs the "
                                               f"indices from the call itself (no 'primal')")
    diff_outputs = [o for o in variant.outputs if o.returned == "value" and not o.constant]
    # pivots are integer data for users; the rules see the permutation they encode
    matrices = [t for t in variant.outputs if not t.is_index]

    cases = []
    defining = None
    for case in variant.cases:
        cond = _condition(spec, case, {d.name: d.expr for d in dims})
        cdims = _case_dims(dims, cond)
        primal = {t.name: _matrix(t, cdims) for t in (*spec.inputs, *matrices)}
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
        jvp_names.update({"d" + t.name: _matrix(t, cdims, "d" + t.name) for t in spec.inputs})
        jvp_results = {"d" + t.name: _matrix(t, cdims, "d" + t.name) for t in diff_outputs}
        vjp_names = dict(primal)
        vjp_names.update({"g" + t.name: _matrix(t, cdims, "g" + t.name) for t in diff_outputs})
        vjp_results = {"g" + t.name: _matrix(t, cdims, "g" + t.name) for t in spec.inputs}
        jvp = _rule(spec, variant, case, "jvp", case.jvp, jvp_names, cdims, jvp_results)
        if case.vjp is None:
            vjp = _derived_vjp(spec, variant, case, jvp, diff_outputs, jvp_names, vjp_names,
                               vjp_results)
        else:
            vjp = _rule(spec, variant, case, "vjp", case.vjp, vjp_names, cdims, vjp_results)
        cases.append(CheckedCase(cond, tuple(cdims.items()), jvp, vjp, case.line,
                                 tuple(case_defining), case))
    gauge = (_gauge(spec, variant, diff_outputs, {d.name: d.expr for d in dims})
             if variant.gauge else ())
    return CheckedVariant(variant, tuple(defining), tuple(cases), (), (), *gauge)


GAUGE_OPTION = "check_gauge"


def _gauge_block(e, outputs) -> bool:
    """An output, a block of one, or the adjoint of either."""
    if isinstance(e, sp.Adjoint):
        e = e.arg
    if isinstance(e, ops.Block):
        e = e.arg
    return isinstance(e, sp.MatrixSymbol) and e.name in outputs


def _gauge(spec: Spec, variant: Variant, diff_outputs, vdims):
    """Parse a variant's gauge; a run-time checked one needs the switch ``check_gauge``."""
    g = variant.gauge
    outputs = {t.name for t in variant.outputs}
    primal = {t.name: _matrix(t, vdims) for t in (*spec.inputs, *variant.outputs)}

    def parse(text: Text, names):
        try:
            return expr_mod.Parser(names, vdims).expression(text.text)
        except (expr_mod.ExprError, ops.ShapeError) as err:
            raise SpecError(spec.path, text.line, f"gauge: {err}") from None

    blocks = []
    for key, texts in (("phases", g.phases), ("rotations", g.rotations)):
        parsed = []
        for text in texts:
            e = parse(Text(text, g.line), {t.name: primal[t.name] for t in variant.outputs})
            if not _gauge_block(e, outputs):
                raise SpecError(spec.path, g.line, f"gauge.{key}: '{text}' is not an output, "
                                                   f"a block of one, or its .H")
            parsed.append(e)
        blocks.append(tuple(parsed))
    carried = {s.name for e in (*blocks[0], *blocks[1]) for s in e.atoms(sp.MatrixSymbol)}
    diff = {t.name for t in diff_outputs}
    if not g.cotangent and diff & carried:
        raise SpecError(spec.path, g.line, f"gauge: {', '.join(sorted(diff & carried))} "
                                           f"carries the gauge and is differentiated: give the "
                                           f"'cotangent' expression the run-time check tests")
    if g.cotangent:
        opt = next((o for o in spec.options if o.name == GAUGE_OPTION), None)
        if opt is None or opt.selects or set(opt.values) != {True, False}:
            raise SpecError(spec.path, g.line, f"a gauge with a run-time check needs the option "
                                               f"'{GAUGE_OPTION}: {{values: [true, false], "
                                               f"default: true, selects: false}}'")
        if not g.message:
            raise SpecError(spec.path, g.line, "gauge: 'message' (the error a gauge-dependent "
                                               "loss raises) is missing")
    conditions = []
    for texts, prefix, of in ((g.tangent, "d", variant.outputs), (g.cotangent, "g", diff_outputs)):
        names = dict(primal)
        names.update({prefix + t.name: _matrix(t, vdims, prefix + t.name) for t in of})
        parsed = []
        for text in texts:
            e = parse(text, names)
            if not any(n.name.startswith(prefix) and n.name[1:] in outputs
                       for n in e.atoms(sp.MatrixSymbol)):
                raise SpecError(spec.path, text.line,
                                f"gauge: '{text.text.strip()}' uses no "
                                f"{'tangent' if prefix == 'd' else 'cotangent'} of an output")
            parsed.append(e)
        conditions.append(tuple(parsed))
    return conditions[0], conditions[1], blocks[0], blocks[1]


def _input_arg(node, inputs) -> bool:
    """An input name, or one with .H / .T / .conj applied (e.g. 'A.H' for LQ through QR)."""
    while isinstance(node, ast.Attribute) and node.attr in ("H", "T", "conj"):
        node = node.value
    return isinstance(node, ast.Name) and node.id in inputs


def _signature_calls(spec: Spec) -> None:
    """Each backend's current call: 'dotted.func(INPUT, ..., keyword=OPTION, ...)'."""
    inputs = {t.name for t in spec.inputs}
    options = {o.name for o in spec.options}
    for sig in spec.signatures:  # every entry: an older one is generated too
        if sig.compute:
            continue

        def fail(msg, sig=sig):
            raise SpecError(spec.path, sig.line, f"signatures.{sig.backend}: {msg}: {sig.call!r}")

        node = _parse_python_expression(sig.call, fail, "cannot parse the call")
        if not isinstance(node, ast.Call):
            fail("expected a call such as 'module.func(A, mode=mode)'")
        func = node.func
        while isinstance(func, ast.Attribute):
            func = func.value
        if not isinstance(func, ast.Name):
            fail("the function must be a dotted name")
        if not all(_input_arg(a, inputs) for a in node.args):
            fail("positional arguments must be input names, optionally with .H, .T or .conj")
        matrices = {t.name for v in spec.variants for t in v.outputs if not t.is_vector}
        for name in sig.transposed:
            if name not in matrices:
                fail(f"transposed: '{name}' is not a matrix output")
        for k in node.keywords:
            if k.arg is None:
                fail("'**' unpacking is not allowed")
            if isinstance(k.value, ast.Constant) and type(k.value.value) in (bool, str, int):
                continue
            if not (isinstance(k.value, ast.Name) and k.value.id in options):
                fail(f"keyword {k.arg}= must be given an option name or a constant")
        _recorded_signature(spec, sig, node, fail)


def recorded_parameters(text: str) -> ast.arguments | None:
    """A signature entry's 'signature' text, "(a, mode='reduced')", parsed (not evaluated)
    as the parameters of a def; None when it is not one."""
    try:
        tree = ast.parse(f"def _recorded{text}: pass", mode="exec")
    except SyntaxError:
        return None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef):
        return None
    return tree.body[0].args


def _recorded_signature(spec: Spec, sig, node: ast.Call, fail) -> None:
    """The call passes only keywords its recorded signature has, and only values its
    'accepts' lists (after the entry's 'values' spellings)."""
    if sig.signature is None:
        if sig.accepts:
            fail("accepts needs the function's signature too")
        return
    params = recorded_parameters(sig.signature)
    if params is None:
        fail(f"signature {sig.signature!r} is not a parameter list such as \"(a, mode='reduced')\"")
    names = [a.arg for a in (*params.posonlyargs, *params.args, *params.kwonlyargs)]
    positional = len(params.posonlyargs) + len(params.args)
    if len(node.args) > positional and params.vararg is None:
        fail(f"passes {len(node.args)} positional arguments; its signature takes {positional}")
    for k in node.keywords:
        if k.arg not in names and params.kwarg is None:
            fail(f"keyword {k.arg}= is not in its signature {sig.signature}")
    accepts = dict(sig.accepts)
    for keyword in accepts:
        if keyword not in names:
            fail(f"accepts: '{keyword}' is not in its signature {sig.signature}")
    mapped = {opt: dict(pairs) for opt, pairs in sig.values}
    for k in node.keywords:
        if isinstance(k.value, ast.Constant) and k.arg in accepts \
                and k.value.value not in accepts[k.arg]:
            fail(f"passes {k.arg}={k.value.value!r}, which accepts.{k.arg} does not list")
        if isinstance(k.value, ast.Name) and k.arg in accepts:
            for v in spec.variants:  # the option's value each variant's call is made with
                value = dict(v.native).get(k.value.id)
                if value is None:
                    continue
                passed = mapped.get(k.value.id, {}).get(value, value)
                if passed not in accepts[k.arg]:
                    fail(f"passes {k.arg}={passed!r}, which accepts.{k.arg} does not list")


def framework_call(spec: Spec) -> tuple[str, list[str], list[tuple[str, str]]] | None:
    """The 'framework' call parsed without evaluating it: (spec name, positional input
    names, [(keyword, option name or Python literal source)])."""
    if spec.framework is None:
        return None
    text, _, line = spec.framework
    return _spec_call(spec, text, line, "framework")


def delegate_call(spec: Spec) -> tuple[str, list[str], list[tuple[str, str]]] | None:
    """The 'delegate' call parsed without evaluating it, as framework_call's."""
    if spec.delegate is None:
        return None
    _, text, line = spec.delegate
    return _spec_call(spec, text, line, "delegate")


def _spec_call(spec: Spec, text: str, line: int, what: str):
    """A call of another spec's operation on this one's inputs and options."""
    def fail(msg):
        raise SpecError(spec.path, line, f"{what}: {msg}: {text!r}")

    node = _parse_python_expression(text, fail, "cannot parse the call")
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        fail("expected a call of another spec's operation, such as 'eigh(A, UPLO=UPLO)'")
    inputs = [t.name for t in spec.inputs]
    if [a.id if isinstance(a, ast.Name) else None for a in node.args] != inputs:
        fail(f"the positional arguments must be the inputs ({', '.join(inputs)})")
    options = {o.name for o in spec.options}
    keywords = []
    for k in node.keywords:
        if isinstance(k.value, ast.Constant) and type(k.value.value) in (bool, str, int):
            keywords.append((k.arg, repr(k.value.value)))
        elif isinstance(k.value, ast.Name) and k.value.id in options and k.arg is not None:
            keywords.append((k.arg, k.value.id))
        else:
            fail(f"keyword {k.arg}= must be given an option name or a constant")
    if node.func.id == spec.name:
        fail(f"an operation cannot be its own {what}")
    return node.func.id, inputs, keywords


def check_spec(spec: Spec) -> CheckedSpec:
    dims = _dims(spec)
    _signature_calls(spec)
    framework_call(spec)
    delegate_call(spec)
    seen = set()
    for v in spec.variants:
        key = v.when
        if key in seen:
            raise SpecError(spec.path, v.line, f"two variants for {v.label}")
        seen.add(key)
    for opt in spec.options:
        if not opt.selects:
            continue
        covered = {dict(v.when).get(opt.name) for v in spec.variants}
        missing = [x for x in opt.values if x not in covered]
        if missing:
            raise SpecError(spec.path, opt.line,
                            f"option {opt.name}: no variant for {', '.join(map(str, missing))}")
    names = [o.name for o in spec.variants[0].outputs]
    for v in spec.variants:
        if [o.name for o in v.outputs] != names:
            raise SpecError(spec.path, v.line, f"every variant must list the outputs "
                                               f"{', '.join(names)} in this order")
        kinds = [o.returned == "hidden" for o in v.outputs]
        if kinds != sorted(kinds):
            raise SpecError(spec.path, v.line, f"variant {v.label}: hidden outputs must come "
                                               f"after the others")
        if all(kinds):
            raise SpecError(spec.path, v.line, f"variant {v.label}: every output is hidden")
        empty = [o.name for o in v.outputs if o.returned == "empty"]
        if empty:
            full = native_variant(spec, v)
            if full is None or any(o.returned == "empty" for o in full.outputs):
                raise SpecError(spec.path, v.line,
                                f"variant {v.label} returns {', '.join(empty)} empty, so its "
                                f"'native' options must select a variant that returns every "
                                f"output (the frameworks differentiate that one)")
    primitive = [d.name for d in dims if d.source is not None]
    for label, values in spec.shapes:
        if sorted(k for k, _ in values) != sorted(primitive):
            raise SpecError(spec.path, spec.line_of.get("shapes", 1),
                            f"shapes.{label} must give every primitive dimension "
                            f"({', '.join(primitive)})")
    vdims = {d.name: d.expr for d in dims}
    checked = tuple(_requires(spec, _sample(spec, _primal_outputs(spec, _variant(spec, dims, v),
                                                                  vdims), vdims), vdims)
                    for v in spec.variants)
    for sig in spec.signatures:
        if sig.compute and sig.until is None:
            lacking = [cv.variant.label for cv in checked
                       if not cv.primal_outputs or cv.variant.primal_returns]
            if lacking:
                raise SpecError(spec.path, sig.line,
                                f"signatures.{sig.backend}: 'compute: true' needs every "
                                f"variant's primal.outputs as expressions of the inputs "
                                f"(missing in {', '.join(lacking)})")
    return CheckedSpec(spec, dims, tuple(_from_native(spec, checked, cv) for cv in checked))


def _primal_outputs(spec: Spec, cv: CheckedVariant, vdims: dict) -> CheckedVariant:
    """Parse 'primal': the outputs as expressions of what the native call returns.  Shapes
    are checked under the first case's dimensions; the expressions kept for printing are
    parsed with the variant's (sizes may be min/max: the primal runs before a case is
    chosen).  A permutation 'from_pivots' is built from the pivots the call returns."""
    v = cv.variant
    if v.primal_outputs and not v.primal_returns:
        return _computed_primal(spec, cv, vdims)
    if not v.primal_returns:
        return cv
    line = v.primal_outputs[0][1].line if v.primal_outputs else v.line

    def returned(dims):
        names = {}
        for name, shape in v.primal_returns:
            if any(d not in dims for d in shape):
                raise SpecError(spec.path, line, f"primal.returns.{name}: unknown dimension in "
                                                 f"{list(shape)}")
            names[name] = sp.MatrixSymbol(name, *(dims[d] for d in shape),
                                          *((1,) if len(shape) == 1 else ()))
        return names

    given = [n for n, _ in v.primal_outputs]
    expressed = [t for t in v.outputs if t.built_from is None]
    if sorted(given) != sorted(t.name for t in expressed):
        built = [t.name for t in v.outputs if t.built_from is not None]
        raise SpecError(spec.path, line, f"primal.outputs must give every output "
                                         f"({', '.join(t.name for t in expressed)}"
                                         + (f"; {', '.join(built)} from pivots" if built else "")
                                         + ")")
    cdims = dict(cv.cases[0].dims)
    checked_names, names = returned(cdims), returned(vdims)
    out = []
    for t in expressed:
        text = dict(v.primal_outputs)[t.name]
        try:
            value = expr_mod.Parser(checked_names, cdims).expression(text.text)
        except expr_mod.ExprError as err:
            raise SpecError(spec.path, text.line, f"primal.outputs: {err}") from None
        want = _matrix(t, cdims)
        if not (ops.dims_equal(value.rows, want.rows) and ops.dims_equal(value.cols, want.cols)):
            raise SpecError(spec.path, text.line, f"primal.outputs: '{t.name}' would be "
                                                  f"{value.rows}x{value.cols}, not "
                                                  f"{want.rows}x{want.cols}")
        out.append((t.name, expr_mod.Parser(names, vdims).expression(text.text)))
    return replace(cv, primal_outputs=tuple(out))


def _computed_primal(spec: Spec, cv: CheckedVariant, vdims: dict) -> CheckedVariant:
    """'primal.outputs' without 'returns': every output as an expression of the inputs, which
    backends without a native function ('compute: true') evaluate."""
    v = cv.variant
    given = [n for n, _ in v.primal_outputs]
    if sorted(given) != sorted(t.name for t in v.outputs):
        raise SpecError(spec.path, v.primal_outputs[0][1].line,
                        f"primal.outputs must give every output "
                        f"({', '.join(t.name for t in v.outputs)})")
    out = []
    for t in v.outputs:
        text = dict(v.primal_outputs)[t.name]
        for dims in [dict(c.dims) for c in cv.cases]:
            names = {x.name: _matrix(x, dims) for x in spec.inputs}
            try:
                value = expr_mod.Parser(names, dims).expression(text.text)
            except (expr_mod.ExprError, ops.ShapeError) as err:
                raise SpecError(spec.path, text.line, f"primal.outputs: {err}") from None
            want = _matrix(t, dims)
            if not (ops.dims_equal(value.rows, want.rows)
                    and ops.dims_equal(value.cols, want.cols)):
                raise SpecError(spec.path, text.line, f"primal.outputs: '{t.name}' would be "
                                                      f"{value.rows}x{value.cols}, not "
                                                      f"{want.rows}x{want.cols}")
        # printed with the variant's sizes, or its one case's (ormqr's left variant has
        # rows(a) == rows(C) there, and requires it at run time)
        dims = dict(cv.cases[0].dims) if len(cv.cases) == 1 else vdims
        names = {x.name: _matrix(x, dims) for x in spec.inputs}
        out.append((t.name, expr_mod.Parser(names, dims).expression(text.text)))
    return replace(cv, primal_outputs=tuple(out))


def _requires(spec: Spec, cv: CheckedVariant, dims: dict) -> CheckedVariant:
    """Parse 'requires': conditions on the sizes, checked at run time."""
    conditions = tuple(_condition(spec, Case(t.text, t.line, t, None), dims)
                       for t in cv.variant.requires)
    return replace(cv, requires=conditions)


def _sample(spec: Spec, cv: CheckedVariant, vdims: dict) -> CheckedVariant:
    """Parse 'sample': outputs the random draws compute from other outputs, in order."""
    v = cv.variant
    tensors = {t.name: t for t in (*spec.inputs, *v.outputs)}
    out = []
    for name, text in v.sample:
        if name not in tensors or tensors[name].constant:
            raise SpecError(spec.path, text.line, f"sample: '{name}' is not an input or a "
                                                  f"differentiable output")
        for dims in (dict(c.dims) for c in cv.cases):
            names = {t.name: _matrix(t, dims) for t in tensors.values()}
            try:
                value = expr_mod.Parser(names, dims).expression(text.text)
            except (expr_mod.ExprError, ops.ShapeError) as err:
                raise SpecError(spec.path, text.line, f"sample: {err}") from None
            want = names[name]
            if not (ops.dims_equal(value.rows, want.rows)
                    and ops.dims_equal(value.cols, want.cols)):
                raise SpecError(spec.path, text.line, f"sample: '{name}' would be "
                                                      f"{value.rows}x{value.cols}, not "
                                                      f"{want.rows}x{want.cols}")
        names = {t.name: _matrix(t, vdims) for t in tensors.values()}
        out.append((name, expr_mod.Parser(names, vdims).expression(text.text)))
    return replace(cv, sample=tuple(out))


def native_variant(spec: Spec, variant: Variant) -> Variant | None:
    """The variant whose options are ``variant``'s native options."""
    native = dict(variant.native)
    return next((w for w in spec.variants if all(native.get(k) == x for k, x in w.when)), None)


def _from_native(spec: Spec, variants, cv: CheckedVariant) -> CheckedVariant:
    """Parse 'from_native': each output as an expression of the native variant's outputs."""
    v = cv.variant
    if not v.from_native:
        return cv
    line = v.from_native[0][1].line
    full = native_variant(spec, v)
    if full is None or full is v:
        raise SpecError(spec.path, line, f"variant {v.label}: 'from_native' needs 'native' "
                                         f"options that select another variant")
    cdims = dict(cv.cases[0].dims)
    names = {t.name: _matrix(t, cdims) for t in full.outputs}
    out = []
    for name, text in v.from_native:
        target = next((t for t in v.outputs if t.name == name), None)
        if target is None:
            raise SpecError(spec.path, text.line, f"from_native: '{name}' is not an output")
        try:
            value = expr_mod.Parser(names, cdims).equation(f"{name} = {text.text}").rhs
        except expr_mod.ExprError as err:
            raise SpecError(spec.path, text.line, f"from_native: {err}") from None
        want = _matrix(target, cdims)
        if not (ops.dims_equal(value.rows, want.rows) and ops.dims_equal(value.cols, want.cols)):
            raise SpecError(spec.path, text.line, f"from_native: '{name}' would be "
                                                  f"{value.rows}x{value.cols}, not "
                                                  f"{want.rows}x{want.cols}")
        out.append((name, value))
    return replace(cv, from_native=tuple(out))
