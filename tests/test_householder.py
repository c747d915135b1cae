"""householder_product and ormqr: the ladder for operations with several inputs.

The generic ladder (tests/test_rules.py and the harness tests) draws one input per spec;
these two take (A, tau) and (a, tau, C).  Here, on the shapes each spec lists (its
'shapes', zero-size ones included), batched, in every dtype: finite differences, the
dot-product test, numpy = torch = jax = cupy (the CuPy backend on the CPU fake), the
frameworks' AD through the generated functions against the explicit rules, torch's own
autograd of torch.linalg.householder_product / torch.ormqr, gradcheck and gradgradcheck
(forward and reverse), jax check_grads to second order, vmap and jit, and the input checks.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from jax.test_util import check_grads

import ladder
from jax_strictness import dot_precisions, is_highest, strict
from fake_cupy import FakeCupy
from generated import jax as gj
from generated import numpy as gn
from generated import torch as gt
from factorules.audit import sample
from spec_cases import SPECS, alternate

jax.config.update("jax_enable_x64", True)

CHECKED = {c.spec.name: c for c in SPECS if c.spec.name in ("householder_product", "ormqr")}
DTYPES = {"f32": np.float32, "f64": np.float64, "c64": np.complex64, "c128": np.complex128}
TOL = {"f32": 2e-4, "f64": 1e-11, "c64": 2e-4, "c128": 1e-11}
BATCHES = {"unbatched": (), "b2": (2,), "b0": (0,)}


def _options(cv):
    return dict(cv.variant.when)


def _configurations(zero=False):
    out = []
    for name, checked in CHECKED.items():
        for cv in checked.variants:
            for label, values in checked.spec.shapes:
                prims = dict(values)
                if (0 in prims.values()) != zero:
                    continue
                if not sample.allowed(cv, sample.primitive_dims(checked, prims)):
                    continue
                out.append(pytest.param(name, cv, prims,
                                        id=f"{name}-{cv.variant.label}-{label}"))
    return out


REGULAR = _configurations()
ZERO = _configurations(zero=True)


def _sampled(configurations, dts, batches=None, seed=ladder.SEED):
    """pytest params (name, cv, prims, dt[, batch]): a pairwise covering sample of the
    configurations (spec and variant, shape: two factors) x dtypes [x batches]
    (tests/ladder.py; all of them under --full)."""
    rows = [(p, dt, b) for p in configurations for dt in dts for b in (batches or [None])]

    def factors(row):
        (name, cv, prims), dt, b = row[0].values, row[1], row[2]
        return (f"{name}/{cv.variant.label}", tuple(sorted(prims.items())), dt, b)

    return [pytest.param(*p.values, dt, *(() if b is None else (b,)),
                         id="-".join([p.id, dt, *(() if b is None else (b,))]))
            for p, dt, b in ladder.sample(rows, factors, seed=seed)]


def _in_turn(configurations, dts, start=0):
    """pytest params (name, cv, prims, dt): each configuration once, its dtype the next in
    turn (all of them under --full: tests/ladder.py)."""
    return [pytest.param(*p.values, dt, id=f"{p.id}-{dt}")
            for i, p in enumerate(configurations, start)
            for dt in (dts if ladder.FULL else [dts[i % len(dts)]])]


def _inputs(name, cv, prims, dtype, batch=(2,), seed=0):
    """Inputs drawn by the spec's sampler (unitary reflectors), and random tangents."""
    checked = CHECKED[name]
    shape = tuple(prims[d.name] for d in checked.dims if d.source is not None)
    rng = np.random.default_rng(seed)
    x = sample.inputs(checked, cv, shape, dtype, batch, rng)
    xs = tuple(x[t.name] for t in checked.spec.inputs)
    dxs = []
    for v in xs:
        d = rng.standard_normal(v.shape)
        if np.iscomplexobj(v):
            d = d + 1j * rng.standard_normal(v.shape)
        dxs.append(d.astype(v.dtype))
    return xs, tuple(dxs)


def _op(module, name):
    return getattr(module, name), getattr(module, f"{name}_jvp"), getattr(module, f"{name}_vjp")


def _rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b), initial=0) / max(np.max(np.abs(b), initial=0), 1.0))


def _inner(x, y):
    return float(np.real(np.vdot(np.asarray(x), np.asarray(y))))


