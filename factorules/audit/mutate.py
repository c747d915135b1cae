"""Mutation testing of the audit: small wrong edits to a spec's rules must all be caught.

A mutant is one edit at one place of one JVP or VJP text, from the catalogue ``KINDS``:
flip a sign, drop a term, swap .H and .T, drop a .conj, swap tril and triu, shift a diagonal
offset by one, swap the operands of a product, replace copyltu with tril.  The edit is made
on the text's syntax tree (``ast``; nothing is evaluated) and the text is rewritten with
``ast.unparse``.  A text shared by several cases (a YAML anchor) is mutated everywhere it is
used, as an edit of the file would be.  The mutated spec then goes through the static checks
and the audit's checks on every configuration that uses the text; the mutant is caught
(killed) when any of them fails.
"""
from __future__ import annotations

import ast
import copy
from dataclasses import dataclass, replace

import sympy as sp

from . import audit
from ..compiler import derive
from ..compiler.check import check_spec
from ..compiler.spec import Spec, SpecError, Text

KINDS = ("flip-sign", "drop-term", "H<->T", "drop-conj", "tril<->triu", "shift-offset",
         "swap-product", "copyltu->tril")


@dataclass(frozen=True)
class Mutant:
    kind: str
    rule: str          # 'jvp' or 'vjp'
    line: int          # file line of the mutated statement
    before: str        # that statement before ...
    after: str         # ... and after the edit
    original: Text
    text: str          # the whole mutated rule text

    def describe(self) -> str:
        return f"{self.kind} at line {self.line}: {self.before}  ->  {self.after}"


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    caught_by: tuple[str, ...]   # checks that failed; ('static',) for a spec error
    detail: str                  # the first failure

    @property
    def killed(self) -> bool:
        return bool(self.caught_by)


def _edits(node: ast.AST, stmt_value: bool, real: frozenset = frozenset()):
    """(kind, function that edits a copy of the node in place or returns a replacement).
    ``real`` names matrices that are real for every input (permutations): H<->T and
    drop-conj of them would be equivalent mutants, which no check can catch."""
    if stmt_value:
        yield "flip-sign", lambda n: ast.UnaryOp(ast.USub(), n)
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, (ast.Add, ast.Sub)):
            flipped = ast.Sub if isinstance(node.op, ast.Add) else ast.Add
            yield "flip-sign", lambda n, f=flipped: ast.BinOp(n.left, f(), n.right)
            yield "drop-term", lambda n: n.left
            if isinstance(node.op, ast.Add):
                yield "drop-term", lambda n: n.right
            else:
                yield "drop-term", lambda n: ast.UnaryOp(ast.USub(), n.right)
        if isinstance(node.op, ast.MatMult):
            yield "swap-product", lambda n: ast.BinOp(n.right, ast.MatMult(), n.left)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        yield "flip-sign", lambda n: n.operand
    if isinstance(node, ast.Attribute) and not (isinstance(node.value, ast.Name)
                                                and node.value.id in real):
        if node.attr in ("H", "T"):
            other = "T" if node.attr == "H" else "H"
            yield "H<->T", lambda n, o=other: ast.Attribute(n.value, o, ast.Load())
        if node.attr == "conj":
            yield "drop-conj", lambda n: n.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        name = node.func.id
        if name in ("tril", "triu"):
            other = "triu" if name == "tril" else "tril"
            yield "tril<->triu", lambda n, o=other: ast.Call(ast.Name(o, ast.Load()), n.args,
                                                             n.keywords)
            for delta in (1, -1):
                yield "shift-offset", lambda n, d=delta: _shift(n, d)
        if name == "copyltu":
            yield "copyltu->tril", lambda n: ast.Call(ast.Name("tril", ast.Load()), n.args,
                                                      n.keywords)


