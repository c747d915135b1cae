"""geqrf: what the generic ladder (tests/test_rules.py) does not pin.

The compact form is LAPACK's in every backend (NumPy's raw mode returns it transposed), the
frameworks' own geqrf has no derivative while ours agrees with finite differences, and the
last reflector of a real matrix with m <= n stays the identity (tau = 0, no tangent).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from generated import jax as gj
from generated import numpy as gn
from generated import torch as gt

jax.config.update("jax_enable_x64", True)

SHAPES = [(5, 3), (4, 4), (3, 5), (2, 6, 2), (2, 3, 3, 4)]


def _random(shape, seed=0, complex_=False):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    if complex_:
        a = a + 1j * rng.standard_normal(shape)
    return a


def _householder_q(a, tau):
    """H_1 ... H_k of one compact form, reflector by reflector (LAPACK's definition)."""
    m, k = a.shape[0], tau.shape[0]
    q = np.eye(m, dtype=np.result_type(a, tau))
    for i in range(k):
        v = np.zeros(m, dtype=q.dtype)
        v[i] = 1
        v[i + 1:] = a[i + 1:, i]
        q = q @ (np.eye(m) - tau[i] * np.outer(v, v.conj()))
    return q


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_geqrf_is_torchs_in_every_backend(shape, complex_):
    a = _random(shape, 1, complex_)
    want_a, want_tau = torch.geqrf(torch.tensor(a))
    for name, got in (("numpy", gn.geqrf(a)), ("jax", gj.geqrf(jnp.asarray(a))),
                      ("torch", gt.geqrf(torch.tensor(a)))):
        assert got._fields == ("a", "tau")
        np.testing.assert_allclose(np.asarray(got.a), want_a.numpy(), atol=1e-12, err_msg=name)
        np.testing.assert_allclose(np.asarray(got.tau), want_tau.numpy(), atol=1e-12,
                                   err_msg=name)


@pytest.mark.parametrize("shape", [(5, 3), (4, 4), (3, 5)], ids=str)
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_the_compact_form_reconstructs_a(shape, complex_):
    a = _random(shape, 2, complex_)
    h, tau = gn.geqrf(a)
    q = _householder_q(h, tau)
    r = np.triu(h)[: min(shape), :] if shape[0] > shape[1] else np.triu(h)
    np.testing.assert_allclose(q[:, : r.shape[0]] @ r, a, atol=1e-12)


def test_torch_has_no_derivative_for_geqrf_and_ours_agrees_with_finite_differences():
    a = torch.tensor(_random((6, 3), 3), requires_grad=True)
    with pytest.raises(RuntimeError, match="not implemented"):
        torch.geqrf(a)[0].sum().backward()
    w = torch.tensor(_random((6, 3), 4))
    v = torch.tensor(_random((3,), 5))

    def loss(x):
        h, tau = gt.geqrf(x)
        return (h * w).sum() + (tau * v).sum()

    (grad,) = torch.autograd.grad(loss(a), a)
    d = torch.tensor(_random((6, 3), 6))
    eps = 1e-6
    with torch.no_grad():
        fd = (loss(a + eps * d) - loss(a - eps * d)) / (2 * eps)
    assert abs(float((grad * d).sum()) - float(fd)) < 1e-7 * max(1.0, abs(float(fd)))


@pytest.mark.parametrize("shape", [(3, 3), (3, 5), (1, 4)], ids=str)
def test_the_last_reflector_of_a_real_matrix_with_m_le_n_has_no_tangent(shape):
    a = _random(shape, 7)
    da = _random(shape, 8)
    (h, tau), (dh, dtau) = gn.geqrf_jvp(a, da)
    assert tau[-1] == 0  # LAPACK's H_m of one entry is the identity for real A
    assert abs(dtau[-1]) < 1e-13
    assert np.all(np.abs(dtau[:-1]) > 1e-6)  # the other reflectors do move


def test_jax_geqrf_agrees_with_finite_differences_on_a_wide_complex_matrix():
    a = jnp.asarray(_random((3, 5), 9, True))
    d = jnp.asarray(_random((3, 5), 10, True))
    (h, tau), (dh, dtau) = jax.jvp(gj.geqrf, (a,), (d,))
    eps = 1e-6
    hp, tp = gj.geqrf(a + eps * d)
    hm, tm = gj.geqrf(a - eps * d)
    np.testing.assert_allclose(dh, (hp - hm) / (2 * eps), atol=1e-7)
    np.testing.assert_allclose(dtau, (tp - tm) / (2 * eps), atol=1e-7)
