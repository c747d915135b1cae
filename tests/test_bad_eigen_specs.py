"""Errors of the spec language's vector, hidden-output, gauge, pairwise_inv, ties and
Sylvester-solve features: one edit of a frozen copy of spec/eigh.yaml (or eigvalsh.yaml,
polar.yaml, schur.yaml, hessenberg.yaml: tests/fixtures/specs/) each, the message and its line pinned."""
from __future__ import annotations

from pathlib import Path

import pytest

from factorules.compiler.check import check_spec
from factorules.compiler.spec import SpecError
from factorules.compiler.spec_loader import load_spec

# frozen copies of the specs (tests/fixtures/specs/README.md): the lines stay put
SPECS = Path(__file__).resolve().parent / "fixtures" / "specs"

# (id, spec, old text, new text, line of the error, words of the message)
CASES = [
    ("no-check-gauge-option", "eigh",
     '  check_gauge: {values: [true, false], default: true, selects: false}\n', "", 55,
     "a gauge with a run-time check needs the option 'check_gauge"),
    ("check-gauge-selects", "eigh", "default: true, selects: false}", "default: true}", 48,
     "option check_gauge: no variant for True, False"),
    ("selecting-by-a-switch", "eigh", '- when: {UPLO: "L"}', '- when: {UPLO: "L", check_gauge: true}',
     51, "variant.when: option 'check_gauge' selects no variant (selects: false)"),
    ("phases-of-no-output", "eigh", "phases: [Q]", "phases: [V]", 56,
     "gauge: undeclared name 'V'"),
    ("phases-of-an-expression", "eigh", "phases: [Q]", 'phases: ["Q @ Q"]', 56,
     "gauge.phases: 'Q @ Q' is not an output, a block of one, or its .H"),
    ("gauge-without-cotangent", "eigh", '      cotangent: "im(diagonal(Q.H @ gQ))"\n', "", 56,
     "gauge: Q carries the gauge and is differentiated"),
    ("gauge-tangent-of-no-output", "eigh", 'tangent: "im(diagonal(Q.H @ dQ))"',
     'tangent: "im(diagonal(Q.H @ Q))"', 57, "uses no tangent of an output"),
    ("vector-with-a-diagonal", "eigh", "structure: real, order: ascending,",
     "structure: real, diagonal: real, order: ascending,", 53, "a vector has no diagonal"),
    ("unknown-vector-structure", "eigh", "structure: real, order", "structure: unitary, order",
     53, "unknown vector structure 'unitary'"),
    ("order-of-a-matrix", "eigh", "structure: unitary, field", "structure: unitary, order: ascending, field",
     54, "order is for vectors"),
    ("pairwise-inv-of-a-matrix", "eigh", "dQ = Q @ hadamard(pairwise_inv(L), X)",
     "dQ = Q @ hadamard(pairwise_inv(Q), X)", 68, "pairwise_inv: needs a vector, got nxn"),
    ("hidden-output-first", "eigvalsh",
     "      L: {shape: [n], structure: real, order: ascending}\n"
     "      Q: {shape: [n, n], structure: unitary, returned: hidden}\n",
     "      Q: {shape: [n, n], structure: unitary, returned: hidden}\n"
     "      L: {shape: [n], structure: real, order: ascending}\n", 34,
     "hidden outputs must come after the others"),
    ("unknown-returned", "eigvalsh", "returned: hidden", "returned: secret", 37,
     "returned must be 'value', 'empty', 'hidden' or 'omitted'"),
    # polar's checks read its hidden singular values; its rules may not (no 'framework')
    ("rule-reads-a-hidden-output", "polar", "          dU = U @ Om\n",
     "          dU = U @ Om + U @ diag(S) @ Om - U @ diag(S) @ Om\n", 78,
     "the jvp of side=right when m == n reads the hidden output S: torch and JAX would "
     "differentiate it (second derivatives) with S held constant"),
    ("eigenbasis-of-the-wrong-size", "polar", "P: {shape: [n, n], structure: hermitian}",
     "P: {shape: [n, n], structure: hermitian, eigenbasis: [S, U]}", 60,
     "output P: eigenbasis must name a vector output of size n and a n x n output"),
    ("eigenbasis-of-a-general-matrix", "polar",
     "U: {shape: [m, n], structure: orthonormal_columns}",
     "U: {shape: [m, n], structure: orthonormal_columns, eigenbasis: [S, V]}", 59,
     "eigenbasis is for a hermitian output"),
    ("sylvester-of-a-rectangle", "polar",
     "          dU = U @ Om + solve(P, dA - U @ X, left=False)\n",
     "          dU = U @ Om + solve(P, dA - U @ X, left=False) + U @ solve_sylvester(U, P, X)\n",
     89, "solve_sylvester: needs a square matrix, got mxn"),
    ("sylvester-of-the-wrong-size", "polar",
     "          dU = U @ Om + solve(P, dA - U @ X, left=False)\n",
     "          dU = U @ Om + solve(P, dA - U @ X, left=False) + U @ solve_sylvester(P, P, dA)\n",
     89, "solve_sylvester: A is nxn and B is nxn, so C must be nxn, but it is mxn"),
    ("tril-sylvester-of-a-vector", "schur", "          X = solve_tril_sylvester(T, M)\n",
     "          X = solve_tril_sylvester(T, diagonal(M))\n", 90,
     "solve_tril_sylvester: T is nxn, so C must be nxn, but it is nx1"),
    ("tril-sylvester-of-a-rectangle", "schur", "          X = solve_tril_sylvester(T, M)\n",
     "          X = solve_tril_sylvester(hstack(T, T), M)\n", 90,
     "solve_tril_sylvester: needs a square matrix, got nx2*n"),
    ("tril-sylvester-adjoint-not-a-flag", "schur", "          X = solve_tril_sylvester(T, M)\n",
     "          X = solve_tril_sylvester(T, M, adjoint=maybe)\n", 90,
     "solve_tril_sylvester: adjoint= takes True or False"),
    ("hessenberg-sylvester-of-a-vector", "hessenberg",
     "          Om = solve_hessenberg_sylvester(H, M)\n",
     "          Om = solve_hessenberg_sylvester(H, diagonal(M))\n", 90,
     "solve_hessenberg_sylvester: H is nxn, so C must be nxn, but it is nx1"),
    ("hessenberg-sylvester-of-a-rectangle", "hessenberg",
     "          Om = solve_hessenberg_sylvester(H, M)\n",
     "          Om = solve_hessenberg_sylvester(hstack(H, H), M)\n", 90,
     "solve_hessenberg_sylvester: needs a square matrix, got nx2*n"),
    ("hessenberg-sylvester-adjoint-not-a-flag", "hessenberg",
     "          Om = solve_hessenberg_sylvester(H, M)\n",
     "          Om = solve_hessenberg_sylvester(H, M, adjoint=maybe)\n", 90,
     "solve_hessenberg_sylvester: adjoint= takes True or False"),
    # pivots given along tangents need as many columns as values
    ("pivot-tangent-of-other-columns", "hessenberg",
     '"tril(Q.H @ dA @ Q - triu((Q.H @ dA @ Q).conj, -1), -1)[:, :n - 1]"',
     '"tril(Q.H @ dA @ Q - triu((Q.H @ dA @ Q).conj, -1), -1)"', 74,
     "is nxn, not of as many columns as the length of 'diagonal(H[1:, :n - 1])'"),
    # ties with neither condition: every tie fails; with one of them, an error
    ("ties-tangent-alone", "schur", '      values: "diagonal(T)"\n',
     '      values: "diagonal(T)"\n      tangent: "Z.H @ dA @ Z"\n', 79,
     "ties.tangent needs ties.cotangent too (none: every tie fails"),
    ("ties-cotangent-alone", "schur", '      values: "diagonal(T)"\n',
     '      values: "diagonal(T)"\n      cotangent: "Z.H @ gZ"\n', 79,
     "ties.cotangent needs ties.tangent too (none: every tie fails"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_eigen_spec(case, tmp_path):
    _, name, old, new, line, words = case
    text = (SPECS / f"{name}.yaml").read_text(encoding="utf-8")
    assert text.count(old) >= 1, old
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(SpecError) as err:
        check_spec(load_spec(path, display_path=f"spec/{name}.yaml"))
    assert err.value.line == line, str(err.value)
    assert words in err.value.message, str(err.value)
    assert str(err.value).startswith(f"spec/{name}.yaml:{line}: ")


@pytest.mark.parametrize("name", ["eigh", "eigvalsh", "polar", "schur", "hessenberg"])
def test_the_unedited_specs_pass(name):
    check_spec(load_spec(SPECS / f"{name}.yaml"))
