"""A case's JVP or VJP as the templates print it: the rule's program and its checks.

The checks of ties, of zero pivots and of the gauge read values that the rule's program
computes (Q^H gQ for eigh), so they are statements of the same program and share its
common subexpressions.  What only a check reads (svd's (I - V V^H) dA^H U) is computed when
the check asks for it: those statements go into a function of the check's own (``_kv0``),
which eager code never calls when the check has nothing to test (no tied or zero values)
and JAX's traced code calls only under a condition on the tie or zero mask
(templates/jax/_runtime.py).
"""
from __future__ import annotations

import dataclasses
import re

import sympy as sp

from . import render_model as model
from .product_folding import inline_diagonals
from .program import Statement, build_program, live


def printed_check(printer, check: model.DerivativeCheck) -> model.DerivativeCheck:
    """A check with its values and tie vector printed (names of a program's statements stay
    names)."""
    def text(e):
        return e if isinstance(e, str) else printer.doprint(e)
    return dataclasses.replace(check, values=tuple(map(text, check.values)),
                               vector="None" if check.vector is None else text(check.vector))


def rule_body(printer, rule, source: str, checks=(), pivots: bool = False,
              folded=lambda e: e, laid_out_like=None) -> model.RuleBody:
    """The rule's code (``rule``: a checked case's jvp or vjp, ``source``: the comment that
    heads it) with ``checks`` (of ties, zeros and the gauge) computed from its program;
    ``folded``: the rewriting of products every statement gets before printing;
    ``laid_out_like``: result name -> the input (output) it is the cotangent (tangent) of."""
    like = laid_out_like or {}

    def assigned(s):
        expr = folded(s.expr)
        if s.name in like and s.name in rule.program.results:
            return model.Assignment(s.name, printer.assign_result(s.name, expr, like[s.name]))
        return model.Assignment(s.name, printer.assign(s.name, expr))

    # products rewritten before common subexpressions are found: a diagonal factor is then
    # no temporary hiding the products around it, and products the rewriting exposes (the
    # U^H gU of (U^H gU) S^-1) are computed once
    statements = [Statement(s.name, folded(s.expr))
                  for s in inline_diagonals(rule.statements, rule.program.results)]
    program = build_program(rule.program.params, statements, rule.program.results,
                            sizes=printer.sizes)
    values = [folded(e) if isinstance(e, sp.Basic) else e for c in checks for e in c.values]
    if not values:
        statements = tuple(assigned(s) for s in program.statements)
        return released(printer, model.RuleBody(source, statements, tuple(program.results), (),
                                                pivots))
    # a check's text names what the rule computes by its expression (svd's Vh.H where the
    # rule has V = Vh.H): the statement's name in its place, so that the two are one value
    named_as = {s.expr: sp.MatrixSymbol(s.name, *s.expr.shape) for s in statements
                if isinstance(s.expr, sp.MatrixExpr)}
    values = [v.xreplace(named_as) if isinstance(v, sp.Basic) else v for v in values]
    names = [f"_k{i}" for i in range(len(values))]
    results = program.results
    program = build_program(program.params, [*statements, *map(Statement, names, values)],
                            (*results, *names), shared_by={s.name for s in statements},
                            sizes=printer.sizes)
    printed = {s.name: assigned(s) for s in program.statements}
    ruled = {s.name for s in live(program.statements, results)}
    named, out = iter(names), []
    for i, check in enumerate(checks):
        own = tuple(next(named) for _ in check.values)
        extra = [s.name for s in live(program.statements, own) if s.name not in ruled]
        if all(n in own for n in extra):  # only its values: printed in place
            shown = tuple(printed[n].code if n in extra else n for n in own)
            out.append(dataclasses.replace(check, values=shown))
        else:
            out.append(dataclasses.replace(
                check, values=own, function=f"_kv{i}",
                statements=tuple(printed[n] for n in extra)))
    return released(printer, model.RuleBody(
        source, tuple(printed[s.name] for s in program.statements if s.name in ruled),
        tuple(results), tuple(printed_check(printer, c) for c in out), pivots))


_NAME = re.compile(r"[A-Za-z_]\w*")


def released(printer, body: model.RuleBody) -> model.RuleBody:
    """``body`` with each statement naming the temporaries it reads last, set to None after
    it, for a backend whose arrays a name keeps alive (``printer.RELEASES_NAMES``): an m x n
    temporary is freed when the rule no longer needs it, not when the rule returns (geqrf's
    VJP holds V, Q and their cotangents at once otherwise).  None, not ``del``: a name that a
    check's closure reads anywhere in the function is a cell, and ``del`` of a cell
    (DELETE_DEREF) is what torch.compile does not trace.  What the results and the checks
    read stays; names are read off the printed code (a name in it is taken to be read,
    which keeps a value longer, never shorter)."""
    if not printer.RELEASES_NAMES or len(body.assignments) < 2:
        return body
    kept = set(body.results)
    for c in body.checks:
        kept |= {n for text in (*c.values, c.vector, *(a.code for a in c.statements))
                 for n in _NAME.findall(text)}
    defined = {a.target for a in body.assignments}
    last_read = {}
    for i, a in enumerate(body.assignments):
        for name in set(_NAME.findall(a.code)) & defined:
            last_read[name] = i
    final = len(body.assignments) - 1  # what the last statement reads, the return frees
    assignments = tuple(
        dataclasses.replace(a, released=tuple(sorted(
            n for n, at in last_read.items() if at == i and n not in kept)))
        if i < final else a for i, a in enumerate(body.assignments))
    return dataclasses.replace(body, assignments=assignments)
