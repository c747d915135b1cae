"""Q as an operator: a loss through geqrf -> ormqr, differentiated w.r.t. A, never forms Q.

The loss (factorules/tools/memory.py): for A m x n, (a, tau) = geqrf(A), Q the m x m product of its
Householder reflectors,

    y = Q w + Q [v; 0] = ormqr(a, tau, w[:, None]) + ormqr(a, tau, [v; 0][:, None]),
    loss = Re <g, y>.

Its gradient w.r.t. A, by NumPy's explicit pullbacks, torch.autograd and jax.grad, must be
the central finite difference of the loss and the gradient of the dense path
(Q = ormqr(a, tau, eye(m)), y = Q w + Q[:, :n] v); and NumPy's forward and backward at
m = 20000 must stay a small multiple of A's size, far from the m * m * 8 bytes of a dense Q.
Complex gradients are compared in PyTorch's convention (dL/dRe A + i dL/dIm A; jax.grad
returns its conjugate).
"""
from __future__ import annotations

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from generated import jax as gj
from generated import numpy as gn
from factorules.tools import memory
from factorules.compiler.paths import ROOT

jax.config.update("jax_enable_x64", True)

SHAPES = [(7, 3), (5, 5)]
DTYPES = ["float64", "complex128"]
BACKENDS = ["numpy", "torch", "jax"]
FD_STEP = 1e-6
FD_TOLERANCE = 1e-6      # central differences: truncation O(h^2), cancellation O(eps / h)
DENSE_TOLERANCE = 1e-10  # two algebraically equal gradients in float64


def _data(m, n, dtype):
    return memory.inputs(m, n, dtype, seed=10 * m + n)


def _rel(got, want):
    return float(np.linalg.norm(np.asarray(got) - want) / np.linalg.norm(want))


def _loss(A, w, v, g):
    """The loss, forward only, NumPy: the function the finite differences differentiate."""
    m, n = A.shape
    a, tau = gn.geqrf(A)
    padded = np.concatenate([v, np.zeros(m - n, v.dtype)])[:, None]
    y = gn.ormqr(a, tau, w[:, None])[:, 0] + gn.ormqr(a, tau, padded)[:, 0]
    return float(np.vdot(g, y).real)


def _finite_differences(A, w, v, g):
    """Central differences of the loss, entry by entry (real and imaginary parts)."""
    grad = np.zeros(A.shape, A.dtype)
    directions = [1.0, 1j] if np.iscomplexobj(A) else [1.0]
    for index in np.ndindex(A.shape):
        for unit in directions:
            E = np.zeros(A.shape, A.dtype)
            E[index] = unit * FD_STEP
            slope = (_loss(A + E, w, v, g) - _loss(A - E, w, v, g)) / (2 * FD_STEP)
            grad[index] += unit * slope
    return grad


def _jax_paths(A, w, v, g):
    m, n = A.shape
    A, w, v, g = (jnp.asarray(x) for x in (A, w, v, g))

    def operator(A):
        a, tau = gj.geqrf(A)
        padded = jnp.concatenate([v, jnp.zeros(m - n, v.dtype)])[:, None]
        y = gj.ormqr(a, tau, w[:, None])[:, 0] + gj.ormqr(a, tau, padded)[:, 0]
        return jnp.real(jnp.vdot(g, y))

    def dense(A):
        a, tau = gj.geqrf(A)
        Q = gj.ormqr(a, tau, jnp.eye(m, dtype=A.dtype))
        return jnp.real(jnp.vdot(g, Q @ w + Q[:, :n] @ v))

    # jax.grad of a real function of complex A is the conjugate of PyTorch's convention
    return {path: (float(f(A)), np.conj(np.asarray(jax.grad(f)(A))))
            for path, f in (("operator", operator), ("dense", dense))}


def _paths(backend, A, w, v, g):
    """{"operator": (loss, gradient), "dense": (loss, gradient)} by one backend."""
    if backend == "numpy":
        return {"operator": memory.numpy_operator(A, w, v, g),
                "dense": memory.numpy_dense(A, w, v, g)}
    if backend == "torch":
        tensors = [torch.from_numpy(x) for x in (A, w, v, g)]
        return {path: (float(loss), gA.numpy())
                for path, (loss, gA) in (("operator", memory.torch_operator(*tensors)),
                                         ("dense", memory.torch_dense(*tensors)))}
    return _jax_paths(A, w, v, g)


@pytest.fixture(scope="module")
def reference():
    """Per (shape, dtype): the inputs, the loss and its finite-difference gradient."""
    table = {}
    for m, n in SHAPES:
        for dtype in DTYPES:
            A, w, v, g = _data(m, n, dtype)
            table[(m, n, dtype)] = ((A, w, v, g), _loss(A, w, v, g),
                                    _finite_differences(A, w, v, g))
    return table


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_operator_gradient_is_finite_differences(reference, backend, dtype, shape):
    (A, w, v, g), loss, fd = reference[(*shape, dtype)]
    got_loss, got = _paths(backend, A, w, v, g)["operator"]
    assert got.shape == A.shape and got.dtype == A.dtype
    assert abs(got_loss - loss) <= 1e-12 * max(1.0, abs(loss))
    assert np.linalg.norm(fd) > 0.1
    assert _rel(got, fd) < FD_TOLERANCE, f"{backend}: relative error {_rel(got, fd):.2e}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_operator_gradient_is_the_dense_paths(reference, backend, dtype, shape):
    (A, w, v, g), loss, _ = reference[(*shape, dtype)]
    paths = _paths(backend, A, w, v, g)
    (op_loss, op_grad), (dense_loss, dense_grad) = paths["operator"], paths["dense"]
    assert abs(op_loss - dense_loss) <= 1e-12 * max(1.0, abs(loss))
    assert _rel(op_grad, dense_grad) < DENSE_TOLERANCE, \
        f"{backend}: relative difference {_rel(op_grad, dense_grad):.2e}"


