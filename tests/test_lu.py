"""lu and lu_factor: what the generic ladder (tests/test_rules.py) does not pin.

LAPACK's pivot numbering in every backend, the permutation and pivots as outputs without
derivatives, the derivative at a pivoting tie (the returned branch's, spec/lu.yaml's notes),
rectangular inputs against finite differences, the refusal of pivot=False, and products with
the permutation printed as row gathers.
"""
from __future__ import annotations

import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from generated import jax as gj
from generated import numpy as gn
from generated import torch as gt

jax.config.update("jax_enable_x64", True)

SHAPES = [(4, 4), (6, 3), (3, 6), (2, 5, 4), (2, 3, 5)]


def _random(shape, seed=0, complex_=False):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    if complex_:
        a = a + 1j * rng.standard_normal(shape)
    return a


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_lu_factor_is_torchs_in_every_backend_with_lapack_pivots(shape, complex_):
    a = _random(shape, 1, complex_)
    want = torch.linalg.lu_factor(torch.tensor(a))
    for name, got in (("numpy", gn.lu_factor(a)), ("jax", gj.lu_factor(jnp.asarray(a))),
                      ("torch", gt.lu_factor(torch.tensor(a)))):
        pivots = np.asarray(got.pivots)
        assert pivots.dtype == np.int32, name
        assert pivots.shape == shape[:-2] + (min(shape[-2:]),), name
        np.testing.assert_array_equal(pivots, want.pivots.numpy(), err_msg=name)
        np.testing.assert_allclose(np.asarray(got.LU), want.LU.numpy(), rtol=1e-12,
                                   atol=1e-12, err_msg=name)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_lu_is_torchs_and_reconstructs_a(shape):
    a = _random(shape, 2)
    want = torch.linalg.lu(torch.tensor(a))
    for name, got in (("numpy", gn.lu(a)), ("jax", gj.lu(jnp.asarray(a))),
                      ("torch", gt.lu(torch.tensor(a)))):
        p, l, u = (np.asarray(x) for x in got)
        np.testing.assert_array_equal(p, want.P.numpy(), err_msg=name)
        np.testing.assert_allclose(l, want.L.numpy(), atol=1e-12, err_msg=name)
        np.testing.assert_allclose(u, want.U.numpy(), atol=1e-12, err_msg=name)
        np.testing.assert_allclose(p @ l @ u, a, atol=1e-12, err_msg=name)


def test_permutation_and_pivots_carry_no_derivative():
    a = _random((5, 4), 3)
    da = _random((5, 4), 4)
    # <op>_jvp: None for the permutation and the pivots, in every plain backend
    for mod in (gn, gt):
        x, dx = (a, da) if mod is gn else (torch.tensor(a), torch.tensor(da))
        _, tangents = mod.lu_jvp(x, dx)
        assert tangents.P is None and tangents.L is not None and tangents.U is not None
        _, tangents = mod.lu_factor_jvp(x, dx)
        assert tangents.pivots is None and tangents.LU is not None
    # the pullback ignores a cotangent of P (DESIGN.md: cotangent None)
    out, pullback = gn.lu_vjp(a)
    g_l, g_u = _random(out.L.shape, 5), _random(out.U.shape, 6)
    np.testing.assert_array_equal(pullback(None, g_l, g_u), pullback(np.ones((5, 5)), g_l, g_u))
    # torch: P and pivots do not require grad; L, U and LU do
    x = torch.tensor(a, requires_grad=True)
    r = gt.lu(x)
    assert not r.P.requires_grad and r.L.requires_grad and r.U.requires_grad
    f = gt.lu_factor(x)
    assert not f.pivots.requires_grad and f.LU.requires_grad
    # jax: the pivots' tangent is float0, as JAX requires of integer outputs
    _, tangent = jax.jvp(gj.lu_factor, (jnp.asarray(a),), (jnp.asarray(da),))
    assert tangent.pivots.dtype == jax.dtypes.float0
    assert not np.any(np.asarray(jax.jvp(gj.lu, (jnp.asarray(a),), (jnp.asarray(da),))[1].P))


def _unpivoted_lu(a):
    """Doolittle without pivoting (for the tie test): a = L U."""
    m, n = a.shape
    k = min(m, n)
    l, u = np.eye(m, k), np.zeros((k, n))
    work = a.astype(float).copy()
    for j in range(k):
        u[j, j:] = work[j, j:]
        l[j + 1:, j] = work[j + 1:, j] / work[j, j]
        work[j + 1:, j:] -= np.outer(l[j + 1:, j], u[j, j:])
    return l, u


