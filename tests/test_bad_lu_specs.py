"""Errors of the spec language's permutation, pivots and signature-adapter features: one
edit of a frozen copy of spec/lu_factor.yaml (or lu.yaml: tests/fixtures/specs/) each, the
message and its line pinned."""
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
    ("permutation-not-square", "lu_factor", "P: {shape: [m, m], structure: permutation",
     "P: {shape: [m, n], structure: permutation", 39, "output P: a permutation is square"),
    ("from-pivots-of-nothing", "lu_factor", "from_pivots: pivots, returned", "from_pivots: piv, returned",
     39, "from_pivots must name a pivots output of the variant or a vector the primal call returns"),
    ("from-pivots-of-a-matrix", "lu_factor", "LU: {shape: [m, n]}",
     "LU: {shape: [m, n], from_pivots: pivots}", 37, "from_pivots is for a permutation output"),
    ("pivots-in-a-rule", "lu_factor", "X = solve_triangular(LU, solve_triangular(LU, P.T @ dA,",
     "X = solve_triangular(LU, solve_triangular(LU, P.T @ dA + pivots,", 45,
     "undeclared name 'pivots'"),
    ("pivots-as-a-matrix", "lu_factor", "LU: {shape: [m, n]}",
     "LU: {shape: [m, n], structure: pivots}", 37, "unknown structure 'pivots'"),
    ("permutation-input", "lu_factor", "A: {shape: [m, n]}",
     "A: {shape: [m, n], structure: permutation}", 30, "an input cannot be a permutation"),
    ("permutation-with-a-diagonal", "lu", "structure: permutation, from_pivots",
     "structure: permutation, diagonal: unit, from_pivots", 58,
     "outputs.P: a permutation has no diagonal or dtype"),
    ("pivots-base-two", "lu_factor", '"jax.scipy.linalg.lu_factor(A)", pivots_base: 0',
     '"jax.scipy.linalg.lu_factor(A)", pivots_base: 2', 63, "pivots_base must be 0 or 1"),
    ("pivots-base-a-bool", "lu_factor", '"jax.scipy.linalg.lu_factor(A)", pivots_base: 0',
     '"jax.scipy.linalg.lu_factor(A)", pivots_base: true', 63, "pivots_base must be 0 or 1"),
    ("batched-not-a-bool", "lu_factor", '"scipy.linalg.lu_factor(A)", pivots_base: 0, batched: false',
     '"scipy.linalg.lu_factor(A)", pivots_base: 0, batched: "no"', 64,
     "signatures.numpy.batched must be a bool, found str"),
    ("primal-output-from-pivots-given", "lu", 'outputs: {L: "tril(LU[:, :k], -1) + eye(m, k)",',
     'outputs: {P: "eye(m, m)", L: "tril(LU[:, :k], -1) + eye(m, k)",', 56,
     "primal.outputs must give every output (L, U; P from pivots)"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_lu_spec(case, tmp_path):
    _, name, old, new, line, words = case
    text = (SPECS / f"{name}.yaml").read_text(encoding="utf-8")
    assert text.count(old) >= 1, old
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(SpecError) as err:
        check_spec(load_spec(path, display_path=f"spec/{name}.yaml"))
    assert err.value.line == line, str(err.value)
    assert words in err.value.message, str(err.value)