@pytest.mark.parametrize("name,cv,prims,dt", _sampled(REGULAR + ZERO, ["f64", "c128"], seed=1))
def test_jvp_agrees_with_finite_differences_and_the_vjp_is_its_transpose(name, cv, prims, dt):
    xs, dxs = _inputs(name, cv, prims, DTYPES[dt])
    op, op_jvp, op_vjp = _op(gn, name)
    opts = _options(cv)
    y, dy = op_jvp(xs, dxs, **opts)
    h = 1e-6
    plus = op(*(x + h * d for x, d in zip(xs, dxs)), **opts)
    minus = op(*(x - h * d for x, d in zip(xs, dxs)), **opts)
    assert _rel(dy, (plus - minus) / (2 * h)) < 1e-7
    y2, pullback = op_vjp(xs, **opts)
    rng = np.random.default_rng(1)
    g = rng.standard_normal(y.shape) + (1j * rng.standard_normal(y.shape) if dt == "c128" else 0)
    grads = pullback(g)
    assert isinstance(grads, tuple) and len(grads) == len(xs)
    for gx, x in zip(grads, xs):
        assert gx.shape == x.shape and gx.dtype == x.dtype
    lhs = sum(_inner(gx, d) for gx, d in zip(grads, dxs))
    assert abs(lhs - _inner(g, dy)) < 1e-10 * max(1.0, abs(lhs))
    np.testing.assert_array_equal(y2, y)


@pytest.fixture(scope="module")
def fake_cupy(tmp_path_factory):
    """The CuPy backend imported once against the NumPy-backed fake (tests/fake_cupy.py)."""
    fake = FakeCupy(lambda: tmp_path_factory.mktemp("cuda-host"))
    return fake, fake.load_backend()


@pytest.mark.parametrize("name,cv,prims,dt,batch",
                         _sampled(REGULAR + ZERO, list(DTYPES), list(BATCHES), seed=2))
def test_backends_agree_with_the_numpy_reference(name, cv, prims, dt, batch, fake_cupy):
    xs, dxs = _inputs(name, cv, prims, DTYPES[dt], BATCHES[batch])
    opts = _options(cv)
    rng = np.random.default_rng(2)
    y, dy = _op(gn, name)[1](xs, dxs, **opts)
    g = rng.standard_normal(y.shape).astype(y.dtype)
    ref = _op(gn, name)[2](xs, **opts)[1](g)
    tol = TOL[dt]
    # JAX's cotangents are the conjugates of torch's (and NumPy's) for complex arrays
    for label, module, wrap, unwrap, convert in (
            ("torch", gt, torch.tensor, lambda t: t.numpy(), lambda x: x),
            ("jax", gj, jnp.asarray, np.asarray, np.conj)):
        yb, dyb = _op(module, name)[1](tuple(map(wrap, xs)), tuple(map(wrap, dxs)), **opts)
        assert _rel(unwrap(yb), y) < tol and _rel(unwrap(dyb), dy) < tol, label
        grads = _op(module, name)[2](tuple(map(wrap, xs)), **opts)[1](wrap(convert(g)))
        for gb, gr in zip(grads, ref):
            assert unwrap(gb).shape == gr.shape and _rel(convert(unwrap(gb)), gr) < tol, label

    def on_cupy(modules, fake):
        cp = fake.cupy
        op, op_jvp, op_vjp = _op(modules[name], name)
        yc, dyc = op_jvp(tuple(map(cp.asarray, xs)), tuple(map(cp.asarray, dxs)), **opts)
        assert _rel(yc.get(), y) < tol and _rel(dyc.get(), dy) < tol
        grads = op_vjp(tuple(map(cp.asarray, xs)), **opts)[1](cp.asarray(g))
        for gc, gr in zip(grads, ref):
            assert _rel(gc.get(), gr) < tol

    fake, modules = fake_cupy
    with fake.installed():
        on_cupy(modules, fake)


@pytest.mark.parametrize("name,cv,prims,dt", _sampled(REGULAR, ["f64", "c128"], seed=3))
def test_torch_autograd_equals_the_rules_and_torchs_own(name, cv, prims, dt):
    """AD through the generated function equals the explicit rules, and torch's autograd of
    torch.linalg.householder_product / torch.ormqr (which differentiate these)."""
    xs, dxs = _inputs(name, cv, prims, DTYPES[dt])
    opts = _options(cv)
    native = {"householder_product": torch.linalg.householder_product,
              "ormqr": torch.ormqr}[name]
    rng = np.random.default_rng(3)
    ts = [torch.tensor(x, requires_grad=True) for x in xs]
    y = gt.__dict__[name](*ts, **opts)
    g = torch.tensor(rng.standard_normal(tuple(y.shape))).to(y.dtype)
    grads = torch.autograd.grad(y, ts, g)
    rule = _op(gt, name)[2](tuple(torch.tensor(x) for x in xs), **opts)[1](g)
    k = xs[1].shape[-1]
    # torch.ormqr takes exactly k = len(tau) columns of a (LAPACK reads only those)
    ns = [torch.tensor(x[..., :k] if (name, i) == ("ormqr", 0) else x, requires_grad=True)
          for i, x in enumerate(xs)]
    yn = native(*ns, **opts)
    native_grads = torch.autograd.grad(yn, ns, g)
    assert _rel(yn.detach().numpy(), y.detach().numpy()) < 1e-12
    for i, (a, b, c) in enumerate(zip(grads, rule, native_grads)):
        assert _rel(a.numpy(), b.numpy()) < 1e-12
        if (name, i) == ("ormqr", 0):
            assert not a[..., k:].any()  # the columns of a beyond k do not enter
            a = a[..., :k]
        assert _rel(c.numpy(), a.numpy()) < 1e-9
    # forward mode, against the rules' tangent
    with torch.autograd.forward_ad.dual_level():
        duals = [torch.autograd.forward_ad.make_dual(torch.tensor(x), torch.tensor(d))
                 for x, d in zip(xs, dxs)]
        tangent = torch.autograd.forward_ad.unpack_dual(gt.__dict__[name](*duals, **opts)).tangent
    _, dy = _op(gn, name)[1](xs, dxs, **opts)
    assert _rel(tangent.numpy(), dy) < 1e-11


