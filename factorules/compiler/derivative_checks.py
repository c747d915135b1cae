"""The run-time checks of whether a rule's derivative exists, as the generated code runs them:
each case's pivots, ties and gauge conditions as ``render_model.DerivativeCheck`` (their values
still expressions), and the module constants holding the texts their errors quote."""
from __future__ import annotations

import sympy as sp

from . import render_model as model
from .check_degenerate import PIVOTS_OPTION, TIES_OPTION
from .check_gauge import GAUGE_OPTION
from .checked import CheckedSpec
from .fields import Field, field_of, tensor_fields
from .layout import string_source
from .ops import Im
from .spec import Spec


def case_messages(variant, checks) -> list[tuple[str, str]]:
    """(label, text) of each condition a case's checks test (``checks``: the case's, parsed):
    its pivots, ties and gauge's cotangent conditions."""
    out = []
    if checks.pivots:
        out.append(("pivots", variant.pivots.message))
    if checks.ties is not None:
        out.append(("ties", variant.ties.message))
    if checks.gauge_cotangents:
        out.append(("gauge", variant.gauge.message))
    return out


def check_messages(checked: CheckedSpec) -> tuple[model.CheckMessage, ...]:
    """The module's constants for the texts its checks quote, one per distinct text:
    _PIVOTS_MESSAGE, _TIES_MESSAGE, _GAUGE_MESSAGE (then _TIES_MESSAGE_2, ...)."""
    named: dict[str, model.CheckMessage] = {}
    for cv in checked.variants:
        for case in cv.cases:
            for label, text in case_messages(cv.variant, case.checks):
                if text not in named:
                    count = sum(m.name.startswith(f"_{label.upper()}_") for m in named.values())
                    name = f"_{label.upper()}_MESSAGE" + (f"_{count + 1}" if count else "")
                    named[text] = model.CheckMessage(name, string_source(text))
    return tuple(named.values())


def derivative_checks(spec: Spec, variant, checks, messages: dict[str, str]):
    """The run-time checks of a case's JVP and VJP (``checks``, parsed with its sizes), their
    values still expressions: the variant's pivots (both), its ties (tangent conditions in the
    JVP, cotangent conditions in the VJP) and its gauge's cotangent conditions (the VJP).
    ``messages``: the name of each message's constant, by its text."""
    first = spec.inputs[0].name
    said = {label: messages[string_source(text)] for label, text in case_messages(variant, checks)}

    def read(exprs, prefix, names):
        return tuple(sorted({s.name for e in exprs for s in e.atoms(sp.MatrixSymbol)
                             if s.name.startswith(prefix) and s.name[1:] in names}))

    fields = tensor_fields(spec.inputs, variant.outputs)

    def check(kind, exprs, against, label, option, vector=None):
        zero_when_real = kind == "vanish" and all(
            isinstance(e, Im) and field_of(e.arg, fields) == Field.INPUT for e in exprs)
        return model.DerivativeCheck(
            kind, tuple(exprs), against, vector, said[label], option,
            size_of=first if kind in ("pivots", "zeros") and scale != first else "",
            complex_of=first if zero_when_real else "")

    # the pivots' limit max(m, n) eps ||A||_F reads an output of A's norm where the spec names
    # one ('pivots.norm'), A's shape only giving max(m, n)
    scale = variant.pivots.norm[0] if variant.pivots and variant.pivots.norm else first

    jvp, vjp = [], []
    inputs, outputs = {t.name for t in spec.inputs}, {t.name for t in variant.outputs}
    if checks.pivot_tangents:  # zero pivots fail along some tangents and cotangents
        jvp.append(check("zeros", checks.pivot_tangents,
                         (scale, *read(checks.pivot_tangents, "d", inputs)), "pivots",
                         PIVOTS_OPTION, checks.pivots[0]))
        if checks.pivot_cotangents:  # none: the cotangents given read no such column
            vjp.append(check("zeros", checks.pivot_cotangents,
                             (scale, *read(checks.pivot_cotangents, "g", outputs)), "pivots",
                             PIVOTS_OPTION, checks.pivots[0]))
    elif checks.pivots:  # the same check of both: the first of _jvp_checks and _vjp_checks
        jvp.append(check("pivots", checks.pivots, (scale,), "pivots", PIVOTS_OPTION))
        vjp.append(jvp[0])
    if checks.ties is not None and not (checks.tie_tangents or checks.tie_cotangents):
        # no tangent keeps a derivative at a tie: every tie fails, in both rules
        jvp.append(check("tied", (), (), "ties", TIES_OPTION, checks.ties))
        vjp.append(jvp[-1])
    elif checks.ties is not None:
        jvp.append(check("ties", checks.tie_tangents, read(checks.tie_tangents, "d", inputs),
                         "ties", TIES_OPTION, checks.ties))
        if checks.tie_cotangents:  # none: the cotangents given cannot tell tied values
            vjp.append(check("ties", checks.tie_cotangents,
                             read(checks.tie_cotangents, "g", outputs),
                             "ties", TIES_OPTION, checks.ties))
    if checks.gauge_cotangents:
        vjp.append(check("vanish", checks.gauge_cotangents,
                         read(checks.gauge_cotangents, "g", outputs), "gauge", GAUGE_OPTION))
    return tuple(jvp), tuple(vjp)
