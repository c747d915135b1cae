"""The generated rules of every spec in spec/: finite differences, adjointness, cross-backend
agreement and native autodiff, over variants (options), shape classes (zero-size included),
batches and dtypes.  The cases come from the specs (tests/spec_cases.py); a new spec is tested
here without new test code."""
import re

import numpy as np
import pytest

from factorules.tools import gauge
from factorules.audit import sample
from factorules.compiler.check_gauge import GAUGE_OPTION
from factorules.tools.adapters import (JaxAdapter as JaxBackend, NumpyAdapter as NumpyBackend,
                                      TorchAdapter as TorchBackend)
from factorules.tools.verify import inner, rel_err
from spec_cases import DTYPES, cases, regression, sampled, wide64

# relative error allowed against a float64 computation of the same quantity
TOL = {np.float32: 2e-4, np.complex64: 2e-4, np.float64: 1e-11, np.complex128: 1e-11}

BACKENDS = ("numpy", "torch", "jax")
FRAMEWORKS = ("torch", "jax")
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


@pytest.mark.parametrize("name, case", sampled(cases(("regular", "zero"), ("f64", "c128"), ("b2",)),
                                             BACKENDS))
def test_jvp_matches_central_finite_differences(name, case):
    """Outputs with a gauge (eigenvectors) at A +- h dA are aligned with those at A first:
    the derivative is taken in their gauge (factorules.tools.gauge)."""
    b = backend(name)
    rng, x, dx = problem(case, 1)
    outputs, tangents = b.jvp(case.op, x, dx, case.options)
    h = 1e-6
    plus = gauge.align(b.forward(case.op, x + h * dx, case.options), outputs, case.cv)
    minus = gauge.align(b.forward(case.op, x - h * dx, case.options), outputs, case.cv)
    assert len(tangents) == len(plus) == len(case.outputs)
    for tensor, differentiable, t, p, q in zip(case.returned, case.differentiable, tangents,
                                                plus, minus):
        if tensor.constant:  # a permutation or pivots: no tangent, the same on both sides
            assert t is None
            np.testing.assert_array_equal(np.asarray(p), np.asarray(q))
            continue
        if not differentiable:
            assert t is None and p.size == 0  # returned empty (qr mode='r': Q), no tangent
            continue
        assert rel_err(t, (p - q) / (2 * h)) < 1e-7


@pytest.mark.parametrize("name, case", sampled(cases(("regular", "zero"), tuple(DTYPES),
                                                   ("unbatched", "b2", "b2x3", "b0")), BACKENDS))
def test_vjp_is_the_adjoint_of_the_jvp(name, case):
    """Dot-product test: Re<gA, dA> = sum over outputs of Re<gY, dY> (cotangents of gauge
    outputs made gauge invariant, as a loss must be)."""
    b = backend(name)
    rng, x, dx = problem(case, 2)
    outputs, tangents = b.jvp(case.op, x, dx, case.options)
    cotangents = case.cotangents(rng, outputs)
    grad = b.vjp(case.op, x, cotangents, case.options)
    assert grad.shape == x.shape and grad.dtype == x.dtype
    assert [t is not None for t in tangents] == list(case.differentiable)
    assert len(outputs) == len(case.outputs)
    for o, t, dtype in zip(outputs, tangents, case.output_dtypes()):
        assert o.dtype == dtype
        assert t is None or (t.shape == o.shape and t.dtype == o.dtype)
    lhs = inner(grad, dx)
    rhs = sum(inner(g, t) for g, t in zip(cotangents, tangents) if t is not None)
    scale = max(1.0, float(np.sqrt(inner(grad, grad) * inner(dx, dx))))
    assert abs(lhs - rhs) <= TOL[case.dtype] * scale


@pytest.mark.parametrize("name, case", sampled(cases(("regular", "zero"), tuple(DTYPES),
                                                   ("unbatched", "b2x3", "b0")), FRAMEWORKS))
