"""The generated rules of every spec in spec/: finite differences, adjointness, cross-backend
agreement and native autodiff, over variants (options), shape classes (zero-size included),
batches and dtypes.  The cases come from the specs (tests/spec_cases.py); a new spec is tested
here without new test code."""
import numpy as np
import pytest

from generator import sample
from generator.verify import (JaxBackend, NumpyBackend, TorchBackend, inner, random_like,
                              rel_err)
from spec_cases import DTYPES, cases, wide64

# relative error allowed against a float64 computation of the same quantity
TOL = {np.float32: 2e-4, np.complex64: 2e-4, np.float64: 1e-11, np.complex128: 1e-11}

_BACKENDS = {}


def backend(name):
    if name not in _BACKENDS:
        _BACKENDS[name] = {"numpy": NumpyBackend, "torch": TorchBackend,
                           "jax": JaxBackend}[name]()
    return _BACKENDS[name]


def problem(case, seed, dtype=None):
    """(rng, x, dx): a well-conditioned input of the case and a tangent on its structure."""
    rng = np.random.default_rng(seed)
    x = case.input(rng, dtype)
    return rng, x, case.tangent(rng, x)


def random_cotangents(rng, tangents):
    return [None if t is None else random_like(rng, t) for t in tangents]


@pytest.mark.parametrize("case", cases(("regular", "zero"), ("f64", "c128"), ("b2",)))
@pytest.mark.parametrize("name", ["numpy", "torch", "jax"])
def test_jvp_matches_central_finite_differences(name, case):
    b = backend(name)
    rng, x, dx = problem(case, 1)
    _, tangents = b.jvp(case.op, x, dx, case.options)
    h = 1e-6
    plus = b.forward(case.op, x + h * dx, case.options)
    minus = b.forward(case.op, x - h * dx, case.options)
    assert len(tangents) == len(plus) == len(case.outputs)
    for differentiable, t, p, q in zip(case.differentiable, tangents, plus, minus):
        if not differentiable:
            assert t is None and p.size == 0  # returned empty (qr mode='r': Q), no tangent
            continue
        assert rel_err(t, (p - q) / (2 * h)) < 1e-7


@pytest.mark.parametrize("case", cases(("regular", "zero"), tuple(DTYPES),
                                       ("unbatched", "b2", "b2x3", "b0")))
@pytest.mark.parametrize("name", ["numpy", "torch", "jax"])
def test_vjp_is_the_adjoint_of_the_jvp(name, case):
    """Dot-product test: Re<gA, dA> = sum over outputs of Re<gY, dY>."""
    b = backend(name)
    rng, x, dx = problem(case, 2)
    outputs, tangents = b.jvp(case.op, x, dx, case.options)
    cotangents = random_cotangents(rng, tangents)
    grad = b.vjp(case.op, x, cotangents, case.options)
    assert grad.shape == x.shape and grad.dtype == x.dtype
    assert [t is not None for t in tangents] == list(case.differentiable)
    for o, t in zip(outputs, tangents):
        assert o.dtype == x.dtype
        assert t is None or (t.shape == o.shape and t.dtype == o.dtype)
    lhs = inner(grad, dx)
    rhs = sum(inner(g, t) for g, t in zip(cotangents, tangents) if t is not None)
    scale = max(1.0, float(np.sqrt(inner(grad, grad) * inner(dx, dx))))
    assert abs(lhs - rhs) <= TOL[case.dtype] * scale


@pytest.mark.parametrize("case", cases(("regular", "zero"), tuple(DTYPES),
                                       ("unbatched", "b2x3", "b0")))
@pytest.mark.parametrize("name", ["torch", "jax"])
def test_backend_agrees_with_the_numpy_reference(name, case):
    """Same inputs in every backend; low precision is compared with the float64 reference."""
    b = backend(name)
    rng, x, dx = problem(case, 3)
    outputs, tangents = b.jvp(case.op, x, dx, case.options)
    cotangents = random_cotangents(rng, tangents)
    grad = b.vjp(case.op, x, cotangents, case.options)

    ref = backend("numpy")
    wide = wide64(case.dtype)
    up = [None if g is None else g.astype(wide) for g in cotangents]
    ref_outputs, ref_tangents = ref.jvp(case.op, x.astype(wide), dx.astype(wide), case.options)
    ref_grad = ref.vjp(case.op, x.astype(wide), up, case.options)
    assert len(outputs) == len(ref_outputs) and len(tangents) == len(ref_tangents)
    for o, r in zip(outputs, ref_outputs):
        assert o.shape == r.shape
        assert rel_err(o, r) < TOL[case.dtype]
    for t, r in zip(tangents, ref_tangents):
        assert (t is None) == (r is None)
        if t is not None:
            assert rel_err(t, r) < TOL[case.dtype]
    assert rel_err(grad, ref_grad) < TOL[case.dtype]


@pytest.mark.parametrize("case", cases(("regular",), ("f64", "c128"), ("b2",)))
@pytest.mark.parametrize("name", ["torch", "jax"])
def test_framework_autodiff_and_native_rules(name, case):
    """AD through the generated function equals the explicit rules, and equals the native
    rule of torch.linalg / jax.numpy.linalg wherever that exists and differentiates
    (spec_cases.NATIVE_REFUSES).

    A native gradient is compared after projection onto the input's structure: for a
    Hermitian input (cholesky) torch's complex gradient is not Hermitian, ours (like JAX's)
    is its Hermitian part (spec/cholesky.yaml, notes)."""
    b = backend(name)
    rng, x, dx = problem(case, 4)
    _, tangents = b.jvp(case.op, x, dx, case.options)
    cotangents = random_cotangents(rng, tangents)
    grad = b.vjp(case.op, x, cotangents, case.options)

    ad_tangents, ad_grad = b.autodiff(case.op, x, dx, cotangents, case.options)
    for t, a in zip(tangents, ad_tangents):
        if t is not None:
            assert rel_err(a, t) < 1e-12
    assert rel_err(ad_grad, grad) < 1e-12

    native = b.native(case.op, x, dx, cotangents, case.options)
    expected = case.native(name)
    if expected == "absent":
        assert native is None
        return
    if expected == "refuses":
        assert native == "refuses"
        return
    assert native not in (None, "refuses"), \
        f"the native {name} rule of {case.op} gives {native!r} here: spec_cases.NATIVE_REFUSES"
    native_tangents, native_grad = native
    for t, n in zip(tangents, native_tangents):
        if t is not None:
            assert rel_err(n, t) < 1e-10
    assert rel_err(sample.project(native_grad, case.structure), grad) < 1e-10


def test_every_spec_and_variant_is_in_the_ladder():
    """The cases come from spec/*.yaml: every file, every variant, every shape class."""
    from generator.render import ROOT
    from spec_cases import SHAPES, SPECS, ZERO_SHAPES
    files = {p.stem for p in (ROOT / "spec").glob("*.yaml")}
    assert files and {c.spec.name for c in SPECS} == files
    got = {(c.op, c.cv.variant.label, c.shape_name)
           for c in (p.values[0] for p in cases(("regular", "zero")))}
    for checked in SPECS:
        count = sum(d.source is not None for d in checked.dims)
        for cv in checked.variants:
            for shape_name in [*SHAPES[count], *ZERO_SHAPES[count]]:
                assert (checked.spec.name, cv.variant.label, shape_name) in got
