"""Errors of the spec language's 'indices' outputs, 'from_indices', a signature's 'values' and
'host', and 'delegate': one edit of a frozen copy of spec/qr_pivoted.yaml or spec/qr.yaml
(tests/fixtures/specs/) each, the message and its line pinned."""
from __future__ import annotations

from pathlib import Path

import pytest

from factorules.compiler.check import check_spec
from factorules.compiler.render import check_frameworks, load_checked
from factorules.compiler.spec import SpecError
from factorules.compiler.spec_loader import load_spec

# frozen copies of the specs (tests/fixtures/specs/README.md): the lines stay put
SPECS = Path(__file__).resolve().parent / "fixtures" / "specs"
PI = "      Pi: {shape: [n, n], structure: permutation, from_indices: P, returned: hidden}"
TORCH = ('  torch: [{call: "scipy.linalg.qr(A, mode=mode, pivoting=True)", host: true, '
         'batched: false,')
DELEGATE = 'delegate: {option: pivoting, call: "qr_pivoted(A, mode=mode)"}'

# (id, spec, old text, new text, text on the line of the error, words of the message)
CASES = [
    ("from-indices-not-a-permutation", "qr_pivoted", PI,
     PI.replace("structure: permutation", "structure: general"), PI[:20],
     "from_indices is for a permutation output"),
    ("from-indices-of-a-matrix", "qr_pivoted", PI, PI.replace("from_indices: P", "from_indices: R"),
     PI[:20], "output Pi: from_indices must name an indices output of the variant"),
    ("from-pivots-and-from-indices", "qr_pivoted", PI,
     PI.replace("from_indices: P", "from_indices: P, from_pivots: P"), PI[:20],
     "give from_pivots or from_indices, not both"),
    ("from-pivots-of-indices", "qr_pivoted", PI, PI.replace("from_indices", "from_pivots"),
     PI[:20], "output Pi: from_pivots must name a pivots output"),
    ("values-of-no-option", "qr_pivoted", TORCH + "\n           values: {mode:",
     TORCH + "\n           values: {mod:", "values: {mod:", "values: 'mod' is not an option"),
    ("values-of-no-value", "qr_pivoted", TORCH + "\n           values: {mode: {reduced:",
     TORCH + "\n           values: {mode: {reduce:", "values: {mode: {reduce:",
     "values.mode: 'reduce' is not one of its values"),
    ("host-on-numpy", "qr_pivoted", '  numpy: [{call: "scipy.linalg.qr(A, mode=mode, pivoting=True)",',
     '  numpy: [{call: "scipy.linalg.qr(A, mode=mode, pivoting=True)", host: true,',
     "  numpy: [{call:", "signatures.numpy: host is for torch, jax and cupy"),
    ("host-of-a-torch-call", "qr_pivoted", TORCH,
     '  torch: [{call: "torch.linalg.qr(A, mode=mode)", host: true, batched: false,',
     "  torch: [{call:",
     "signatures.torch: host is for a numpy. or scipy. call"),
    ("delegate-option-is-an-option", "qr", DELEGATE, DELEGATE.replace("pivoting", "mode", 1),
     "delegate:", "delegate.option: 'mode' already names an option or input"),
    ("delegate-to-itself", "qr", DELEGATE, DELEGATE.replace("qr_pivoted(", "qr("), "delegate:",
     "an operation cannot be its own delegate"),
    ("delegate-not-a-call", "qr", DELEGATE, DELEGATE.replace("qr_pivoted(A, mode=mode)", "A"),
     "delegate:", "delegate: expected a call of another spec's operation"),
]


def _edited(name, old, new, tmp_path) -> tuple[Path, int]:
    text = (SPECS / f"{name}.yaml").read_text(encoding="utf-8")
    assert text.count(old) >= 1, old  # the first one is edited
    edited = text.replace(old, new, 1)
    path = tmp_path / f"{name}.yaml"
    path.write_text(edited, encoding="utf-8")
    return path, edited


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_pivoted_spec(case, tmp_path):
    _, name, old, new, where, words = case
    path, edited = _edited(name, old, new, tmp_path)
    line = edited[:edited.index(where)].count("\n") + 1
    with pytest.raises(SpecError) as err:
        check_spec(load_spec(path, display_path=f"spec/{name}.yaml"))
    assert err.value.line == line, str(err.value)
    assert words in err.value.message, str(err.value)


# a delegate is checked against the other specs (factorules.compiler.render.check_frameworks)
CROSS = [
    ("delegate-to-no-spec", DELEGATE.replace("qr_pivoted(", "qr_pivotal("),
     "delegate: no spec named 'qr_pivotal'"),
    ("delegate-with-an-option-it-lacks", DELEGATE.replace("mode=mode)", "mode=mode, upper=mode)"),
     "delegate: qr_pivoted has no option upper"),
]


@pytest.mark.parametrize("case", CROSS, ids=[c[0] for c in CROSS])
def test_bad_delegate_across_specs(case, tmp_path):
    _, new, words = case
    path, edited = _edited("qr", DELEGATE, new, tmp_path)
    specs = load_checked([path, SPECS / "qr_pivoted.yaml"])
    with pytest.raises(SpecError) as err:
        check_frameworks(specs)
    assert err.value.line == edited[:edited.index("delegate:")].count("\n") + 1, str(err.value)
    assert words in err.value.message, str(err.value)
