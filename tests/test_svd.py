"""svd / svdvals / eig / eigvals behaviour the generic ladder cannot state: the full SVD's
completion, repeated singular values, real input with complex eigenpairs, and the entries of
factorules.tools.natives (native rules that disagree with finite differences)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import generated.jax as fj
import generated.numpy as fn
import generated.torch as ft
from factorules.tools import natives

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)  # the inputs here are float64 / complex128

H = 1e-6


def _loss_full_svd(u, s, vh, lib):
    """A loss of a full SVD that depends on the completion U[:, k:] only through U U^H (= I),
    so it is gauge invariant and differentiable: sum(S) + sum(U U^H) + sum(|Vh[:k]|^2 w)."""
    k = s.shape[-1]
    weights = lib.arange(1, vh.shape[-1] + 1)
    return lib.sum(s) + lib.sum(u @ u.conj().swapaxes(-1, -2)).real \
        + lib.sum(abs(vh[..., :k, :]) ** 2 * weights)


def _fd_slope(f, a, da):
    return (f(a + H * da) - f(a - H * da)) / (2 * H)


@pytest.mark.parametrize("shape", [(6, 3), (3, 6)])
def test_full_svd_gradient_matches_finite_differences_where_torch_does_not(shape):
    rng = np.random.default_rng(0)
    a, da = rng.standard_normal(shape), rng.standard_normal(shape)

    def loss_np(x):
        u, s, vh = np.linalg.svd(x, full_matrices=True)
        return float(_loss_full_svd(u, s, vh, np))

    fd = _fd_slope(loss_np, a, da)
    slopes = {}
    for name, svd in (("ours", ft.svd), ("native", torch.linalg.svd)):
        at = torch.tensor(a, requires_grad=True)
        u, s, vh = svd(at, full_matrices=True)
        _loss_full_svd(u, s, vh, torch).backward()
        slopes[name] = float((at.grad * torch.tensor(da)).sum())
    assert abs(slopes["ours"] - fd) <= 1e-7 * max(1.0, abs(fd)), (slopes, fd)
    g = jax.grad(lambda x: _loss_full_svd(*fj.svd(x, full_matrices=True), jax.numpy))(a)
    assert abs(float(np.sum(np.asarray(g) * da)) - fd) <= 1e-7 * max(1.0, abs(fd))
    # torch's own rule drops the completion's cotangent (factorules.tools.natives); for the wide
    # shape this loss puts none on Vh[k:, :], so torch agrees there
    wrong = natives.native_wrong("svd", "torch", {"full_matrices": True}, shape)
    assert wrong is not None
    if shape[0] > shape[1]:
        assert abs(slopes["native"] - fd) > 1e-2 * max(1.0, abs(fd)), (slopes, fd)


def test_full_svd_loss_on_the_completion_raises_and_the_check_can_be_skipped():
    a = np.random.default_rng(1).standard_normal((5, 3))
    (u, s, vh), pullback = fn.svd_vjp(a, full_matrices=True)
    g_u = np.zeros_like(u)
    g_u[:, 3:] = np.random.default_rng(2).standard_normal((5, 2))  # depends on U[:, 3:]
    with pytest.raises(ValueError, match=r"^svd: the loss depends on the phases of the "
                                         r"singular vectors or on the arbitrary orthonormal "
                                         r"completion"):
        pullback(g_u, None, None)
    _, pullback = fn.svd_vjp(a, full_matrices=True, check_gauge=False)
    assert np.all(np.isfinite(pullback(g_u, None, None)))


def test_svdvals_nuclear_norm_gradient_at_a_repeated_singular_value():
    """sum(S) = the nuclear norm; at A = U diag(2, 2, 1) Vh its gradient is U Vh although two
    singular values coincide (svdvals' rules have no gap)."""
    rng = np.random.default_rng(3)
    u, _ = np.linalg.qr(rng.standard_normal((5, 3)))
    v, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    a = u @ np.diag([2.0, 2.0, 1.0]) @ v.T
    want = u @ v.T
    _, pullback = fn.svdvals_vjp(a)
    np.testing.assert_allclose(pullback(np.ones(3)), want, atol=1e-12)
    at = torch.tensor(a, requires_grad=True)
    ft.svdvals(at).sum().backward()
    np.testing.assert_allclose(at.grad.numpy(), want, atol=1e-12)
    g = jax.grad(lambda x: fj.svdvals(x).sum())(a)
    np.testing.assert_allclose(np.asarray(g), want, atol=1e-12)


def test_eig_of_a_real_matrix_with_complex_eigenvalues():
    """A real rotation-like block: eigenpairs are complex; the gradient of a real loss is
    real and matches torch's own rule and finite differences."""
    a = np.array([[0.2, -2.0, 0.3], [1.5, 0.1, 0.0], [0.4, 0.0, 1.0]])
    da = np.random.default_rng(4).standard_normal((3, 3))
    vals = fn.eigvals(a)
    assert vals.dtype == np.complex128 and np.abs(vals.imag).max() > 1.0

    def loss(w, v, lib):
        return lib.sum(w.real) + lib.sum(w.imag ** 2) + lib.sum(abs(v) ** 2 * lib.arange(3))

    def loss_np(x):
        w, v = np.linalg.eig(x)
        return float(loss(w, v, np))

    fd = _fd_slope(loss_np, a, da)
    grads = {}
    for name, eig in (("ours", ft.eig), ("native", torch.linalg.eig)):
        at = torch.tensor(a, requires_grad=True)
        loss(*eig(at), torch).backward()
        assert at.grad.dtype == torch.float64
        grads[name] = at.grad.numpy()
    np.testing.assert_allclose(grads["ours"], grads["native"], atol=1e-12)
    assert abs(float(np.sum(grads["ours"] * da)) - fd) <= 1e-7 * max(1.0, abs(fd))
    (_, v), pullback = fn.eig_vjp(a)
    g_w = np.ones(3) + 2j * vals.imag
    g_v = 2 * v * np.arange(3)
    np.testing.assert_allclose(pullback(g_w, g_v), grads["ours"], atol=1e-12)


def test_eig_gauge_error_and_switch():
    a = np.random.default_rng(5).standard_normal((4, 4))
    (_, v), pullback = fn.eig_vjp(a)
    with pytest.raises(ValueError, match=r"^eig: the loss depends on the phases of the "
                                         r"eigenvectors"):
        pullback(None, np.ones_like(v))
    _, pullback = fn.eig_vjp(a, check_gauge=False)
    assert np.all(np.isfinite(pullback(None, np.ones_like(v))))
