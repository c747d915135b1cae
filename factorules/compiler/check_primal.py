"""A variant's expressions beyond its rules: 'primal' (the outputs as expressions of what
the native call returns, or of the inputs), 'requires', 'sample' and 'from_native'.

Each expression is parsed under every case's dimensions (or the first case's) to check its
shape, and kept as parsed with the dimensions it is printed with.
"""
from __future__ import annotations

from dataclasses import replace

import sympy as sp

from . import expr as expr_mod
from . import ops
from .chain_sizes import holds_at
from .check_dims import case_condition, matrix_symbol
from .checked import CheckedVariant
from .spec import Case, Spec, SpecError, Text, Variant


def _parsed_with_shape(spec: Spec, text: Text, what: str, name: str, want, parse):
    """``parse(text.text)``, which must have the shape of ``want`` (the matrix ``name``)."""
    try:
        value = parse(text.text)
    except (expr_mod.ExprError, ops.ShapeError) as err:
        raise SpecError(spec.path, text.line, f"{what}: {err}") from None
    if not (ops.dims_equal(value.rows, want.rows) and ops.dims_equal(value.cols, want.cols)):
        raise SpecError(spec.path, text.line, f"{what}: '{name}' would be "
                                              f"{value.rows}x{value.cols}, not "
                                              f"{want.rows}x{want.cols}")
    return value


def with_primal_outputs(spec: Spec, cv: CheckedVariant, vdims: dict) -> CheckedVariant:
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
        _parsed_with_shape(spec, text, "primal.outputs", t.name, matrix_symbol(t, cdims),
                           expr_mod.Parser(checked_names, cdims).expression)
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
            names = {x.name: matrix_symbol(x, dims) for x in spec.inputs}
            _parsed_with_shape(spec, text, "primal.outputs", t.name, matrix_symbol(t, dims),
                               expr_mod.Parser(names, dims).expression)
        # printed with the variant's sizes, or its one case's (ormqr's left variant has
        # rows(a) == rows(C) there, and requires it at run time)
        dims = dict(cv.cases[0].dims) if len(cv.cases) == 1 else vdims
        names = {x.name: matrix_symbol(x, dims) for x in spec.inputs}
        out.append((t.name, expr_mod.Parser(names, dims).expression(text.text)))
    return replace(cv, primal_outputs=tuple(out))


def with_requires(spec: Spec, cv: CheckedVariant, dims: dict) -> CheckedVariant:
    """Parse 'requires': conditions on the sizes, checked at run time."""
    conditions = tuple(case_condition(spec, Case(t.text, t.line, t, None), dims)
                       for t in cv.variant.requires)
    return replace(cv, requires=conditions)


def with_sample(spec: Spec, cv: CheckedVariant, vdims: dict) -> CheckedVariant:
    """Parse 'sample': outputs the random draws compute from other outputs, in order."""
    v = cv.variant
    tensors = {t.name: t for t in (*spec.inputs, *v.outputs)}
    out = []
    for name, text in v.sample:
        if name not in tensors or tensors[name].constant:
            raise SpecError(spec.path, text.line, f"sample: '{name}' is not an input or a "
                                                  f"differentiable output")
        for dims in (dict(c.dims) for c in cv.cases):
            names = {t.name: matrix_symbol(t, dims) for t in tensors.values()}
            _parsed_with_shape(spec, text, "sample", name, names[name],
                               expr_mod.Parser(names, dims).expression)
        names = {t.name: matrix_symbol(t, vdims) for t in tensors.values()}
        out.append((name, expr_mod.Parser(names, vdims).expression(text.text)))
    return replace(cv, sample=tuple(out))


def native_variant(spec: Spec, variant: Variant) -> Variant | None:
    """The variant whose options are ``variant``'s native options."""
    native = dict(variant.native)
    return next((w for w in spec.variants if all(native.get(k) == x for k, x in w.when)), None)


def with_from_native(spec: Spec, cv: CheckedVariant) -> CheckedVariant:
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
    names = {t.name: matrix_symbol(t, cdims) for t in full.outputs}
    out = []
    for name, text in v.from_native:
        target = next((t for t in v.outputs if t.name == name), None)
        if target is None:
            raise SpecError(spec.path, text.line, f"from_native: '{name}' is not an output")
        parser = expr_mod.Parser(names, cdims)
        value = _parsed_with_shape(spec, text, "from_native", name, matrix_symbol(target, cdims),
                                   lambda text: parser.equation(f"{name} = {text}").rhs)
        out.append((name, value))
    return replace(cv, from_native=tuple(out))


def check_benchmarks(spec: Spec, dims, checked) -> None:
    """Each benchmark row's shapes (its own and --quick's) meet the 'requires' of the
    variant its options select: a tall-only variant has no wide row."""
    primitive = [d for d in dims if d.source is not None]
    for b in spec.benchmarks:
        cv = next((c for c in checked if dict(c.variant.when) == dict(b.options)), None)
        if cv is None:
            continue
        for key, shape in (("shape", b.shape), ("quick", b.quick)):
            least = len(primitive) if len(spec.inputs) > 1 else 2
            if len(shape) < least:
                raise SpecError(spec.path, b.line,
                                f"benchmark {b.label}: its {key} {list(shape)} needs at least "
                                f"{least} entries (batch dims first, then "
                                + ("every primitive dimension: "
                                   + ", ".join(d.name for d in primitive)
                                   if len(spec.inputs) > 1 else "the input's rows and columns")
                                + ")")
            if len(spec.inputs) > 1:
                values = shape[len(shape) - len(primitive):]
            else:
                values = tuple(shape[d.source[1]] for d in primitive)
            sizes = dict(zip((d.expr for d in primitive), values))
            failed = next((c for c in cv.requires if not holds_at(c, sizes)), None)
            if failed is not None:
                raise SpecError(spec.path, b.line,
                                f"benchmark {b.label} ({key} {list(shape)}): variant "
                                f"{cv.variant.label} needs {failed.text} (sizes: "
                                + ", ".join(f"{d.name} = {v}" for d, v in zip(primitive, values))
                                + ")")