def test_ormqr_applies_the_product_of_the_reflectors():
    """What the loss means: ormqr(a, tau, C) is H_1 ... H_k C, the full m x m Q."""
    A, w, _, _ = _data(7, 3, "complex128")
    a, tau = gn.geqrf(A)
    Q = np.eye(7, dtype=A.dtype)
    for i in range(3):
        h = np.zeros(7, A.dtype)
        h[i], h[i + 1:] = 1, a[i + 1:, i]
        Q = Q @ (np.eye(7) - tau[i] * np.outer(h, h.conj()))
    np.testing.assert_allclose(gn.ormqr(a, tau, w[:, None])[:, 0], Q @ w, atol=1e-12)
    np.testing.assert_allclose(Q[:, :3] @ np.triu(a[:3]), A, atol=1e-12)


# -- memory -------------------------------------------------------------------------------------

M, N = 20000, 8
A_BYTES = M * N * 8                    # 1.28 MB
Q_BYTES = M * M * 8                    # 3.2 GB: one dense m x m array
ALLOWANCE = 1 << 30                    # the child's address space beyond its start: no m x m
# The bound: a (geqrf's output), the cotangent of a and gA are m x n arrays that must all be
# alive in geqrf's pullback: 3 x A is the floor; the target (factorules.tools.memory.TARGET,
# 4 x A) leaves room for both ormqr pullbacks' cotangents and the rules' row blocks.


@pytest.fixture(scope="module")
def measured():
    """NumPy forward + backward at m = 20000, n = 8 in a fresh process, under tracemalloc."""
    return memory.run_child({"backend": "numpy", "path": "operator", "m": M, "n": N,
                             "allowance": ALLOWANCE}, timeout=300)


def _steps(result) -> str:
    return "; ".join(f"{s['step']}: peak {s['peak'] / A_BYTES:.3g} x A, live after "
                     f"{s['live'] / A_BYTES:.3g} x A" for s in result.get("steps", []))


def test_operator_path_never_allocates_an_m_by_m_array(measured):
    assert measured["error"] is None, \
        f"{measured['error']} at {measured['where']} (m = {M}; steps so far: {_steps(measured)})"
    peak = measured["tracemalloc_peak"]
    assert [s["step"] for s in measured["steps"]] == list(memory.STEPS)
    assert 0 < peak < Q_BYTES / 100, f"peak {peak} bytes: {_steps(measured)}"


def test_operator_path_peak_is_a_small_multiple_of_a(measured):
    """Forward + backward hold at most memory.TARGET x A (3.72 x A measured here): the NumPy
    rules of geqrf and ormqr evaluate their m-row values a block of rows at a time (the
    specs' row_blocks), so that no m x n temporary is whole (7 to 9 x A unblocked)."""
    assert measured["error"] is None, f"{measured['error']} at {measured['where']}"
    peak = measured["tracemalloc_peak"]
    assert peak >= A_BYTES  # gA alone is as large as A
    assert peak <= memory.TARGET * A_BYTES, \
        f"peak {peak / A_BYTES:.3g} x A (> {memory.TARGET:g} x A): {_steps(measured)}"


def test_bench_memory_command_reports_both_paths():
    """`cli.py bench-memory` (small sizes): a row per path and size, the dense Q at m
    computed, the verdict on the target, JSON like the other commands."""
    import json

    result = subprocess.run([sys.executable, "cli.py", "bench-memory", "--backend", "numpy",
                             "--m", "600", "--n", "4", "--dense-m", "200", "--json"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    rows = {(r["path"], r["m"]): r for r in report["rows"]}
    assert set(rows) == {("operator", 600), ("dense", 600), ("operator", 200), ("dense", 200)}
    assert rows[("dense", 600)]["status"] == "computed"
    assert rows[("dense", 600)]["peak_bytes"] == 600 * 600 * 8
    assert rows[("dense", 200)]["status"] == "ok"
    assert rows[("dense", 200)]["peak_bytes"] >= 200 * 200 * 8  # it holds Q
    assert rows[("operator", 200)]["grad_norm"] == pytest.approx(
        rows[("dense", 200)]["grad_norm"], rel=1e-10)
    (verdict,) = report["target"]["verdicts"]
    assert verdict["met"] == (rows[("operator", 600)]["times_a"] is not None
                              and rows[("operator", 600)]["times_a"] <= memory.TARGET)
    assert (report["profiles"] == []) == verdict["met"]


def test_bench_memory_compares_the_tall_qr_gradient_with_torchs():
    """torch's tall-QR rows of `cli.py bench-memory` (the gradient through the generated rule
    and through torch's own, each in a fresh process) and the verdict comparing their peaks."""
    from factorules.tools.memory_table import row

    # m x 4 float64 arrays of 640 KB: above malloc's mmap threshold (128 KB), so each is pages
    # of its own and the resident peak grows (at 3000 x 4, 96 KB arrays could reuse freed heap
    # pages and leave it still)
    results = [memory.run_child({"backend": "torch", "path": path, "m": 20000, "n": 4},
                                timeout=300) for path in memory.QR_PATHS]
    for r in results:
        assert r["error"] is None and r["rss_peak"] > 0, r
    ours, native = results
    assert ours["grad_norm"] == pytest.approx(native["grad_norm"], rel=1e-10)
    verdicts, text = memory._verdict([row(r, False) for r in results], 20000, 4)
    (qr,) = [v for v in verdicts if v.get("path") == "qr"]
    assert qr["met"] == (qr["times_a"] <= qr["native_times_a"])
    assert "the tall QR's gradient" in text and ("NOT MET" in text) != qr["met"]
