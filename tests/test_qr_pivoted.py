"""QR with column pivoting (spec/qr_pivoted.yaml) beyond the generic ladder of tests/test_rules.py
and the harnesses: the factorization is LAPACK's geqp3 in every backend (SciPy's pivots,
|R[i, i]| non-increasing), qr(A, pivoting=True) is qr_pivoted, ties go to the first column and
the derivative there is that of the returned branch, and what JAX's own pivoted QR does."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import torch

import generated.jax as fj
import generated.numpy as fn
import generated.torch as ft
from factorules.tools import natives

jax.config.update("jax_enable_x64", True)

MODES = ("reduced", "complete", "r")
SHAPES = {"tall": (7, 4), "square": (5, 5), "wide": (3, 6)}
SCIPY_MODE = {"reduced": "economic", "complete": "full"}


def draw(shape, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    if np.issubdtype(dtype, np.complexfloating):
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def as_numpy(x):
    return x.detach().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def call(backend, a, **options):
    if backend == "numpy":
        out = fn.qr_pivoted(a, **options)
    elif backend == "torch":
        out = ft.qr_pivoted(torch.tensor(a), **options)
    else:
        out = fj.qr_pivoted(jnp.asarray(a), **options)
    return [as_numpy(y) for y in out]


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", list(SHAPES.values()), ids=list(SHAPES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
def test_the_factorization_is_scipy_s_geqp3(backend, mode, shape, dtype):
    """A[:, P] = Q R with the pivots SciPy returns, |R[i, i]| non-increasing, P int32, for a
    stack of two matrices; mode='r' returns Q empty."""
    a = draw((2, *shape), dtype)
    q, r, p = call(backend, a, mode=mode)
    assert p.dtype == np.int32 and p.shape == (2, shape[1])
    tol = 1e-4 if dtype in (np.float32, np.complex64) else 1e-12
    for i in range(2):
        ref = scipy.linalg.qr(a[i], mode=SCIPY_MODE.get(mode, "economic"), pivoting=True)
        assert (p[i] == ref[2]).all()
        assert np.abs(r[i] - ref[1]).max() <= tol * np.abs(ref[1]).max()
        d = np.abs(np.diagonal(r[i]))
        assert (d[1:] <= d[:-1] * (1 + tol)).all()
        if mode == "r":
            assert q.size == 0
        else:
            assert np.abs(q[i] @ r[i] - a[i][:, p[i]]).max() <= 10 * tol * np.abs(a[i]).max()
    assert r.dtype == dtype


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
def test_qr_with_pivoting_is_qr_pivoted(backend):
    a = draw((2, 6, 4))
    mod = {"numpy": fn, "torch": ft, "jax": fj}[backend]
    x = {"numpy": a, "torch": torch.tensor(a), "jax": jnp.asarray(a)}[backend]
    dx = {"numpy": 2 * a, "torch": torch.tensor(2 * a), "jax": jnp.asarray(2 * a)}[backend]
    for mode in MODES:
        pivoted = mod.qr(x, mode=mode, pivoting=True)
        assert type(pivoted).__name__ == "Qr_pivotedResult" and pivoted._fields == ("Q", "R", "P")
        same = mod.qr_pivoted(x, mode=mode)
        assert all((as_numpy(u) == as_numpy(v)).all() for u, v in zip(pivoted, same))
        _, tangents = mod.qr_jvp(x, dx, mode=mode, pivoting=True)
        _, own = mod.qr_pivoted_jvp(x, dx, mode=mode)
        assert tangents.P is None and np.allclose(as_numpy(tangents.R), as_numpy(own.R))
        (_, _, p), pullback = mod.qr_vjp(x, mode=mode, pivoting=True)
        (_, r, _), own_pullback = mod.qr_pivoted_vjp(x, mode=mode)
        assert np.allclose(as_numpy(pullback(gR=r)), as_numpy(own_pullback(gR=r)))
    unpivoted = mod.qr(x, pivoting=False)
    assert unpivoted._fields == ("Q", "R")
    for bad in ("yes", 1, None):
        with pytest.raises(ValueError, match="qr: pivoting must be True or False"):
            mod.qr(x, pivoting=bad)
        with pytest.raises(ValueError, match="qr: pivoting must be True or False"):
            mod.qr_vjp(x, pivoting=bad)


def test_torch_pivots_live_where_a_lives_and_keep_no_graph():
    """The host copy (scipy.linalg.qr) is an implementation detail: the outputs are tensors of
    A's device and dtype, R carries a graph, P (int32) none."""
    a = torch.tensor(draw((5, 3)), requires_grad=True)
    q, r, p = ft.qr_pivoted(a)
    assert q.device == r.device == p.device == a.device
    assert r.dtype == a.dtype and p.dtype == torch.int32
    assert r.requires_grad and not p.requires_grad
    r.sum().backward()
    assert a.grad is not None and torch.isfinite(a.grad).all()