def test_at_a_pivoting_tie_the_derivative_is_that_of_the_returned_permutation():
    # column 0 has two candidates of equal magnitude, 1 and -1: LAPACK keeps the first
    # (row 0), so P = I here, and a step of either sign may change the choice; the rules
    # give the derivative with the returned P held fixed (spec/lu.yaml, notes)
    a = np.array([[1.0, 2.0, 0.5], [-1.0, 3.0, 1.0], [0.25, 1.0, 4.0]])
    da = _random((3, 3), 7)
    (p, l, u), tangents = gn.lu_jvp(a, da)
    np.testing.assert_array_equal(p, np.eye(3))
    h = 1e-6
    (lp, up), (lm, um) = (_unpivoted_lu(p.T @ (a + s * h * da)) for s in (1, -1))
    np.testing.assert_allclose(tangents.L, (lp - lm) / (2 * h), atol=1e-8)
    np.testing.assert_allclose(tangents.U, (up - um) / (2 * h), atol=1e-8)
    # and the same in torch's autograd: the gradient of a loss of L and U
    x = torch.tensor(a, requires_grad=True)
    r = gt.lu(x)
    (r.L.sum() + (r.U ** 2).sum()).backward()
    _, pullback = gn.lu_vjp(a)
    np.testing.assert_allclose(x.grad.numpy(), pullback(None, np.ones((3, 3)), 2 * u),
                               atol=1e-12)


@pytest.mark.parametrize("shape", [(7, 3), (3, 7)], ids=["tall", "wide"])
def test_rectangular_gradients_match_finite_differences_in_jax_and_torch(shape):
    a = _random(shape, 8)
    g_l = _random((shape[0], min(shape)), 9)
    g_u = _random((min(shape), shape[1]), 10)

    def loss(lu_result, backend):
        dot = jnp.vdot if backend == "jax" else (lambda x, y: (x * y).sum())
        return dot(lu_result.L, backend_array(g_l, backend)) + dot(lu_result.U,
                                                                  backend_array(g_u, backend))

    def backend_array(x, backend):
        return jnp.asarray(x) if backend == "jax" else torch.tensor(x)

    def numpy_loss(x):
        r = gn.lu(x)
        return np.sum(r.L * g_l) + np.sum(r.U * g_u)

    h = 1e-6
    fd = np.zeros(shape)
    for idx in np.ndindex(*shape):
        e = np.zeros(shape)
        e[idx] = h
        fd[idx] = (numpy_loss(a + e) - numpy_loss(a - e)) / (2 * h)
    grad_jax = np.asarray(jax.grad(lambda x: loss(gj.lu(x), "jax"))(jnp.asarray(a)))
    x = torch.tensor(a, requires_grad=True)
    loss(gt.lu(x), "torch").backward()
    for name, grad in (("jax", grad_jax), ("torch", x.grad.numpy())):
        np.testing.assert_allclose(grad, fd, atol=1e-7, err_msg=name)


def test_pivot_false_is_refused_with_the_allowed_values():
    a = _random((3, 3), 11)
    for call in (lambda: gn.lu(a, pivot=False), lambda: gt.lu_factor(torch.tensor(a),
                                                                        pivot=False)):
        with pytest.raises(ValueError, match=r"pivot must be one of \[True\], got False"):
            call()


def test_products_with_the_permutation_are_row_gathers_not_matmuls():
    """P^T dA (JVP) and P X (VJP) are printed as gathers of rows
    (factorules.compiler.product_folding.fold_permutation_products): no m x m product in any
    backend's rules."""
    root = Path(__file__).resolve().parent.parent
    for backend in ("numpy", "torch", "jax", "cupy"):
        for op in ("lu", "lu_factor"):
            text = (root / "generated" / backend / f"{op}.py").read_text()
            rules = text[text.index("def _jvp_rule"):text.index("def _returned")]
            assert "_permute_rows(P, dA, True)" in rules, (backend, op)
            assert "_permute_rows(P, " in rules[rules.index("def _vjp_rule"):], (backend, op)
            assert not re.search(r"\bP\b[^,(]*@|@ *\(?P\b|swapaxes\(P\b|\(P\)", rules), \
                (backend, op)


