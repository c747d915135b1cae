"""JAX's own harness on the generated jax.custom_jvp function: check_grads to second order in
both modes, and jit, vmap and grad."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from generated import jax as fr
from generator.verify import well_conditioned

jax.config.update("jax_enable_x64", True)

SHAPES = {"tall": (5, 3), "square": (3, 3), "wide": (3, 5)}


def matrix(shape, dtype, batch=(2,), seed=0):
    return jnp.asarray(well_conditioned(np.random.default_rng(seed), SHAPES[shape], dtype, batch))


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("mode", ["reduced", "complete", "r"])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128], ids=["f64", "c128"])
def test_check_grads_order_two_forward_and_reverse(dtype, mode, shape):
    def f(a):
        return tuple(x for x in fr.qr(a, mode=mode) if x.size)
    check_grads(f, (matrix(shape, dtype),), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("mode", ["reduced", "complete", "r"])
def test_jit_and_vmap_match_the_eager_batched_call(mode):
    a = matrix("tall", np.float64, batch=(4,))
    eager = fr.qr(a, mode=mode)
    jitted = jax.jit(fr.qr, static_argnames="mode")(a, mode=mode)
    mapped = jax.vmap(lambda x: fr.qr(x, mode=mode))(a)
    for got in (jitted, mapped):
        assert np.allclose(got.R, eager.R, rtol=0, atol=1e-13)
        if mode != "r":
            assert np.allclose(got.Q, eager.Q, rtol=0, atol=1e-13)


def test_grad_under_jit_and_vmap_equals_eager_grad():
    a = matrix("tall", np.complex128, batch=(3,))

    def loss(x):
        q, r = fr.qr(x, mode="complete")
        return jnp.sum(jnp.abs(q[..., :, -1]) ** 2 * jnp.arange(5)) + jnp.sum(jnp.abs(r) ** 2)

    eager = jax.grad(loss)(a)
    jitted = jax.jit(jax.grad(loss))(a)
    mapped = jax.vmap(jax.grad(loss))(a)
    assert np.allclose(jitted, eager, rtol=0, atol=1e-12)
    assert np.allclose(mapped, eager, rtol=0, atol=1e-12)


def test_qr_vjp_uses_jax_cotangent_convention():
    """qr_vjp's pullback is jax.vjp's, complex conjugation included."""
    a = matrix("wide", np.complex128, batch=())
    rng = np.random.default_rng(1)
    g_r = jnp.asarray(rng.standard_normal((3, 5)) + 1j * rng.standard_normal((3, 5)))
    _, pullback = fr.qr_vjp(a)
    _, reference = jax.vjp(lambda x: fr.qr(x).R, a)
    assert np.allclose(pullback(None, g_r), reference(g_r)[0], rtol=0, atol=1e-12)
