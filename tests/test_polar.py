"""polar: scipy.linalg.polar's decomposition in every backend (spec/polar.yaml), and
solve_sylvester, the operation its rules are written with.  The generic ladder
(tests/test_rules.py and the harnesses) checks its derivatives like every spec's, second
order included; here, that each backend returns SciPy's numbers for both sides, every shape,
field, batch and empty matrices, with SciPy's output order and keywords; that the second
derivatives are right where P has tied eigenvalues (A with orthogonal columns: the SVD's
derivative is singular there, the Sylvester solve's is not); the errors; and solve_sylvester's
own derivative in torch and JAX."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import torch
from jax.test_util import check_grads

from generated import jax as gj
from generated import numpy as gn
from generated import torch as gt
from generated.jax import _runtime as jax_runtime
from generated.numpy import _runtime as numpy_runtime
from generated.torch import _runtime as torch_runtime

jax.config.update("jax_enable_x64", True)

# (side, shape): the shapes each side takes, empty ones included
SHAPES = [("right", (5, 3)), ("right", (4, 4)), ("right", (1, 1)), ("right", (3, 0)),
          ("right", (0, 0)), ("left", (3, 5)), ("left", (4, 4)), ("left", (0, 3))]


def _draw(rng, shape, complex_):
    a = rng.standard_normal(shape)
    return a + 1j * rng.standard_normal(shape) if complex_ else a


def _scipy(a, side):
    """scipy.linalg.polar of each matrix of a stack (it takes one)."""
    batch = a.shape[:-2]
    pairs = [scipy.linalg.polar(a[i], side=side) for i in np.ndindex(*batch)]
    return tuple(np.stack([p[j] for p in pairs]).reshape(batch + pairs[0][j].shape)
                 for j in range(2))


@pytest.mark.parametrize("side,shape", SHAPES, ids=str)
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_every_backend_returns_scipys_polar(side, shape, complex_):
    a = _draw(np.random.default_rng(0), (2,) + shape, complex_)
    want = _scipy(a, side) if 0 not in shape else None
    p_size = shape[1] if side == "right" else shape[0]
    for name, got in (("numpy", gn.polar(a, side=side)),
                      ("torch", gt.polar(torch.from_numpy(a), side=side)),
                      ("jax", gj.polar(jnp.asarray(a), side=side))):
        u, p = (np.asarray(x) for x in got)
        assert got._fields == ("U", "P"), name
        assert u.shape == (2,) + shape and p.shape == (2, p_size, p_size), (name, p.shape)
        assert u.dtype == a.dtype and p.dtype == a.dtype, name
        np.testing.assert_allclose(u @ p if side == "right" else p @ u, a, atol=1e-12,
                                   err_msg=name)
        if want is not None:
            np.testing.assert_allclose(u, want[0], atol=1e-12, err_msg=name)
            np.testing.assert_allclose(p, want[1], atol=1e-12, err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
def test_single_precision_keeps_its_dtype_and_scipys_numbers(dtype):
    a = _draw(np.random.default_rng(1), (3, 5, 3), dtype == np.complex64).astype(dtype)
    want = _scipy(a.astype(np.complex128 if dtype == np.complex64 else np.float64), "right")
    for name, got in (("numpy", gn.polar(a)), ("torch", gt.polar(torch.from_numpy(a))),
                      ("jax", gj.polar(jnp.asarray(a)))):
        for x, w in zip(got, want):
            x = np.asarray(x)
            assert x.dtype == dtype, name
            np.testing.assert_allclose(x, w, atol=2e-5, err_msg=name)


def test_the_default_side_is_right_and_the_other_side_of_a_shape_is_refused():
    a = np.random.default_rng(2).standard_normal((3, 5))
    with pytest.raises(ValueError, match=r"polar: needs n <= m for side=right \(sizes: m = 3"):
        gn.polar(a)
    with pytest.raises(ValueError, match=r"polar: needs m <= n for side=left"):
        gt.polar(torch.from_numpy(a.T), side="left")
    with pytest.raises(ValueError, match=r"polar: side must be one of \['right', 'left'\]"):
        gj.polar(jnp.asarray(a.T), side="up")
    u, p = gn.polar(a.T)
    assert u.shape == (5, 3) and p.shape == (3, 3)


def test_a_rank_deficient_matrix_has_no_derivative_unless_the_check_is_off():
    a = np.diag([1.0, 2.0, 0.0])
    _, pullback = gn.polar_vjp(a)
    with pytest.raises(ValueError, match="rank-deficient.*check_singular=False"):
        pullback(np.ones((3, 3)), np.ones((3, 3)))
    x = torch.tensor(a, requires_grad=True)
    with pytest.raises(ValueError, match="rank-deficient"):
        gt.polar(x).U.sum().backward()
    gt.polar(x, check_singular=False).P.sum().backward()  # no check: the rule's numbers
    assert x.grad is not None and x.grad.shape == (3, 3)


def _orthogonal_columns(rng, m, n, scale):
    q, _ = np.linalg.qr(rng.standard_normal((m, n)))
    return scale * q  # A^H A = scale^2 I: every singular value tied


@pytest.mark.parametrize("shape", [(3, 3), (4, 2)], ids=str)
def test_second_derivatives_where_every_singular_value_ties(shape):
    """P = 2 I: the SVD's rules divide by s_i^2 - s_j^2 = 0 there, the polar rules do not;
    torch's gradgradcheck and JAX's order-2 check_grads against finite differences."""
    a = _orthogonal_columns(np.random.default_rng(3), *shape, 2.0)
    weights = np.random.default_rng(4).standard_normal(shape)

    def torch_loss(x):
        u, p = gt.polar(x)
        return (u * torch.from_numpy(weights)).sum() ** 2 + (p @ p).diagonal().sum()

    x = torch.tensor(a, requires_grad=True)
    assert torch.autograd.gradcheck(torch_loss, (x,))
    assert torch.autograd.gradgradcheck(torch_loss, (x,))

    def jax_loss(x):
        u, p = gj.polar(x)
        return (u * weights).sum() ** 2 + jnp.trace(p @ p)

    check_grads(jax_loss, (jnp.asarray(a),), order=2, modes=("fwd", "rev"), eps=1e-6)


def _hermitian(rng, n, complex_, shift):
    x = _draw(rng, (n, n), complex_)
    return (x + x.conj().T) / 2 + shift * np.eye(n)


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_solve_sylvester_solves_the_equation_with_two_matrices_and_a_batch(complex_):
    rng = np.random.default_rng(5)
    a = np.stack([_hermitian(rng, 3, complex_, 4.0) for _ in range(2)])
    b = _hermitian(rng, 2, complex_, 5.0)
    c = _draw(rng, (2, 3, 2), complex_)
    for name, x in (("numpy", numpy_runtime._solve_sylvester(a, b, c)),
                    ("torch", torch_runtime._solve_sylvester(*map(torch.from_numpy, (a, b, c)))),
                    ("jax", jax_runtime._solve_sylvester(*map(jnp.asarray, (a, b, c))))):
        x = np.asarray(x)
        np.testing.assert_allclose(a @ x + x @ b, c, atol=1e-12, err_msg=name)
    empty = numpy_runtime._solve_sylvester(np.zeros((0, 0)), b, np.zeros((0, 2)))
    assert empty.shape == (0, 2)


def test_solve_sylvester_is_differentiated_by_its_own_rule_in_torch_to_second_order():
    rng = np.random.default_rng(6)
    a0, b0 = _hermitian(rng, 3, True, 4.0), _hermitian(rng, 2, True, 5.0)
    c0 = _draw(rng, (3, 2), True)

    def f(a, b, c):  # Hermitian operands, as the rules pass them
        return torch_runtime._solve_sylvester((a + a.mH) / 2, (b + b.mH) / 2, c)

    inputs = tuple(torch.tensor(v, requires_grad=True) for v in (a0, b0, c0))
    assert torch.autograd.gradcheck(f, inputs, check_forward_ad=True)
    assert torch.autograd.gradgradcheck(f, inputs)


def test_solve_sylvester_at_tied_eigenvalues_has_finite_derivatives_in_torch_and_jax():
    """A = B = I: an eigensolver's derivative is singular there, the solve's is not
    (X = C / 2, dX = (dC - dA X - X dA) / 2)."""
    c = np.random.default_rng(7).standard_normal((3, 3))
    da = np.random.default_rng(8).standard_normal((3, 3))
    da = (da + da.T) / 2
    want = (-da @ c / 2 - c / 2 @ da) / 2
    eye = np.eye(3)
    _, got_torch = torch.func.jvp(
        lambda a: torch_runtime._solve_sylvester(a, a, torch.from_numpy(c)),
        (torch.from_numpy(eye),), (torch.from_numpy(da),))
    _, got_jax = jax.jvp(lambda a: jax_runtime._solve_sylvester(a, a, jnp.asarray(c)),
                         (jnp.asarray(eye),), (jnp.asarray(da),))
    np.testing.assert_allclose(got_torch.numpy(), want, atol=1e-14)
    np.testing.assert_allclose(np.asarray(got_jax), want, atol=1e-14)


def test_solve_sylvester_is_differentiated_by_its_own_rule_in_jax_to_second_order():
    rng = np.random.default_rng(9)
    a0, b0 = _hermitian(rng, 3, True, 4.0), _hermitian(rng, 2, True, 5.0)
    c0 = _draw(rng, (3, 2), True)

    def f(a, b, c):
        return jax_runtime._solve_sylvester((a + a.conj().mT) / 2, (b + b.conj().mT) / 2, c)

    check_grads(f, tuple(map(jnp.asarray, (a0, b0, c0))), order=2, modes=("fwd", "rev"),
                eps=1e-6)
    batched = jax.jit(jax.vmap(f))(*(jnp.stack([v, 2 * v]) for v in map(jnp.asarray,
                                                                         (a0, b0, c0))))
    np.testing.assert_allclose(np.asarray(batched[0]), np.asarray(f(a0, b0, c0)), atol=1e-13)


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_an_eigenbasis_handed_to_solve_sylvester_gives_the_same_solve(complex_):
    """polar's rules hand P's eigendecomposition (its hidden S and V: 'eigenbasis') to the
    solve, which then diagonalises nothing; the same X as without it, in every backend."""
    rng = np.random.default_rng(10)
    p = np.stack([_hermitian(rng, 4, complex_, 6.0) for _ in range(2)])
    c = _draw(rng, (2, 4, 4), complex_)
    values, vectors = np.linalg.eigh(p)
    basis = (values[..., None], vectors)
    want = numpy_runtime._solve_sylvester(p, p, c)
    np.testing.assert_allclose(p @ want + want @ p, c, atol=1e-12)
    for name, got in (
            ("numpy", numpy_runtime._solve_sylvester(p, p, c, eig_a=basis, eig_b=basis)),
            ("torch", torch_runtime._solve_sylvester(
                *map(torch.from_numpy, (p, p, c)), eig_a=tuple(map(torch.from_numpy, basis)),
                eig_b=tuple(map(torch.from_numpy, basis)))),
            ("jax", jax_runtime._solve_sylvester(*map(jnp.asarray, (p, p, c)),
                                                 eig_a=tuple(map(jnp.asarray, basis)),
                                                 eig_b=tuple(map(jnp.asarray, basis))))):
        np.testing.assert_allclose(np.asarray(got), want, atol=1e-12, err_msg=name)


def test_the_rules_hand_ps_eigenbasis_to_the_solve():
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    for backend in ("numpy", "torch", "jax", "cupy"):
        text = (root / "generated" / backend / "polar.py").read_text()
        calls = text.count("_solve_sylvester(P, P, ")
        assert calls >= 8, backend  # the JVPs and VJPs of four cases
        assert text.count("eig_a=(S, V), eig_b=(S, V))") == calls, backend