@pytest.mark.parametrize("name,cv,prims,dt", _sampled(REGULAR, ["f64", "c128"], seed=4))
def test_gradcheck_and_gradgradcheck(name, cv, prims, dt):
    xs, _ = _inputs(name, cv, prims, DTYPES[dt], batch=(2,))
    opts = _options(cv)
    ts = tuple(torch.tensor(x, requires_grad=True) for x in xs)

    def f(*args):
        return gt.__dict__[name](*args, **opts)

    assert torch.autograd.gradcheck(f, ts, check_forward_ad=True, check_batched_grad=True)
    assert torch.autograd.gradgradcheck(f, ts)


def _jax_cases():
    """pytest params (name, cv, prims, dt, order): each configuration once (_in_turn), every
    other one to second order and the rest to first (alternate: torch's gradgradcheck above
    meets every configuration to second order); every one to second order under --full."""
    cases = _in_turn(REGULAR, ["f64", "c128"], start=1)
    second = {p.id for p in alternate(cases, 0)}
    return [pytest.param(*p.values, 2 if p.id in second else 1, id=p.id) for p in cases]


@pytest.mark.parametrize("name,cv,prims,dt,order", _jax_cases())
def test_jax_check_grads_to_second_order_and_jit_and_vmap(name, cv, prims, dt, order):
    """Under JAX's strict dtype and rank promotion (tests/jax_strictness.py), every matrix
    product of the rules (JVP, gradient, its JVP) at lax.Precision.HIGHEST."""
    xs, dxs = _inputs(name, cv, prims, DTYPES[dt], batch=(2,))
    opts = _options(cv)

    def f(*args):
        return gj.__dict__[name](*args, **opts)

    with strict():
        args = tuple(map(jnp.asarray, xs))
        check_grads(f, args, order=order, modes=("fwd", "rev"))  # its default tolerances, as tests/test_jax_harness.py
        y = f(*args)
        assert _rel(jax.jit(f)(*args), y) < 1e-13
        assert _rel(jax.vmap(f)(*args), y) < 1e-13
        tangents = tuple(map(jnp.asarray, dxs))
        _, dy = jax.jvp(jax.jit(f), args, tangents)
        assert _rel(dy, _op(gn, name)[1](xs, dxs, **opts)[1]) < 1e-11

        def loss(*x):
            return jnp.sum(jnp.abs(f(*x)) ** 2)
        grad = jax.grad(loss, argnums=tuple(range(len(args))))
        for fn in (lambda *x: jax.jvp(f, x, tangents), grad,
                   lambda *x: jax.jvp(grad, x, tangents)):
            precisions = dot_precisions(jax.make_jaxpr(fn)(*args))
            assert precisions and all(is_highest(p) for p in precisions), precisions


def test_torch_vmap_runs_the_rules():
    xs, _ = _inputs("ormqr", CHECKED["ormqr"].variants[0], dict(CHECKED["ormqr"].spec.shapes[0][1]),
                    np.float64, batch=(3,))
    ts = tuple(torch.tensor(x) for x in xs)
    y = torch.vmap(gt.ormqr)(*ts)
    assert _rel(y.numpy(), gn.ormqr(*xs)) < 1e-13
    grads = torch.vmap(torch.func.grad(lambda a, t, c: gt.ormqr(a, t, c).sum(),
                                       argnums=(0, 1, 2)))(*ts)
    ref = gn.ormqr_vjp(xs)[1](np.ones_like(gn.ormqr(*xs)))
    for a, b in zip(grads, ref):
        assert _rel(a.numpy(), b) < 1e-12


@pytest.mark.parametrize("module,wrap", [(gn, np.asarray), (gt, torch.tensor), (gj, jnp.asarray)],
                         ids=["numpy", "torch", "jax"])
