"""Errors of the spec language's 'sample' and 'transposed' keys and of cases on an empty
input: one edit of a frozen copy of spec/geqrf.yaml (tests/fixtures/specs/) each, the message
and its line pinned."""
from __future__ import annotations

from pathlib import Path

import pytest

from factorules.compiler.check import check_spec
from factorules.compiler.spec import SpecError
from factorules.compiler.spec_loader import load_spec

# frozen copies of the specs (tests/fixtures/specs/README.md): the lines stay put
SPECS = Path(__file__).resolve().parent / "fixtures" / "specs"
SAMPLE_TAU = '      tau: "2 * recip('

# (id, old text, new text, line of the error, words of the message)
CASES = [
    ("sample-of-nothing", SAMPLE_TAU, '      X: "2 * recip(', 73,
     "sample: 'X' is not an input or a differentiable output"),
    ("sample-of-the-wrong-shape", SAMPLE_TAU, '      tau: "a + 2 * recip(', 73,
     "sample: +: operands have shapes"),
    ("sample-not-text", SAMPLE_TAU, "      tau: [1]\n      x: \"2 * recip(", 73,
     "sample must be text"),
    ("transposed-vector", "transposed: [a],", "transposed: [tau],", 127,
     "transposed: 'tau' is not a matrix output"),
    ("transposed-not-a-list", "transposed: [a],", "transposed: a,", 127,
     "signatures.numpy.transposed must be a list"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_geqrf_spec(case, tmp_path):
    _, old, new, line, words = case
    text = (SPECS / "geqrf.yaml").read_text(encoding="utf-8")
    assert text.count(old) >= 1, old
    path = tmp_path / "geqrf.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(SpecError) as err:
        check_spec(load_spec(path, display_path="spec/geqrf.yaml"))
    assert err.value.line == line, str(err.value)
    assert words in err.value.message, str(err.value)