def test_backend_agrees_with_the_numpy_reference(name, case):
    """Same inputs in every backend; low precision is compared with the float64 reference.
    Outputs with a gauge (eigenvectors), their tangents and the cotangents are carried into
    the reference's gauge first (factorules.tools.gauge)."""
    b = backend(name)
    rng, x, dx = problem(case, 3)
    outputs, tangents = b.jvp(case.op, x, dx, case.options)
    cotangents = case.cotangents(rng, outputs)
    grad = b.vjp(case.op, x, cotangents, case.options)

    ref = backend("numpy")
    wide = wide64(case.dtype)
    ref_outputs, ref_tangents = ref.jvp(case.op, x.astype(wide), dx.astype(wide), case.options)
    assert len(outputs) == len(ref_outputs) and len(tangents) == len(ref_tangents)
    for o, r in zip(outputs, ref_outputs):
        assert o.shape == r.shape
    factors = gauge.phases(outputs, ref_outputs, case.cv)
    outputs, tangents, cotangents = (gauge.rotate(v, factors, case.cv)
                                     for v in (outputs, tangents, cotangents))
    # widened, and gauge invariant at the reference's outputs to double precision
    up = gauge.invariant_cotangent(
        ref_outputs, [None if g is None else g.astype(wide64(g.dtype)) for g in cotangents],
        case.cv)
    ref_grad = ref.vjp(case.op, x.astype(wide), up, case.options)
    for o, r in zip(outputs, ref_outputs):
        assert rel_err(o, r) < TOL[case.dtype]
    for t, r in zip(tangents, ref_tangents):
        assert (t is None) == (r is None)
        if t is not None:
            assert rel_err(t, r) < TOL[case.dtype]
    assert rel_err(grad, ref_grad) < TOL[case.dtype]


@pytest.mark.parametrize("name, case", sampled(cases(("regular",), ("f64", "c128"), ("b2",)),
                                             FRAMEWORKS, native=True,
                                             must=regression))
def test_framework_autodiff_and_native_rules(name, case):
    """AD through the generated function equals the explicit rules, and equals the native
    rule of torch.linalg / jax.numpy.linalg wherever that exists and differentiates
    (spec_cases.NATIVE_REFUSES).

    A native gradient is compared after projection onto the input's structure: for a
    Hermitian input (cholesky) torch's complex gradient is not Hermitian, ours (like JAX's)
    is its Hermitian part (spec/cholesky.yaml, notes).  Native tangents of outputs with a
    gauge are compared without their component along it (gauge.project_tangent): a native
    rule may split a phase differently (JAX's svd)."""
    b = backend(name)
    rng, x, dx = problem(case, 4)
    outputs, tangents = b.jvp(case.op, x, dx, case.options)
    cotangents = case.cotangents(rng, outputs)
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
    if expected == "wrong":  # factorules.tools.natives: the native gradient is not this one
        assert native not in (None, "refuses")
        assert rel_err(native[1], grad) > 1e-3, "factorules.tools.natives lists a native rule " \
                                                "that agrees here: remove the entry"
        return
    assert native not in (None, "refuses"), \
        f"the native {name} rule of {case.op} gives {native!r} here: spec_cases.NATIVE_REFUSES"
    native_tangents, native_grad = native
    # a native rule may pick another derivative along the gauge (factorules.tools.gauge)
    native_tangents = gauge.project_tangent(outputs, list(native_tangents), case.cv)
    own = gauge.project_tangent(outputs, tangents, case.cv)
    assert len(native_tangents) == len(own)
    for t, n in zip(own, native_tangents):
        if t is not None:
            assert rel_err(n, t) < 1e-10
    assert rel_err(sample.project(native_grad, case.structure), grad) < 1e-10


def gauge_cases():
    """Complex cases of every variant whose pullbacks check the gauge (spec.Gauge
    'cotangent'): a real gauge is signs, along which no cotangent moves."""
    return [p for p in cases(("regular",), ("c64", "c128"), ("b2",)) if p.values[0].gauge_check]


def _dependent(case, rng, outputs):
    """(invariant, dependent) cotangents: random ones made gauge invariant, and the same plus
    a part along the gauge; the spec's gauge expression tells them apart."""
    invariant = case.cotangents(rng, outputs)
    along = gauge.dependent_cotangent(outputs, rng, case.cv)
    dependent = [g if a is None else g + a for g, a in zip(invariant, along)]
    assert gauge.residual(outputs, invariant, case.cv) < 1e-5 * max(
        1.0, max(float(np.abs(g).max()) for g in invariant if g is not None and g.size))
    assert gauge.residual(outputs, dependent, case.cv) > 0.5
    return invariant, dependent


def _gauge_error(case):
    return re.escape(f"{case.op}: {case.cv.variant.gauge.message}")


@pytest.mark.parametrize("name, case", sampled(gauge_cases(), BACKENDS))
def test_a_gauge_dependent_cotangent_raises_unless_check_gauge_is_false(name, case):
    """The pullback rejects a loss that depends on the gauge; with check_gauge=False it
    returns the gradient of the loss's gauge-invariant part (the JVP has no component along
    the gauge, so its adjoint ignores the cotangent's)."""
    b = backend(name)
    rng, x, _ = problem(case, 6)
    outputs = b.forward(case.op, x, case.options)
    invariant, dependent = _dependent(case, rng, outputs)
    with pytest.raises(ValueError, match=_gauge_error(case)):
        b.vjp(case.op, x, dependent, case.options)
    unchecked = b.vjp(case.op, x, dependent, {**case.options, GAUGE_OPTION: False})
    expected = b.vjp(case.op, x, invariant, case.options)
    assert np.isfinite(unchecked).all() and np.abs(expected).max() > 0.1
    assert rel_err(unchecked, expected) < TOL[case.dtype]


