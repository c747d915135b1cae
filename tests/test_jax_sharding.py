"""Batch parallelism of the generated JAX rules: ``jax.jit(jax.grad(loss))`` through every
operation of generated/jax on a batch of matrices sharded over a mesh of four host devices keeps
the batch sharding, compiles to HLO without collectives, and equals the computation on one
device; an operation whose JAX primal is a host call (jax.pure_callback) gathers the batch
and equals it too.

The work runs in one process started with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (besides the flags conftest.py sets):
the device count is fixed when JAX starts, and this process has started it with one.  The
process (tests/jax_sharding_child.py) reports per case as JSON; each test here asserts one
case.
"""
from __future__ import annotations

import pytest

import jax_sharding_child as child
from factorules.compiler.paths import ROOT, SPEC_DIR
from host_devices import run_json

DEVICES = 4
assert child.BATCH % DEVICES == 0
CASE_IDS = [(dtype, name) for dtype, names in child.DTYPES.items() for name in names]


def _host_operations() -> set[str]:
    """The operations whose JAX primal is a host call ('host: true': jax.pure_callback)."""
    from spec_cases import SPECS
    return {c.spec.name for c in SPECS
            if any(s.backend == "jax" and s.host for s in c.spec.signatures)}


HOST = _host_operations()
OPERATIONS = [(dtype, name) for dtype, name in CASE_IDS
              if name != "control" and name.split()[0] not in HOST]
HOST_CASES = [(dtype, name) for dtype, name in CASE_IDS if name.split()[0] in HOST]


@pytest.fixture(scope="module")
def report():
    out = run_json("jax_sharding_child.py", DEVICES, *child.DTYPES)
    return {(r["dtype"], r["case"]): r for r in out["results"]}


def _case(report, dtype, name):
    result = report[(dtype, name)]
    assert result["error"] is None, result["error"]
    return result


@pytest.mark.parametrize("dtype, name", OPERATIONS, ids=[f"{d}-{n}" for d, n in OPERATIONS])
def test_grad_keeps_the_batch_sharding_without_collectives(report, dtype, name):
    result = _case(report, dtype, name)
    assert result["sharding_kept"], (result["input_shardings"], result["gradient_shardings"])
    assert set(result["gradient_devices"]) == {DEVICES}
    assert result["collectives"] == [], result["collectives"]
    # the same LAPACK calls on the same matrices: equal to the last bit, here
    assert result["max_rel_err"] <= 1e-14, result["max_rel_err"]
    assert result["smallest_gradient_max"] > 0.1  # a gradient, not zeros equal to zeros


@pytest.mark.parametrize("dtype, name", HOST_CASES, ids=[f"{d}-{n}" for d, n in HOST_CASES])
def test_a_host_primal_gathers_the_batch_and_gives_the_same_gradient(report, dtype, name):
    """jax.pure_callback runs on one device: XLA gathers a sharded batch for it, and what
    follows is replicated (docs/spec-language.md, signatures: host).  The gradient is the
    one-device one all the same.  Should JAX come to partition callbacks over a batch, this
    fails: move the operation back to the test above."""
    result = _case(report, dtype, name)
    assert set(result["gradient_shardings"]) == {"P()"}, result["gradient_shardings"]
    assert result["max_rel_err"] <= 1e-14, result["max_rel_err"]
    assert result["smallest_gradient_max"] > 0.1


def test_a_loss_coupling_the_batch_compiles_to_collectives(report):
    """The control: the search for collectives finds those a batch-coupled loss needs."""
    result = _case(report, "float64", "control")
    assert "all-reduce" in result["collectives"], result["collectives"]
    assert result["max_rel_err"] <= 1e-12


def test_every_generated_jax_operation_is_a_case():
    """The cases name every operation generated/jax has a module of (one per spec)."""
    operations = {path.stem for path in SPEC_DIR.glob("*.yaml")}
    assert all((ROOT / "generated" / "jax" / f"{name}.py").is_file() for name in operations)
    covered = {name.split()[0] for _, name in OPERATIONS + HOST_CASES}
    assert operations == covered, (sorted(operations - covered), sorted(covered - operations))
    assert {f"qr mode={mode!r}{p}" for mode in ("reduced", "complete", "r")
            for p in ("", " pivoting=True")} <= {name for _, name in OPERATIONS}
