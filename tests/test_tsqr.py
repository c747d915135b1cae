"""generated.jax.tsqr (templates/jax/distributed.py): the QR of a matrix whose rows are sharded
over four host devices against the single-device qr of the whole matrix under tsqr's sign
convention (R's diagonal real and non-negative), values, gradient and JVP; its shardings and
collectives; its errors; and the same across two processes, as on two hosts.

The four-device work runs in one process started with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (tests/jax_tsqr_child.py, which reports
per case as JSON); the errors that need no second device are checked here, on a mesh of this
process's one device; the processes that meet through jax.distributed are
tests/jax_tsqr_multiprocess_child.py.
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys

import numpy as np
import pytest

import jax_tsqr_child as child
import jax_tsqr_multiprocess_child as multi
from factorules.compiler.paths import ROOT
from host_devices import device_env, run_json

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
from jax.sharding import Mesh  # noqa: E402

import generated.jax as fj  # noqa: E402

DEVICES = 4
# values, gradient and JVP against the single-device computation: double precision (the
# limit asked of tsqr), single precision (about 100 units of float32 rounding)
TOLERANCE = {"float64": 1e-10, "complex128": 1e-10, "float32": 1e-5, "complex64": 1e-5}
EPS = {"float64": 2.2e-16, "complex128": 2.2e-16, "float32": 1.2e-7, "complex64": 1.2e-7}


@pytest.fixture(scope="module")
def report():
    return run_json("jax_tsqr_child.py", DEVICES)


@pytest.mark.parametrize("index", range(len(child.CASES)),
                         ids=[f"{d}-{r * DEVICES}x{n}" for d, r, n in child.CASES])
def test_tsqr_equals_single_device_qr_values_gradient_and_jvp(report, index):
    result = report["results"][index]
    dtype = result["dtype"]
    assert (dtype, result["m"] // DEVICES, result["n"]) == child.CASES[index]
    for key in ("q_err", "r_err", "grad_err", "jvp_q_err", "jvp_r_err"):
        assert result[key] <= TOLERANCE[dtype], (key, result[key])
    assert result["residual"] <= 50 * EPS[dtype] and result["orthogonality"] <= 50 * EPS[dtype]
    assert result["diagonal_real_nonnegative"] and result["upper_triangular"]
    assert result["q_dtype"] == result["r_dtype"] == result["grad_dtype"] == dtype
    assert result["grad_max"] > 1  # a gradient, not zeros equal to zeros


@pytest.mark.parametrize("index", range(len(child.CASES)),
                         ids=[f"{d}-{r * DEVICES}x{n}" for d, r, n in child.CASES])
def test_tsqr_shardings_and_collectives(report, index):
    """Q and the gradient are sharded by rows as A, R is replicated; the forward pass
    communicates by one all-gather (of the local R factors) alone."""
    result = report["results"][index]
    assert result["q_spec"] == result["grad_spec"] == "P('rows', None)"
    assert result["grad_kept"] and result["r_replicated"]
    assert result["forward_collectives"] == ["all-gather"]
    assert set(result["grad_collectives"]) <= {"all-gather", "all-reduce", "reduce-scatter"}


def test_tsqr_takes_an_unsharded_host_array(report):
    first = report["results"][0]
    assert first["host_input_q_spec"] == "P('rows', None)"
    assert first["host_input_err"] <= TOLERANCE[first["dtype"]]


def test_tsqr_rows_must_split_evenly_into_tall_blocks(report):
    assert report["errors"]["uneven"] == (
        "tsqr: A's 33 rows do not split evenly over the 4 devices of mesh axis 'rows' "
        "(m must be divisible by 4)")
    assert report["errors"]["not_tall"] == (
        "tsqr: each device's block of A must be tall: 16 rows over 4 devices is 4 rows per "
        "block, fewer than A's 5 columns (need m / 4 >= 5, i.e. m >= 20)")


# -- on this process's one device --------------------------------------------------------------

@pytest.fixture(scope="module")
def mesh():
    return Mesh(np.array(jax.devices()[:1]), ("rows",))


def test_tsqr_on_one_device_is_the_normalized_qr_also_under_jit(mesh):
    a = np.random.default_rng(0).standard_normal((7, 3))
    want = fj.distributed.positive(*fj.qr(jnp.asarray(a)))
    for q, r in (fj.tsqr(a, mesh), jax.jit(fj.tsqr, static_argnums=(1, 2))(a, mesh, "rows")):
        assert np.max(np.abs(q - want.Q)) <= 1e-14 and np.max(np.abs(r - want.R)) <= 1e-14
        assert np.all(np.diagonal(r) > 0)


def test_positive_flips_the_signs_of_r_rows_and_q_columns():
    q = np.eye(3)
    r = np.array([[-2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 0.0]])
    got_q, got_r = fj.distributed.positive(jnp.asarray(q), jnp.asarray(r))
    assert np.array_equal(got_r, [[2.0, -1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 0.0]])
    assert np.array_equal(got_q, np.diag([-1.0, 1.0, 1.0]))  # a zero diagonal entry: kept
    z = np.array([[1j, 2.0], [0.0, -1j]])
    zq, zr = fj.distributed.positive(jnp.eye(2, dtype=complex), jnp.asarray(z))
    assert np.allclose(np.diagonal(zr), [1, 1], rtol=0, atol=1e-15)
    assert np.allclose(zq @ zr, z, rtol=0, atol=1e-15)


@pytest.mark.parametrize("a, error, message", [
    (np.ones(4), ValueError, r"^tsqr: A must be a matrix or a stack of matrices \(ndim >= 2\), "
                             r"got shape \(4,\)$"),
    (np.ones((2, 4, 2)), ValueError, r"^tsqr: A must be a matrix \(ndim 2; no batch axes\), "
                                     r"got shape \(2, 4, 2\)$"),
    (np.ones((4, 2), dtype=np.float16), NotImplementedError,  # as jnp.linalg.qr refuses it
     r"^tsqr: A must be float32, float64, complex64 or complex128, got float16$"),
    (np.ones((0, 3)), ValueError,
     r"^tsqr: A must have at least one row and one column, got shape \(0, 3\)$"),
    (np.ones((3, 0)), ValueError,
     r"^tsqr: A must have at least one row and one column, got shape \(3, 0\)$"),
    (np.ones((3, 4)), ValueError, r"^tsqr: each device's block of A must be tall: 3 rows over "
                                  r"1 devices is 3 rows per block, fewer than A's 4 columns"),
], ids=["vector", "batch", "float16", "no rows", "no columns", "wide"])
def test_tsqr_rejects_bad_input(mesh, a, error, message):
    with pytest.raises(error, match=message):
        fj.tsqr(a, mesh)


@pytest.mark.parametrize("integer, inexact", [(np.int32, np.float32), (np.int64, np.float64)])
def test_tsqr_promotes_integers_as_qr_does(mesh, integer, inexact):
    a = np.arange(8, dtype=integer).reshape(4, 2) ** 2
    q, r = fj.tsqr(a, mesh)
    want_q, want_r = fj.tsqr(a.astype(inexact), mesh)
    assert q.dtype == want_q.dtype == jnp.linalg.qr(a)[0].dtype == inexact
    assert np.array_equal(q, want_q) and np.array_equal(r, want_r)


def test_tsqr_rejects_a_bad_mesh_or_axis(mesh):
    a = np.ones((4, 2))
    with pytest.raises(TypeError, match=r"^tsqr: mesh must be a jax.sharding.Mesh, got list$"):
        fj.tsqr(a, jax.devices())
    with pytest.raises(ValueError, match=r"^tsqr: axis_name 'cols' is not an axis of the mesh "
                                         r"\(its axes: \('rows',\)\)$"):
        fj.tsqr(a, mesh, "cols")
    two = Mesh(np.array(jax.devices()[:1]).reshape(1, 1), ("rows", "cols"))
    with pytest.raises(ValueError, match=r"^tsqr: the mesh has axes \('rows', 'cols'\): give "
                                         r"axis_name"):
        fj.tsqr(a, two)
    q, r = fj.tsqr(a + np.eye(4, 2), two, "rows")
    assert np.allclose(q @ r, a + np.eye(4, 2), rtol=0, atol=1e-14)


# -- as on several hosts: processes that meet through jax.distributed -------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_tsqr_across_processes_as_on_several_hosts():
    """Two processes of two devices each (jax.distributed.initialize on localhost, gloo
    collectives, A from each process's rows by jax.make_array_from_process_local_data): the
    rows of Q and of the gradient each holds, and R, equal the single-device computation."""
    processes, port = 2, _free_port()
    script = str(ROOT / "tests" / "jax_tsqr_multiprocess_child.py")
    env = device_env(multi.DEVICES_PER_PROCESS)
    running = [subprocess.Popen([sys.executable, script, str(i), str(processes), str(port)],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
               for i in range(processes)]
    reports = []
    try:
        for proc in running:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err[-3000:]
            reports.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in running:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert [r["process"] for r in reports] == list(range(processes))
    for r in reports:
        assert r["processes"] == processes and r["local_devices"] == multi.DEVICES_PER_PROCESS
        assert r["devices"] == processes * multi.DEVICES_PER_PROCESS
        assert r["rows_held"] == multi.M // processes
        assert max(r["q_err"], r["r_err"], r["grad_err"]) <= 1e-10, r
        assert r["grad_spec"] == "P('rows', None)"