def _shift(call: ast.Call, delta: int) -> ast.AST:
    args = list(call.args)
    offset = ast.Constant(0) if len(args) < 2 else args[1]
    args[1:2] = [ast.BinOp(offset, ast.Add(), ast.Constant(delta)) if not (
        isinstance(offset, ast.Constant) or (isinstance(offset, ast.UnaryOp)
                                             and isinstance(offset.operand, ast.Constant)))
        else ast.Constant(ast.literal_eval(offset) + delta)]
    return ast.Call(call.func, args, call.keywords)


def _sites(tree: ast.Module):
    """(statement index, node index within the statement's value, is the value itself)."""
    for si, stmt in enumerate(tree.body):
        for ni, node in enumerate(ast.walk(stmt.value)):
            yield si, ni, node, node is stmt.value


def _replace_node(stmt: ast.Assign, index: int, edit) -> None:
    nodes = list(ast.walk(stmt.value))
    target = nodes[index]
    new = edit(copy.deepcopy(target))
    if target is stmt.value:
        stmt.value = new
        return
    for parent in nodes:
        for name, value in ast.iter_fields(parent):
            if value is target:
                setattr(parent, name, new)
                return
            if isinstance(value, list) and any(v is target for v in value):
                setattr(parent, name, [new if v is target else v for v in value])
                return


def mutants_of(text: Text, rule: str, real: frozenset = frozenset()) -> list[Mutant]:
    tree = ast.parse(text.text)
    lines = text.text.splitlines()
    out = []
    for si, ni, node, is_value in _sites(tree):
        for kind, edit in _edits(node, is_value, real):
            mutated = copy.deepcopy(tree)
            _replace_node(mutated.body[si], ni, edit)
            stmt = tree.body[si]
            before = " ".join(lines[stmt.lineno - 1:stmt.end_lineno]).split("#")[0].strip()
            after = ast.unparse(mutated.body[si])
            if after == ast.unparse(stmt):
                continue
            out.append(Mutant(kind, rule, text.line + stmt.lineno - 1, before, after, text,
                              ast.unparse(mutated) + "\n"))
    return out


def _rule_texts(spec: Spec) -> list[tuple[str, Text]]:
    seen, out = set(), []
    for v in spec.variants:
        for c in v.cases:
            for rule, text in (("jvp", c.jvp), ("vjp", c.vjp)):
                if text is not None and text not in seen:
                    seen.add(text)
                    out.append((rule, text))
    return out


def all_mutants(spec: Spec) -> list[Mutant]:
    real = frozenset(t.name for v in spec.variants for t in v.outputs
                     if t.structure == "permutation")
    return [m for rule, text in _rule_texts(spec) for m in mutants_of(text, rule, real)]


def apply(spec: Spec, m: Mutant) -> Spec:
    new = Text(m.text, m.original.line)
    variants = []
    for v in spec.variants:
        cases = []
        for c in v.cases:
            if m.rule == "jvp" and c.jvp == m.original:
                c = replace(c, jvp=new)
            elif m.rule == "vjp" and c.vjp == m.original:
                c = replace(c, vjp=new)
            cases.append(c)
        variants.append(replace(v, cases=tuple(cases)))
    return replace(spec, variants=tuple(variants))


# -- mutants of the VJPs given some cotangents (check_rules' partial VJPs) ---------------------
@dataclass(frozen=True)
class PartialMutant:
    """One edit of one statement of a case's VJP specialised to some cotangents: the
    specialisation is the compiler's, not the spec's, so its mutants are made on the
    checked rule (a sign flipped, a term dropped), and the audit's 'specialisation' check
    must catch each."""

    kind: str
    rule: str          # 'vjp without gU, gVh'
    line: int          # the case's line
    before: str        # the statement before ...
    after: str         # ... and after the edit
    variant: str       # the variant's label
    case: str          # the case's condition
    absent: tuple      # the partial VJP's absent cotangents
    index: int         # the statement's position in the partial VJP
    expr: object       # the edited statement's expression

    @property
    def original(self) -> tuple:
        """The statement edited (a covering sample takes each at least once)."""
        return (self.variant, self.case, self.absent, self.index)

    def describe(self) -> str:
        return f"{self.kind} at line {self.line}: {self.before}  ->  {self.after}"


