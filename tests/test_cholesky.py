"""What is specific to cholesky (spec/cholesky.yaml): a single output returned as a bare array
like torch.linalg.cholesky, upper=True as the adjoint of the lower factor, a Hermitian gradient,
type-checked options and clear errors.  The generic ladder (finite differences, adjointness,
cross-backend agreement, native autodiff) runs over every spec in tests/test_rules.py."""
import jax
import numpy as np
import pytest
import torch

from factorules.audit import sample
from factorules.tools.adapters import (JaxAdapter as JaxBackend, NumpyAdapter as NumpyBackend,
                                      TorchAdapter as TorchBackend)
from factorules.tools.verify import random_like, rel_err
from spec_cases import SPECS

CHOLESKY = next(c for c in SPECS if c.spec.name == "cholesky")
VARIANT = {dict(cv.variant.when)["upper"]: cv for cv in CHOLESKY.variants}
ARRAY = {"numpy": np.ndarray, "torch": torch.Tensor, "jax": jax.Array}
DTYPES = {"f32": np.float32, "f64": np.float64, "c64": np.complex64, "c128": np.complex128}

_BACKENDS = {}


def backend(name):
    if name not in _BACKENDS:
        _BACKENDS[name] = {"numpy": NumpyBackend, "torch": TorchBackend,
                           "jax": JaxBackend}[name]()
    return _BACKENDS[name]


def hpd(seed, n, dtype, batch=(2,)):
    """(rng, A): a well-conditioned Hermitian positive-definite A drawn from the spec."""
    rng = np.random.default_rng(seed)
    (a,) = sample.inputs(CHOLESKY, VARIANT[False], (n,), dtype, batch, rng).values()
    return rng, a


def adjoint(x):
    return np.conj(np.swapaxes(x, -1, -2))


@pytest.mark.parametrize("upper", [False, True], ids=["lower", "upper"])
@pytest.mark.parametrize("name", ["numpy", "torch", "jax"])
def test_returns_a_bare_array_like_torch_linalg_cholesky(name, upper):
    b = backend(name)
    _, a = hpd(0, 4, np.complex128)
    out = b.module.cholesky(b.to(a), upper=upper)
    assert isinstance(out, ARRAY[name]) and not isinstance(out, tuple)
    assert tuple(out.shape) == a.shape and b.back(out).dtype == a.dtype
    want = torch.linalg.cholesky(torch.from_numpy(a), upper=upper).numpy()
    assert rel_err(b.back(out), want) < 1e-13


@pytest.mark.parametrize("upper", [False, True], ids=["lower", "upper"])
@pytest.mark.parametrize("name", ["numpy", "torch", "jax"])
def test_jvp_returns_the_factor_and_its_tangent_and_vjp_a_pullback(name, upper):
    b, mod = backend(name), backend(name).module
    rng, a = hpd(1, 4, np.float64)
    da = sample.project(random_like(rng, a), "hermitian")
    factor, tangent = mod.cholesky_jvp(b.to(a), b.to(da), upper=upper)
    assert isinstance(factor, ARRAY[name]) and isinstance(tangent, ARRAY[name])
    assert tuple(factor.shape) == tuple(tangent.shape) == a.shape
    # the tangent of a triangular factor is triangular, like the factor
    def off_triangle(x):
        return np.tril(x, -1) if upper else np.triu(x, 1)

    assert not off_triangle(b.back(factor)).any()
    assert not off_triangle(b.back(tangent)).any()

    factor2, pullback = mod.cholesky_vjp(b.to(a), upper=upper)
    assert isinstance(factor2, ARRAY[name]) and rel_err(b.back(factor2), b.back(factor)) == 0
    grad = pullback(b.to(random_like(rng, a)))
    assert isinstance(grad, ARRAY[name]) and tuple(grad.shape) == a.shape
    zero = pullback()  # no cotangent: zero
    assert tuple(zero.shape) == a.shape and not b.back(zero).any()


@pytest.mark.parametrize("dtype", list(DTYPES.values()), ids=list(DTYPES))
@pytest.mark.parametrize("name", ["numpy", "torch", "jax"])
def test_upper_is_the_adjoint_of_the_lower_factor(name, dtype):
    b, mod = backend(name), backend(name).module
    rng, a = hpd(2, 5, dtype)
    tol = 1e-5 if dtype in (np.float32, np.complex64) else 1e-12
    da = sample.project(random_like(rng, a), "hermitian")
    g = random_like(rng, a)
    lower, d_lower = (b.back(x) for x in mod.cholesky_jvp(b.to(a), b.to(da)))
    upper, d_upper = (b.back(x) for x in mod.cholesky_jvp(b.to(a), b.to(da), upper=True))
    assert np.array_equal(upper, adjoint(lower))
    assert np.array_equal(b.back(mod.cholesky(b.to(a), upper=True)), upper)
    assert rel_err(adjoint(upper) @ upper, a) < tol
    assert rel_err(d_upper, adjoint(d_lower)) < tol
    # a cotangent gU of U = L^H is the cotangent gU^H of L (in every backend's convention)
    _, pull_upper = mod.cholesky_vjp(b.to(a), upper=True)
    _, pull_lower = mod.cholesky_vjp(b.to(a))
    assert rel_err(b.back(pull_upper(b.to(g))), b.back(pull_lower(b.to(adjoint(g))))) < tol


