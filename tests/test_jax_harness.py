"""JAX's own harness on the generated jax.custom_jvp function of every spec: check_grads to
second order in both modes, and jit, vmap and grad.  An input with a structure (cholesky's
Hermitian A) is differentiated through X -> op(project(X)), so that the numerical derivatives
see a function of every entry; outputs with a gauge (eigh's eigenvectors) are composed with
factorules.tools.gauge.fix, the alignment to their value at the checked point, so that the checked
function is gauge invariant and has a derivative."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from generated import jax as fr
from factorules.tools import gauge
from factorules.tools.adapters import as_tuple
from spec_cases import cases, sampled

jax.config.update("jax_enable_x64", True)


def matrix(case, seed=0):
    return jnp.asarray(case.input(np.random.default_rng(seed)))


def project(x, structure):
    """The input's structure imposed on any X, in JAX (factorules.audit.sample.project's)."""
    if structure == "hermitian":
        return (x + jnp.conj(jnp.swapaxes(x, -1, -2))) / 2
    if structure == "upper_triangular":
        return jnp.triu(x)
    if structure == "lower_triangular":
        return jnp.tril(x)
    assert structure in (None, "general"), f"no jax projection for structure {structure!r}"
    return x


def op(case):
    return getattr(fr, case.op)


@pytest.mark.parametrize("case", sampled(cases(("regular",), ("f64", "c128"), ("b2",),
                                               small=True), seed=3))
def test_check_grads_order_two_forward_and_reverse(case):
    """The rules to second order; with the checks of degenerate inputs on (their primitive
    differentiated and transposed too) for complex cases, off for real ones, where they would
    only double the compilation (tests/test_degenerate.py tests what they catch)."""
    f = op(case)
    a = matrix(case)
    switches = {} if case.dtype_name.startswith("c") else {
        o.name: False for o in case.checked.spec.options if not o.selects}
    reference = as_tuple(f(project(a, case.structure), **case.options, **switches))

    def g(x):
        outs = gauge.fix(as_tuple(f(project(x, case.structure), **case.options, **switches)),
                         reference, case.cv)
        return tuple(y for y, d in zip(outs, case.differentiable) if d)
    check_grads(g, (a,), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("case", cases(("first",), ("f64",), ("b2",), small=True))
def test_jit_and_vmap_match_the_eager_batched_call(case):
    a = matrix(case)
    a = jnp.concatenate([a, 2 * a])  # a batch of four
    f = op(case)
    eager = as_tuple(f(a, **case.options))
    jitted = as_tuple(jax.jit(f, static_argnames=tuple(case.options))(a, **case.options))
    mapped = as_tuple(jax.vmap(lambda x: f(x, **case.options))(a))
    for got in (jitted, mapped):
        assert len(got) == len(eager) == len(case.outputs)
        for differentiable, g, e in zip(case.differentiable, got, eager):
            if differentiable:  # an output returned empty is empty in both, in its own way
                assert np.allclose(g, e, rtol=0, atol=1e-13)


@pytest.mark.parametrize("case", cases(("first",), ("c128",), ("b2",), small=True))
def test_grad_under_jit_and_vmap_equals_eager_grad(case):
    a = matrix(case)
    a = jnp.concatenate([a, a[:1]])  # a batch of three
    f = op(case)
    rng = np.random.default_rng(5)  # fixed weights per entry: |Q|^2 alone would be constant
    # (|entry|^2 does not depend on a phase: the loss is invariant to phases, but not to
    # rotations of a completion, which the gauge check turns into NaN: off for those); the
    # weights are those of one matrix of the batch, shared under vmap
    options = dict(case.options, **({"check_gauge": False} if case.cv.gauge_rotations else {}))
    weights = [jnp.asarray(rng.uniform(0.5, 2.0, o.shape[1:])) if d else None
               for o, d in zip(as_tuple(f(a, **options)), case.differentiable)]

    def loss(x):
        outs = as_tuple(f(x, **options))
        return sum(jnp.sum(jnp.abs(o) ** 2 * w) for o, w in zip(outs, weights) if w is not None)

    eager = jax.grad(loss)(a)
    jitted = jax.jit(jax.grad(loss))(a)
    mapped = jax.vmap(jax.grad(loss))(a)
    assert np.abs(eager).max() > 0.1
    assert np.allclose(jitted, eager, rtol=0, atol=1e-12)
    assert np.allclose(mapped, eager, rtol=0, atol=1e-12)


@pytest.mark.parametrize("case", cases(("first",), ("c128",), ("unbatched",), small=True))
def test_vjp_uses_jax_cotangent_convention(case):
    """<op>_vjp's pullback is jax.vjp's, complex conjugation included.  The cotangents of
    outputs with a gauge are made invariant in JAX's convention (factorules.tools.gauge): the
    pullback checks them in that convention and raises if they were not."""
    a = matrix(case)
    f = op(case)
    rng = np.random.default_rng(1)
    outs = as_tuple(f(a, **case.options))
    drawn = [rng.standard_normal(o.shape) + 1j * rng.standard_normal(o.shape)
             if np.iscomplexobj(o) else rng.standard_normal(o.shape) for o in outs]
    projected = gauge.invariant_cotangent([np.asarray(o) for o in outs], drawn, case.cv, "jax")
    cotangents = [jnp.asarray(g.astype(o.dtype)) if d else None
                  for o, g, d in zip(outs, projected, case.differentiable)]
    _, pullback = getattr(fr, f"{case.op}_vjp")(a, **case.options)
    _, reference = jax.vjp(
        lambda x: tuple(o for o, d in zip(as_tuple(f(x, **case.options)), case.differentiable)
                        if d), a)
    (want,) = reference(tuple(g for g in cotangents if g is not None))
    assert np.allclose(pullback(*cotangents), want, rtol=0, atol=1e-12)
