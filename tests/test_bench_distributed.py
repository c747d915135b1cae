"""``cli.py bench tsqr`` (factorules/tools/bench_distributed.py) on its --quick size: tsqr on four
host devices and qr on one, each pass in a process of its own, agree; the rows hold times and
peaks.  No timing is asserted (these machines are noisy)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from factorules.compiler.paths import ROOT
from factorules.tools import bench_distributed as bd

KEYS = {"path", "pass", "devices", "m", "n", "dtype", "median_ms", "ratio", "peak_bytes",
        "times_a", "method", "check", "ok", "repeats", "error"}


@pytest.fixture(scope="module")
def rows():
    result = subprocess.run([sys.executable, "cli.py", "bench", "tsqr", "--quick", "--json",
                             "--repeats", "1"], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_a_row_per_path_and_pass_on_the_quick_size(rows):
    assert [(r["path"], r["pass"]) for r in rows] == [(p, w) for w in bd.PASSES
                                                      for p in bd.PATHS]
    assert all(set(r) == KEYS and r["error"] is None for r in rows)
    assert all((r["m"], r["n"], r["dtype"]) == (*bd.QUICK_SIZE, "float64") for r in rows)
    assert {r["path"]: r["devices"] for r in rows} == {"tsqr": bd.DEVICES, "qr": 1}


def test_tsqr_agrees_with_qr_and_times_and_peaks_are_positive(rows):
    for r in rows:
        assert r["ok"] and 0 <= r["check"] <= bd.CHECK_TOLERANCE, r
        assert r["median_ms"] > 0 and r["repeats"] == 1
        # the pass allocates at least its output, Q (the size of A), above what was there
        assert r["peak_bytes"] is not None and r["times_a"] >= 0.5, r
        assert (r["ratio"] > 0) if r["path"] == "tsqr" else r["ratio"] is None


def test_the_table_has_a_line_per_row_and_marks_a_failed_check(rows):
    text = bd.format_table(rows).splitlines()
    assert text[0].split()[:3] == ["path", "pass", "devices"] and len(text) == 2 + len(rows)
    bad = [{**r, "check": 1e-3, "ok": False} for r in rows]
    assert bd.format_table(bad).splitlines()[2].endswith("1.0e-03 FAIL")


def test_child_env_splits_the_host_for_tsqr_alone():
    base = {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1 "
                         "--xla_force_host_platform_device_count=2",
            "OPENBLAS_NUM_THREADS": "2"}
    tsqr, qr = bd.child_env("tsqr", base), bd.child_env("qr", base)
    assert tsqr["XLA_FLAGS"] == (
        "--xla_force_host_platform_device_count=4 --xla_cpu_multi_thread_eigen=false "
        "intra_op_parallelism_threads=1")
    assert qr["XLA_FLAGS"] == "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    # one BLAS thread per device on the tsqr path; the caller's on the qr path
    assert all(tsqr[v] == "1" for v in bd.BLAS_THREADS)
    assert qr["OPENBLAS_NUM_THREADS"] == "2" and "OMP_NUM_THREADS" not in qr


def test_tsqr_runs_alone_not_with_specs():
    result = subprocess.run([sys.executable, "cli.py", "bench", "tsqr", "qr", "--quick"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "tsqr runs alone" in result.stderr
