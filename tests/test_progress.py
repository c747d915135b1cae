"""The long commands speak while they work: `cli.py verify` a progress line per spec and
`cli.py bench` one per row, on stderr, also when stderr is a pipe; `verify -v` a line per check;
verify's footer names the shapes the run measured, as the specs give them.

One small spec (cholesky) through each command, in a subprocess whose stderr is a pipe.  The
--json runs of tests/test_cli.py and tests/test_bench.py check the progress of several specs."""
import io
import re
import subprocess
import sys

import pytest

from factorules.compiler.paths import ROOT
from factorules.compiler.render import load_checked
from factorules.compiler.spec_loader import load_spec
from factorules.tools import verify
from factorules.tools.progress import Progress

SPEC = ROOT / "spec" / "cholesky.yaml"
VERIFY_LINE = re.compile(r"verify (\d+)/(\d+) (\w+): (\d+) checks, (\d+) failed \(\d+\.\d s\)")
BENCH_LINE = re.compile(r"bench (\d+)/(\d+) (\w+) (\w+) (\S+) (\S+) (\w+) (vjp|jvp): "
                        r"(ratio \d+\.\d\d|no ratio \(n=\d+\)|native refuses|no native), rel err \S+ vs (native|fd)"
                        r"( FAIL)? \(\d+\.\d s\)")
VERBOSE_LINE = re.compile(r"(PASS|FAIL|N/A|REFUSES) +(\w+) (\S+) (\w+) (\w+): (.*)")


