"""schur: scipy.linalg.schur's decomposition in every backend (spec/schur.yaml), and
solve_tril_sylvester, the operation its rules are written with.  The generic ladder
(tests/test_rules.py and the harnesses) checks its derivatives like every spec's, the gauge
and second order included, and tests/test_degenerate.py its ties (a complex-conjugate pair
of real output among them); here, that each backend returns SciPy's numbers for both outputs,
fields, batches and empty matrices, with SciPy's output order and keywords; the errors; and
solve_tril_sylvester against its equation and its 50-digit evaluation."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import torch
from jax.test_util import check_grads

from factorules.compiler.ops import arrays
from generated import jax as gj
from generated import numpy as gn
from generated import torch as gt
from generated.jax import _runtime as jax_runtime
from generated.numpy import _runtime as numpy_runtime
from generated.torch import _runtime as torch_runtime

jax.config.update("jax_enable_x64", True)


def _draw(rng, shape, complex_):
    a = rng.standard_normal(shape)
    return a + 1j * rng.standard_normal(shape) if complex_ else a


def _real_spectrum(rng, batch, n, complex_):
    """Q (diag(1..n) + strictly upper noise) Q^H: distinct real eigenvalues, so that real
    output is triangular."""
    q = np.linalg.qr(_draw(rng, batch + (n, n), complex_))[0]
    t = np.diag(np.arange(1.0, n + 1)) + np.triu(_draw(rng, batch + (n, n), complex_), 1)
    return q @ t @ np.conj(np.swapaxes(q, -1, -2))


def _scipy(a, output):
    """scipy.linalg.schur of each matrix of a stack (it takes one)."""
    batch = a.shape[:-2]
    pairs = [scipy.linalg.schur(a[i], output=output) for i in np.ndindex(*batch)]
    return tuple(np.stack([p[j] for p in pairs]).reshape(batch + pairs[0][j].shape)
                 for j in range(2))


@pytest.mark.parametrize("n", [4, 1, 0])
@pytest.mark.parametrize("output", ["real", "complex"])
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_every_backend_returns_scipys_schur(n, output, complex_):
    a = _real_spectrum(np.random.default_rng(0), (2,), n, complex_)
    # SciPy's dtypes: complex for complex output or input, the input's otherwise
    dtype = np.complex128 if complex_ or output == "complex" else np.float64
    want = _scipy(a, output) if n else (np.zeros((2, 0, 0), dtype),) * 2
    for name, got in (("numpy", gn.schur(a, output=output)),
                      ("torch", gt.schur(torch.from_numpy(a), output=output)),
                      ("jax", gj.schur(jnp.asarray(a), output=output))):
        assert got._fields == ("T", "Z"), name
        t, z = (np.asarray(x) for x in got)
        assert t.dtype == dtype and z.dtype == dtype, (name, t.dtype)
        assert t.shape == z.shape == (2, n, n), name
        np.testing.assert_allclose(t, want[0], atol=1e-12, err_msg=name)
        np.testing.assert_allclose(z, want[1], atol=1e-12, err_msg=name)
        np.testing.assert_allclose(z @ t @ np.conj(np.swapaxes(z, -1, -2)), a, atol=1e-12,
                                   err_msg=name)
    assert gn.schur(a)[0].dtype == (np.complex128 if complex_ else np.float64)  # SciPy's
    # default, output="real"


def test_real_output_of_a_complex_pair_is_an_error_naming_complex_output():
    """A real A with eigenvalues 1 +- 2i: real Schur form has a 2 x 2 block, whose derivative
    the rules do not give; the error says to pass output='complex', which gives it."""
    rng = np.random.default_rng(1)
    q = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    a = q @ np.array([[1.0, 2.0, 0.5], [-2.0, 1.0, 0.3], [0.0, 0.0, 3.0]]) @ q.T
    g = np.zeros((3, 3))
    g[0, 0] = 1.0
    with pytest.raises(ValueError, match=r"^schur: .*output='complex'.*check_ties=False"):
        gn.schur_vjp(a, output="real")[1](g, g)
    x = torch.from_numpy(a).requires_grad_()
    with pytest.raises(ValueError, match=r"^schur: .*output='complex'"):
        gt.schur(x, output="real").T[0, 0].backward()
    # output="complex" differentiates it: the gradient of T[0, 0] (an eigenvalue, phase
    # invariant) against central differences of the eigenvalue nearest it
    t, _ = gn.schur(a, output="complex")
    gc = np.zeros((3, 3), complex)
    gc[0, 0] = 1.0
    grad = gn.schur_vjp(a, output="complex")[1](gc, np.zeros((3, 3), complex))
    d = rng.standard_normal((3, 3))
    h = 1e-6
    moved = [np.linalg.eigvals(a + s * h * d) for s in (1, -1)]
    near = [m[np.argmin(np.abs(m - t[0, 0]))] for m in moved]
    assert abs(np.sum(np.conj(grad) * d).real - ((near[0] - near[1]) / (2 * h)).real) < 1e-7


@pytest.mark.parametrize("shape", [(3, 4), (4,)])
def test_a_matrix_that_is_not_square_is_an_error(shape):
    a = np.ones(shape)
    with pytest.raises(ValueError, match="schur"):
        gn.schur(a)
    with pytest.raises(ValueError, match="schur"):
        gt.schur(torch.from_numpy(a))


@pytest.mark.parametrize("adjoint", [False, True])
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_solve_tril_sylvester_solves_its_equation_in_every_backend(adjoint, complex_):
    """tril(X S - S X, -1) = tril(C, -1) with X strictly lower, S = triu(T) or its adjoint
    (T's lower triangle never read), a batch against one T; the same X as the 50-digit
    evaluation's system of X's entries, and the transpose (the other ``adjoint``) adjoint
    to it under Re <., .>."""
    rng = np.random.default_rng(2)
    n = 5
    t = _draw(rng, (n, n), complex_) + 4 * np.diag(np.arange(n))  # distinct diagonal
    c = _draw(rng, (3, n, n), complex_)
    s = np.triu(t)
    s = np.conj(s.T) if adjoint else s
    x = numpy_runtime._solve_tril_sylvester(t, c, adjoint)
    assert np.all(np.triu(x) == 0)
    np.testing.assert_allclose(np.tril(x @ s - s @ x, -1), np.tril(c, -1), atol=1e-12)
    for name, got in (
            ("torch", torch_runtime._solve_tril_sylvester(torch.from_numpy(t),
                                                          torch.from_numpy(c), adjoint)),
            ("jax", jax_runtime._solve_tril_sylvester(jnp.asarray(t), jnp.asarray(c),
                                                      adjoint)),
            ("50 digits", arrays.solve_tril_sylvester(t.astype(complex), c.astype(complex),
                                                      adjoint))):
        np.testing.assert_allclose(np.asarray(got), x, atol=1e-12, err_msg=name)
    g = np.tril(_draw(rng, (3, n, n), complex_), -1)
    transposed = numpy_runtime._solve_tril_sylvester(t, g, not adjoint)
    assert abs(np.sum(np.conj(g) * x).real - np.sum(np.conj(transposed) * c).real) < 1e-10
    empty = numpy_runtime._solve_tril_sylvester(np.zeros((0, 0)), np.zeros((2, 0, 0)), adjoint)
    assert empty.shape == (2, 0, 0)


def test_solve_tril_sylvester_is_differentiated_by_torch_and_jax_to_second_order():
    """The column loop is rational in T and C: torch's and JAX's own derivatives of it are
    right, second order included."""
    rng = np.random.default_rng(3)
    t = np.triu(rng.standard_normal((4, 4))) + 3 * np.diag(np.arange(4))
    c = rng.standard_normal((4, 4))

    def f(tt, cc):
        return torch_runtime._solve_tril_sylvester(tt, cc, False)
    inputs = (torch.from_numpy(t).requires_grad_(), torch.from_numpy(c).requires_grad_())
    assert torch.autograd.gradgradcheck(f, inputs)
    check_grads(lambda tt, cc: jax_runtime._solve_tril_sylvester(tt, cc, True),
                (jnp.asarray(t), jnp.asarray(c)), order=2, modes=["fwd", "rev"])


@pytest.mark.parametrize("output", ["real", "complex"])
def test_alignment_brings_a_schur_form_of_another_order_back_to_the_reference(output):
    """LAPACK's order of the eigenvalues on T's diagonal is not a function of A (single and
    double precision order some matrices differently; a deflation decision may flip between
    A and A + h dA): gauge.align reorders (T, Z) into the reference's order (trexc), then
    aligns the phases, so that finite differences compare with the rules' tangents."""
    from scipy.linalg import lapack

    from factorules.compiler.paths import ROOT
    from factorules.compiler.render import load_checked
    from factorules.tools import gauge
    (checked,) = load_checked([ROOT / "spec" / "schur.yaml"])
    cv = next(c for c in checked.variants if dict(c.variant.when)["output"] == output)
    a = _real_spectrum(np.random.default_rng(9), (2,), 5, output == "complex")
    t, z = _scipy(a, output)
    moved_t, moved_z = t.copy(), z.copy()
    trexc = lapack.ztrexc if np.iscomplexobj(t) else lapack.dtrexc
    for i in range(2):  # the last eigenvalue first, in both matrices of the batch
        moved_t[i], moved_z[i], info = trexc(t[i], z[i], 5, 1)
        assert info == 0
    assert not np.allclose(np.diagonal(moved_t, 0, -2, -1), np.diagonal(t, 0, -2, -1))
    got = gauge.align([moved_t, moved_z], [t, z], cv)
    np.testing.assert_allclose(got[0], t, atol=1e-12)
    np.testing.assert_allclose(got[1], z, atol=1e-12)
