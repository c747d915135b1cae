"""What is specific to QR: the Householder completion of complete mode, the seed example, input
checks and named tuples.  The generic ladder (finite differences, adjointness, cross-backend
agreement, native autodiff) runs over every spec in tests/test_rules.py."""
import numpy as np
import pytest

from factorules.tools.adapters import (JaxAdapter as JaxBackend, NumpyAdapter as NumpyBackend,
                                      TorchAdapter as TorchBackend)
from factorules.tools.verify import random_like, rel_err, well_conditioned

_BACKENDS = {}


def backend(name):
    if name not in _BACKENDS:
        _BACKENDS[name] = {"numpy": NumpyBackend, "torch": TorchBackend,
                           "jax": JaxBackend}[name]()
    return _BACKENDS[name]


def wide64(dtype):
    return np.complex128 if np.issubdtype(dtype, np.complexfloating) else np.float64


def sample(seed, shape, dtype, batch):
    rng = np.random.default_rng(seed)
    x = well_conditioned(rng, shape, wide64(dtype), batch)
    return rng, x


def test_complete_mode_of_a_tall_matrix_is_the_householder_q():
    """The rule differentiates the Q that LAPACK returns, so finite differences of
    numpy.linalg.qr(mode='complete') are matched, including the last m - n columns."""
    rng, x = sample(5, (7, 3), np.float64, ())
    dx = random_like(rng, x)
    (q, _), (dq, _) = backend("numpy").jvp("qr", x, dx, {"mode": "complete"})
    h = 1e-6
    fd = (np.linalg.qr(x + h * dx, mode="complete")[0]
          - np.linalg.qr(x - h * dx, mode="complete")[0]) / (2 * h)
    assert rel_err(dq[:, 3:], fd[:, 3:]) < 1e-7
    assert np.abs(dq[:, 3:]).max() > 0.1  # the completion genuinely moves
    # and it is not the "Q^H dQ block is zero" choice: that one ignores the Householder gauge
    omega22 = q[:, 3:].T @ dq[:, 3:]
    assert np.abs(omega22).max() > 1e-3


@pytest.mark.parametrize("dtype", [np.float64, np.complex128], ids=["f64", "c128"])
def test_lapack_q2_is_a_function_of_q1(dtype):
    """docs/qr-complete-mode.md: Q2 = E2 + (E1 - Q1) (I - Q11)^-H Q21^H for Householder Q."""
    m, n = 7, 3
    _, a = sample(8, (m, n), dtype, (2,))
    q = np.linalg.qr(a, mode="complete")[0]
    q1 = q[..., :, :n]
    z = np.linalg.solve(np.conj(np.swapaxes(np.eye(n) - q1[..., :n, :], -1, -2)),
                        np.conj(np.swapaxes(q1[..., n:, :], -1, -2)))
    q2 = np.eye(m)[:, n:] + (np.eye(m, n) - q1) @ z
    assert rel_err(q2, q[..., :, n:]) < 1e-13