def _empty_product(term) -> bool:
    """Whether ``term`` multiplies through a matrix with no rows or columns (it is zero)."""
    return any(isinstance(x, sp.MatrixExpr) and any(d == 0 for d in x.shape)
               for x in sp.preorder_traversal(term))


def partial_mutants(checked) -> list[PartialMutant]:
    """A sign flip of each statement of each partial VJP that reads its cotangents, and each
    term of such a statement that is a sum dropped."""
    out = []
    for cv in checked.variants:
        for case in cv.cases:
            for partial in case.partial_vjps:
                linear = {"g" + t.name for t in cv.differentiable_outputs}
                rule = "vjp without " + ", ".join(partial.absent)
                for i, st in enumerate(partial.vjp.statements):
                    if not derive.depends(st.expr, linear):
                        continue
                    linear.add(st.name)
                    edits = [("flip-sign", sp.MatMul(-1, st.expr))]
                    if isinstance(st.expr, sp.MatAdd):
                        # a term of a product through an empty block (geqrf's A[:, m:] of a
                        # square A) is zero: dropping it is no mutant
                        edits += [("drop-term", derive.add(
                            [t for j, t in enumerate(st.expr.args) if j != k], st.expr.shape))
                            for k, term in enumerate(st.expr.args) if not _empty_product(term)]
                    for kind, expr in edits:
                        out.append(PartialMutant(
                            kind, rule, case.line, f"{st.name} = {st.expr}",
                            f"{st.name} = {expr}", cv.variant.label, case.condition.text,
                            partial.absent, i, expr))
    return out


def _judge_partial(checked, m: PartialMutant, setups) -> Outcome:
    for s in setups:
        if (s.variant.variant.label, s.case.condition.text) != (m.variant, m.case):
            continue
        partials = []
        for p in s.case.partial_vjps:
            if p.absent == m.absent:
                statements = list(p.vjp.statements)
                statements[m.index] = derive.Step(statements[m.index].name, m.expr)
                p = replace(p, vjp=replace(p.vjp, statements=tuple(statements)))
            partials.append(p)
        case = replace(s.case, partial_vjps=tuple(partials))
        failed = []

        def add(check, equation, residual, note=""):
            if residual is None or residual > audit.TOLERANCE[check]:
                failed.append((equation, residual, note))

        audit.check_partial_vjps(s, case, dict(s.primal, **s.cotangents), add)
        if failed:
            eq, res, note = failed[0]
            shown = "n/a" if res is None else f"{res:.1e}"
            return Outcome(m, ("specialisation",), f"{s.shape} {s.field} {eq}: {shown} "
                                                   f"{note}".strip())
    return Outcome(m, (), "")


def run(spec: Spec, progress=None, select=None) -> list[Outcome]:
    """Every mutant of the spec, and which checks caught it; ``select``: a function that picks
    the mutants to judge from the list of them all (the tests' covering sample)."""
    checked = check_spec(spec)
    setups, failures = audit.prepare_all(checked)
    if failures or any(not r.passed for s in setups for r in audit.run_checks(s)):
        raise audit.AuditError(f"{spec.name}: the audit fails on the spec itself; fix that "
                               f"before mutation testing")
    outcomes = []
    # a case whose outputs are all empty (geqrf of a matrix with no rows) has nothing a
    # mutant could change: its rules are left out rather than counted as survivors
    live = {text for s in setups
            if not all(0 in s.primal[t.name].shape for t in s.variant.differentiable_outputs)
            for text in (s.case.case.jvp, s.case.case.vjp)}
    mutants = [m for m in all_mutants(spec) if m.original in live]
    if select is not None:
        mutants = select(mutants)
    live_cases = {(s.variant.variant.label, s.case.condition.text) for s in setups
                  if not all(0 in s.primal[t.name].shape
                             for t in s.variant.differentiable_outputs)}
    partial = [m for m in partial_mutants(checked) if (m.variant, m.case) in live_cases]
    if select is not None:
        partial = select(partial)
    for i, m in enumerate(mutants + partial):
        if progress:
            progress(i, len(mutants) + len(partial))
        outcomes.append(_judge(spec, m, setups) if isinstance(m, Mutant)
                        else _judge_partial(checked, m, setups))
    return outcomes


