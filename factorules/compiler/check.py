"""Static checks: names, shapes and structure of every rule in a spec.

``check_spec`` turns a loaded ``Spec`` into a ``CheckedSpec`` (factorules.compiler.checked):
the dimension table (check_dims), the calls the spec names (check_calls), the checks that
span the whole spec (here), and for every variant its rules under each case's condition
(check_rules, check_gauge) and its other expressions (check_primal).
"""
from __future__ import annotations

from pathlib import Path

from .check_calls import check_signature_calls, delegate_call, framework_call
from .check_dims import dimension_table, structure_offset
from .check_primal import (check_benchmarks, native_variant, with_from_native,
                           with_primal_outputs, with_requires, with_sample)
from .check_rules import check_variant
from .checked import CheckedSpec
from .expr import ExprError
from .spec import Spec, SpecError
from .spec_loader import load_spec


# check_file's results: {(the file's name, the path it is shown by, its bytes): the checked
# spec}; a command checks every spec before it loads the printers, then renders them, and
# `cli.py diff` checks the specs alike on its two sides once
_CHECKED: dict[tuple[str, str, bytes], CheckedSpec] = {}


def check_file(path: Path, shown: str) -> CheckedSpec:
    """``check_spec(load_spec(path, display_path=shown))``, once per file content (a checked
    spec is immutable; a bad one raises its SpecError each time)."""
    key = (Path(path).name, shown, Path(path).read_bytes())
    if key not in _CHECKED:
        _CHECKED[key] = check_spec(load_spec(path, display_path=shown))
    return _CHECKED[key]


def check_spec(spec: Spec) -> CheckedSpec:
    """The checked spec, or the SpecError of the first problem found."""
    dims = dimension_table(spec)
    check_signature_calls(spec)
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
        empty = [o.name for o in v.outputs if o.returned in ("empty", "omitted")]
        returned = [o.name for o in v.outputs if o.returned in ("value", "empty")]
        values = [o.name for o in v.outputs if o.returned == "value"]
        if any(o.returned == "omitted" for o in v.outputs) and \
                not (len(values) == 1 and returned == values):
            raise SpecError(spec.path, v.line, f"variant {v.label} omits outputs: it must "
                                               f"return one other, alone (returns "
                                               f"{', '.join(returned) or 'none'})")
        if empty:
            full = native_variant(spec, v)
            if full is None or any(o.returned in ("empty", "omitted") for o in full.outputs):
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
    for v in spec.variants:
        for t in v.outputs:
            try:
                structure_offset(t, vdims)
            except ExprError as err:
                raise SpecError(spec.path, t.line, f"outputs.{t.name}.offset: {err}") from None
    checked = []
    for v in spec.variants:
        cv = with_primal_outputs(spec, check_variant(spec, dims, v), vdims)
        checked.append(with_requires(spec, with_sample(spec, cv, vdims), vdims))
    check_benchmarks(spec, dims, checked)
    for sig in spec.signatures:
        if sig.compute and sig.until is None:
            lacking = [cv.variant.label for cv in checked
                       if not cv.primal_outputs or cv.variant.primal_returns]
            if lacking:
                raise SpecError(spec.path, sig.line,
                                f"signatures.{sig.backend}: 'compute: true' needs every "
                                f"variant's primal.outputs as expressions of the inputs "
                                f"(missing in {', '.join(lacking)})")
    return CheckedSpec(spec, dims, tuple(with_from_native(spec, cv) for cv in checked))