def cli(*args):
    return subprocess.run([sys.executable, "cli.py", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def verified():
    result = cli("verify", "--no-generate", "-v", SPEC.stem)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def benched():
    result = cli("bench", "--quick", "--repeats", "1", SPEC.stem)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def expected_shapes(path) -> set[str]:
    """The shapes verify measures for a spec, read from its YAML: its own 'shapes' (those
    without a zero dimension, as the spec writes them), or else verify's default sizes for
    its input's dimensions (one dimension: a square matrix)."""
    spec = load_spec(path)
    if spec.shapes:
        return {f"{label} " + ",".join(f"{k}={v}" for k, v in values)
                for label, values in spec.shapes if 0 not in dict(values).values()}
    (matrix,) = spec.inputs
    dims = list(dict.fromkeys(matrix.shape))  # distinct, in order
    names = ["n=4"] if len(dims) == 1 else ["tall", "square", "wide"]
    return {f"{name} " + "x".join(str(dict(zip(dims, verify.SHAPES[name]))[d])
                                  for d in matrix.shape) for name in names}


def test_verify_prints_a_progress_line_per_spec_on_a_pipe(verified):
    lines = verified.stderr.splitlines()
    progress = [m for m in map(VERIFY_LINE.fullmatch, lines) if m]
    assert len(progress) == 1, verified.stderr
    (m,) = progress
    assert m.group(1, 2, 3) == ("1", "1", SPEC.stem)
    passed = re.search(r"^(\d+) checks passed, 0 failed", verified.stdout, re.M)
    assert passed and m.group(4, 5) == (passed.group(1), "0"), verified.stdout
    assert "\r" not in verified.stderr  # plain lines off a terminal


def test_verify_verbose_prints_every_check(verified):
    out = verified.stdout.splitlines()
    checks = [m for m in map(VERBOSE_LINE.fullmatch, out) if m]
    total = int(re.search(r"^(\d+) checks passed, (\d+) failed", verified.stdout, re.M)[1])
    assert len(checks) == total > 0
    # every (variant, backend, check) of the table once, the spec's variants and the checks
    keys = {(m[3], m[4], m[5]) for m in checks}
    assert len(keys) == total
    variants = {cv.variant.label for cv in load_checked([SPEC])[0].variants}
    assert {k[0] for k in keys} == variants and {k[2] for k in keys} == set(verify.CHECKS)
    assert {m[2] for m in checks} == {SPEC.stem}
    for m in checks:
        if m[1] == "PASS":  # measured error, tolerance, where the worst was measured
            err, tol = re.fullmatch(r"(\S+) <= (\S+) \(worst at .+ (float64|complex128)\)",
                                    m[6]).group(1, 2)
            assert float(err) <= float(tol) == verify.TOLERANCE[m[5]]
        else:  # NumPy is the reference: no autodiff or native check of its own
            assert (m[1], m[4], m[6]) == ("N/A", "numpy", "no such check"), m[0]
    # the table follows, its rows unchanged in form: spec, variant, check, a cell per backend
    table = out[out.index("") + 1:]
    assert table[0].split()[:3] == ["spec", "variant", "check"]
    assert not any(VERBOSE_LINE.fullmatch(line) for line in table)


def test_verify_footer_names_the_shapes_measured(verified):
    (line,) = [x for x in verified.stdout.splitlines() if x.startswith("shapes: ")]
    groups = dict(g.split(": ", 1) for g in line[len("shapes: "):].split("; "))
    assert groups == {SPEC.stem: groups[SPEC.stem]}
    assert set(groups[SPEC.stem].split(", ")) == expected_shapes(SPEC)
    assert "tall" not in verified.stdout  # the shapes of other specs are not claimed


@pytest.mark.parametrize("name", ["householder_product", "ormqr"])
def test_verify_names_a_spec_s_own_shapes_as_the_spec_gives_them(name):
    path = ROOT / "spec" / f"{name}.yaml"
    (checked,) = load_checked([path])
    named = {verify.shape_text(checked, label, values, None)
             for cv in checked.variants for label, values in verify.shapes(checked, cv)}
    assert named == expected_shapes(path) and named


def test_shapes_line_groups_specs_that_measured_the_same_shapes():
    rows = [{"spec": "a", "shapes": ["tall 6x4", "square 4x4"]},
            {"spec": "a", "shapes": ["square 4x4", "wide 3x5"]},
            {"spec": "b", "shapes": ["n=4 4x4"]},
            {"spec": "c", "shapes": ["tall 6x4", "square 4x4", "wide 3x5"]},
            # a variant's own shape goes before the next of its shapes already listed
            {"spec": "d", "shapes": ["left", "left,k=p", "right,square"]},
            {"spec": "d", "shapes": ["right", "right,square"]}]
    assert verify.shapes_line(rows) == ("shapes: a, c: tall 6x4, square 4x4, wide 3x5; "
                                        "b: n=4 4x4; d: left, left,k=p, right, right,square")


def test_bench_prints_a_progress_line_per_row_on_a_pipe(benched):
    rows = 4 * len(load_spec(SPEC).benchmarks)  # both frameworks, both directions
    progress = [m for m in map(BENCH_LINE.fullmatch, benched.stderr.splitlines()) if m]
    assert len(progress) == rows, benched.stderr
    assert [int(m[1]) for m in progress] == list(range(1, rows + 1))
    assert {int(m[2]) for m in progress} == {rows}
    assert {m[3] for m in progress} == {SPEC.stem}
    assert "\r" not in benched.stderr
    # the table on stdout: a line per row after its header and rule, no progress among them
    table = benched.stdout.split("\n\n")[0].splitlines()
    header = table[0].split()
    assert len(table) == 2 + rows
    assert header[:6] == ["spec", "backend", "options", "shape", "dtype", "dir"]
    assert "ratio" in header and "err" in header
    # each progress line is the row of the table (the same ratio and error)
    cells = {tuple(line.split()[:6]): line.split() for line in table[2:]}
    for m in progress:
        cell = cells[(m[3], m[4], m[5], m[6], m[7], m[8])]
        # --quick's one sample a side gives no ratio: the line says so, the cell is "-"
        assert m[9] == f"no ratio (n={cell[13]})" and cell[8] == "-"
        assert f"rel err {cell[9]} vs {cell[10]}" in m[0]


def test_progress_on_a_terminal_is_one_line_rewritten_then_cleared():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    tty, pipe = Terminal(), io.StringIO()
    for stream in (tty, pipe):
        progress = Progress("verify", 2, stream)
        progress.running("qr mode=r tall real")
        progress.finished("qr: 45 checks, 0 failed (1.0 s)")
        progress.finished("svd: 30 checks, 0 failed (2.0 s)")
        progress.done()
    assert pipe.getvalue() == ("verify 1/2 qr: 45 checks, 0 failed (1.0 s)\n"
                               "verify 2/2 svd: 30 checks, 0 failed (2.0 s)\n")
    text = tty.getvalue()
    assert "\n" not in text and text.startswith("\rverify 1/2 qr mode=r tall real")
    assert "\rverify 2/2 svd: 30 checks, 0 failed (2.0 s)" in text
    assert text.endswith("\r") and text.rsplit("\r", 2)[1].strip() == ""  # cleared
