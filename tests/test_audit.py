"""The audit: derivations checked in high precision, and the rules it is built from.

* every spec passes every check at every shape class and field;
* a wrong rule fails with one line naming spec, variant, case, shape, equation and check;
* each linearization rule agrees with finite differences and each transpose rule passes the
  dot-product test, primitive by primitive;
* the mutation catalogue: every mutant of every spec is caught (a covering sample of them by
  default: every kind of edit and every statement; --full: all of them).
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from sympy import MatrixSymbol

from factorules.audit import audit, mutate, sample
from factorules.compiler import derive
from factorules.audit import numeric as num
from factorules.compiler.check import check_spec
from factorules.compiler.expr import Parser
from factorules.compiler.spec import Text
from factorules.compiler.spec_loader import load_spec

import ladder
from written_rules import qr_with_written_jvps

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "spec").glob("*.yaml"))


def run_cli(*args, spec_dir=None):
    extra = ["--spec-dir", str(spec_dir)] if spec_dir else []
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *extra, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


# -- the audit on the real specs ---------------------------------------------------------------
@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_every_check_passes_on_every_variant_shape_and_field(path):
    checked = check_spec(load_spec(path))
    results = audit.audit_spec(checked)
    failed = [f"{r.where}: {r.residual} {r.note}" for r in results if not r.passed]
    assert not failed, "\n".join(failed)
    for cv in checked.variants:
        mine = [r for r in results if r.variant == cv.variant.label]
        configs = {(r.shape, r.field) for r in mine}
        # every shape class this variant takes (ormqr's sides take different ones)
        allowed = [s for s, prims in audit.shape_classes(checked)
                   if sample.allowed(cv, sample.primitive_dims(checked, prims))]
        assert allowed and len(configs) == len(allowed) * len(audit.FIELDS)
        for shape, field in configs:
            checks = {r.check for r in mine if (r.shape, r.field) == (shape, field)}
            assert checks == set(audit.CHECKS), (cv.variant.label, shape, field, checks)
        # residuals are measured, not skipped: every check has numbers
        hidden = {"d" + t.name for t in cv.variant.outputs if t.returned == "hidden"}
        for check in audit.CHECKS:
            if check == "transposition" and all(c.vjp.derived for c in cv.cases):
                continue
            if check == "specialisation" and not any(c.partial_vjps for c in cv.cases):
                continue  # no cotangent's terms are worth leaving out (one output, or cheap)
            rows = [r for r in mine if r.check == check]
            if check == "linearization" and all(
                    r.note.startswith("not checked: the JVP does not compute")
                    and set(r.note.split("compute ", 1)[1].split(", ")) <= hidden
                    for r in rows):
                # every equation involves an output the rules do not differentiate (eigvals'
                # eigenvectors): fd and adjointness check the JVP there
                assert rows and any(r.residual is not None for r in mine if r.check == "fd")
                continue
            assert any(r.residual is not None for r in rows), check


def test_qr_residuals_are_at_working_precision():
    results = audit.audit_spec(check_spec(load_spec(ROOT / "spec" / "qr.yaml")))
    worst = {c: max(r.residual for r in results if r.check == c and r.residual is not None)
             for c in audit.CHECKS}
    for check in ("sample", "linearization", "transposition", "adjointness"):
        assert worst[check] < 1e-45, (check, worst[check])
    assert worst["fd"] < 1e-25
    # every defining and structure equation of complete mode is checked, the Householder
    # completion of a tall matrix included
    linearized = {r.equation for r in results if r.check == "linearization"
                  and r.variant == "mode=complete" and r.case == "m > n"}
    assert {"A = Q @ R", "Q.H @ Q = I", "Q @ Q.H = I", "tril(R, -1) = 0",
            "im(diagonal(R)) = 0"} <= linearized
    assert any(e.startswith("Q[:, n:] = ") for e in linearized)


def test_cli_audit_prints_a_table_and_exits_zero():
    # two specs (every spec's checks: test_every_check_passes_on_every_variant_shape_and_field)
    result = run_cli("audit", "qr", "cholesky")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["spec", "variant", "check", "configs", "worst", "residual",
                                "tolerance", "result"]
    rows = [line.split() for line in lines[1:] if line.startswith("qr ")]
    assert {(r[1], r[2]) for r in rows} == {(v, c) for v in ("mode=reduced", "mode=complete",
                                                             "mode=r") for c in audit.CHECKS}
    assert all(r[-1] == "pass" for r in rows)
    assert ", 0 failed (" in lines[-1]
    data = json.loads(run_cli("audit", "qr", "--json").stdout)
    assert data and all(r["passed"] for r in data)


def test_cli_audit_rejects_an_unknown_spec_name():
    result = run_cli("audit", "nosuchspec")
    assert result.returncode == 2
    assert result.stderr.startswith("unknown spec(s): nosuchspec")


def _qr_with(tmp_path, old, new):
    """spec/qr.yaml with its hand-written JVPs (the second opinions of its derived ones) as
    its JVPs, and the first ``old`` (in the tall rules, which come first) edited."""
    text = qr_with_written_jvps((ROOT / "spec" / "qr.yaml").read_text())
    assert old in text, old
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    (spec_dir / "qr.yaml").write_text(text.replace(old, new, 1))
    return spec_dir


def test_a_wrong_jvp_fails_naming_spec_variant_case_equation_and_check(tmp_path):
    spec_dir = _qr_with(tmp_path, "          dQ = C - Q @ U\n", "          dQ = C + Q @ U\n")
    result = run_cli("audit", spec_dir=spec_dir)
    assert result.returncode == 1
    failures = result.stderr.splitlines()
    assert ("FAIL qr mode=reduced when m >= n (tall 5x3, real): linearization "
            "'A = Q @ R': residual") in "\n".join(failures)
    assert any(f.startswith("FAIL qr mode=reduced when m >= n (square 4x4, complex): fd 'dQ'")
               for f in failures)
    assert all(f.startswith("FAIL qr ") for f in failures)
    assert "FAIL (" in result.stdout


def test_a_wrong_vjp_fails_adjointness_and_transposition(tmp_path):
    spec_dir = _qr_with(tmp_path, "M = R @ gR.H - gQ.H @ Q\n", "M = R @ gR.H + gQ.H @ Q\n")
    result = run_cli("audit", "--json", spec_dir=spec_dir)
    assert result.returncode == 1
    failed = {(r["variant"], r["check"]) for r in json.loads(result.stdout) if not r["passed"]}
    assert failed == {("mode=reduced", "adjointness"), ("mode=reduced", "transposition"),
                      ("mode=complete", "adjointness"), ("mode=complete", "transposition")}


def test_a_free_gauge_is_reported_by_fd(tmp_path):
    """Without the Householder completion, A = QR and Q unitary leave Q's last m - n columns
    free: fd says it cannot be measured, and the sample (a random completion, not LAPACK's)
    no longer fits the JVP, which differentiates the Householder one."""
    text = (ROOT / "spec" / "qr.yaml").read_text()
    start = text.index("        defining:\n          # LAPACK's Householder Q")
    end = text.index("        jvp: |\n          # Thin part as in WLL2012")
    (tmp_path / "qr.yaml").write_text(text[:start] + text[end:])
    results = audit.audit_spec(check_spec(load_spec(tmp_path / "qr.yaml")))
    failed = [r for r in results if not r.passed]
    assert {(r.variant, r.case, r.check) for r in failed} == {
        ("mode=complete", "m > n", "fd"), ("mode=complete", "m > n", "linearization")}
    assert all("do not determine the outputs" in r.note and "gauge freedom" in r.note
               for r in failed if r.check == "fd")
    assert {r.equation for r in failed if r.check == "linearization"} == {"Q.H @ Q = I",
                                                                         "Q @ Q.H = I"}


def test_a_spec_that_gives_no_input_cannot_be_sampled(tmp_path):
    spec_dir = _qr_with(tmp_path, 'defining: ["A = Q @ R", "Q.H @ Q = I"]',
                        'defining: ["Q.H @ A = R", "Q.H @ Q = I"]')
    results = audit.audit_spec(check_spec(load_spec(spec_dir / "qr.yaml")))
    failed = {(r.variant, r.check, r.note) for r in results if not r.passed}
    assert failed == {("mode=reduced", "sample", "no defining equation gives the input(s) A as "
                                                 "'INPUT = expression of the outputs' (nor "
                                                 "every output as 'OUTPUT = expression of the "
                                                 "inputs')")}


# -- the primitives ---------------------------------------------------------------------------
N = 4
DIMS = {"n": N}
n = sp.Symbol("n", integer=True, nonnegative=True)
T = MatrixSymbol("T", n, n)
P = MatrixSymbol("P", n, n)
S = MatrixSymbol("S", n, n)
V = MatrixSymbol("V", n, 1)


def parse(text, names):
    return Parser(names, {"n": n}).program(f"Y = {text}")[0].expr


def _random(rng, shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


# linear in T, with constants P (general) and S (made well-conditioned below)
LINEAR = [
    "P @ T @ S", "-2 * T / 3", "T.H", "T.T", "T.conj", "tril(T, -1)", "triu(T, 1)", "tril(T)",
    "copyltu(T)", "sym(T)", "skew(T)", "re(T)", "im(T)", "hadamard(P, T)",
    "diag(diagonal(T))", "diagonal(T).H @ P",
    "solve_triangular(S, T, upper=True)", "solve_triangular(S, T, upper=False, left=False)",
    "solve_triangular(S.H, T, upper=False, unit=True)", "solve(S, T)", "solve(S, T, left=False)",
    "T[1:, :2] @ P[:2, :]", "hstack(T[:, :1], T[:, 1:] @ S[1:, 1:])",
    "vstack(T[:1, :], P[1:, :] @ T)", "hstack(T[:, :1], zeros(n, n - 1))",
    "triu(T.H @ P, 1) + diag(re(diagonal(P @ T)))",
]


def _values(rng, field="complex"):
    values = {"P": _random(rng, (N, N)), "S": np.triu(_random(rng, (N, N))) + 3 * np.eye(N),
              "V": _random(rng, (N, 1))}
    return values


@pytest.mark.parametrize("text", LINEAR)
def test_transpose_rule_passes_the_dot_product_test(text):
    names = {"T": T, "P": P, "S": S, "V": V}
    y = parse(text, names)
    G = MatrixSymbol("G", *y.shape)
    steps = derive.transpose_program([("Y", y)], {"T": T}, {"Y": G}, {"T": "gT"})
    rng = np.random.default_rng(len(text))
    ev = num.Evaluator(DIMS, num.Field("float"))
    env = _values(rng)
    env["T"] = _random(rng, (N, N))
    env["G"] = _random(rng, ev.shape(y))
    forward = ev(y, env)
    values = dict(env)
    for s in steps:
        values[s.name] = ev(s.expr, values)
    lhs, rhs = num.inner(env["G"], forward), num.inner(values["gT"], env["T"])
    assert abs(lhs - rhs) <= 1e-12 * max(abs(lhs), 1.0), (lhs, rhs)


@pytest.mark.parametrize("text", ["T @ T", "T + P", "solve(T, P)", "T.H @ solve(T, P)"])
def test_transposing_a_nonlinear_rule_is_an_error(text):
    y = parse(text, {"T": T, "P": P})
    G = MatrixSymbol("G", *y.shape)
    with pytest.raises(derive.DeriveError):
        derive.transpose_program([("Y", y)], {"T": T}, {"Y": G}, {"T": "gT"})


NONLINEAR = [
    "X @ X.H", "X.T @ P @ X", "hadamard(X, X.conj)", "solve_triangular(X, P, upper=True)",
    "solve_triangular(P + X, X, upper=False, left=False, unit=True)", "solve(X, P @ X)",
    "solve(X + 3 * eye(n), P, left=False)", "copyltu(X @ X)", "sym(X @ P) + skew(X)",
    "re(X) @ im(X)", "diag(diagonal(X @ X))", "hstack(X[:, :2] @ X[:2, :2], X[:, 2:])",
    "vstack(X[:1, :] @ X, zeros(n - 1, n))", "tril(X, 1) @ triu(X.conj, -1)",
]


@pytest.mark.parametrize("text", NONLINEAR)
def test_linearization_rule_agrees_with_finite_differences(text):
    X = MatrixSymbol("X", n, n)
    y = parse(text, {"X": X, "P": P})
    dy = derive.linearize(y, {"X": MatrixSymbol("dX", n, n)})
    rng = np.random.default_rng(len(text))
    ev = num.Evaluator(DIMS, num.Field("float"))
    x = _random(rng, (N, N)) + 3 * np.eye(N)
    dx = _random(rng, (N, N))
    env = {"P": _random(rng, (N, N))}
    h = 1e-6
    fd = (ev(y, dict(env, X=x + h * dx)) - ev(y, dict(env, X=x - h * dx))) / (2 * h)
    exact = ev(dy, dict(env, X=x, dX=dx))
    assert np.linalg.norm(fd - exact) <= 1e-7 * max(np.linalg.norm(exact), 1.0)


def test_structure_equations_name_each_constraint():
    X = MatrixSymbol("R", n, n)
    texts = [r.text for r in derive.structure_equations(X, "upper_triangular", "real")]
    assert texts == ["tril(R, -1) = 0", "im(diagonal(R)) = 0"]
    texts = [r.text for r in derive.structure_equations(X, "unitary", "any")]
    assert texts == ["R.H @ R = I", "R @ R.H = I"]
    texts = [r.text for r in derive.structure_equations(X, "lower_triangular", "unit")]
    assert texts == ["triu(R, 1) = 0", "diagonal(R) = 1"]


# -- a spec without a VJP -------------------------------------------------------------------
def test_a_case_without_vjp_gets_the_transposed_jvp_and_passes_the_audit(tmp_path):
    text = (ROOT / "spec" / "qr.yaml").read_text()
    start = text.index("        vjp: |\n          # Transpose of the completion")
    end = text.index('      - when: "m == n"')
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    (spec_dir / "qr.yaml").write_text(text[:start] + text[end:])
    checked = check_spec(load_spec(spec_dir / "qr.yaml"))
    case = checked.variants[1].cases[0]
    assert case.vjp.derived and case.case.vjp is None
    assert [s.name for s in case.vjp.statements][-1] == "gA"
    results = [r for r in audit.audit_spec(checked) if r.variant == "mode=complete"]
    assert all(r.passed for r in results), [r.where for r in results if not r.passed]
    assert [r.note for r in results if r.check == "transposition" and r.case == "m > n"] == \
        ["the spec gives no VJP: the derived one is used"] * 2


# -- mutation testing ---------------------------------------------------------------------------
def test_the_catalogue_makes_each_kind_of_edit():
    text = Text("X = tril(A.H @ B, -1) - copyltu(C).conj + triu(D.T)\n", 10)
    made = {(m.kind, m.after) for m in mutate.mutants_of(text, "jvp")}
    assert ("flip-sign", "X = -(tril(A.H @ B, -1) - copyltu(C).conj + triu(D.T))") in made
    assert ("flip-sign", "X = tril(A.H @ B, -1) + copyltu(C).conj + triu(D.T)") in made
    assert ("drop-term", "X = tril(A.H @ B, -1) - copyltu(C).conj") in made
    assert ("drop-term", "X = tril(A.H @ B, -1) + triu(D.T)") in made
    assert ("H<->T", "X = tril(A.T @ B, -1) - copyltu(C).conj + triu(D.T)") in made
    assert ("H<->T", "X = tril(A.H @ B, -1) - copyltu(C).conj + triu(D.H)") in made
    assert ("drop-conj", "X = tril(A.H @ B, -1) - copyltu(C) + triu(D.T)") in made
    assert ("tril<->triu", "X = triu(A.H @ B, -1) - copyltu(C).conj + triu(D.T)") in made
    assert ("shift-offset", "X = tril(A.H @ B, 0) - copyltu(C).conj + triu(D.T)") in made
    assert ("shift-offset", "X = tril(A.H @ B, -1) - copyltu(C).conj + triu(D.T, -1)") in made
    assert ("swap-product", "X = tril(B @ A.H, -1) - copyltu(C).conj + triu(D.T)") in made
    assert ("copyltu->tril", "X = tril(A.H @ B, -1) - tril(C).conj + triu(D.T)") in made
    assert {k for k, _ in made} == set(mutate.KINDS)
    assert all(m.line == 10 for m in mutate.mutants_of(text, "jvp"))


def covering_mutants(mutants: list) -> list:
    """A sample of a spec's mutants in which every kind of edit and every mutated statement
    (rule text and line) appears at least once; every mutant under --full."""
    if ladder.FULL:
        return mutants
    uncovered = {("kind", m.kind) for m in mutants} | {("at", m.original, m.line) for m in mutants}
    chosen = []
    while uncovered:
        best = max(mutants, key=lambda m: len({("kind", m.kind), ("at", m.original, m.line)}
                                             & uncovered))
        chosen.append(best)
        uncovered -= {("kind", best.kind), ("at", best.original, best.line)}
    return [m for m in mutants if m in chosen]


def test_the_covering_sample_of_mutants_meets_every_kind_and_statement():
    spec = load_spec(ROOT / "spec" / "qr.yaml")
    mutants = mutate.all_mutants(spec)
    chosen = covering_mutants(mutants)
    assert {m.kind for m in chosen} == {m.kind for m in mutants}
    assert {(m.original, m.line) for m in chosen} == {(m.original, m.line) for m in mutants}
    assert len(chosen) < len(mutants) or ladder.FULL


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_the_audit_catches_every_mutant(path):
    """In-process, on a covering sample of each spec's mutants (every kind of edit and every
    statement; ``--full``: every mutant, as `cli.py audit --mutate` judges them)."""
    spec = load_spec(path, display_path=f"spec/{path.name}")
    outcomes = mutate.run(spec, select=covering_mutants)
    survivors = [f"{o.mutant.rule} line {o.mutant.line}: {o.mutant.before} -> {o.mutant.after}"
                 for o in outcomes if not o.killed]
    assert not survivors, "\n".join(survivors)
    # at least one mutant judged per statement of the spec's own rules (each has a sign to
    # flip), where a rule is live (mutate.run leaves out those of all-empty outputs)
    statements = {(text, text.line + stmt.lineno - 1)
                  for v in spec.variants for c in v.cases for text in (c.jvp, c.vjp)
                  if text is not None for stmt in ast.parse(text.text).body}
    written = [o for o in outcomes if isinstance(o.mutant, mutate.Mutant)]
    judged = {(o.mutant.original, o.mutant.line) for o in written}
    assert judged and judged <= statements
    assert {s for s in statements if s[0] in {o.mutant.original for o in written}} == judged
    # and each statement of each VJP given some cotangents (check_rules' partial VJPs) that
    # reads them, caught by the check of the specialisation
    specialised = [o for o in outcomes if isinstance(o.mutant, mutate.PartialMutant)]
    made = {m.original for m in mutate.partial_mutants(check_spec(spec))}
    assert {o.mutant.original for o in specialised} <= made
    assert bool(specialised) == bool(made)
    assert all(o.caught_by == ("specialisation",) for o in specialised)
    kinds = {o.mutant.kind for o in outcomes}
    assert {"flip-sign", "swap-product"} <= kinds
    if len(mutate.all_mutants(spec)) >= 40:  # the larger specs meet every kind that edits a sum
        assert "drop-term" in kinds
    for o in outcomes:  # a static rejection is a spec error; otherwise a named audit check
        assert set(o.caught_by) <= {"static", *audit.CHECKS}, o


def test_cli_mutation_testing_reports_every_mutant_as_json():
    """`cli.py audit --mutate` end to end, on a small spec: every mutant judged and caught."""
    result = run_cli("audit", "--mutate", "eigvalsh", "--json")
    assert result.returncode == 0, result.stderr
    outcomes = json.loads(result.stdout)
    spec = load_spec(ROOT / "spec" / "eigvalsh.yaml")
    assert len(outcomes) == len(mutate.all_mutants(spec)) > 0
    assert all(o["caught_by"] for o in outcomes)
    assert {"kind", "rule", "line", "before", "after", "caught_by", "detail"} == set(outcomes[0])
