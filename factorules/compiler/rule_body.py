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

from . import ops, row_blocks
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
              folded=lambda e: e, laid_out_like=None, large_rows=None) -> model.RuleBody:
    """The rule's code (``rule``: a checked case's jvp or vjp, ``source``: the comment that
    heads it) with ``checks`` (of ties, zeros and the gauge) computed from its program;
    ``folded``: the rewriting of products every statement gets before printing;
    ``laid_out_like``: result name -> the input (output) it is the cotangent (tangent) of;
    ``large_rows``: (the large dimension's symbols, the top's rows) where a backend that
    blocks rows (``printer.BLOCKS_ROWS``) also prints the rule a block of rows at a time,
    taken where the rows below the top are many (``_row_blocked``)."""
    args = (printer, rule, source, checks, pivots, folded, laid_out_like or {})
    plain, _ = _rule_body(*args)
    if not printer.BLOCKS_ROWS or large_rows is None:
        return plain
    blocked, split = _rule_body(*args, large_rows)
    if split is None:
        return plain
    return dataclasses.replace(plain, blocked=blocked, blocked_when=blocked_when(printer, split))


def blocked_when(printer, split) -> str:
    """The run-time condition under which the rows of ``split`` go by blocks."""
    return f"_row_blocked({printer._dim(split.below)}, {printer._dim(split.start)})"


def _rule_body(printer, rule, source, checks, pivots, folded, like, large_rows=None):
    """(rule_body's body, in row blocks at large_rows if given; the split, None if none)."""
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
    values = [folded(e) if isinstance(e, sp.Basic) else e for c in checks for e in c.values]
    blocked = None
    if large_rows is not None:
        blocked = _split(printer, statements, rule.program.results, values, *large_rows)
        if blocked is None:
            return None, None
        statements = list(blocked.statements)

    def in_order(program_statements):
        if blocked is None:
            return tuple(assigned(s) for s in program_statements)
        return blocked_assignments(printer, program_statements, blocked, assigned)

    program = build_program(rule.program.params, statements,
                            blocked.results if blocked else rule.program.results,
                            sizes=printer.sizes)
    results = rule.program.results
    if not values:  # checks of the primal values alone (a 'tied' check), if any
        return released(printer, model.RuleBody(
            source, in_order(program.statements), tuple(results),
            tuple(printed_check(printer, c) for c in checks), pivots)), blocked
    # a check's text names what the rule computes by its expression (svd's Vh.H where the
    # rule has V = Vh.H): the statement's name in its place, so that the two are one value
    named_as = {s.expr: sp.MatrixSymbol(s.name, *s.expr.shape) for s in statements
                if isinstance(s.expr, sp.MatrixExpr)}
    values = [v.xreplace(named_as) if isinstance(v, sp.Basic) else v for v in values]
    names = [f"_k{i}" for i in range(len(values))]
    kept = program.results
    program = build_program(program.params, [*statements, *map(Statement, names, values)],
                            (*kept, *names), shared_by={s.name for s in statements},
                            sizes=printer.sizes)
    ruled = {s.name for s in live(program.statements, kept)}
    body = in_order([s for s in program.statements if s.name in ruled])
    printed = {s.name: assigned(s) for s in program.statements if s.name not in ruled}
    printed.update((a.target, a) for a in body if not isinstance(a, model.RowLoop))
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
        source, body, tuple(results), tuple(printed_check(printer, c) for c in out),
        pivots)), blocked


def _split(printer, statements, results, check_values, tall, top):
    """The rule's statements split at the top's rows (``row_blocks.split``), or None where
    they do not split or a check reads an m-row value (it reads names the split replaces)."""
    names = {s.name for s in statements if any(ops.dims_equal(s.expr.rows, t) for t in tall)}
    if any(x.name in names for v in check_values if isinstance(v, sp.Basic)
           for x in v.atoms(sp.MatrixSymbol)):
        return None
    return split_rows(printer, statements, results, tall, top)


def split_rows(printer, statements, results, tall, top):
    """``row_blocks.split`` at ``top``; the printer then orders products of a block's rows
    as of the large dimension's (its representative size)."""
    found = row_blocks.split(statements, results, set(tall), [top])
    if found is not None and printer.sizes:
        size = next((printer.sizes[t] for t in tall if t in printer.sizes), None)
        if size is not None:
            printer.sizes = {**printer.sizes, row_blocks.ROWS: size}
    return found


def blocked_assignments(printer, statements, blocked, assigned) -> tuple:
    """A split program's assignments in the phases of ``row_blocks.plan``: each phase's
    small statements, then its loop over the row blocks (a ``model.RowLoop``), then the
    tall results joined from their top and rows."""
    for top_name, rows_name, x in blocked.params:
        if x.name in printer.fields:
            printer.fields[top_name] = printer.fields[rows_name] = printer.fields[x.name]
    start, body = printer._dim(blocked.start), []
    read = " ".join(s.expr.__str__() for s in statements)
    body.extend(model.Assignment(top, printer.rows_of(x.name, "0", start, start))
                for top, _, x in blocked.params if re.search(rf"\b{top}\b", read))
    total_of = {name: printer._dim(total) for name, _, _, total in blocked.joined}
    for phase in row_blocks.plan(statements, [j[1] for j in blocked.joined if j[1]]):
        body.extend(assigned(s) for s in phase.before)
        if not phase.sums and not phase.outputs:
            continue
        inner = [assigned(s) for s in phase.loop]
        by_name = {s.name: s for s in statements}
        sums = [model.Assignment(n, printer.assign(n, by_name[n].expr)) for n in phase.sums]
        read = " ".join(a.code for a in (*inner, *sums))
        inputs = [model.Assignment(n, printer.rows_of(x.name, f"{start} + _i0",
                                                      f"{start} + _i1", "_i1 - _i0"))
                  for _, n, x in blocked.params if re.search(rf"\b{n}\b", read)]
        if re.search(rf"\b{row_blocks.ROWS}\b", read):
            inputs.append(model.Assignment(str(row_blocks.ROWS), "_i1 - _i0"))
        outputs = tuple(model.Assignment(name, f"_put_rows({name}, {rows}, {start} + _i0, "
                                               f"{total_of[name]})")
                        for name, rows, _, _ in blocked.joined if rows in phase.outputs)
        body.append(model.RowLoop(start, printer._dim(blocked.below), tuple(inputs),
                                  tuple(inner), tuple(sums), outputs))
    for name, rows, top, total in blocked.joined:
        if rows is None:
            pad = sp.ZeroMatrix(total - blocked.start, top.cols)
            body.append(model.Assignment(name, printer.assign(name, ops.VStack(top, pad))))
        else:
            top_code = "0" if isinstance(top, sp.ZeroMatrix) else printer._print(top)
            body.append(model.Assignment(name, f"_joined_rows({name}, {top_code}, {start})"))
    return tuple(body)


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
    defined = {t for a in body.assignments for t in a.targets}
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