def test_inputs_are_checked(module, wrap):
    a, tau, c = (wrap(np.ones(s)) for s in ((5, 3), (3,), (5, 2)))
    with pytest.raises(ValueError, match=r"ormqr: tau must be a vector or a stack of vectors"):
        module.ormqr(a, wrap(np.float64(1.0)), c)
    with pytest.raises(ValueError, match=r"ormqr: C must be a matrix .*ndim >= 2"):
        module.ormqr(a, tau, wrap(np.ones(5)))
    with pytest.raises(TypeError, match=r"ormqr: tau has dtype .*expected a's"):
        module.ormqr(a, wrap(np.ones(3, np.float32)), c)
    with pytest.raises(ValueError, match=r"ormqr: a and C must have the same batch dimensions"):
        module.ormqr(a, tau, wrap(np.ones((2, 5, 2))))
    with pytest.raises(ValueError, match=r"ormqr: needs r == m for left=True,transpose=False "
                                         r"\(sizes: r = 5, p = 3, k = 3, m = 4, n = 2\)"):
        module.ormqr(a, tau, wrap(np.ones((4, 2))))
    with pytest.raises(ValueError, match=r"ormqr: needs r == n for left=False"):
        module.ormqr(a, tau, c, left=False)
    with pytest.raises(ValueError, match=r"ormqr: needs k <= p"):
        module.ormqr(wrap(np.ones((5, 2))), tau, c)
    with pytest.raises(ValueError, match=r"ormqr: left must be one of \[True, False\]"):
        module.ormqr(a, tau, c, left=1)
    with pytest.raises(ValueError, match=r"householder_product: needs n <= m"):
        module.householder_product(wrap(np.ones((3, 5))), wrap(np.ones(3)))
    with pytest.raises(ValueError, match=r"householder_product: needs k <= n"):
        module.householder_product(wrap(np.ones((5, 3))), wrap(np.ones(4)))
    with pytest.raises(TypeError, match=r"ormqr: primals must be a tuple of 3 arrays"):
        module.ormqr_vjp(a)


def test_geqrf_then_householder_product_is_lapacks_q_and_ormqr_applies_it():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((7, 4)) + 1j * rng.standard_normal((7, 4))
    h, tau = gn.geqrf(a)
    q = gn.householder_product(h, tau)
    # torch.linalg.qr is LAPACK's geqrf + ungqr: the same Q
    np.testing.assert_allclose(q, torch.linalg.qr(torch.tensor(a)).Q.numpy(), atol=1e-12)
    np.testing.assert_allclose(q @ np.triu(h)[:4], a, atol=1e-12)
    c = rng.standard_normal((7, 3)) + 0j
    full_q = gn.ormqr(h, tau, np.eye(7) + 0j)
    np.testing.assert_allclose(gn.ormqr(h, tau, c), full_q @ c, atol=1e-12)
    np.testing.assert_allclose(gn.ormqr(h, tau, c, transpose=True), full_q.conj().T @ c,
                               atol=1e-12)
    np.testing.assert_allclose(full_q[:, :4], q, atol=1e-12)


def test_jax_has_no_rule_for_householder_product_and_ormqr():
    rng = np.random.default_rng(6)
    a = jnp.asarray(rng.standard_normal((5, 3)))
    tau = jnp.asarray(rng.uniform(1, 2, 3))
    c = jnp.asarray(rng.standard_normal((5, 2)))
    for f, args in ((jax.lax.linalg.householder_product, (a, tau)),
                    (jax.lax.linalg.ormqr, (a, tau, c))):
        with pytest.raises(NotImplementedError):
            jax.jvp(f, args, tuple(jnp.ones_like(x) for x in args))
    # ours differentiates both
    for f, args in ((gj.householder_product, (a, tau)), (gj.ormqr, (a, tau, c))):
        jax.jvp(f, args, tuple(jnp.ones_like(x) for x in args))


def test_the_sampler_draws_unitary_reflectors():
    checked = CHECKED["householder_product"]
    cv = checked.variants[0]
    xs, _ = _inputs("householder_product", cv, {"m": 6, "n": 6, "k": 6}, np.complex128,
                    batch=())
    q = gn.householder_product(*xs)
    np.testing.assert_allclose(q.conj().T @ q, np.eye(6), atol=1e-12)
    assert np.all(np.abs(np.imag(xs[1])) > 1e-3)  # a generic phase, not a reflection


def test_every_configuration_is_listed():
    labels = {(p.values[0], p.values[1].variant.label) for p in REGULAR}
    assert labels == {(name, cv.variant.label) for name, c in CHECKED.items()
                      for cv in c.variants}
    assert len(ZERO) >= 4