def _judge(spec: Spec, m: Mutant, setups) -> Outcome:
    try:
        mutated = check_spec(apply(spec, m))
    except SpecError as err:
        return Outcome(m, ("static",), err.message)
    caught, detail = [], ""
    for s in setups:
        vi = next(i for i, cv in enumerate(mutated.variants)
                  if cv.variant.when == s.variant.variant.when)
        ci = next(i for i, c in enumerate(s.variant.cases) if c is s.case)
        case = mutated.variants[vi].cases[ci]
        source = case.case.jvp if m.rule == "jvp" else case.case.vjp
        if source is None or source.text != m.text:
            continue
        for r in audit.run_checks(s, case):
            if not r.passed:
                if r.check not in caught:
                    caught.append(r.check)
                if not detail:
                    shown = "n/a" if r.residual is None else f"{r.residual:.1e}"
                    detail = f"{r.where}: {shown} {r.note}".strip()
        if caught:  # the checks of the first configuration that catches it
            break
    order = {c: i for i, c in enumerate(audit.CHECKS)}
    return Outcome(m, tuple(sorted(caught, key=order.get)), detail)


def main(args) -> int:
    import json
    import sys
    import time
    from pathlib import Path

    from ..compiler import pipeline
    from ..compiler.spec_loader import load_spec

    paths = {p.stem: p for p in pipeline.spec_paths(Path(args.spec_dir))}
    if args.mutate not in paths:
        print(f"unknown spec: {args.mutate} (known: {', '.join(sorted(paths))})",
              file=sys.stderr)
        return 2
    spec = load_spec(paths[args.mutate], display_path=f"spec/{paths[args.mutate].name}")
    start = time.perf_counter()
    tty = sys.stderr.isatty()

    def progress(i, n):
        if tty:
            print(f"\rmutant {i + 1}/{n}", end="", file=sys.stderr, flush=True)

    outcomes = run(spec, progress)
    if tty:
        print(file=sys.stderr)
    elapsed = time.perf_counter() - start
    killed = [o for o in outcomes if o.killed]
    if args.json:
        print(json.dumps([{"kind": o.mutant.kind, "rule": o.mutant.rule, "line": o.mutant.line,
                           "before": o.mutant.before, "after": o.mutant.after,
                           "caught_by": list(o.caught_by), "detail": o.detail}
                          for o in outcomes], indent=1))
    else:
        for o in outcomes:
            status = "caught by " + ", ".join(o.caught_by) if o.killed else "SURVIVED"
            print(f"{o.mutant.rule} {o.mutant.describe()}\n    {status}")
        print()
        by_kind: dict[str, list] = {}
        for o in outcomes:
            by_kind.setdefault(o.mutant.kind, []).append(o)
        for kind in KINDS:
            group = by_kind.get(kind, [])
            if group:
                print(f"{kind:<14} {sum(o.killed for o in group):>4}/{len(group):<4} caught")
        rate = 100.0 * len(killed) / len(outcomes) if outcomes else 100.0
        print(f"\n{spec.name}: {len(killed)}/{len(outcomes)} mutants caught ({rate:.1f}%) "
              f"in {elapsed:.1f} s")
    survivors = [o for o in outcomes if not o.killed]
    for o in survivors:
        print(f"SURVIVED {spec.path}:{o.mutant.line}: {o.mutant.describe()}", file=sys.stderr)
    return 1 if survivors else 0