@pytest.mark.parametrize("case", sampled(gauge_cases()))
def test_torch_backward_checks_the_gauge(case):
    """The same check in backward of the generated torch.autograd.Function."""
    import torch

    import generated.torch as frt
    from factorules.tools.adapters import as_tuple

    rng, x, _ = problem(case, 7)
    b = backend("torch")
    invariant, dependent = _dependent(case, rng, b.forward(case.op, x, case.options))
    grads = {}
    for options, cotangents in ((case.options, invariant), (case.options, dependent),
                                ({**case.options, GAUGE_OPTION: False}, dependent)):
        a = torch.from_numpy(x).requires_grad_(True)
        outs = as_tuple(getattr(frt, case.op)(a, **options))
        pairs = [(o, torch.from_numpy(g)) for o, g in zip(outs, cotangents) if g is not None]
        try:
            torch.autograd.backward([o for o, _ in pairs], [g for _, g in pairs])
        except ValueError as error:
            assert re.search(_gauge_error(case), str(error)), error
            grads[options.get(GAUGE_OPTION, True), cotangents is dependent] = "raised"
            continue
        grads[options.get(GAUGE_OPTION, True), cotangents is dependent] = a.grad.numpy()
    assert grads[True, True] == "raised"
    assert not isinstance(grads[True, False], str) and not isinstance(grads[False, True], str)
    assert rel_err(grads[False, True], grads[True, False]) < TOL[case.dtype]
    assert rel_err(grads[True, False], b.vjp(case.op, x, invariant, case.options)) \
        < TOL[case.dtype]


def tangent_gauge_cases():
    return [p for p in cases(("regular",), ("f64", "c128"), ("b2",))
            if gauge.tangent_observable(p.values[0].cv)]


@pytest.mark.parametrize("name, case", sampled(tangent_gauge_cases(), BACKENDS))
def test_the_jvp_picks_the_declared_gauge(name, case):
    """The spec's gauge tangent expression (eigh: im(diagonal(Q^H dQ))) is 0 on the JVP."""
    rng, x, dx = problem(case, 8)
    outputs, tangents = backend(name).jvp(case.op, x, dx, case.options)
    scale = max(1.0, max(float(np.abs(t).max()) for t in tangents if t is not None))
    assert gauge.tangent_residual(outputs, tangents, case.cv) < 1e-12 * scale
    # and the check can fail: a tangent with a component along the gauge
    along = gauge.dependent_cotangent(outputs, rng, case.cv)
    if any(a is not None for a in along):
        moved = [t if a is None else t + a for t, a in zip(tangents, along)]
        assert gauge.tangent_residual(outputs, moved, case.cv) > 0.5


def test_every_spec_and_variant_is_in_the_ladder():
    """The cases come from spec/*.yaml: every file, every variant, every shape class its
    'requires' allow (an operation with several inputs: every variant in the ladder of
    tests/test_householder.py or tests/test_eigh_generalized.py)."""
    from factorules.compiler.paths import ROOT
    from spec_cases import SHAPES, SPECS, ZERO_SHAPES, takes
    from test_eigh_generalized import CONFIGURATIONS
    from test_householder import REGULAR
    files = {p.stem for p in (ROOT / "spec").glob("*.yaml")}
    assert files and {c.spec.name for c in SPECS} == files
    got = {(c.op, c.cv.variant.label, c.shape_name)
           for c in (p.values[0] for p in cases(("regular", "zero")))}
    several = {(p.values[0], p.values[1].variant.label) for p in REGULAR} | {
        ("eigh_generalized", label) for label, _, _ in CONFIGURATIONS}
    for checked in SPECS:
        if len(checked.spec.inputs) > 1:
            assert {(checked.spec.name, cv.variant.label) for cv in checked.variants} <= several
            continue
        count = sum(d.source is not None for d in checked.dims)
        for cv in checked.variants:
            classes = {**SHAPES[count], **ZERO_SHAPES[count]}
            for shape_name, shape in classes.items():
                taken = (checked.spec.name, cv.variant.label, shape_name) in got
                assert taken == takes(checked, cv, shape), (checked.spec.name, shape_name)
