"""hessenberg: scipy.linalg.hessenberg's form in every backend (spec/hessenberg.yaml), and
solve_hessenberg_sylvester, the operation its rules are written with.  The generic ladder
(tests/test_rules.py and the harnesses) checks its derivatives like every spec's, second
order included, and tests/test_degenerate.py a zero subdiagonal; here, that each backend
returns SciPy's numbers (calc_q both ways, fields, batches, n = 4, 2, 1, 0, SciPy's
shortcut for n <= 2 and its derivative), the errors, and solve_hessenberg_sylvester against
its equations, its 50-digit evaluation and its transpose."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import torch
from jax.test_util import check_grads

from factorules.compiler.ops import arrays
from generated import jax as gj
from generated import numpy as gn
from generated import torch as gt
from generated.jax import _runtime as jax_runtime
from generated.numpy import _runtime as numpy_runtime
from generated.torch import _runtime as torch_runtime

jax.config.update("jax_enable_x64", True)


def _draw(rng, shape, complex_):
    a = rng.standard_normal(shape)
    return a + 1j * rng.standard_normal(shape) if complex_ else a


def _scipy(a, calc_q):
    """scipy.linalg.hessenberg of each matrix of a stack (it takes one)."""
    batch = a.shape[:-2]
    outs = [scipy.linalg.hessenberg(a[i], calc_q=True) for i in np.ndindex(*batch)]
    h, q = (np.stack([o[j] for o in outs]).reshape(batch + a.shape[-2:]) for j in range(2))
    return (h, q) if calc_q else h


def _adjoint(x):
    return np.conj(np.swapaxes(x, -1, -2))


@pytest.mark.parametrize("n", [4, 2, 1, 0])
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_every_backend_returns_scipys_hessenberg_form(n, complex_):
    a = _draw(np.random.default_rng(0), (2, n, n), complex_)
    dtype = np.complex128 if complex_ else np.float64
    want = _scipy(a, True) if n else (np.zeros((2, 0, 0), dtype),) * 2
    for name, module, x in (("numpy", gn, a), ("torch", gt, torch.from_numpy(a)),
                            ("jax", gj, jnp.asarray(a))):
        got = module.hessenberg(x, calc_q=True)
        assert got._fields == ("H", "Q"), name
        h, q = (np.asarray(y) for y in got)
        assert h.dtype == dtype and q.dtype == dtype, (name, h.dtype, q.dtype)
        assert h.shape == q.shape == (2, n, n), name
        np.testing.assert_allclose(h, want[0], atol=1e-12, err_msg=name)
        np.testing.assert_allclose(q, want[1], atol=1e-12, err_msg=name)
        np.testing.assert_allclose(q @ h @ _adjoint(q), a, atol=1e-12, err_msg=name)
        assert np.all(np.tril(h, -2) == 0), name
        # SciPy's default, calc_q=False: H alone
        alone = np.asarray(module.hessenberg(x))
        np.testing.assert_allclose(alone, want[0], atol=1e-12, err_msg=name)
    if n > 2:  # gehrd's subdiagonal is real, and Q e1 = e1
        assert np.all(np.diagonal(want[0], -1, -2, -1).imag == 0)
        np.testing.assert_allclose(want[1][..., :, 0], np.broadcast_to(np.eye(n)[0], (2, n)),
                                   atol=1e-15)


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("n", [4, 2])
def test_the_tangent_is_scipys_own_by_central_differences(n, complex_):
    """The JVP against central differences of SciPy itself: for n = 4 the implicit-Q
    derivative that keeps gehrd's real subdiagonal; for n = 2 SciPy's shortcut (H = A and
    Q = I, a complex subdiagonal kept), whose derivative is dH = dA, dQ = 0."""
    rng = np.random.default_rng(4)
    a, d = _draw(rng, (n, n), complex_), _draw(rng, (n, n), complex_)
    (h, q), (dh, dq) = gn.hessenberg_jvp(a, d, calc_q=True)
    step = 1e-6
    plus, minus = (scipy.linalg.hessenberg(a + s * step * d, calc_q=True) for s in (1, -1))
    for got, j in ((dh, 0), (dq, 1)):
        fd = (plus[j] - minus[j]) / (2 * step)
        np.testing.assert_allclose(got, fd, atol=1e-7)
    if n == 2:
        np.testing.assert_array_equal(dh, d)
        assert np.all(dq == 0)


@pytest.mark.parametrize("shape", [(3, 4), (4,)])
def test_a_matrix_that_is_not_square_is_an_error(shape):
    a = np.ones(shape)
    with pytest.raises(ValueError, match="hessenberg"):
        gn.hessenberg(a)
    with pytest.raises(ValueError, match="hessenberg"):
        gt.hessenberg(torch.from_numpy(a))


def _hessenberg(rng, n, complex_):
    """A Hessenberg matrix whose subdiagonal is far from zero (real parts in [1, 2])."""
    h = np.triu(_draw(rng, (n, n), complex_), -1)
    h[np.arange(1, n), np.arange(n - 1)] += 1.5 * np.sign(
        np.diagonal(h, -1).real + (np.diagonal(h, -1).real == 0))
    return h


@pytest.mark.parametrize("adjoint", [False, True])
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_solve_hessenberg_sylvester_solves_its_equations_in_every_backend(adjoint, complex_):
    """adjoint=False: Om skew-Hermitian, first row and column zero, with tril(Om S - S Om, -2)
    = tril(C, -2) and im(subdiag(Om S - S Om)) = im(subdiag(C)), S = triu(H, -1) (H's entries
    below its subdiagonal never read); adjoint=True its transpose under Re <., .>; the same in
    every backend and in the 50-digit evaluation, a batch of C against one H."""
    rng = np.random.default_rng(2)
    n = 5
    h = _hessenberg(rng, n, complex_)
    noisy = h + np.tril(_draw(rng, (n, n), complex_), -2)  # what the solve must not read
    c = _draw(rng, (3, n, n), complex_)
    x = numpy_runtime._solve_hessenberg_sylvester(noisy, c, adjoint)
    if not adjoint:
        np.testing.assert_allclose(x, -_adjoint(x), atol=0)
        assert np.all(x[..., 0, :] == 0) and np.all(x[..., :, 0] == 0)
        e = c - (x @ h - h @ x)
        np.testing.assert_allclose(np.tril(e, -2), 0, atol=1e-12)
        np.testing.assert_allclose(np.diagonal(e, -1, -2, -1).imag, 0, atol=1e-12)
    else:
        assert np.all(np.triu(x) == 0)
        np.testing.assert_allclose(np.diagonal(x, -1, -2, -1).real, 0, atol=0)
    for name, got in (
            ("torch", torch_runtime._solve_hessenberg_sylvester(torch.from_numpy(noisy),
                                                                torch.from_numpy(c), adjoint)),
            ("jax", jax_runtime._solve_hessenberg_sylvester(jnp.asarray(noisy), jnp.asarray(c),
                                                            adjoint)),
            ("50 digits", arrays.solve_hessenberg_sylvester(noisy.astype(complex),
                                                            c.astype(complex), adjoint))):
        np.testing.assert_allclose(np.asarray(got), x, atol=1e-12, err_msg=name)
    g = _draw(rng, (3, n, n), complex_)
    transposed = numpy_runtime._solve_hessenberg_sylvester(h, g, not adjoint)
    assert abs(np.sum(np.conj(g) * x).real - np.sum(np.conj(transposed) * c).real) < 1e-10
    for m in (0, 1, 2):
        empty = numpy_runtime._solve_hessenberg_sylvester(np.ones((m, m)), np.ones((2, m, m)),
                                                          adjoint)
        assert empty.shape == (2, m, m) and not np.any(empty.real)


def test_solve_hessenberg_sylvester_is_differentiated_by_torch_and_jax_to_second_order():
    """The column loop is rational in H and C (their real and imaginary parts): torch's and
    JAX's own derivatives of it are right, second order included."""
    rng = np.random.default_rng(3)
    h = _hessenberg(rng, 4, True)
    c = _draw(rng, (4, 4), True)

    def f(hh, cc):
        return torch_runtime._solve_hessenberg_sylvester(hh, cc, False)
    inputs = (torch.from_numpy(h).requires_grad_(), torch.from_numpy(c).requires_grad_())
    assert torch.autograd.gradgradcheck(f, inputs)
    check_grads(lambda hh, cc: jax_runtime._solve_hessenberg_sylvester(hh, cc, True),
                (jnp.asarray(h), jnp.asarray(c)), order=2, modes=["fwd", "rev"])


