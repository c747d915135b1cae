"""A variant's gauge (spec.Gauge) parsed with the variant's dimensions: the tangent and
cotangent conditions, and the output blocks that carry the free phases and rotations.
"""
from __future__ import annotations

import sympy as sp

from . import expr as expr_mod
from . import ops
from .check_dims import matrix_symbol
from .spec import Spec, SpecError, Text, Variant

# the option (selects: false) that turns the run-time check of a gauge's cotangent on and off
GAUGE_OPTION = "check_gauge"


def _gauge_block(e, outputs) -> bool:
    """An output, a block of one, or the adjoint of either."""
    if isinstance(e, sp.Adjoint):
        e = e.arg
    if isinstance(e, ops.Block):
        e = e.arg
    return isinstance(e, sp.MatrixSymbol) and e.name in outputs


def parse_gauge(spec: Spec, variant: Variant, diff_outputs, vdims):
    """Parse a variant's gauge; a run-time checked one needs the switch ``check_gauge``."""
    g = variant.gauge
    outputs = {t.name for t in variant.outputs}
    primal = {t.name: matrix_symbol(t, vdims) for t in (*spec.inputs, *variant.outputs)}

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
        names.update({prefix + t.name: matrix_symbol(t, vdims, prefix + t.name) for t in of})
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
