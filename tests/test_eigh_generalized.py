"""eigh_generalized: scipy.linalg.eigh(a, b) in every backend (spec/eigh_generalized.yaml),
and its ladder (the generic one draws one input per spec; this operation takes two, A and
B): SciPy's numbers for every dtype, batch, size and UPLO; finite differences and the
dot-product test; numpy = torch = jax = cupy (the CuPy backend on the CPU fake); torch's
gradcheck and gradgradcheck, JAX's check_grads to second order, jit and vmap (its primal a
host call through jax.pure_callback); repeated eigenvalues; the input checks."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import torch
from jax.test_util import check_grads

from factorules.tools import gauge
from fake_cupy import FakeCupy
from generated import jax as gj
from generated import numpy as gn
from generated import torch as gt
from jax_strictness import strict
from spec_cases import SPECS

jax.config.update("jax_enable_x64", True)

CHECKED = next(c for c in SPECS if c.spec.name == "eigh_generalized")
VARIANTS = {cv.variant.label: cv for cv in CHECKED.variants}
DTYPES = {"f32": np.float32, "f64": np.float64, "c64": np.complex64, "c128": np.complex128}
TOL = {"f32": 1e-4, "f64": 1e-12, "c64": 1e-4, "c128": 1e-12}
# (name, options, n): the configurations of this ladder (tests/test_rules.py checks that
# every variant is one)
CONFIGURATIONS = [(f"UPLO={uplo}", {"UPLO": uplo}, n) for uplo in ("L", "U") for n in (3, 1)]


def _draw(n, dtype, batch=(), seed=0):
    """A Hermitian A and a well-conditioned Hermitian positive definite B, with garbage in
    their strictly upper triangles (every call reads the lower ones; UPLO='U': transposed)."""
    rng = np.random.default_rng(seed)
    complex_ = np.issubdtype(dtype, np.complexfloating)

    def draw(shape):
        x = rng.standard_normal(shape)
        return x + 1j * rng.standard_normal(shape) if complex_ else x

    a = draw(batch + (n, n))
    a = (a + np.swapaxes(a, -1, -2).conj()) / 2
    c = draw(batch + (n, n))
    b = c @ np.swapaxes(c, -1, -2).conj() / max(n, 1) + np.eye(n)
    return a.astype(dtype), b.astype(dtype)


def _scipy(a, b, uplo):
    batch = a.shape[:-2]
    pairs = [scipy.linalg.eigh(a[i], b[i], lower=uplo == "L") for i in np.ndindex(*batch)]
    if not pairs:
        return np.zeros(batch + a.shape[-1:]), np.zeros(a.shape)
    return tuple(np.stack([p[j] for p in pairs]).reshape(batch + pairs[0][j].shape)
                 for j in range(2))


def _rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b), initial=0) / max(np.max(np.abs(b), initial=0), 1.0))


@pytest.mark.parametrize("dt", list(DTYPES))
@pytest.mark.parametrize("batch,n", [((), 4), ((2, 3), 3), ((0,), 4), ((2,), 0), ((), 1)],
                         ids=str)
@pytest.mark.parametrize("uplo", ["L", "U"])
def test_every_backend_returns_scipys_eigh(dt, batch, n, uplo):
    a, b = _draw(n, DTYPES[dt], batch)
    # garbage in the triangle the call does not read (above the diagonal for UPLO='L')
    junk = np.triu(np.ones((n, n)), 1) if uplo == "L" else np.tril(np.ones((n, n)), -1)
    a_junk, b_junk = a + (7 * junk).astype(a.dtype), b + (5 * junk).astype(b.dtype)
    want = _scipy(a_junk.astype(np.complex128 if np.iscomplexobj(a) else np.float64),
                  b_junk.astype(np.complex128 if np.iscomplexobj(b) else np.float64), uplo)
    for name, got in (("numpy", gn.eigh_generalized(a_junk, b_junk, UPLO=uplo)),
                      ("torch", gt.eigh_generalized(torch.from_numpy(a_junk),
                                                    torch.from_numpy(b_junk), UPLO=uplo)),
                      ("jax", gj.eigh_generalized(jnp.asarray(a_junk), jnp.asarray(b_junk),
                                                  UPLO=uplo))):
        assert got._fields == ("eigenvalues", "eigenvectors"), name
        w, v = (np.asarray(x) for x in got)
        assert w.shape == batch + (n,) and v.shape == batch + (n, n), name
        assert v.dtype == a.dtype and w.dtype == np.real(a).dtype, name
        assert _rel(w, want[0]) < TOL[dt] and _rel(v, want[1]) < TOL[dt], name


def _inputs(options, n, dtype, batch=(2,), seed=0):
    """(A, B), tangents (dA, dB) Hermitian."""
    a, b = _draw(n, dtype, batch, seed)
    da, db = _draw(n, dtype, batch, seed + 1)
    return (a, b), (da, (db + np.swapaxes(db, -1, -2).conj()) / 2)


@pytest.mark.parametrize("label,options,n", CONFIGURATIONS, ids=[f"{c[0]}-n{c[2]}"
                                                                 for c in CONFIGURATIONS])
@pytest.mark.parametrize("dt", ["f64", "c128"])
def test_jvp_agrees_with_finite_differences_and_the_vjp_is_its_transpose(label, options, n, dt):
    cv = VARIANTS[label]
    xs, dxs = _inputs(options, n, DTYPES[dt])
    outs, tans = gn.eigh_generalized_jvp(xs, dxs, **options)
    h = 1e-6
    plus = gn.eigh_generalized(*(x + h * d for x, d in zip(xs, dxs)), **options)
    minus = gn.eigh_generalized(*(x - h * d for x, d in zip(xs, dxs)), **options)
    plus, minus = gauge.align(plus, outs, cv), gauge.align(minus, outs, cv)
    fd = gauge.project_tangent(outs, [(p - q) / (2 * h) for p, q in zip(plus, minus)], cv)
    # the JVP fixes im(diagonal(V^H B dV)) = 0, the alignment im(diagonal(V^H dV)) = 0: both
    # compared without their component along the gauge
    own = gauge.project_tangent(outs, list(tans), cv)
    v, dv = outs[1], tans[1]
    phase_velocity = np.imag(np.diagonal(np.swapaxes(v, -1, -2).conj() @ xs[1] @ dv, 0, -2, -1))
    assert np.max(np.abs(phase_velocity)) < 1e-12  # the JVP's gauge
    for t, f in zip(own, fd):
        assert _rel(t, f) < 1e-7
    rng = np.random.default_rng(3)
    cots = gauge.invariant_cotangent(
        outs, [(rng.standard_normal(t.shape) + 1j * rng.standard_normal(t.shape)).astype(t.dtype)
               if np.iscomplexobj(t) else rng.standard_normal(t.shape) for t in tans], cv)
    _, pullback = gn.eigh_generalized_vjp(xs, **options)
    grads = pullback(*cots)
    assert len(grads) == 2 and all(g.shape == x.shape and g.dtype == x.dtype
                                   for g, x in zip(grads, xs))
    lhs = sum(np.real(np.vdot(g, d)) for g, d in zip(grads, dxs))
    rhs = sum(np.real(np.vdot(g, t)) for g, t in zip(cots, tans))
    assert abs(lhs - rhs) < 1e-11 * max(1.0, abs(lhs))


@pytest.fixture(scope="module")
def fake_cupy(tmp_path_factory):
    """The CuPy backend imported once against the NumPy-backed fake (tests/fake_cupy.py)."""
    fake = FakeCupy(lambda: tmp_path_factory.mktemp("cuda-host"))
    return fake, fake.load_backend()


@pytest.mark.parametrize("dt,batch", [("f32", (2,)), ("c128", (2, 3)), ("c64", ()),
                                      ("f64", (0,))], ids=str)
def test_backends_agree_with_the_numpy_reference(dt, batch, fake_cupy):
    cv = VARIANTS["UPLO=L"]
    xs, dxs = _inputs({}, 4, DTYPES[dt], batch, seed=4)
    outs, tans = gn.eigh_generalized_jvp(xs, dxs)
    rng = np.random.default_rng(5)
    cots = gauge.invariant_cotangent(outs, [rng.standard_normal(t.shape).astype(t.dtype)
                                            for t in tans], cv)
    ref = gn.eigh_generalized_vjp(xs)[1](*cots)
    tol = TOL[dt]
    # JAX's cotangents are the conjugates of torch's (and NumPy's) for complex arrays
    for label, module, wrap, unwrap, convert in (
            ("torch", gt, torch.tensor, lambda t: t.numpy(), lambda x: x),
            ("jax", gj, jnp.asarray, np.asarray, np.conj)):
        got_outs, got_tans = module.eigh_generalized_jvp(tuple(map(wrap, xs)),
                                                         tuple(map(wrap, dxs)))
        for a, b in zip((*got_outs, *got_tans), (*outs, *tans)):
            assert _rel(unwrap(a), b) < tol, label
        grads = module.eigh_generalized_vjp(tuple(map(wrap, xs)))[1](
            *(wrap(convert(g)) for g in cots))
        for g, r in zip(grads, ref):
            assert unwrap(g).shape == r.shape and _rel(convert(unwrap(g)), r) < tol, label

    fake, modules = fake_cupy
    with fake.installed():
        cp = fake.cupy
        op = modules["eigh_generalized"]
        got_outs, got_tans = op.eigh_generalized_jvp(tuple(map(cp.asarray, xs)),
                                                     tuple(map(cp.asarray, dxs)))
        for a, b in zip((*got_outs, *got_tans), (*outs, *tans)):
            assert _rel(a.get(), b) < tol
        grads = op.eigh_generalized_vjp(tuple(map(cp.asarray, xs)))[1](*map(cp.asarray, cots))
        for g, r in zip(grads, ref):
            assert _rel(g.get(), r) < tol


def _hermitian(x):
    return (x + x.mH) / 2


def _jax_hermitian(x):
    return (x + jnp.conj(jnp.swapaxes(x, -1, -2))) / 2


@pytest.mark.parametrize("label,options,n", CONFIGURATIONS[::2], ids=["UPLO=L", "UPLO=U"])
@pytest.mark.parametrize("dt", ["f64", "c128"])
def test_gradcheck_and_gradgradcheck(label, options, n, dt):
    """Through a gauge-invariant map of the outputs (factorules.tools.gauge.fix), on the
    Hermitian parts of the arguments."""
    cv = VARIANTS[label]
    xs, _ = _inputs(options, n, DTYPES[dt], seed=6)
    ts = tuple(torch.tensor(x, requires_grad=True) for x in xs)
    with torch.no_grad():
        reference = tuple(gt.eigh_generalized(*ts, **options))

    def f(a, b):
        outs = gt.eigh_generalized(_hermitian(a), _hermitian(b), **options)
        return gauge.fix(tuple(outs), reference, cv)

    assert torch.autograd.gradcheck(f, ts, check_forward_ad=True, check_batched_grad=True)
    assert torch.autograd.gradgradcheck(f, ts)


@pytest.mark.parametrize("label,options,n,dt,order", [
    (*CONFIGURATIONS[0], "c128", 2), (*CONFIGURATIONS[2], "f64", 2),
    (*CONFIGURATIONS[0], "f64", 1), (*CONFIGURATIONS[2], "c128", 1)],
    ids=["UPLO=L-c128-order2", "UPLO=U-f64-order2", "UPLO=L-f64", "UPLO=U-c128"])
def test_jax_check_grads_to_second_order_and_jit_and_vmap(label, options, n, dt, order):
    """Each UPLO to second order in one field and to first in the other (torch's
    gradgradcheck above takes every one to second order)."""
    cv = VARIANTS[label]
    xs, dxs = _inputs(options, n, DTYPES[dt], seed=7)
    args = tuple(map(jnp.asarray, xs))
    reference = tuple(gj.eigh_generalized(*args, **options))

    def f(a, b):
        outs = gj.eigh_generalized(_jax_hermitian(a), _jax_hermitian(b), **options)
        return gauge.fix(tuple(outs), reference, cv)

    with strict():
        check_grads(f, args, order=order, modes=("fwd", "rev"))
        y = gj.eigh_generalized(*args, **options)
        for mapped in (jax.jit(lambda a, b: gj.eigh_generalized(a, b, **options))(*args),
                       jax.vmap(lambda a, b: gj.eigh_generalized(a, b, **options))(*args),
                       jax.jit(jax.vmap(jax.vmap(
                           lambda a, b: gj.eigh_generalized(a, b, **options))))(
                           *(x[:, None] for x in args))):
            for m, w in zip(mapped, y):
                assert _rel(np.reshape(m, np.shape(w)), w) < 1e-13
        _, dy = jax.jvp(jax.jit(lambda a, b: gj.eigh_generalized(a, b, **options)), args,
                        tuple(map(jnp.asarray, dxs)))
        _, want = gn.eigh_generalized_jvp(xs, dxs, **options)
        for d, w in zip(dy, want):
            assert _rel(d, w) < 1e-11


def test_repeated_eigenvalues_keep_the_eigenvalue_sum_differentiable_and_raise_otherwise():
    """B = 2 I and A = 2 diag(1, 1, 3): the first two eigenvalues (1) tie.  Their sum's
    gradient is finite and right (trace(B^-1 A) near the tie: gA = B^-1 on the eigenspace);
    a loss of the tied eigenvectors has no derivative."""
    a, b = 2 * np.diag([1.0, 1.0, 3.0]), 2 * np.eye(3)
    _, pullback = gn.eigh_generalized_vjp((a, b))
    ga, gb = pullback(np.array([1.0, 1.0, 0.0]), np.zeros((3, 3)))
    # d(l1 + l2) = tr(P (dA - l dB)) / 2 with P the projector onto the first two axes, l = 1
    np.testing.assert_allclose(ga, np.diag([0.5, 0.5, 0.0]), atol=1e-15)
    np.testing.assert_allclose(gb, -np.diag([0.5, 0.5, 0.0]), atol=1e-15)
    with pytest.raises(ValueError, match="repeated eigenvalue.*check_ties=False"):
        pullback(np.zeros(3), np.outer([1.0, 0, 0], [0, 1.0, 0]))


@pytest.mark.parametrize("module,wrap", [(gn, np.asarray), (gt, torch.tensor), (gj, jnp.asarray)],
                         ids=["numpy", "torch", "jax"])
def test_inputs_are_checked(module, wrap):
    a, b = (wrap(x) for x in _draw(3, np.float64))
    with pytest.raises(ValueError, match="eigh_generalized: .*B"):
        module.eigh_generalized(a, wrap(np.eye(4)))
    with pytest.raises(TypeError, match="eigh_generalized: B has dtype"):
        module.eigh_generalized(a, wrap(np.eye(3, dtype=np.float32)))
    with pytest.raises(ValueError, match=r"eigh_generalized: UPLO must be one of \['L', 'U'\]"):
        module.eigh_generalized(a, b, UPLO="X")
