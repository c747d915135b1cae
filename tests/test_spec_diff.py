"""`cli.py diff OLD NEW`: the summary names what a spec edit changes (rules, native calls,
options, files) and the unified diff shows it; unchanged specs give no file lines."""
from __future__ import annotations

import subprocess
import sys

from factorules.compiler.paths import ROOT
from written_rules import qr_with_written_jvps

QR = ROOT / "spec" / "qr.yaml"
# the tall JVP's (a YAML anchor that three cases share)
B_LINE = "          C = solve_triangular(R, dA, upper=True, left=False)   # dA R^-1\n          B = Q.H @ C"


def cli(*args):
    return subprocess.run([sys.executable, "cli.py", "diff", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def test_an_edited_rule_and_call_are_named_and_diffed(tmp_path):
    """From qr's hand-written tall JVP (its written_jvp made its jvp), one statement edited,
    and SciPy's call, to the spec as it is: the derived JVP."""
    text = QR.read_text(encoding="utf-8")
    assert text.count(B_LINE) == 1
    written = qr_with_written_jvps(text, rules=("tall",))
    edited = written.replace(B_LINE, B_LINE.replace("B = Q.H @ C", "B = (C.H @ Q).H")).replace(
        'numpy: [{call: "numpy.linalg.qr(A, mode=mode)",',
        'numpy: [{call: "scipy.linalg.qr(A, mode=mode)", '
        'values: {mode: {reduced: economic, complete: full}},')
    old = tmp_path / "edited.yaml"  # any file name: the spec's own name places it
    old.write_text(edited, encoding="utf-8")
    result = cli(str(old), str(QR))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    lines = out.splitlines()
    assert lines[0] == f"diff: {old} -> {QR}"
    assert ("spec qr: numpy calls scipy.linalg.qr(A, mode=mode) mode: reduced->economic, "
            "complete->full -> numpy.linalg.qr(A, mode=mode)") in lines
    # torch's table, two entries, is as it was: no line
    # the edited statement is in the JVP shared (a YAML anchor) by three cases
    changed = [line for line in lines if line.startswith("rule ")]
    assert changed == [
        "rule qr mode=complete [m == n] jvp: changed (derived from the defining equation, "
        "5 -> 5 statements)",
        "rule qr mode=r [m >= n] jvp: changed (derived from the defining equation, "
        "4 -> 4 statements)",
        "rule qr mode=reduced [m >= n] jvp: changed (derived from the defining equation, "
        "5 -> 5 statements)"]
    files = {line.split(":")[0][5:] for line in lines if line.startswith("file ")}
    # the edited JVP changes the VJP derived from it: torch's fused kernels too
    assert files == {"docs/derivations/qr.md", "generated/torch/_fused_sources/qr.cpp"} | {
        f"generated/{b}/qr.py" for b in ("numpy", "torch", "jax", "cupy")}
    assert "+            B = _mm(Q.mH, C)" in out  # torch's, as printed
    assert "-B &= \\left(C^{H} Q\\right)^{H} \\\\" in out


def test_a_revision_against_itself_changes_nothing():
    result = cli("HEAD", "HEAD", "--no-pages")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "diff: HEAD -> HEAD"
    assert len(lines) == 2 and lines[1].endswith("rule(s) unchanged")
    assert int(lines[1].split()[0]) > 50


def test_a_new_option_value_is_an_options_line_and_new_rules(tmp_path):
    """A spec folder as a side: qr with mode 'economic', a copy of 'reduced'."""
    old = tmp_path / "old"
    new = tmp_path / "new"
    for folder in (old, new):
        folder.mkdir()
    (old / "qr.yaml").write_text(QR.read_text(encoding="utf-8"), encoding="utf-8")
    text = QR.read_text(encoding="utf-8")
    text = text.replace("mode: {values: [reduced, complete, r], default: reduced}",
                        "mode: {values: [reduced, complete, r, economic], default: reduced}")
    text = text.replace("  - when: {mode: r}\n",
                        "  - when: {mode: economic}\n    native: {mode: reduced}\n"
                        "    outputs:\n"
                        "      Q: {shape: [m, k], structure: orthonormal_columns}\n"
                        "      R: {shape: [k, n], structure: upper_triangular, diagonal: real}\n"
                        "    defining: [\"A = Q @ R\", \"Q.H @ Q = I\"]\n"
                        "    cases:\n"
                        "      - when: \"m >= n\"\n        jvp: *tall_jvp\n        vjp: *tall_vjp\n"
                        "      - when: \"m < n\"\n        jvp: *wide_jvp\n        vjp: *wide_vjp\n\n"
                        "  - when: {mode: r}\n", 1)
    delegate = ("delegate: {option: pivoting, call: \"qr_pivoted(A, mode=mode, "
                "check_singular=check_singular)\"}\n")
    text = text.replace(delegate, "")
    (new / "qr.yaml").write_text(text, encoding="utf-8")
    (old / "qr.yaml").write_text(QR.read_text(encoding="utf-8").replace(
        delegate, ""),
        encoding="utf-8")
    result = cli(str(old), str(new), "--summary", "--no-pages")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    switch = "check_singular in [True, False] (default True)"
    assert ("spec qr: options mode in ['reduced', 'complete', 'r'] (default 'reduced'), "
            f"{switch} -> mode in ['reduced', 'complete', 'r', 'economic'] (default 'reduced'), "
            f"{switch}") in lines
    added = sorted(line for line in lines if line.startswith("rule "))
    assert added == [
        "rule qr mode=economic [m < n] jvp: added (derived from the defining equation)",
        "rule qr mode=economic [m < n] vjp: added (written in the spec)",
        "rule qr mode=economic [m >= n] jvp: added (derived from the defining equation)",
        "rule qr mode=economic [m >= n] vjp: added (written in the spec)"]
    assert not any("+++" in line for line in lines)  # --summary: no unified diff


def test_a_side_that_is_nothing_is_bad_input():
    result = cli("no-such-revision-or-file")
    assert result.returncode == 2
    assert "'no-such-revision-or-file' is not a spec file, a spec folder or a git revision" \
        in result.stderr


def test_an_entry_for_older_versions_is_a_calls_line(tmp_path):
    """docs/signature-changes.md's example, backwards: qr without torch.qr's entry."""
    text = QR.read_text(encoding="utf-8")
    old_entry = ('{until: "1.8", call: "torch.qr(A, some=mode)", values: {mode: {reduced: true, '
                 'complete: false}}, signature: "(input, some=True, *, out=None)"}, ')
    assert text.count(old_entry) == 1
    new = tmp_path / "qr.yaml"
    new.write_text(text.replace(old_entry, ""), encoding="utf-8")
    result = cli(str(QR), str(new), "--summary", "--no-pages")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert ("spec qr: torch calls torch.qr(A, some=mode) mode: reduced->True, complete->False "
            "(until 1.8); torch.linalg.qr(A, mode=mode) (since 1.8) -> "
            "torch.linalg.qr(A, mode=mode) (since 1.8)") in lines
    assert "file generated/torch/qr.py: +1 -63" in lines
    assert not any(line.startswith("rule ") for line in lines)