@pytest.mark.parametrize("shape", [(5, 3), (2, 4, 4), (0, 3, 2), (2, 0, 3)], ids=str)
@pytest.mark.parametrize("transpose", [False, True])
def test_permute_rows_is_the_product_with_the_permutation(shape, transpose):
    from generated.jax import _runtime as jr
    from generated.numpy import _runtime as nr
    from generated.torch import _runtime as tr
    rng = np.random.default_rng(12)
    m = shape[-2]
    perms = rng.permuted(np.broadcast_to(np.arange(m), shape[:-2] + (m,)), axis=-1)
    p = (perms[..., None, :] == np.arange(m)[:, None]).astype(np.complex128)
    x = _random(shape, 13, True)
    want = (np.swapaxes(p, -1, -2) if transpose else p) @ x
    for name, got in (("numpy", nr._permute_rows(p, x, transpose)),
                      ("jax", jr._permute_rows(jnp.asarray(p), jnp.asarray(x), transpose)),
                      ("torch", tr._permute_rows(torch.tensor(p), torch.tensor(x),
                                                 transpose))):
        np.testing.assert_array_equal(np.asarray(got), want, err_msg=name)


@pytest.mark.parametrize("batch", [(), (3,), (2, 2), (0,)], ids=str)
def test_unbatched_maps_a_one_matrix_call_over_the_batch_in_every_runtime(batch):
    """signatures' `batched: false`: each runtime's _unbatched equals the batched call, empty
    stacks included (lu_factor's numpy and cupy signatures use it; torch and jax have it for
    specs whose calls take one matrix)."""
    from generated.jax import _runtime as jr
    from generated.numpy import _runtime as nr
    from generated.torch import _runtime as tr
    a = _random(batch + (4, 3), 14)
    want = torch.linalg.qr(torch.tensor(a))
    for name, got in (
            ("numpy", nr._unbatched(lambda x: np.linalg.qr(x), a)),
            ("torch", tr._unbatched(lambda x: torch.linalg.qr(x), torch.tensor(a))),
            ("jax", jr._unbatched(lambda x: jnp.linalg.qr(x), jnp.asarray(a)))):
        assert isinstance(got, tuple) and len(got) == 2, name
        for g, w in zip(got, want):
            assert np.asarray(g).shape == tuple(w.shape), name
            np.testing.assert_allclose(np.abs(np.asarray(g)), np.abs(w.numpy()), atol=1e-12,
                                       err_msg=name)


def test_a_permutation_from_pivots_takes_its_place_among_the_outputs(tmp_path):
    """lu_factor with its P returned and listed first: built from the pivots after the call
    and put where the spec lists it (generated into a temporary tree, then run)."""
    import sys

    from factorules.compiler import pipeline
    root = Path(__file__).resolve().parent.parent
    text = (root / "spec" / "lu_factor.yaml").read_text()
    listed = ("      LU: {shape: [m, n]}\n      pivots: {shape: [k], structure: pivots}\n"
              "      P: {shape: [m, m], structure: permutation, from_pivots: pivots, "
              "returned: hidden}\n")
    assert listed in text
    text = text.replace(listed, "      P: {shape: [m, m], structure: permutation, "
                                "from_pivots: pivots}\n      LU: {shape: [m, n]}\n"
                                "      pivots: {shape: [k], structure: pivots}\n")
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    (spec_dir / "lu_factor.yaml").write_text(text)
    pipeline.write(pipeline.render(spec_dir), tmp_path)
    saved = {k: v for k, v in sys.modules.items() if k == "generated" or k.startswith("generated.")}
    for k in saved:
        del sys.modules[k]
    sys.path.insert(0, str(tmp_path))
    try:
        from generated import numpy as fr
        a = _random((2, 5, 4), 15)
        (p, lu, pivots), tangents = fr.lu_factor_jvp(a, _random((2, 5, 4), 16))
        want = torch.linalg.lu_factor(torch.tensor(a))
        np.testing.assert_array_equal(pivots, want.pivots.numpy())
        np.testing.assert_array_equal(p, torch.lu_unpack(want.LU, want.pivots)[0].numpy())
        assert tangents[0] is None and tangents[2] is None and tangents[1].shape == lu.shape
    finally:
        sys.path.remove(str(tmp_path))
        for k in [k for k in sys.modules if k == "generated" or k.startswith("generated.")]:
            del sys.modules[k]
        sys.modules.update(saved)