@pytest.mark.parametrize("name", ["numpy", "torch", "jax"])
def test_seed_example_full_q_times_m_vector_plus_thin_q_times_k_vector(name):
    """y = Q w + Q[:, :k] v with Q the m x m complete Q (SEED.md); the gradient of a loss of y
    with respect to A matches finite differences of the NumPy forward."""
    m, n = 10, 5
    rng, a = sample(6, (m, n), np.float64, ())
    w, v, c = rng.standard_normal(m), rng.standard_normal(n), rng.standard_normal(m)

    def loss_numpy(a):
        q, _ = np.linalg.qr(a, mode="complete")
        return c @ (q @ w + q[:, :n] @ v)

    h = 1e-6
    fd = np.zeros_like(a)
    for i in range(m):
        for j in range(n):
            e = np.zeros_like(a)
            e[i, j] = h
            fd[i, j] = (loss_numpy(a + e) - loss_numpy(a - e)) / (2 * h)

    if name == "numpy":
        from generated import numpy as fr
        _, pullback = fr.qr_vjp(a, mode="complete")
        # dL/dQ of L = c^T (Q w + Q[:, :n] v): c w^T, plus c v^T on the first n columns
        g_q = np.outer(c, w)
        g_q[:, :n] += np.outer(c, v)
        grad = pullback(g_q, None)
    elif name == "torch":
        import torch
        from generated import torch as fr
        at = torch.tensor(a, requires_grad=True)
        q, _ = fr.qr(at, mode="complete")
        y = q @ torch.tensor(w) + q[:, :n] @ torch.tensor(v)
        (torch.tensor(c) @ y).backward()
        grad = at.grad.numpy()
    else:
        import jax
        import jax.numpy as jnp
        from generated import jax as fr
        jax.config.update("jax_enable_x64", True)

        def loss(a):
            q, _ = fr.qr(a, mode="complete")
            return jnp.asarray(c) @ (q @ jnp.asarray(w) + q[:, :n] @ jnp.asarray(v))

        grad = np.asarray(jax.grad(loss)(jnp.asarray(a)))
    assert rel_err(grad, fd) < 1e-7


@pytest.mark.parametrize("name", ["numpy", "torch", "jax"])
def test_bad_inputs_raise_clear_errors(name):
    b = backend(name)
    mod = b.module
    with pytest.raises(ValueError, match=r"qr: A must be a matrix or a stack of matrices"):
        mod.qr(b.to(np.ones(3)))
    # integers: promoted to float64 as numpy.linalg and jax.numpy.linalg promote them; torch
    # refuses them (torch.linalg.qr does), and every backend refuses float16: JAX with
    # NotImplementedError, as jax.numpy.linalg does
    ints = np.ones((3, 2), dtype=np.int64)
    if name == "torch":
        with pytest.raises(TypeError, match=r"qr: A must be float32, float64, complex64 or "
                                            r"complex128, got torch\.int64"):
            mod.qr(b.to(ints))
    else:
        promoted = mod.qr(b.to(ints))
        expected = mod.qr(b.to(ints.astype(np.float64)))
        for y, z in zip(*(r if isinstance(r, tuple) else (r,) for r in (promoted, expected))):
            assert y.dtype == z.dtype and np.array_equal(np.asarray(y), np.asarray(z))
    unsupported = NotImplementedError if name == "jax" else TypeError
    with pytest.raises(unsupported, match=r"qr: A must be float32, float64, complex64 or "
                                          r"complex128, got (torch\.)?float16"):
        mod.qr(b.to(ints.astype(np.float16)))
    with pytest.raises(ValueError, match=r"qr: mode must be one of \['reduced', 'complete', "
                                         r"'r'\], got 'economic'"):
        mod.qr(b.to(np.ones((3, 2))), mode="economic")
    with pytest.raises(ValueError, match=r"qr: dA has shape \(2, 3\), expected \(3, 2\)"):
        mod.qr_jvp(b.to(np.ones((3, 2))), b.to(np.ones((2, 3))))
    _, pullback = mod.qr_vjp(b.to(np.eye(3, 2)))
    with pytest.raises(ValueError, match=r"qr: gR has shape"):
        pullback(None, b.to(np.ones((3, 3))))


@pytest.mark.parametrize("name", ["numpy", "torch", "jax"])
def test_results_are_named_tuples_like_torch_linalg(name):
    b = backend(name)
    x = np.random.default_rng(7).standard_normal((2, 5, 3))
    out = b.module.qr(b.to(x))
    assert type(out).__name__ == "QRResult" and out._fields == ("Q", "R")
    q, r = out
    assert tuple(q.shape) == (2, 5, 3) and tuple(r.shape) == (2, 3, 3)
    empty, r_only = b.module.qr(b.to(x), mode="r")
    assert tuple(empty.shape) == (0,) and tuple(r_only.shape) == (2, 3, 3)
    full, r_full = b.module.qr(b.to(x), mode="complete")
    assert tuple(full.shape) == (2, 5, 5) and tuple(r_full.shape) == (2, 5, 3)
