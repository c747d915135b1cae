"""Representative sizes for ordering chains of products (the printers' matrix-chain order):
a product like U1 S^-1 Vh dA^H U2 of a tall A costs O(m^2 n) in the right order and O(m^3)
left to right, and which order is right depends on which dimensions are large.
"""
from __future__ import annotations

import sympy as sp

from .checked import CheckedSpec
from .spec import ALWAYS


def holds_at(condition, sizes: dict) -> bool:
    """Whether a case's condition on the sizes holds at ``sizes`` (no condition: it does)."""
    if condition is None or condition.text == ALWAYS:
        return True
    lhs, rhs = (sp.Integer(x) if isinstance(x, int) else x.subs(sizes)
                for x in (condition.lhs, condition.rhs))
    return bool({"<": lhs < rhs, "<=": lhs <= rhs, ">": lhs > rhs, ">=": lhs >= rhs,
                 "==": sp.Eq(lhs, rhs), "!=": sp.Ne(lhs, rhs)}[condition.op])


def chain_sizes(checked: CheckedSpec, condition=None) -> dict | None:
    """Representative dimension values for ordering chains of products under a case's
    ``condition``: the sizes of the spec's first benchmark that meets it (its dimensions as
    they are, or all equal to the largest, for a square case), else of its first 'shapes'
    entry without a zero that does (None: left to right)."""
    primitive = [d for d in checked.dims if d.source is not None]
    candidates = []
    for b in checked.spec.benchmarks:
        if len(checked.spec.inputs) > 1:
            values = b.shape[len(b.shape) - len(primitive):]
        else:
            values = tuple(b.shape[d.source[1]] for d in primitive)
        if len(values) == len(primitive):
            candidates.append(dict(zip((d.expr for d in primitive), values)))
            candidates.append({d.expr: max(values) for d in primitive})
    symbols = {d.name: d.expr for d in primitive}
    for _, values in checked.spec.shapes:
        if all(v > 0 for _, v in values):
            candidates.append({symbols[k]: v for k, v in values})
    return next((c for c in candidates if all(v > 0 for v in c.values())
                 and holds_at(condition, c)), None)
