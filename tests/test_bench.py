"""Smoke test of `cli.py bench`: it runs, its JSON rows are well formed and every generated
derivative agrees with its reference.  No timing is asserted (these machines are noisy)."""
import json
import subprocess
import sys

import pytest

from generator.render import ROOT
from generator.spec import load_spec

SPECS = sorted((ROOT / "spec").glob("*.yaml"))

KEYS = {"spec", "backend", "options", "shape", "dtype", "direction", "generated_ms", "native_ms",
        "ratio", "native", "rel_err", "reference", "ok", "repeats", "inner", "note"}


@pytest.fixture(scope="module")
def rows():
    result = subprocess.run([sys.executable, "cli.py", "bench", "--quick", "--json"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_rows_come_from_every_spec_s_benchmarks(rows):
    """Each spec's 'benchmarks' rows, for both frameworks and both directions."""
    assert all(set(r) == KEYS for r in rows)
    for spec in SPECS:
        benchmarks = load_spec(spec).benchmarks
        mine = [r for r in rows if r["spec"] == spec.stem]
        assert len(mine) == 4 * len(benchmarks) > 0, spec.stem
        assert {(r["options"], tuple(r["shape"]), r["dtype"]) for r in mine} == \
            {(b.label, b.quick, b.dtype) for b in benchmarks}
        seen = {(r["backend"], r["direction"]) for r in mine}
        assert seen == {("torch", "vjp"), ("torch", "jvp"), ("jax", "vjp"), ("jax", "jvp")}
    assert {r["dtype"] for r in rows} >= {"float64", "complex128", "float32"}
    assert any(len(r["shape"]) == 3 for r in rows)  # a batch of matrices
    assert all(r["repeats"] >= 1 for r in rows)


def test_timings_and_ratios_are_positive_numbers(rows):
    for r in rows:
        assert r["generated_ms"] > 0
        if r["native"] == "ok":
            assert r["native_ms"] > 0 and r["ratio"] > 0
        elif r["native"] == "refuses":
            assert r["native_ms"] is None and r["ratio"] is None and r["note"]
        else:  # the framework has no such operation (LQ): finite differences are the reference
            assert r["native"] == "none" and r["spec"] == "lq", r
            assert r["native_ms"] is None and r["ratio"] is None and r["reference"] == "fd"


def test_torch_refuses_complete_mode_of_a_tall_matrix_and_fd_is_the_reference(rows):
    complete = [r for r in rows if r["backend"] == "torch" and r["options"] == "mode=complete"]
    assert complete and all(r["native"] == "refuses" and r["reference"] == "fd"
                            for r in complete)


def test_generated_derivatives_agree_with_their_reference(rows):
    for r in rows:
        limit = 1e-4 if r["dtype"] in ("float32", "complex64") else 1e-7
        assert r["ok"], r
        assert 0 <= r["rel_err"] < limit, r


def test_table_output_has_a_header_and_one_line_per_row():
    result = subprocess.run([sys.executable, "cli.py", "bench", "qr", "--quick", "--repeats", "1"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    header = lines[0].split()
    assert header[:6] == ["spec", "backend", "options", "shape", "dtype", "dir"]
    assert "ratio" in header and "err" in header
    body = lines[2:lines.index("")]
    assert len(body) == 4 * len(load_spec(ROOT / "spec" / "qr.yaml").benchmarks)


def test_unknown_spec_is_bad_input():
    result = subprocess.run([sys.executable, "cli.py", "bench", "no_such_spec", "--quick"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "no_such_spec" in result.stderr
