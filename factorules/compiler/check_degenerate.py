"""A variant's 'pivots' and 'ties' (spec.Pivots, spec.Ties) parsed with the variant's
dimensions: where the derivative the rules compute does not exist.

Pivots are vectors of the primal values that the rules divide by (with tangent and cotangent
expressions whose columns the division reads, where only those leave it undefined); ties name a vector of
values (eigenvalues, singular values) and the tangent and cotangent matrices that must be
scalar on each block of tied values.  Both are checked at run time by the generated rules
(templates/_runtime_shared.py, ``_violation``), each switched off by its option.
"""
from __future__ import annotations

import sympy as sp

from . import expr as expr_mod
from . import ops
from .check_dims import matrix_symbol
from .checked import Checks
from .ops.base import dims_equal, is_vector
from .spec import Spec, SpecError, Text, Variant

# the options (selects: false) that turn the run-time checks of pivots and ties off
PIVOTS_OPTION = "check_singular"
TIES_OPTION = "check_ties"


def _require_option(spec: Spec, line: int, name: str, what: str) -> None:
    opt = next((o for o in spec.options if o.name == name), None)
    if opt is None or opt.selects or set(opt.values) != {True, False}:
        raise SpecError(spec.path, line, f"{what} needs the option '{name}: {{values: "
                                         f"[true, false], default: true, selects: false}}'")


def parse_degenerate(spec: Spec, variant: Variant, diff_outputs, vdims) -> Checks:
    """Parse a variant's pivots and ties with the sizes ``vdims`` (a case's); each needs its
    switch (check_singular, check_ties)."""
    primal = {t.name: matrix_symbol(t, vdims) for t in (*spec.inputs, *variant.outputs)}

    def parse(text: Text, names, what: str):
        try:
            return expr_mod.Parser(names, vdims).expression(text.text)
        except (expr_mod.ExprError, ops.ShapeError) as err:
            raise SpecError(spec.path, text.line, f"{what}: {err}") from None

    def vector(text: Text, what: str):
        e = parse(text, primal, what)
        if not is_vector(e):
            raise SpecError(spec.path, text.line, f"{what}: '{text.text.strip()}' is "
                                                  f"{ops.fmt_shape(e)}, not a vector")
        return e

    def derivative_conditions(block, key: str, values, values_text: str, square: bool):
        """The block's 'tangent' and 'cotangent' expressions, each reading a tangent of an
        input (cotangent of an output) and of k columns (k x k when ``square``), k the
        length of ``values`` (written ``values_text`` in the spec)."""
        conditions = []
        for texts, prefix, of, what in ((block.tangent, "d", spec.inputs, "tangent"),
                                        (block.cotangent, "g", diff_outputs, "cotangent")):
            names = dict(primal)
            names.update({prefix + x.name: matrix_symbol(x, vdims, prefix + x.name)
                          for x in of})
            derivatives = {prefix + x.name for x in of}
            parsed = []
            for text in texts:
                e = parse(text, names, f"{key}.{what}")
                shown = text.text.strip()
                if not {s.name for s in e.atoms(sp.MatrixSymbol)} & derivatives:
                    raise SpecError(spec.path, text.line,
                                    f"{key}.{what}: '{shown}' uses no {what} of an "
                                    f"{'input' if prefix == 'd' else 'output'}")
                if not dims_equal(e.cols, values.rows) or (
                        square and not dims_equal(e.rows, values.rows)):
                    want = "square of the size" if square else "of as many columns as the length"
                    raise SpecError(spec.path, text.line,
                                    f"{key}.{what}: '{shown}' is {ops.fmt_shape(e)}, not {want}"
                                    f" of '{values_text}'")
                parsed.append(e)
            conditions.append(tuple(parsed))
        return conditions

    pivots, pivot_conditions = (), [(), ()]
    if variant.pivots:
        p = variant.pivots
        _require_option(spec, p.line, PIVOTS_OPTION, "pivots")
        pivots = tuple(vector(t, "pivots") for t in p.values)
        if p.norm is not None and p.norm[0] not in {t.name for t in variant.outputs}:
            raise SpecError(spec.path, p.norm[1], f"pivots.norm: '{p.norm[0]}' is not an "
                                                  f"output of the variant (an output whose "
                                                  f"Frobenius norm is the first input's)")
        if p.tangent:
            if len(pivots) != 1:
                raise SpecError(spec.path, p.line, "pivots with a tangent and cotangent take "
                                                   "one vector of values, whose entries pair "
                                                   "with the expressions' columns")
            pivot_conditions = derivative_conditions(p, "pivots", pivots[0], p.values[0].text,
                                                     square=False)
    if not variant.ties:
        return Checks(pivots, *pivot_conditions)
    t = variant.ties
    _require_option(spec, t.line, TIES_OPTION, "ties")
    values = vector(t.values, "ties.values")
    return Checks(pivots, *pivot_conditions, values,
                  *derivative_conditions(t, "ties", values, t.values.text, square=True))
