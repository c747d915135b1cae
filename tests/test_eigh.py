"""eigh / eigvalsh behaviour the generic ladder cannot state: exactly repeated eigenvalues
(spec/eigh.yaml and spec/eigvalsh.yaml, notes) and the gauge error's wording."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import generated.jax as fj
import generated.numpy as fn
import generated.torch as ft

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)  # the inputs here are float64 / complex128


def _rotated(values, seed=0, complex_field=True):
    """U diag(values) U^H with a random unitary U: eigenvalues exactly as given."""
    rng = np.random.default_rng(seed)
    n = len(values)
    g = rng.standard_normal((n, n)) + (1j * rng.standard_normal((n, n)) if complex_field else 0)
    u, _ = np.linalg.qr(g)
    a = u @ np.diag(values) @ u.conj().T
    return (a + a.conj().T) / 2, u


def _hermitian(rng, n):
    x = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    return (x + x.conj().T) / 2


def test_eigvalsh_gradient_of_the_trace_at_a_triple_eigenvalue_is_the_identity():
    """sum(L) = trace(A): its gradient is I even where all eigenvalues coincide."""
    a = np.eye(3) * 2.0
    _, pullback = fn.eigvalsh_vjp(a)
    np.testing.assert_allclose(pullback(np.ones(3)), np.eye(3), atol=1e-15)
    at = torch.tensor(a, requires_grad=True)
    ft.eigvalsh(at).sum().backward()
    np.testing.assert_allclose(at.grad.numpy(), np.eye(3), atol=1e-15)
    g = jax.grad(lambda x: fj.eigvalsh(x).sum())(a)
    np.testing.assert_allclose(np.asarray(g), np.eye(3), atol=1e-15)


def test_eigvalsh_gradient_of_a_simple_eigenvalue_next_to_a_tie():
    """A = U diag(1, 1, 3) U^H: the gradient of the simple eigenvalue 3 is u3 u3^H."""
    a, u = _rotated([1.0, 1.0, 3.0])
    _, pullback = fn.eigvalsh_vjp(a)
    got = pullback(np.array([0.0, 0.0, 1.0]))
    want = np.outer(u[:, 2], u[:, 2].conj())
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert np.all(np.isfinite(got))


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
def test_eigh_eigenspace_loss_is_differentiable_at_a_tie(backend):
    """The projector onto the eigenspace of a double eigenvalue is smooth; the rules give its
    true gradient (pairwise_inv is 0 inside the tie), checked against finite differences."""
    a, _ = _rotated([1.0, 1.0, 3.0], seed=1)
    rng = np.random.default_rng(2)
    w = rng.standard_normal((3, 3)) + 1j * rng.standard_normal((3, 3))
    da = _hermitian(rng, 3)

    def loss_np(x):
        _, q = np.linalg.eigh(x)
        p = q[:, :2] @ q[:, :2].conj().T
        return float(np.real(np.sum(w.conj() * p)))

    h = 1e-6
    fd = (loss_np(a + h * da) - loss_np(a - h * da)) / (2 * h)
    if backend == "numpy":
        (_, q), pullback = fn.eigh_vjp(a)
        # d loss / d Q for loss = Re<W, Q1 Q1^H> (PyTorch's convention: gQ = dloss/dRe + i ...)
        gq = np.zeros_like(q)
        gq[:, :2] = (w + w.conj().T) @ q[:, :2]
        grad = pullback(None, gq)
    elif backend == "torch":
        at = torch.tensor(a, requires_grad=True)
        _, q = ft.eigh(at)
        p = q[:, :2] @ q[:, :2].mH
        torch.real(torch.sum(torch.tensor(w).conj() * p)).backward()
        grad = at.grad.numpy()
    else:
        def loss_jax(x):
            _, q = fj.eigh(x)
            p = q[:, :2] @ q[:, :2].conj().T
            return jax.numpy.real(jax.numpy.sum(w.conj() * p))
        # JAX's gradient of a real loss of a complex input is the conjugate of PyTorch's
        grad = np.conj(np.asarray(jax.grad(loss_jax)(a)))
    assert np.all(np.isfinite(grad))
    directional = float(np.real(np.sum(np.conj(grad) * da)))
    assert abs(directional - fd) <= 1e-7 * max(1.0, abs(fd)), (directional, fd)


def test_eigh_gradient_of_eigenvalues_alone_is_finite_at_a_tie():
    """With no eigenvector cotangent (gQ = 0) nothing is multiplied by an infinite gap."""
    a = np.diag([1.0, 1.0, 2.0])
    at = torch.tensor(a, requires_grad=True)
    vals, _ = ft.eigh(at)
    vals.sum().backward()
    np.testing.assert_allclose(at.grad.numpy(), np.eye(3), atol=1e-15)


def test_eigh_gauge_error_names_the_phase_and_the_switch():
    rng = np.random.default_rng(3)
    a = _hermitian(rng, 4)
    (_, q), pullback = fn.eigh_vjp(a)
    with pytest.raises(ValueError, match=r"^eigh: the loss depends on the phases of the "
                                         r"eigenvectors .*pass check_gauge=False to skip"):
        pullback(None, np.ones_like(q))
    _, pullback = fn.eigh_vjp(a, check_gauge=False)
    assert np.all(np.isfinite(pullback(None, np.ones_like(q))))
    at = torch.tensor(a, requires_grad=True)
    with pytest.raises(ValueError, match="phases of the eigenvectors"):
        ft.eigh(at)[1].sum().real.backward()


def test_eigh_real_input_has_no_continuous_gauge():
    """For real input the phase is a sign: no cotangent is gauge dependent, none raises."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 4))
    (_, q), pullback = fn.eigh_vjp(x + x.T)
    assert np.all(np.isfinite(pullback(None, np.ones_like(q))))


def test_eigh_rejects_a_non_bool_check_gauge():
    with pytest.raises(ValueError, match=r"check_gauge must be one of \[True, False\]"):
        fn.eigh(np.eye(2), check_gauge=1)
