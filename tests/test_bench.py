"""Smoke test of `cli.py bench`: it runs, its JSON rows are well formed and every generated
derivative agrees with its reference (its table output: tests/test_progress.py).  No timing is
asserted (these machines are noisy)."""
import json
import math
import subprocess
import sys

import pytest

import ladder
from factorules.compiler.paths import ROOT
from factorules.compiler.spec_loader import load_spec
from factorules.tools import bench_table

SPECS = sorted((ROOT / "spec").glob("*.yaml"))
# The specs benchmarked by default (every spec under --full, tests/ladder.py): together their
# rows meet every outcome of a native rule (ok; refuses: qr's complete mode of a tall matrix,
# ormqr's, svd's in JAX; wrong: torch's full SVD; none: LQ), a spec of several inputs (ormqr),
# every dtype of the benchmarks and a batch of matrices.  Bench is the same code for each spec:
# the rows of the others differ only in their spec's 'benchmarks', which
# test_every_spec_declares_quick_benchmarks checks.
BENCHED = SPECS if ladder.FULL else [ROOT / "spec" / f"{name}.yaml"
                                      for name in ("lq", "ormqr", "qr", "svd")]

KEYS = {"spec", "backend", "options", "shape", "dtype", "direction", "generated_ms", "native_ms",
        "ratio", "native", "rel_err", "reference", "ok", "repeats", "inner", "note",
        "generated_spread", "native_spread", "samples", "native_samples", "dgemm_gflops"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def plot_path(tmp_path_factory):
    return tmp_path_factory.mktemp("bench_plot") / "bench.png"


@pytest.fixture(scope="module")
def bench_run(plot_path):
    # one timed repeat per row: no timing is asserted, and the rows' processes (imports, JAX's
    # compilation, the references) are what a run costs; --plot draws the rows after the run
    result = subprocess.run([sys.executable, "cli.py", "bench", "--quick", "--json",
                             "--repeats", "1", "--plot", str(plot_path),
                             *(spec.stem for spec in BENCHED)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def rows(bench_run):
    return json.loads(bench_run.stdout)  # stdout is the JSON alone


def test_json_run_reports_a_progress_line_per_row_on_stderr(bench_run, rows):
    """Its stderr is a pipe: a plain line per row as it finishes, counted, naming the row."""
    progress = [line for line in bench_run.stderr.splitlines() if line.startswith("bench ")]
    assert [line.split()[1] for line in progress] == \
        [f"{i}/{len(rows)}" for i in range(1, len(rows) + 1)]
    named = {tuple(line.split(":")[0].split()[2:]) for line in progress}
    assert named == {(r["spec"], r["backend"], r["options"], "x".join(map(str, r["shape"])),
                      r["dtype"], r["direction"]) for r in rows}


def test_every_spec_declares_quick_benchmarks():
    for spec in SPECS:
        benchmarks = load_spec(spec).benchmarks
        assert benchmarks, spec.stem
        assert all(b.quick and b.dtype in ("float32", "float64", "complex64", "complex128")
                   for b in benchmarks), spec.stem


def test_rows_come_from_each_benched_spec_s_benchmarks(rows):
    """Each spec's 'benchmarks' rows, for both frameworks and both directions."""
    assert all(set(r) == KEYS for r in rows)
    assert {r["spec"] for r in rows} == {spec.stem for spec in BENCHED}
    for spec in BENCHED:
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


def test_timings_are_positive_numbers_and_quick_rows_give_no_ratio(rows):
    """A quick row's one sample a side is too few for a ratio (bench_rows.MIN_SAMPLES)."""
    for r in rows:
        assert r["generated_ms"] > 0 and r["samples"] == 1 and r["ratio"] is None
        low, median, high = r["generated_spread"]
        assert 0 < low == r["generated_ms"] <= median <= high
        if r["native"] == "ok":
            assert r["native_ms"] > 0 and r["native_spread"][0] == r["native_ms"]
        elif r["native"] == "refuses":
            assert r["native_ms"] is None and r["native_spread"] is None and r["note"]
        elif r["native"] == "wrong":  # factorules.tools.natives: timed, but fd is the reference
            assert r["native_ms"] > 0 and r["reference"] == "fd"
            assert (r["spec"], r["backend"], r["options"]) == ("svd", "torch",
                                                               "full_matrices=True"), r
        else:  # no such operation (LQ, RQ; pivoted QR in torch): finite differences are the
            # reference
            assert r["native"] == "none" and (r["spec"], r["backend"]) in (
                ("lq", "torch"), ("lq", "jax"), ("rq", "torch"), ("rq", "jax"),
                ("qr_pivoted", "torch")), r
            assert r["native_ms"] is None and r["ratio"] is None and r["reference"] == "fd"


def test_torch_refuses_complete_mode_of_a_tall_matrix_and_fd_is_the_reference(rows):
    complete = [r for r in rows if (r["spec"], r["backend"], r["options"]) == ("qr", "torch",
                                                                               "mode=complete")]
    assert complete and all(r["native"] == "refuses" and r["reference"] == "fd"
                            for r in complete)


def test_generated_derivatives_agree_with_their_reference(rows):
    for r in rows:
        limit = 1e-4 if r["dtype"] in ("float32", "complex64") else 1e-7
        assert r["ok"], r
        assert 0 <= r["rel_err"] < limit, r


def test_unknown_spec_is_bad_input():
    result = subprocess.run([sys.executable, "cli.py", "bench", "no_such_spec", "--quick"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "no_such_spec" in result.stderr


# -- one process per row: a row that hangs or crashes is reported, the others still run ------------

def _bench_args(*argv):
    from factorules.cli import build_parser

    return build_parser().parse_args(["bench", *argv])


def _only(monkeypatch, keep):
    """Restrict the plan to the cases for which keep(case) holds."""
    from factorules.tools import bench

    real = bench.cases
    monkeypatch.setattr(bench, "cases", lambda checked, quick: [c for c in real(checked, quick)
                                                                if keep(c)])


def test_a_row_that_hangs_or_crashes_is_reported_and_the_others_still_run(monkeypatch, capsys):
    from factorules.tools import bench

    real = bench._child_command

    def command(request):
        # a request is a spec's rows for one backend; a row that hangs or crashes ends its
        # process and the rows after it get a new one
        first = request["rows"][0]
        if first["backend"] == "jax" and first["direction"] == "jvp":
            return [sys.executable, "-c", "import time; time.sleep(600)"]
        if first["backend"] == "jax":
            return [sys.executable, "-c", "import os; os.abort()"]
        return real(request)

    monkeypatch.setattr(bench, "_child_command", command)
    _only(monkeypatch, lambda c: c.shape == (16, 4, 4) and (c.backend, c.direction) != ("torch",
                                                                                         "jvp"))
    assert bench.main(_bench_args("cholesky", "--quick", "--row-timeout", "10")) == 1
    out, err = capsys.readouterr()
    body = out.splitlines()[2:out.splitlines().index("")]
    lines = {(line.split()[1], line.split()[5]): line for line in body}  # (backend, dir)
    assert lines[("jax", "jvp")].endswith("timeout after 10 s"), out + err
    assert "crashed (rc=" in lines[("jax", "vjp")], out + err
    torch = lines[("torch", "vjp")].split()
    assert float(torch[6]) > 0 and float(torch[7]) > 0, out + err  # generated, native ms
    assert torch[8] == "-", out + err  # no ratio from --quick's samples
    assert "2 row(s) did not finish" in err and "timeout after 10 s" in err


def test_rows_that_did_not_finish_keep_the_json_keys(monkeypatch, capsys):
    from factorules.tools import bench

    monkeypatch.setattr(bench, "_child_command",
                        lambda request: [sys.executable, "-c", "raise SystemExit(3)"])
    assert bench.main(_bench_args("qr", "--quick", "--json")) == 1
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(set(r) == KEYS for r in rows)
    assert all(r["note"] == "crashed (rc=3)" and not r["ok"] and r["rel_err"] is None
               for r in rows)


def test_a_tiny_row_timeout_times_every_row_out_and_exits_1():
    result = subprocess.run([sys.executable, "cli.py", "bench", "lq", "--quick",
                             "--row-timeout", "0.01"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    body = result.stdout.splitlines()[2:result.stdout.splitlines().index("")]
    assert len(body) == 4 * len(load_spec(ROOT / "spec" / "lq.yaml").benchmarks)
    assert all(line.endswith("timeout after 0.01 s") for line in body), body
    assert "did not finish" in result.stderr


def test_bad_row_timeout_is_bad_input():
    result = subprocess.run([sys.executable, "cli.py", "bench", "qr", "--quick",
                             "--row-timeout", "0"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "--row-timeout" in result.stderr


def test_quick_rows_finish_and_time_both_sides(rows):
    assert all(r["rel_err"] is not None and "timeout" not in r["note"]
               and "crashed" not in r["note"] for r in rows)
    for backend in ("torch", "jax"):
        assert any(r["backend"] == backend and r["native_ms"] and r["native_ms"] > 0
                   for r in rows)


def test_a_ratio_needs_min_samples_and_compares_the_fastest(monkeypatch):
    """Enough samples give the ratio of the fastest of each side, spread and count kept."""
    from factorules.tools import bench_rows

    def fake_time(backend, gen, nat, repeats, quick, nat_warm_s):
        return [3.0, 2.0] + [4.0] * (repeats - 2), [1.0] * repeats, 1

    class Stub:
        def setup(self, case, rng):
            return (lambda: None), (lambda: None), {}

    monkeypatch.setattr(bench_rows, "_time", fake_time)
    monkeypatch.setattr(bench_rows, "_once", lambda backend, f: (0.0, None))
    monkeypatch.setattr(bench_rows, "_check", lambda *a: (0.0, "native"))
    monkeypatch.setattr(bench_rows.natives, "native_wrong", lambda *a: None)
    case = bench_rows.Case("torch", (), (4, 4), "float64", "vjp")
    for repeats, ratio in ((bench_rows.MIN_SAMPLES, 2.0), (bench_rows.MIN_SAMPLES - 1, None)):
        row = bench_rows.run_case("qr", Stub(), case, repeats, False, seed=0)
        assert row.ratio == ratio and row.samples == repeats
        assert row.generated_spread == [2000.0, 4000.0, 4000.0]


def test_a_slow_native_is_sampled_until_its_budget_and_gives_a_ratio_only_far_apart(monkeypatch):
    """A native call of 20 s: its samples stop once they have taken NATIVE_BUDGET_S (never
    fewer than NATIVE_MIN_SAMPLES) while the generated's go on; the ratio stands only where
    every generated sample is below SEPARATED x the native's fastest."""
    from factorules.tools import bench_rows
    clock = {"gen": 0.5, "nat": 20.0}

    class Adapter:
        @staticmethod
        def sync(x):
            return x

    class Backend:
        adapter = Adapter()

    monkeypatch.setattr(bench_rows, "_sample", lambda backend, f, inner: clock[f()])
    monkeypatch.setattr(bench_rows, "_once", lambda backend, f: (clock[f()], f()))
    gen_s, nat_s, inner = bench_rows._time(Backend(), lambda: "gen", lambda: "nat",
                                           bench_rows.MIN_SAMPLES, False, 20.0)
    assert len(gen_s) == bench_rows.MIN_SAMPLES and inner == 1
    budgeted = max(bench_rows.NATIVE_MIN_SAMPLES, math.ceil(bench_rows.NATIVE_BUDGET_S / 20.0))
    assert len(nat_s) == budgeted < bench_rows.MIN_SAMPLES
    assert bench_rows._ratio(gen_s, nat_s) == 0.5 / 20.0
    assert bench_rows._ratio([0.5] * 14 + [11.0], nat_s) is None      # spreads too close
    assert bench_rows._ratio(gen_s, [20.0] * bench_rows.MIN_SAMPLES) == 0.5 / 20.0
    row = bench_rows.Row("hp", "torch", "default", [4, 4], "float64", "jvp", 0.5, 20.0, 0.025,
                         "ok", 0.0, "native", True, 15, 1, samples=15, native_samples=3)
    assert bench_table._count(row) == "15/3"


def test_bench_checks_times_each_row_with_the_switches_on_and_off():
    """cli.py bench-checks: every benchmark row of a spec with switches, in torch and JAX,
    both directions; each row asserted that the checks changed no number first."""
    result = subprocess.run(
        [sys.executable, "cli.py", "bench-checks", "eigh", "--quick", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    spec_rows = {name: len(load_spec(ROOT / "spec" / f"{name}.yaml").benchmarks)
                 for name in ("eigh",)}
    assert len(rows) == 4 * sum(spec_rows.values())  # 2 backends x 2 directions per row
    assert {(r["backend"], r["direction"]) for r in rows} == {
        (b, d) for b in ("torch", "jax") for d in ("vjp", "jvp")}
    assert all(r["checked_ms"] > 0 and r["unchecked_ms"] > 0 and r["ratio"] > 0 for r in rows)
    bad = subprocess.run([sys.executable, "cli.py", "bench-checks", "householder_product"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "no spec with switches" in bad.stderr


# -- --plot: the figure (factorules/tools/bench_plot.py) -------------------------------------------

def _assert_png(path):
    data = path.read_bytes()
    assert len(data) > len(PNG_MAGIC) and data.startswith(PNG_MAGIC), path


def _row(spec, shape, dtype="float64", options="default", backend="torch", direction="vjp",
         generated_ms=2.0, native_ms=4.0, ratio=0.5):
    from factorules.tools.bench_rows import Row

    return Row(spec=spec, backend=backend, options=options, shape=list(shape), dtype=dtype,
               direction=direction, generated_ms=generated_ms, native_ms=native_ms, ratio=ratio,
               native="ok", rel_err=1e-12, reference="native", ok=True, repeats=15, inner=1,
               samples=15)


def test_the_run_keeps_its_dgemm_rate_in_every_json_row_and_draws_its_plot(bench_run, rows,
                                                                          plot_path):
    """--json --plot: one DGEMM rate, measured by the parent, in every row; the PNG drawn."""
    rates = {r["dgemm_gflops"] for r in rows}
    assert len(rates) == 1 and rates.pop() > 0
    _assert_png(plot_path)
    assert f"bench: wrote {plot_path}" in bench_run.stderr


def test_a_saved_run_is_redrawn_from_its_json_also_without_a_dgemm_rate(rows, tmp_path):
    """--plot --from-json draws a saved run without timing anything; JSON from before the
    rate was kept (no dgemm_gflops) has it measured again; names select specs."""
    from factorules.cli import main

    old = tmp_path / "old.json"
    old.write_text(json.dumps([{k: v for k, v in r.items() if k != "dgemm_gflops"}
                               for r in rows]))
    png = tmp_path / "redrawn.png"
    assert main(["bench", "--plot", str(png), "--from-json", str(old), "qr"]) == 0
    _assert_png(png)
    assert main(["bench", "--plot", str(tmp_path / "x.png"), "--from-json", str(old),
                 "no_such_spec"]) == 2  # no rows of it in the file
    assert main(["bench", "--from-json", str(old)]) == 2  # nothing to draw to
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"rows": rows}))
    assert main(["bench", "--plot", str(tmp_path / "y.png"), "--from-json", str(bad)]) == 2
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "y.png").exists()


def test_plot_of_rows_with_ratios_and_large_rows_is_a_png(tmp_path):
    from factorules.tools import bench_plot

    rows = [_row("qr", (2048, 512), options="mode=reduced", backend=backend, direction=d)
            for backend in ("torch", "jax") for d in ("vjp", "jvp")]
    rows += [_row("cholesky", (4096, 8, 8), dtype="float32", ratio=None),  # left out of both
             _row("lq", (512, 2048), options="mode=reduced", native_ms=None, ratio=None)]
    png = tmp_path / "rows.png"
    bench_plot.draw(rows, png, dgemm_gflops=50.0)
    _assert_png(png)


def test_tsqr_does_not_plot():
    from factorules.cli import main

    assert main(["bench", "tsqr", "--plot", "tsqr.png"]) == 2
    assert not (ROOT / "tsqr.png").exists()


def test_model_flops_are_the_leading_order_counts_times_batch_and_complex_factor():
    from factorules.tools.bench_plot import COMPLEX_FACTOR, gflops, model_flops

    m, n = 2048, 512
    geqrf = 2 * m * n ** 2 - 2 * n ** 3 / 3  # LAWN 41, m >= n; orgqr of the reduced Q the same
    assert model_flops(_row("qr", (m, n), options="mode=reduced")) == pytest.approx(2 * geqrf)
    assert model_flops(_row("qr", (m, n), options="mode=r")) == pytest.approx(geqrf)
    assert model_flops(_row("lq", (n, m), options="mode=reduced")) == pytest.approx(2 * geqrf)
    assert model_flops(_row("geqrf", (m, n))) == pytest.approx(geqrf)
    assert model_flops(_row("cholesky", (3, 1024, 1024), options="upper=False")) == \
        pytest.approx(3 * 1024 ** 3 / 3)
    assert model_flops(_row("lu", (1024, 1024), options="pivot=True")) == \
        pytest.approx(2 * 1024 ** 3 / 3)
    assert model_flops(_row("eigh", (256, 256), dtype="complex128")) == \
        pytest.approx(COMPLEX_FACTOR * 9 * 256 ** 3)
    # a wide matrix counts as its transpose
    assert model_flops(_row("svd", (256, 512), options="full_matrices=False")) == \
        pytest.approx(14 * 512 * 256 ** 2 + 8 * 256 ** 3)
    assert model_flops(_row("svd", (512, 128), options="full_matrices=True")) > \
        model_flops(_row("svd", (512, 128), options="full_matrices=False"))
    # several inputs: batch, then the spec's dims (ormqr: r, p, k, m, n): 4mnk - 2nk^2, left
    assert model_flops(_row("ormqr", (2, 64, 8, 8, 64, 16), options="left=True,transpose=False")) \
        == pytest.approx(2 * (4 * 64 * 16 * 8 - 2 * 16 * 8 ** 2))
    assert model_flops(_row("no_such_op", (64, 64))) is None
    # GFLOP/s: flops over the time
    assert gflops(_row("cholesky", (1024, 1024)), 1.0) == pytest.approx(1024 ** 3 / 3 / 1e6)
    assert gflops(_row("cholesky", (1024, 1024)), None) is None


def test_a_row_is_large_by_the_entries_of_one_problem_not_the_batch():
    from factorules.tools.bench_plot import LARGE_ENTRIES, is_large

    assert LARGE_ENTRIES == 128 * 128
    assert is_large(_row("cholesky", (128, 128)))
    assert not is_large(_row("cholesky", (127, 128)))
    assert not is_large(_row("eigh", (4096, 8, 8)))  # many small matrices
    assert is_large(_row("ormqr", (4096, 64, 64, 4096, 8)))  # the 4096 x 64 reflectors
    assert not is_large(_row("ormqr", (1024, 8, 8, 8, 8, 4)))
    assert not is_large(_row("no_such_op", (4096, 4096)))


def test_options_of_reads_back_a_case_label():
    from factorules.tools.bench_rows import Case, options_of

    case = Case("torch", (("left", True), ("transpose", False)), (4, 4), "float64", "vjp")
    assert options_of(case.label) == {"left": "True", "transpose": "False"}
    assert options_of(Case("jax", (), (4, 4), "float64", "jvp").label) == {}


def test_a_shape_no_row_has_is_named_before_anything_runs(monkeypatch, capsys):
    """--shape keeps the rows of that shape (as the table writes it); one that no row of the
    specs has is an error that names it."""
    from factorules.tools import bench

    planned = []
    monkeypatch.setattr(bench, "_run_child", lambda *args, **kwargs: planned.append(args))
    assert bench.main(_bench_args("svd", "--quick", "--shape", "7x7")) == 2
    assert "no row of shape 7x7 in svd" in capsys.readouterr().err
    assert planned == []
