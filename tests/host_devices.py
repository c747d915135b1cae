"""Processes with XLA's host platform split into several devices, for the tests of sharded JAX
computations (tests/test_jax_sharding.py, tests/test_tsqr.py): the device count is fixed when
JAX starts, and the test process has started it with one."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from factorules.compiler.paths import ROOT


def device_env(count: int) -> dict:
    """This process's environment (conftest.py's thread flags and compilation cache among
    it) with XLA's host platform split into ``count`` devices.  The device count goes first:
    XLA's flag parser ignores what follows a word without the leading "--" (jax 0.10.2), so a
    stray word in the caller's XLA_FLAGS cannot drop it."""
    env = dict(os.environ)
    flags = [f for f in env.get("XLA_FLAGS", "").split()
             if not f.startswith("--xla_force_host_platform_device_count")]
    env["XLA_FLAGS"] = " ".join([f"--xla_force_host_platform_device_count={count}", *flags])
    return env


def run_json(script: str, count: int, *args: str, timeout: float = 600) -> dict:
    """The JSON of the last stdout line of tests/<script> run from the repository root on
    ``count`` host devices (its stderr in the assertion if it fails); asserts it saw them."""
    result = subprocess.run([sys.executable, str(ROOT / "tests" / script), *args], cwd=ROOT,
                            env=device_env(count), capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["devices"] == count and out["platform"] == "cpu", out
    return out