def tie(dtype=np.float64):
    """Columns 1 and 3 equal (a tie at the first step), the others of smaller norm."""
    a = draw((6, 4), dtype, seed=3)
    a[:, 0] *= 0.1
    a[:, 2] *= 0.1
    a[:, 3] = a[:, 1]
    return a


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
def test_a_tie_goes_to_the_first_column(backend):
    _, _, p = call(backend, tie())
    assert p[0] == 1


def test_at_a_tie_the_derivative_is_that_of_the_returned_branch():
    """At the tie the rules differentiate A -> qr(A[:, P]) with the returned P held fixed:
    the finite differences of the unpivoted QR of A[:, P] (sign-normalized like LAPACK's)."""
    a = tie()
    # column 3 (equal to 1) is not full rank with it: perturb it off the tie but keep the
    # norms tied, so that the pivots stay ambiguous at A and A stays of full rank
    rng = np.random.default_rng(7)
    v = rng.standard_normal(6)
    v -= (v @ a[:, 1]) / (a[:, 1] @ a[:, 1]) * a[:, 1]
    a[:, 3] = a[:, 1] * np.sqrt(1 - 0.25) + v / np.linalg.norm(v) * 0.5 * np.linalg.norm(a[:, 1])
    assert np.isclose(np.linalg.norm(a[:, 3]), np.linalg.norm(a[:, 1]))
    _, r_pivoted, p = fn.qr_pivoted(a)
    assert p[0] == 1
    da = draw((6, 4), seed=5)
    _, tangents = fn.qr_pivoted_jvp(a, da)
    # numpy.linalg.qr (geqrf) may pick other signs of R's diagonal than geqp3: those at A
    s = np.sign(np.diagonal(r_pivoted)) * np.sign(np.diagonal(np.linalg.qr(a[:, p])[1]))

    def unpivoted(x):
        q, r = np.linalg.qr(x[:, p])
        return q * s, s[:, None] * r

    h = 1e-6
    plus, minus = unpivoted(a + h * da), unpivoted(a - h * da)
    for j, t in enumerate((tangents.Q, tangents.R)):
        fd = (plus[j] - minus[j]) / (2 * h)
        assert np.abs(t - fd).max() <= 1e-7 * max(1, np.abs(fd).max())


def jax_native_jvp(a, da, mode):
    native = natives.native_function("jax", "qr_pivoted")
    return jax.jvp(lambda x: native(x, mode=mode), (jnp.asarray(a),), (jnp.asarray(da),))


@pytest.mark.parametrize("mode", ["reduced", "complete"])
def test_jax_s_own_pivoted_qr_gets_dr_of_a_wide_matrix_wrong(mode):
    """factorules.tools.natives.NATIVE_WRONG: jax.scipy.linalg.qr(pivoting=True) of a wide matrix
    has a dR off the finite differences (and ours on them); its dQ is right."""
    a, da = draw((3, 6)), draw((3, 6), seed=1)
    assert natives.native_wrong("qr_pivoted", "jax", {"mode": mode}, a.shape)
    (_, _, p), (dq, dr, _) = jax_native_jvp(a, da, mode)
    h = 1e-6
    plus, minus = fn.qr_pivoted(a + h * da, mode=mode), fn.qr_pivoted(a - h * da, mode=mode)
    assert (plus.P == minus.P).all() and (plus.P == np.asarray(p)).all()
    fd_r, fd_q = (plus.R - minus.R) / (2 * h), (plus.Q - minus.Q) / (2 * h)
    _, own = fn.qr_pivoted_jvp(a, da, mode=mode)
    assert np.abs(own.R - fd_r).max() < 1e-7
    assert np.abs(np.asarray(dq) - fd_q).max() < 1e-7
    assert np.abs(np.asarray(dr) - fd_r).max() > 1e-2


def test_jax_s_own_pivoted_qr_cannot_differentiate_a_stack():
    """Why factorules.tools.natives differentiates JAX's pivoted QR one matrix at a time."""
    from jax.scipy.linalg import qr
    a = jnp.asarray(draw((2, 6, 4)))
    with pytest.raises(TypeError, match="batch dimensions"):
        jax.jvp(lambda x: qr(x, mode="economic", pivoting=True), (a,), (a,))


def test_jax_pivots_of_a_matrix_without_rows_are_the_identity_order():
    """JAX's pivoted QR returns zeros for P when A has no rows; ours returns SciPy's order."""
    from jax.scipy.linalg import qr
    a = jnp.zeros((2, 0, 4))
    assert (np.asarray(qr(a, mode="economic", pivoting=True)[2]) == 0).all()
    assert (np.asarray(fj.qr_pivoted(a).P) == np.arange(4)).all()
    assert (fn.qr_pivoted(np.zeros((2, 0, 4))).P == np.arange(4)).all()
    assert (ft.qr_pivoted(torch.zeros(2, 0, 4)).P.numpy() == np.arange(4)).all()
