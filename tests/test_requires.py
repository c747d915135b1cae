"""A variant's 'requires' (conditions on the sizes) is honoured everywhere shapes are drawn:
the generated code raises where it fails (tests/test_householder.py), verify and the test
cases draw only the shape classes where it holds, and a benchmark row it excludes is a spec
error.  A copy of the frozen qr spec (tests/fixtures/specs/qr.yaml) with its reduced variant
made tall-only stands for an operation that takes some shapes only."""
from __future__ import annotations

from pathlib import Path

import pytest

import spec_cases
from factorules.compiler.render import load_checked
from factorules.compiler.spec import SpecError
from factorules.tools import verify

QR = Path(__file__).resolve().parent / "fixtures" / "specs" / "qr.yaml"
R_LINE = 58  # the reduced variant's R, after which its 'requires' goes


def with_requires(tmp_path: Path, condition: str) -> Path:
    lines = QR.read_text(encoding="utf-8").splitlines(keepends=True)
    assert lines[R_LINE - 1].startswith("      R: {shape: [k, n]"), lines[R_LINE - 1]
    lines.insert(R_LINE, f'    requires: ["{condition}"]\n')
    path = tmp_path / "qr.yaml"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def reduced(checked):
    return next(cv for cv in checked.variants if dict(cv.variant.when) == {"mode": "reduced"})


def test_verify_and_the_test_cases_draw_only_the_shapes_a_variant_takes(tmp_path):
    (checked,) = load_checked([with_requires(tmp_path, "m >= n")])
    assert [name for name, _ in verify.shapes(checked, reduced(checked))] == ["tall", "square"]
    complete = next(cv for cv in checked.variants if dict(cv.variant.when) == {"mode": "complete"})
    assert [name for name, _ in verify.shapes(checked, complete)] == ["tall", "square", "wide"]
    classes = {**spec_cases.SHAPES[2], **spec_cases.ZERO_SHAPES[2]}
    taken = [name for name, shape in classes.items()
             if spec_cases.takes(checked, reduced(checked), shape)]
    assert taken == ["tall", "square", "5x0", "0x0"]


def test_a_benchmark_row_that_a_variants_requires_excludes_is_a_spec_error(tmp_path):
    path = with_requires(tmp_path, "m <= n")
    with pytest.raises(SpecError) as err:
        load_checked([path])
    text = str(err.value)
    # the first reduced row, 2048 x 512, one line below its frozen place
    assert text.startswith(f"{path}:164: benchmark mode=reduced (shape [2048, 512]): variant "
                           "mode=reduced needs m <= n (sizes: m = 2048, n = 512)"), text
    assert "\n" not in text
