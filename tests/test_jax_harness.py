"""JAX's own harness on the generated jax.custom_jvp function of every spec: check_grads to
second order in both modes, and jit, vmap and grad.  An input with a structure (cholesky's
Hermitian A) is differentiated through X -> op(project(X)), so that the numerical derivatives
see a function of every entry; outputs with a gauge (eigh's eigenvectors) are composed with
factorules.tools.gauge.fix, the alignment to their value at the checked point, so that the checked
function is gauge invariant and has a derivative.

Every test runs under JAX's strictest settings, as JAX's own test suite does:
jax_numpy_dtype_promotion="strict" (no implicit promotion: real and complex operands, float32
and float64 never mix) and jax_numpy_rank_promotion="raise" (no implicit broadcasting to more
axes).  Double-precision cases run with jax_enable_x64 on, single-precision ones with it off,
as most JAX users have it (default integer int32, Python floats float32)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from generated import jax as fr
from factorules.tools import gauge
from factorules.tools.adapters import as_tuple
from factorules.audit import sample
from factorules.tools.verify import random_like
from jax_strictness import dot_precisions, is_highest, strict
from spec_cases import alternate, cases, in_turn, one_per_spec, wide64

jax.config.update("jax_enable_x64", True)


@pytest.fixture(autouse=True)
def strict_promotion():
    with strict():
        yield


def precision(case):
    """jax_enable_x64 as the case's dtype needs it: on for float64 and complex128, off for
    float32 and complex64 (a context manager)."""
    return jax.enable_x64(case.dtype_name in ("f64", "c128"))


def tolerance(case, double):
    """``double`` for a double-precision case; for a single-precision one, the same number
    of eps: the two dtypes' eps differ by 2^29."""
    return double if case.dtype_name in ("f64", "c128") else double * 2.0 ** 29


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


@pytest.mark.parametrize("case", alternate(in_turn(cases(("regular",), ("f64", "c128"), ("b2",),
                                                         small=True), shapes=True, start=1), 0))
