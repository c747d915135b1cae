"""A triangular output's structure may be bounded by another diagonal than the main one
('offset', a dimension expression): RQ's R is upper trapezoidal, triu(R, n - m), with its real
diagonal on diagonal n - m.  The audit states it as equations and draws samples with it; the
checker rejects an offset it cannot read or where it means nothing."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from factorules.audit import numeric as num
from factorules.audit import sample
from factorules.compiler import derive
from factorules.compiler.render import load_checked
from factorules.compiler.spec import SpecError

QR = Path(__file__).resolve().parent / "fixtures" / "specs" / "qr.yaml"
R_LINE, Q_LINE = 58, 57  # the reduced variant's outputs in the frozen qr spec
m, n = sp.symbols("m n", integer=True, nonnegative=True)


@pytest.mark.parametrize("rows,cols", [(3, 5), (5, 3), (4, 4)])
@pytest.mark.parametrize("structure", ["upper_triangular", "lower_triangular"])
@pytest.mark.parametrize("complex_field", [False, True])
def test_a_draw_with_an_offset_meets_its_structure_equations(rows, cols, structure,
                                                             complex_field):
    offset = n - m  # RQ's: 2 for a wide R, -2 for a tall one, 0 for a square one
    value = int(offset.subs({m: rows, n: cols}))
    field = num.Field("float")
    x = np.array(sample.structured(np.random.default_rng(0), rows, cols, structure, "real",
                                   complex_field, field, value), dtype=complex)
    band = np.triu(x, value) if structure == "upper_triangular" else np.tril(x, value)
    assert np.array_equal(band, x)  # nothing beyond the bounding diagonal
    on_it = np.diagonal(x, value)
    assert len(on_it) and np.all(np.abs(on_it) >= 1) and np.all(on_it.imag == 0)
    if complex_field:
        assert np.any(x.imag != 0)  # the rest of the band is complex
    ev = num.Evaluator({m: rows, n: cols}, field)
    residuals = derive.structure_equations(sp.MatrixSymbol("R", m, n), structure, "real", offset)
    assert len(residuals) == 2
    for r in residuals:
        assert np.abs(np.array(ev(r.expr, {"R": x}), dtype=complex)).max() == 0, r.text
    # a draw that breaks it is seen: an entry past the bounding diagonal, an imaginary part on it
    beyond = value - 1 if structure == "upper_triangular" else value + 1
    for at in ((max(-beyond, 0), max(beyond, 0)),  # the first entry past the diagonal
               (max(-value, 0), max(value, 0))):   # the first entry on it
        broken = x.copy()
        broken[at] += 1j if at[1] - at[0] == value else 1
        worst = max(np.abs(np.array(ev(r.expr, {"R": broken}), dtype=complex)).max()
                    for r in residuals)
        assert worst == 1, (at, worst)


def edited(tmp_path: Path, line: int, old: str, new: str) -> Path:
    lines = QR.read_text(encoding="utf-8").splitlines(keepends=True)
    assert old in lines[line - 1], lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new)
    path = tmp_path / "qr.yaml"
    path.write_text("".join(lines), encoding="utf-8")
    return path


BAD = [
    ("not-a-dimension", R_LINE, "diagonal: real}", 'diagonal: real, offset: "n - q"}',
     "outputs.R.offset: 'q' is not a dimension"),
    ("not-triangular", Q_LINE, "orthonormal_columns}", "orthonormal_columns, offset: 1}",
     "offset is for an upper_triangular or lower_triangular output"),
    ("unit-diagonal", R_LINE, "diagonal: real}", 'diagonal: unit, offset: "n - m"}',
     "a unit diagonal is the main one: no offset"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_an_offset_the_checker_cannot_use_is_a_spec_error(case, tmp_path):
    _, line, old, new, words = case
    path = edited(tmp_path, line, old, new)
    with pytest.raises(SpecError) as err:
        load_checked([path])
    assert err.value.line == line and words in str(err.value), str(err.value)


def test_an_offset_that_is_zero_changes_nothing(tmp_path):
    """offset: "k - k" is the main diagonal: the variant's structure equations are those
    without it."""
    path = edited(tmp_path, R_LINE, "diagonal: real}", 'diagonal: real, offset: "k - k"}')
    (checked,) = load_checked([path])
    (plain,) = load_checked([QR])
    from factorules.audit.audit import _residuals
    for cv, cv0 in zip(checked.variants, plain.variants):
        for case, case0 in zip(cv.cases, cv0.cases):
            assert [r.text for r in _residuals(cv, case)] == \
                [r.text for r in _residuals(cv0, case0)]