@pytest.mark.parametrize("upper", [False, True], ids=["lower", "upper"])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128], ids=["f64", "c128"])
@pytest.mark.parametrize("name", ["numpy", "torch", "jax"])
def test_the_gradient_is_hermitian_for_any_cotangent(name, dtype, upper):
    """A general (not triangular, not Hermitian) cotangent still gives a Hermitian gA, from
    the explicit pullback and from the framework's AD through cholesky."""
    b = backend(name)
    rng, a = hpd(3, 4, dtype)
    g = random_like(rng, a)
    assert rel_err(g, adjoint(g)) > 0.1
    _, pullback = b.module.cholesky_vjp(b.to(a), upper=upper)
    grad = b.back(pullback(b.to(g)))
    assert np.array_equal(grad, adjoint(grad))
    assert rel_err(grad, 0 * grad) > 0.1
    got = b.autodiff("cholesky", a, np.zeros_like(a), [g], {"upper": upper})
    if name == "numpy":
        assert got is None  # NumPy has no autodiff
        return
    _, ad_grad = got
    assert rel_err(ad_grad, adjoint(ad_grad)) < 1e-15


@pytest.mark.parametrize("bad", [1, 0, "True", None], ids=repr)
@pytest.mark.parametrize("name", ["numpy", "torch", "jax"])
def test_options_are_type_checked(name, bad):
    """upper is a bool: 1, 0 and 'True' are not (they would be silently truthy or falsy)."""
    b, mod = backend(name), backend(name).module
    a = b.to(np.eye(3))
    message = r"cholesky: upper must be one of \[False, True\], got " + repr(bad)
    for call in (lambda: mod.cholesky(a, upper=bad), lambda: mod.cholesky_jvp(a, a, upper=bad),
                 lambda: mod.cholesky_vjp(a, upper=bad)):
        with pytest.raises(ValueError, match=message):
            call()


@pytest.mark.parametrize("name", ["numpy", "torch", "jax"])
def test_bad_inputs_raise_clear_errors(name):
    b = backend(name)
    mod = b.module
    with pytest.raises(ValueError, match=r"cholesky: A must be a matrix or a stack of matrices "
                                         r"\(ndim >= 2\), got shape \(3,\)"):
        mod.cholesky(b.to(np.ones(3)))
    # integers: promoted to float64 as numpy.linalg and jax.numpy.linalg promote them; torch
    # refuses them (torch.linalg.cholesky does), and every backend refuses float16: JAX with
    # NotImplementedError, as jax.numpy.linalg does
    ints = np.eye(3, dtype=np.int64)
    if name == "torch":
        with pytest.raises(TypeError, match=r"cholesky: A must be float32, float64, complex64 or "
                                            r"complex128, got torch\.int64"):
            mod.cholesky(b.to(ints))
    else:
        promoted = mod.cholesky(b.to(ints))
        expected = mod.cholesky(b.to(ints.astype(np.float64)))
        for y, z in zip(*(r if isinstance(r, tuple) else (r,) for r in (promoted, expected))):
            assert y.dtype == z.dtype and np.array_equal(np.asarray(y), np.asarray(z))
    unsupported = NotImplementedError if name == "jax" else TypeError
    with pytest.raises(unsupported, match=r"cholesky: A must be float32, float64, complex64 or "
                                          r"complex128, got (torch\.)?float16"):
        mod.cholesky(b.to(ints.astype(np.float16)))
    with pytest.raises(ValueError, match=r"cholesky: dA has shape \(2, 3\), expected \(3, 3\)"):
        mod.cholesky_jvp(b.to(np.eye(3)), b.to(np.ones((2, 3))))
    with pytest.raises(TypeError, match=r"cholesky: dA has dtype (torch\.)?float32, expected "
                                        r"(torch\.)?float64"):
        mod.cholesky_jvp(b.to(np.eye(3)), b.to(np.eye(3, dtype=np.float32)))
    _, pullback = mod.cholesky_vjp(b.to(np.eye(3)))
    with pytest.raises(ValueError, match=r"cholesky: gL has shape \(3, 2\), expected \(3, 3\)"):
        pullback(b.to(np.ones((3, 2))))
    for call in (mod.cholesky, mod.cholesky_vjp, lambda a: mod.cholesky_jvp(a, a)):
        with pytest.raises(ValueError, match=r"cholesky: A must have shape \(\.\.\., n, n\), "
                                             r"got \(2, 3, 2\)"):
            call(b.to(np.ones((2, 3, 2))))