def _split_last(complex_):
    """Q0 H0 Q0^H with Q0 e1 = e1 and H0 Hessenberg with H0[3, 2] = 0: its Hessenberg form has a
    zero last subdiagonal entry (up to rounding).  (Not a Hessenberg A itself: there gehrd's
    reflectors are the identity, and next to it reflections that flip the subdiagonal's
    signs: LAPACK's output jumps.)"""
    rng = np.random.default_rng(5)
    h0 = _hessenberg(rng, 4, complex_)
    h0[3, 2] = 0
    q0 = np.eye(4, dtype=h0.dtype)
    q0[1:, 1:] = np.linalg.qr(_draw(rng, (3, 3), complex_))[0]
    return q0 @ h0 @ _adjoint(q0)


@pytest.mark.parametrize("a, name", [
    (_split_last(False), "last subdiagonal entry of a real A"),
    (np.triu(np.random.default_rng(6).standard_normal((2, 2))), "real 2 x 2 triangular")])
def test_a_zero_the_rules_do_not_divide_by_is_no_error(a, name):
    """The pivots check reads the tangent's (cotangent's) columns the rules divide by each
    subdiagonal entry: where they divide none by it, the derivative is SciPy's (central
    differences) and no error is raised, in either rule."""
    rng = np.random.default_rng(7)
    d = rng.standard_normal(a.shape)
    (_, _), (dh, dq) = gn.hessenberg_jvp(a, d, calc_q=True)
    step = 1e-6
    plus, minus = (scipy.linalg.hessenberg(a + s * step * d, calc_q=True) for s in (1, -1))
    np.testing.assert_allclose(dh, (plus[0] - minus[0]) / (2 * step), atol=1e-7, err_msg=name)
    np.testing.assert_allclose(dq, (plus[1] - minus[1]) / (2 * step), atol=1e-7, err_msg=name)
    gh, gq = rng.standard_normal(a.shape), rng.standard_normal(a.shape)
    grad = gn.hessenberg_vjp(a, calc_q=True)[1](gh, gq)
    assert abs(np.sum(grad * d) - np.sum(gh * dh + gq * dq)) < 1e-10, name


def test_a_zero_last_subdiagonal_entry_of_a_complex_a_is_an_error():
    """Complex A: the reflector of the last column turns H[n - 1, n - 2] real, whose phase
    jumps at zero; the rules divide the imaginary part of its tangent by it."""
    a = _split_last(True)
    d = _draw(np.random.default_rng(8), (4, 4), True)
    with pytest.raises(ValueError, match=r"^hessenberg: .*subdiagonal.*check_singular=False"):
        gn.hessenberg_jvp(a, d, calc_q=True)
