"""rq: scipy.linalg.rq's factorization (LAPACK gerqf + orgrq) in every backend, computed as
QR of the reversed adjoint (spec/rq.yaml's notes).  The generic ladder (tests/test_rules.py
and the harnesses) checks its derivatives like every spec's; here, that each backend returns
SciPy's numbers for every mode, shape and field, batched and empty, with SciPy's output order
and keywords, and that the wide full mode's Q is LAPACK's completion to first order (its
derivative along a tangent against central differences of scipy.linalg.rq itself)."""
from __future__ import annotations

import jax
import numpy as np
import pytest
import scipy.linalg
import torch

from generated import jax as gj
from generated import numpy as gn
from generated import torch as gt

jax.config.update("jax_enable_x64", True)

SHAPES = [(3, 5), (5, 3), (4, 4), (1, 4), (0, 3), (3, 0)]


def _draw(rng, shape, complex_):
    a = rng.standard_normal(shape)
    return a + 1j * rng.standard_normal(shape) if complex_ else a


def _scipy(a, mode):
    """scipy.linalg.rq of each matrix of a stack (it takes one)."""
    batch = a.shape[:-2]
    pairs = [scipy.linalg.rq(a[i], mode=mode) for i in np.ndindex(*batch)]
    return tuple(np.stack([p[j] for p in pairs]).reshape(batch + pairs[0][j].shape)
                 for j in range(2))


@pytest.mark.parametrize("mode", ["full", "economic"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_every_backend_returns_scipys_rq(mode, shape, complex_):
    a = _draw(np.random.default_rng(0), (2,) + shape, complex_)
    want = _scipy(a, mode) if 0 not in shape else None
    for name, got in (("numpy", gn.rq(a, mode=mode)),
                      ("torch", gt.rq(torch.from_numpy(a), mode=mode)),
                      ("jax", gj.rq(jax.numpy.asarray(a), mode=mode))):
        r, q = (np.asarray(x) for x in got)
        assert got._fields == ("R", "Q"), name
        k = min(shape) if mode == "economic" else shape[1]
        assert r.shape == (2, shape[0], k) and q.shape == (2, k, shape[1]), (name, r.shape)
        np.testing.assert_allclose(r @ q, a, atol=1e-12, err_msg=name)
        if want is not None:
            np.testing.assert_allclose(r, want[0], atol=1e-12, err_msg=name)
            np.testing.assert_allclose(q, want[1], atol=1e-12, err_msg=name)


def test_the_default_is_full_and_other_modes_are_refused_naming_the_allowed():
    a = np.random.default_rng(1).standard_normal((3, 5))
    r, q = gn.rq(a)
    assert r.shape == (3, 5) and q.shape == (5, 5)
    with pytest.raises(ValueError, match="full.*economic.*r"):
        gn.rq(a, mode="raw")


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (4, 4)], ids=str)
def test_mode_r_returns_r_alone_and_its_derivatives_alone(shape):
    """mode="r": R alone, SciPy's; its tangent alone, its pullback of gR alone; in torch and
    JAX differentiated through full mode, so to second order as well (gradgradcheck)."""
    rng = np.random.default_rng(3)
    a, da, g = (_draw(rng, (2,) + shape, True) for _ in range(3))
    g = g[..., :, :shape[1]]
    want = _scipy(a, "full")[0]
    r = gn.rq(a, mode="r")
    assert isinstance(r, np.ndarray) and r.shape == (2,) + shape
    np.testing.assert_allclose(r, want, atol=1e-12)
    r2, dr = gn.rq_jvp(a, da, mode="r")
    np.testing.assert_allclose(r2, want, atol=1e-12)
    (_, dfull) = gn.rq_jvp(a, da, mode="full")
    np.testing.assert_allclose(dr, dfull.R, atol=1e-12)
    r3, pullback = gn.rq_vjp(a, mode="r")
    ga = pullback(g)
    np.testing.assert_allclose(np.vdot(ga, da).real, np.vdot(g, dr).real, rtol=1e-10)
    for got in (gt.rq(torch.from_numpy(a), mode="r"), gj.rq(jax.numpy.asarray(a), mode="r")):
        assert got.shape == (2,) + shape
        np.testing.assert_allclose(np.asarray(got), want, atol=1e-12)
    def loss(t):
        r = gt.rq(t, mode="r")
        return (r * r.conj()).real.sum() + (r * r).real.sum()

    assert torch.autograd.gradgradcheck(loss, (torch.from_numpy(a[:1]).requires_grad_(),))


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_the_wide_full_q_moves_as_lapacks_completion(complex_):
    """Q[:n-m, :] is LAPACK's completion, not any orthonormal one: the JVP of the whole Q
    matches central differences of scipy.linalg.rq (which a completion held still, or
    rotated, would not)."""
    rng = np.random.default_rng(2)
    a, da = _draw(rng, (3, 6), complex_), _draw(rng, (3, 6), complex_)
    (_, _), (dr, dq) = gn.rq_jvp(a, da, mode="full")
    h = 1e-6
    plus, minus = scipy.linalg.rq(a + h * da), scipy.linalg.rq(a - h * da)
    for got, p, m in ((dr, plus[0], minus[0]), (dq, plus[1], minus[1])):
        np.testing.assert_allclose(got, (p - m) / (2 * h), atol=1e-7)


def test_a_variant_that_omits_outputs_returns_exactly_one_other(tmp_path):
    """'returned: omitted' leaves the variant's result one array: a variant that omits Q and
    returns no other value is a spec error naming it."""
    from pathlib import Path

    from factorules.compiler.render import load_checked
    from factorules.compiler.spec import SpecError
    text = (Path(__file__).resolve().parent.parent / "spec" / "rq.yaml").read_text()
    r_line = '      R: {shape: [m, n], structure: upper_triangular, offset: "n - m", ' \
             'diagonal: real}\n      Q: {shape: [n, n], structure: unitary, returned: omitted}'
    assert text.count(r_line) == 1
    bad = tmp_path / "rq.yaml"
    bad.write_text(text.replace(r_line, r_line.replace("diagonal: real}",
                                                       "diagonal: real, returned: empty}")))
    with pytest.raises(SpecError, match="variant mode=r omits outputs: it must return one "
                                        r"other, alone \(returns R\)"):
        load_checked([bad])