def test_check_grads_order_two_forward_and_reverse(case):
    """The rules to second order; with the checks of degenerate inputs on (their primitive
    differentiated and transposed too) for complex cases, off for real ones, where they would
    only double the compilation (tests/test_degenerate.py tests what they catch).  The spec
    variants are split between this test and the single-precision one (every other variant:
    each spec of several variants meets both), each variant in the shape class of its turn;
    --full runs every variant in both, in two shape classes.  (Every variant's second
    derivatives are checked against finite differences in torch's gradgradcheck too,
    tests/test_torch_harness.py: the rules are printed from one program.)"""
    a = matrix(case)
    check_grads(gauge_fixed(case, a), (a,), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("case", alternate(in_turn(cases(("regular",), ("f32", "c64"), ("b2",),
                                                         small=True), shapes=True, start=0), 1))
def test_single_precision_derivatives_to_order_two_match_double(case):
    """In float32 and complex64, with jax_enable_x64 off: the JVP, the VJP and the JVP of the
    VJP (second order) agree with double precision's, which check_grads holds to the finite
    differences (single precision's finite differences are too coarse for order two).  The
    inputs, tangent and cotangents are the double-precision ones rounded, and the gauge
    (eigenvectors' phases, which LAPACK may choose differently in the two precisions) is
    fixed to the double-precision outputs', rounded."""
    rng = np.random.default_rng(7)
    a = case.input(np.random.default_rng(0), dtype=wide64(case.dtype))
    tangent = sample.project(random_like(rng, a), case.structure)
    with jax.enable_x64(True):
        reference = tuple(np.asarray(y) for y in outputs_at(case, jnp.asarray(a)))
        double = derivatives(case, jnp.asarray(a), jnp.asarray(tangent),
                             np.random.default_rng(8))
    with precision(case):
        x = jnp.asarray(a.astype(case.dtype))
        rounded = tuple(jnp.asarray(r, y.dtype) for r, y in zip(reference, outputs_at(case, x)))
        single = derivatives(case, x, jnp.asarray(tangent.astype(case.dtype)),
                             np.random.default_rng(8), rounded)
    assert len(single) == len(double)
    # relative to the largest derivative: a second derivative may vanish (n = 1)
    scale = max(np.linalg.norm(np.asarray(d)) for d in double)
    for got, want in zip(single, double):
        assert got.dtype == (np.complex64 if np.iscomplexobj(want) else np.float32)
        want = np.asarray(want)
        error = np.linalg.norm(np.asarray(got, want.dtype) - want) / scale
        assert error < 1e-4, error


def switches(case) -> dict:
    """The checks of degenerate inputs: on for complex cases, off for real ones."""
    return {} if case.dtype_name.startswith("c") else {
        o.name: False for o in case.checked.spec.options if not o.selects}


def outputs_at(case, x) -> tuple:
    """op(project(x)), every output."""
    return as_tuple(op(case)(project(x, case.structure), **case.options, **switches(case)))


def gauge_fixed(case, a, reference=None):
    """The function check_grads differentiates: op(project(X)) with its gauge fixed to its
    value at a (or to ``reference``, outputs near it); its differentiable outputs."""
    reference = outputs_at(case, a) if reference is None else reference

    def g(x):
        outs = gauge.fix(outputs_at(case, x), reference, case.cv)
        return tuple(y for y, d in zip(outs, case.differentiable) if d)
    return g


def derivatives(case, a, tangent, rng, reference=None):
    """The JVP of gauge_fixed(case, a, reference) along ``tangent``, its VJP of random
    cotangents (drawn from ``rng`` in double precision, rounded to the outputs' dtypes) and
    the JVP of that VJP along ``tangent``, flattened to one tuple."""
    g = gauge_fixed(case, a, reference)
    outputs, jvp_out = jax.jvp(g, (a,), (tangent,))
    cotangents = tuple(jnp.asarray(random_like(rng, np.asarray(y, wide64(y.dtype))), y.dtype)
                       for y in outputs)
    vjp_out, second = jax.jvp(lambda x: jax.vjp(g, x)[1](cotangents)[0], (a,), (tangent,))
    return (*jvp_out, vjp_out, second)


@pytest.mark.parametrize("case", in_turn(cases(("regular",), ("f64", "c64"), ("b2",),
                                               small=True), shapes=True, start=1))
def test_jit_and_vmap_match_the_eager_batched_call(case):
    with precision(case):
        check_jit_and_vmap(case)


def check_jit_and_vmap(case):
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
                assert g.dtype == e.dtype
                assert np.allclose(g, e, rtol=0, atol=tolerance(case, 1e-13))


@pytest.mark.parametrize("case", in_turn(cases(("first",), ("c128", "f32"), ("b2",),
                                               small=True)))
def test_grad_under_jit_and_vmap_equals_eager_grad(case):
    with precision(case):
        check_grad_under_jit_and_vmap(case)


def check_grad_under_jit_and_vmap(case):
    a = matrix(case)
    a = jnp.concatenate([a, a[:1]])  # a batch of three
    f = op(case)
    rng = np.random.default_rng(5)  # fixed weights per entry: |Q|^2 alone would be constant
    # (|entry|^2 does not depend on a phase: the loss is invariant to phases, but not to
    # rotations of a completion, which the gauge check turns into NaN: off for those); the
    # weights are those of one matrix of the batch, shared under vmap
    options = dict(case.options, **({"check_gauge": False} if case.cv.gauge_rotations else {}))
    weights = [jnp.asarray(rng.uniform(0.5, 2.0, o.shape[1:]), jnp.real(o).dtype) if d else None
               for o, d in zip(as_tuple(f(a, **options)), case.differentiable)]

    def loss(x):
        outs = as_tuple(f(x, **options))
        return sum(jnp.sum(jnp.abs(o) ** 2 * jnp.expand_dims(w, range(o.ndim - w.ndim)))
                   for o, w in zip(outs, weights) if w is not None)

    eager = jax.grad(loss)(a)
    jitted = jax.jit(jax.grad(loss))(a)
    mapped = jax.jit(jax.vmap(jax.grad(loss)))(a)  # the batching rules, compiled once
    assert eager.dtype == jitted.dtype == mapped.dtype == a.dtype
    assert np.abs(eager).max() > 0.1
    assert np.allclose(jitted, eager, rtol=0, atol=tolerance(case, 1e-12))
    assert np.allclose(mapped, eager, rtol=0, atol=tolerance(case, 1e-12))


@pytest.mark.parametrize("case", one_per_spec(cases(("first",), ("f64",), ("b2",), small=True)))
def test_jax_grad_runs_the_rule_as_one_jitted_program(case):
    """Traced (here by eager jax.grad), a spec's JVP rule is one jitted function, which
    jax.grad dispatches, with its transpose, as compiled programs rather than an operation
    at a time (eager jax.grad of svd 4x6x6: 9 ms a call, from 30)."""
    with precision(case):
        f = op(case)
        a = matrix(case)

        def loss(x):
            return sum(jnp.sum(jnp.abs(o) ** 2) for o, d in
                       zip(as_tuple(f(x, **case.options)), case.differentiable) if d)
        rules = [e for e in _equations(jax.make_jaxpr(jax.grad(loss))(a).jaxpr)
                 if e.params.get("name") == "_jvp_rule"]
        assert rules and all(e.primitive.name in ("jit", "pjit") for e in rules)


def _equations(jaxpr):
    """Every equation of ``jaxpr`` and of the jaxprs inside it."""
    for eqn in jaxpr.eqns:
        yield eqn
        for param in eqn.params.values():
            for inner in (param if isinstance(param, (tuple, list)) else (param,)):
                inner = getattr(inner, "jaxpr", inner)
                if isinstance(inner, jax.extend.core.Jaxpr):
                    yield from _equations(inner)


@pytest.mark.parametrize("case", one_per_spec(in_turn(cases(("regular",), ("c128", "c64"),
                                                            ("unbatched",), small=True),
                                                      shapes=True, start=2)))
def test_vjp_uses_jax_cotangent_convention(case):
    """<op>_vjp's pullback is jax.vjp's, complex conjugation included.  The cotangents of
    outputs with a gauge are made invariant in JAX's convention (factorules.tools.gauge): the
    pullback checks them in that convention and raises if they were not.  The conversion is
    the module's, around every variant's rule: one variant per spec, in turn (every one under
    --full)."""
    with precision(case):
        check_cotangent_convention(case)


def check_cotangent_convention(case):
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
    got = pullback(*cotangents)
    assert got.dtype == want.dtype == a.dtype
    assert np.allclose(got, want, rtol=0, atol=tolerance(case, 1e-12))


@pytest.mark.parametrize("case", in_turn(cases(("regular",), ("c128",), ("b2",), small=True),
                                         shapes=True, start=3))
def test_every_matrix_product_of_the_rules_is_at_highest_precision(case):
    """Every dot_general in the jaxprs of the primal, the JVP, the gradient (JAX's
    transposition of the JVP), the explicit pullback and the JVP of the gradient (second
    order) asks for lax.Precision.HIGHEST, as jax.lax.linalg's rules do; inside a
    jax.default_matmul_precision context the rules' products leave the precision to it."""
    a = matrix(case)
    f = op(case)

    def outputs(x):
        return tuple(y for y, d in zip(as_tuple(f(x, **case.options)), case.differentiable)
                     if d)

    def loss(x):
        return sum(jnp.sum(jnp.abs(y) ** 2) for y in outputs(x))

    def pulled(x):
        ys, pullback = getattr(fr, f"{case.op}_vjp")(x, **case.options)
        return pullback(*(y if d else None for y, d in zip(as_tuple(ys), case.differentiable)))

    traced = {
        "primal": outputs,
        "jvp": lambda x: jax.jvp(outputs, (x,), (x,)),
        "grad": jax.grad(loss),
        "pullback": pulled,
        "jvp of grad": lambda x: jax.jvp(jax.grad(loss), (x,), (x,)),
    }
    found = 0
    for name, fn in traced.items():
        precisions = dot_precisions(jax.make_jaxpr(fn)(a))
        assert all(is_highest(p) for p in precisions), (name, precisions)
        found += len(precisions)
        # a user's jax.default_matmul_precision context applies to the rules' products (not
        # to those of JAX's own solves, which fix theirs: eigvals' pullback is one solve)
        own = dot_precisions(jax.make_jaxpr(fn)(a), skip=("custom_linear_solve",))
        with jax.default_matmul_precision("bfloat16"):
            theirs = dot_precisions(jax.make_jaxpr(fn)(a), skip=("custom_linear_solve",))
        assert len(theirs) == len(own)
        assert any(not is_highest(p) for p in theirs) or not own
    assert found > 0  # the rules multiply matrices: the jaxprs were searched
