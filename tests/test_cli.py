"""The command line: help everywhere, JSON tables, the main job's verdict, exit codes."""
import json
import subprocess
import sys

import pytest

from generator.render import ROOT


def cli(*args, check=False):
    return subprocess.run([sys.executable, "cli.py", *args], cwd=ROOT, capture_output=True,
                          text=True, check=check)


@pytest.mark.parametrize("command", [[], ["generate"], ["list"], ["verify"], ["bench"]])
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


def test_verify_passes_every_check_and_reports_json():
    result = cli("verify", "--no-generate", "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 0, result.stderr
    rows = report["rows"]
    checks = {(r["variant"], r["backend"], r["check"]): r for r in rows}
    # every backend that ran has fd, adjoint and numpy rows for every variant, all passing
    for variant in ("mode=reduced", "mode=complete", "mode=r"):
        for backend in ("numpy", "torch", "jax"):
            for check in ("fd", "adjoint", "numpy"):
                assert checks[(variant, backend, check)]["status"] == "pass"
    assert checks[("mode=r", "torch", "native")]["status"] == "refuses"
    assert checks[("mode=complete", "torch", "native")]["native_refuses"] == ["tall"]
    assert all(r["status"] in ("pass", "refuses", "n/a") for r in rows)
