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
    with pytest.raises(ValueError, match="full.*economic"):
        gn.rq(a, mode="r")


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
