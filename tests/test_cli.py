"""The command line: help everywhere, JSON tables, the main job's verdict, exit codes."""
import json
import subprocess
import sys

import pytest

import ladder
from factorules.compiler.paths import ROOT
from spec_cases import SPECS, native_function


def cli(*args, check=False):
    return subprocess.run([sys.executable, "cli.py", *args], cwd=ROOT, capture_output=True,
                          text=True, check=check)


@pytest.mark.parametrize("command", [[], ["generate"], ["list"], ["verify"], ["bench"],
                                     ["audit"], ["new"]])
def test_every_command_has_help(command):
    result = cli(*command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: cli.py")


def test_bad_arguments_exit_2():
    assert cli("frobnicate").returncode == 2
    assert cli("verify", "--no-such-flag").returncode == 2


def test_list_json_names_every_variant_and_case():
    rows = json.loads(cli("list", "--json", check=True).stdout)
    by_variant = {r["variant"]: r for r in rows if r["spec"] == "qr"}
    assert set(by_variant) == {"mode=reduced", "mode=complete", "mode=r"}
    assert by_variant["mode=complete"]["cases"] == ["m > n", "m == n", "m < n"]
    assert by_variant["mode=r"]["outputs"] == ["R"]
    assert by_variant["mode=reduced"]["backends"] == ["numpy", "torch", "jax", "cupy"]


# the specs `cli.py verify` runs on in the sampled ladder: those asserted on by name, one
# with no native function (lq), one with a gauge (eigh); every spec under --full (the rule
# ladder of tests/test_rules.py checks every spec's rules the same ways)
VERIFIED = [c for c in SPECS if ladder.FULL or c.spec.name in ("qr", "cholesky", "lq", "eigh")]


def test_verify_passes_every_check_and_reports_json():
    result = cli("verify", "--no-generate", "--json", *(c.spec.name for c in VERIFIED))
    report = json.loads(result.stdout)  # stdout is the JSON alone
    assert result.returncode == 0, result.stderr
    # the progress goes to stderr (a pipe here), with --json too: a line per spec, in order
    progress = [line.split()[1:3] for line in result.stderr.splitlines()
                if line.startswith("verify ")]
    names = sorted(c.spec.name for c in VERIFIED)
    assert progress == [[f"{i}/{len(names)}", f"{name}:"] for i, name in enumerate(names, 1)]
    rows = report["rows"]
    checks = {(r["variant"], r["backend"], r["check"]): r for r in rows if r["spec"] == "qr"}
    # every backend that ran has fd, adjoint and numpy rows for every variant, all passing
    for variant in ("mode=reduced", "mode=complete", "mode=r"):
        for backend in ("numpy", "torch", "jax"):
            for check in ("fd", "adjoint", "numpy"):
                assert checks[(variant, backend, check)]["status"] == "pass"
    assert checks[("mode=r", "torch", "native")]["status"] == "refuses"
    assert checks[("mode=complete", "torch", "native")]["native_refuses"] == ["tall"]
    assert all(r["status"] in ("pass", "refuses", "n/a") for r in rows)
    cholesky = {(r["variant"], r["backend"], r["check"]): r for r in rows
                if r["spec"] == "cholesky"}
    for variant in ("upper=False", "upper=True"):
        for backend in ("torch", "jax"):
            for check in ("fd", "adjoint", "numpy", "autodiff", "native"):
                assert cholesky[(variant, backend, check)]["status"] == "pass"
    # every spec and variant is in the table; where torch.linalg / jax.numpy.linalg has a
    # function of the spec's name (eigh, eigvalsh: gauge outputs aligned), it is compared
    by_spec = {(r["spec"], r["variant"], r["backend"], r["check"]): r for r in rows}
    assert {r["spec"] for r in rows} == {c.spec.name for c in VERIFIED}
    for checked in VERIFIED:
        name = checked.spec.name
        for cv in checked.variants:
            for backend in ("numpy", "torch", "jax"):
                for check in ("fd", "adjoint", "numpy"):
                    assert by_spec[(name, cv.variant.label, backend, check)]["status"] == "pass"
            for backend in ("torch", "jax"):
                native = by_spec[(name, cv.variant.label, backend, "native")]
                if native_function(backend, name) is None:
                    assert native["status"] == "n/a"
                else:
                    assert native["status"] in ("pass", "refuses"), native
                    assert native["max_rel_err"] is not None or native["native_refuses"]


# -- cli.py new --------------------------------------------------------------------------------
def test_new_scaffolds_a_working_commented_spec(tmp_path):
    from factorules.audit import audit, mutate
    from factorules.compiler import pipeline
    from factorules.compiler.check import check_spec
    from factorules.compiler.spec_loader import load_spec

    result = cli("--spec-dir", str(tmp_path), "new", "mychol")
    assert result.returncode == 0, result.stderr
    path = tmp_path / "mychol.yaml"
    text = path.read_text()
    for key in ("name:", "summary:", "references:", "notes:", "dims:", "inputs:", "options:",
                "variants:", "outputs:", "defining:", "cases:", "jvp:", "vjp:", "signatures:",
                "benchmarks:"):
        assert f"\n{key}" in text or f" {key}" in text, key
    assert text.count("\n#") >= 5  # commented
    spec = load_spec(path)
    checked = check_spec(spec)
    assert spec.name == "mychol"
    results = audit.audit_spec(checked)
    assert results and all(r.passed for r in results)
    assert all(o.killed for o in mutate.run(spec))
    files = pipeline.render(tmp_path)
    assert {"generated/numpy/mychol.py", "generated/torch/mychol.py", "generated/jax/mychol.py",
            "generated/cupy/mychol.py"} <= set(files)


def test_new_refuses_a_bad_name_an_existing_spec_and_a_missing_folder(tmp_path):
    assert cli("--spec-dir", str(tmp_path), "new", "mychol").returncode == 0
    again = cli("--spec-dir", str(tmp_path), "new", "mychol")
    assert again.returncode == 2 and "already exists" in again.stderr
    bad = cli("--spec-dir", str(tmp_path), "new", "My-Op")
    assert bad.returncode == 2 and "not a valid spec name" in bad.stderr
    missing = cli("--spec-dir", str(tmp_path / "nope"), "new", "x")
    assert missing.returncode == 2 and "no such folder" in missing.stderr
