"""Errors of the spec language's 'pivots' and 'ties' (where a derivative does not exist):
one edit of a frozen copy of spec/svd.yaml (tests/fixtures/specs/) each, the message and its
line pinned."""
from __future__ import annotations

from pathlib import Path

import pytest

from factorules.compiler.check import check_spec
from factorules.compiler.spec import SpecError
from factorules.compiler.spec_loader import load_spec

# frozen copies of the specs (tests/fixtures/specs/README.md): the lines stay put
SPECS = Path(__file__).resolve().parent / "fixtures" / "specs"

THIN_COTANGENT = '      cotangent: "vstack(gU - U @ (U.H @ gU), gVh.H - Vh.H @ (Vh @ gVh.H))"\n'

# (id, old text, new text, line of the error, words of the message)
CASES = [
    ("pivots-without-their-switch",
     "  check_singular: {values: [true, false], default: true, selects: false}\n", "", 73,
     "pivots needs the option 'check_singular: {values: [true, false], default: true, "
     "selects: false}'"),
    ("ties-without-their-switch",
     "  check_ties: {values: [true, false], default: true, selects: false}\n", "", 84,
     "ties needs the option 'check_ties"),
    ("pivots-tangent-without-cotangent", THIN_COTANGENT, "", 76,
     "pivots.tangent needs pivots.cotangent too"),
    ("pivots-of-a-matrix", "    pivots:\n      values: S\n", "    pivots:\n      values: U\n", 74,
     "pivots: 'U' is mxn, not a vector"),
    ("conditions-of-two-pivot-vectors", "    pivots:\n      values: S\n",
     "    pivots:\n      values: [S, S]\n", 74,
     "pivots with a tangent and cotangent take one vector of values"),
    ("pivot-columns-not-the-values'", THIN_COTANGENT,
     '      cotangent: "gU.H - (U.H @ gU) @ U.H"\n', 78,
     "pivots.cotangent: 'gU.H - (U.H @ gU) @ U.H' is nxm, not of as many columns as the "
     "length of 'S'"),
    ("pivot-cotangent-of-no-output", THIN_COTANGENT,
     '      cotangent: "U - U @ (U.H @ U)"\n', 78,
     "pivots.cotangent: 'U - U @ (U.H @ U)' uses no cotangent of an output"),
    ("pivot-tangent-of-an-output", '        - "diag(im(diagonal(U.H @ dA @ Vh.H)))"',
     '        - "diag(im(diagonal(U.H @ dU)))"', 77, "pivots.tangent: undeclared name 'dU'"),
    ("pivots-norm-of-no-output", "    pivots:\n      values: S\n",
     "    pivots:\n      values: S\n      norm: A\n", 75,
     "pivots.norm: 'A' is not an output of the variant"),
    ("ties-of-a-matrix", "    ties:\n      values: S\n", "    ties:\n      values: U\n", 85,
     "ties.values: 'U' is mxn, not a vector"),
    ("tie-tangent-not-square", 'tangent: "sym(U.H @ dA @ Vh.H)"', 'tangent: "dA @ Vh.H"', 86,
     "ties.tangent: 'dA @ Vh.H' is mxn, not square of the size of 'S'"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_degenerate_spec(case, tmp_path):
    _, old, new, line, words = case
    text = (SPECS / "svd.yaml").read_text(encoding="utf-8")
    assert text.count(old) >= 1, old
    path = tmp_path / "svd.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(SpecError) as err:
        check_spec(load_spec(path, display_path="spec/svd.yaml"))
    assert err.value.line == line, str(err.value)
    assert words in err.value.message, str(err.value)
    assert str(err.value).startswith(f"spec/svd.yaml:{line}: ")


def test_the_unedited_spec_passes():
    check_spec(load_spec(SPECS / "svd.yaml"))
