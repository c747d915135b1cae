"""Degenerate inputs, one policy for every operation and backend (docs/degenerate-inputs.md,
written from this module's cases: ``python tests/test_degenerate.py``).

Forward passes behave like the framework's own operation: the factors of a singular matrix,
non-finite input as the framework treats it, integers promoted where numpy.linalg and
jax.numpy.linalg promote them.  Where a derivative does not exist (a zero pivot the rules divide
by, tied eigen- or singular values with a tangent or cotangent that tells them apart, a loss
that depends on the gauge), eager code raises ValueError naming the operation, the condition
and the switch, and traced code (jax.jit / jax.grad / jax.vmap, torch.func, torch.compile)
returns NaN for the matrices concerned and finite values for the others.  At ties, losses
that are invariant to the tie keep their finite, correct derivative.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import re
import warnings
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import torch
from jax.experimental import checkify

import ladder
from factorules.tools.adapters import as_tuple
from fake_cupy import FakeCupy

jax.config.update("jax_enable_x64", True)

GENERATED_TORCH = importlib.import_module("generated.torch")
ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "degenerate-inputs.md"
BACKENDS = ("numpy", "torch", "jax", "cupy")


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return FakeCupy(lambda: tmp_path_factory.mktemp("cuda-host"))


@pytest.fixture(scope="module")
def cupy_modules(fake):
    return fake.load_backend()


class _Backend:
    """One backend's generated functions, with conversions from and to NumPy (CuPy: the
    generated package on the CPU, through tests/fake_cupy.py)."""

    def __init__(self, name, fake, cupy_modules):
        self.name, self._fake = name, fake
        if name == "cupy":
            self._modules = cupy_modules
        else:
            self._package = importlib.import_module(f"generated.{name}")

    def op(self, op, suffix=""):
        """The generated function ``op`` + suffix ('', '_jvp', '_vjp')."""
        if self.name == "cupy":
            return getattr(self._modules[op], op + suffix)
        return getattr(self._package, op + suffix)

    def to(self, x):
        return {"numpy": np.asarray, "torch": torch.as_tensor, "jax": jax.numpy.asarray,
                "cupy": self._fake.cupy.asarray}[self.name](x)

    def back(self, x):
        if self.name == "torch":
            return x.detach().numpy()
        if self.name == "cupy":
            return x.get()
        return np.asarray(x)


@pytest.fixture
def backend(request, fake, cupy_modules):
    b = _Backend(request.param, fake, cupy_modules)
    if request.param == "cupy":
        with fake.installed():
            yield b
    else:
        yield b


def _singular_batch(complex_=False):
    """Three 4x4 matrices; the middle one exactly singular (its last row the sum of two)."""
    rng = np.random.default_rng(7)
    a = rng.standard_normal((3, 4, 4))
    if complex_:
        a = a + 1j * rng.standard_normal((3, 4, 4))
    a[1, 3] = a[1, 0] + a[1, 1]
    return a


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_lu_of_a_singular_matrix_returns_its_factors_per_batch_element(backend, complex_):
    """torch.linalg.lu_factor raises on a singular matrix; LAPACK's factors exist, and
    numpy (SciPy), JAX and torch.linalg.lu return them: so do ours, for each matrix of a batch
    (the nonsingular ones as if alone)."""
    a = _singular_batch(complex_)
    with warnings.catch_warnings():  # SciPy's LinAlgWarning: singular matrix
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        p, l_, u = (backend.back(y) for y in as_tuple(backend.op("lu")(backend.to(a))))
        lu, pivots = (backend.back(y) for y in as_tuple(backend.op("lu_factor")(backend.to(a))))
    for i in range(3):
        np.testing.assert_allclose(p[i] @ l_[i] @ u[i], a[i], rtol=1e-12, atol=1e-12)
        if i != 1:  # (the singular one meets pivoting ties, which libraries break differently)
            want_lu, want_piv = scipy.linalg.lu_factor(a[i])
            np.testing.assert_allclose(lu[i], want_lu, rtol=1e-12, atol=1e-12)
            assert list(pivots[i]) == list(want_piv + 1)
    assert abs(u[1, 3, 3]) < 1e-12 * abs(a[1]).max()


# -- the degenerate inputs -------------------------------------------------------------------
# Each case is a batch of three matrices whose middle one is degenerate, and a loss, linear in
# the outputs (Re <G, y> summed, G the cotangents, PyTorch's convention), that has no
# derivative there.  Built in float64 / complex128 and rounded to the dtype tested.

def _rng(seed=0):
    return np.random.default_rng(seed)


def _draw(rng, shape, complex_):
    x = rng.standard_normal(shape)
    return x + 1j * rng.standard_normal(shape) if complex_ else x


def _unitary(rng, n, complex_):
    q, _ = np.linalg.qr(_draw(rng, (n, n), complex_))
    return q


def _dependent_columns(complex_, m=6, n=4):
    """A's last column the sum of its first two in the middle matrix."""
    a = _draw(_rng(1), (3, m, n), complex_)
    a[1, :, n - 1] = a[1, :, 0] + a[1, :, 1]
    return a


def _dependent_rows(complex_):
    return np.swapaxes(_dependent_columns(complex_, 6, 4), -1, -2).copy()


def _rank_two(complex_):
    a = _draw(_rng(2), (3, 6, 4), complex_)
    a[1] = _draw(_rng(3), (6, 2), complex_) @ _draw(_rng(4), (2, 4), complex_)
    return a


def _rank_deficient(complex_, m, n):
    """The middle matrix of rank min(m, n) - 1: a zero singular value."""
    a = _draw(_rng(13), (3, m, n), complex_)
    k = min(m, n)
    a[1] = _draw(_rng(14), (m, k - 1), complex_) @ _draw(_rng(15), (k - 1, n), complex_)
    return a


def _singular_square(complex_):
    a = _draw(_rng(5), (3, 4, 4), complex_)
    a[1, 3] = a[1, 0] + a[1, 1]
    return a


def _nearly_singular_hpd(complex_, dtype):
    """A = L L^H with L's last pivot L_33^2 = 30 eps and first rows of size 100: Cholesky
    succeeds (rounding, a few eps, cannot make the pivot negative), and the pivot is below
    4 eps ||A||_F (about 4e4 eps)."""
    rng = _rng(6)
    out = []
    for i in range(3):
        l_ = np.tril(_draw(rng, (4, 4), complex_))
        l_[np.arange(4), np.arange(4)] = np.abs(l_[np.arange(4), np.arange(4)]) + 1
        l_[:3] *= 100
        if i == 1:
            l_[3, 3] = np.sqrt(30 * np.finfo(dtype).eps)
        out.append(l_ @ l_.conj().T)
    return np.stack(out)


def _spectrum(values, complex_, seed, hermitian=True):
    """Three matrices with spectra ``values`` (the middle one's tied), unitarily similar to
    diag(values): Hermitian (eigh), or A = U diag(values) V^H (svd, real singular values)."""
    rng = _rng(seed)
    out = []
    for i in range(3):
        v = np.array(values[i], dtype=float)
        u = _unitary(rng, len(v), complex_)
        w = u if hermitian else _unitary(rng, len(v), complex_)
        out.append(u @ np.diag(v) @ w.conj().T)
    return np.stack(out)


def _tied_hermitian(complex_):
    return _spectrum([(1, 2, 3, 4), (1, 1, 2, 3), (0.5, 2, 3, 5)], complex_, 7)


def _tied_singular(complex_):
    return _spectrum([(4, 3, 2, 1), (3, 2, 2, 1), (5, 3, 2, 0.5)], complex_, 8, hermitian=False)


def _tied_general(complex_):
    """eig: normal matrices (well-conditioned eigenvectors: computed eigenvalues tie to
    rounding), the middle one with the eigenvalue 1 twice."""
    return _spectrum([(1, 2, 3, 4), (1, 1, 2, 3), (0.5, 2, 3, 5)], complex_, 9)


def _complex_pair():
    """Real matrices, the middle one with the eigenvalues 1 +- 2i (a 2 x 2 block of real
    Schur form, its diagonal entries equal), the others with real distinct ones."""
    rng = _rng(11)
    blocks = [np.diag([1.0, 2, 3, 4]), np.diag([1.0, 1, 3, 4]), np.diag([0.5, 2, 3, 5])]
    blocks[1][0, 1], blocks[1][1, 0] = 2.0, -2.0
    out = []
    for b in blocks:
        q = _unitary(rng, 4, False)
        out.append(q @ (b + np.triu(rng.standard_normal((4, 4)), 2)) @ q.T)
    return np.stack(out)


def _hermitian_batch(complex_):
    return _spectrum([(1, 2, 3, 4), (1, 1.5, 3, 4), (0.5, 2, 3, 5)], complex_, 10)


def _reduced_hessenberg(complex_, n=4):
    """A[1:, 0] = 0 in the middle matrix: its Hessenberg form has H[1, 0] = 0 (reduced: the
    first reflector's vector is zero), where Q jumps."""
    a = _draw(_rng(12), (3, n, n), complex_)
    a[1, 1:, 0] = 0
    return a


def _ones_like(y):
    return np.ones(y.shape, y.dtype)


def _first(index):
    """A cotangent on one entry of an output: e.g. the first of two tied eigenvalues."""
    def cotangent(y):
        g = np.zeros(y.shape, y.dtype)
        g[(...,) + index] = 1
        return g
    return cotangent


def _leading(k=None):
    """The cotangent R Y[:, :k] of tr(R Y1 Y1^H) / 2 (R = diag(1, 2, ...) on the rows, Y1 the
    leading k columns): invariant to the vectors' phases and to a completion's rotations,
    not to the choice of a zero singular value's vectors."""
    def cotangent(y):
        g = np.zeros_like(y)
        g[..., :k] = np.arange(1.0, y.shape[-2] + 1)[:, None] * y[..., :k]
        return g
    return cotangent


def _leading_rows(k=None):
    """_leading for Vh: the cotangent Vh[:k] C (C = diag(1, 2, ...) on the columns)."""
    def cotangent(y):
        return np.swapaxes(_leading(k)(np.swapaxes(y, -1, -2)), -1, -2)
    return cotangent


def _nearest(value):
    """A cotangent on the eigenvalue nearest ``value`` in each matrix: in the middle one,
    one of the tied pair (eig returns eigenvalues in no particular order)."""
    def cotangent(y):
        g = np.zeros(y.shape, y.dtype)
        for i, values in enumerate(y):
            g[i, np.argmin(np.abs(values - value))] = 1
        return g
    return cotangent


def _phase(y):
    """A cotangent on the real part of one entry of the middle matrix's first eigen- or
    singular vector: it sees the vector's phase (the other matrices get none)."""
    g = np.zeros(y.shape, y.dtype)
    g[1, 1, 0] = 1 + 2j  # (LAPACK makes one entry of each vector real: not this one's part)
    return g


def _completion(y):
    """A cotangent on one entry of the middle matrix's first completion column U[:, k:]
    (k = 4 here): the loss turns with the completion's arbitrary rotations."""
    g = np.zeros(y.shape, y.dtype)
    g[1, 0, 4] = 1
    return g


def _general_batch(complex_):
    return _draw(_rng(11), (3, 4, 4), complex_)


@dataclasses.dataclass(frozen=True)
class Degenerate:
    """An operation at a degenerate input."""

    op: str
    condition: str  # the table's words
    option: str  # the switch that turns the check off
    make: Callable  # (complex_, dtype) -> a batch of three, the middle one degenerate
    cotangents: tuple  # per output: a function of it giving its cotangent, or None
    dtypes: tuple = ("float32", "complex128")
    options: tuple = ()  # keyword options of the call, as pairs
    jvp_checked: bool = True  # the JVP has no derivative along a generic tangent either
    shape: str = ""  # 'tall', 'wide': tells apart cases of one operation, options and kind

    @property
    def id(self):
        return "-".join([self.op, *(f"{k}={v}" for k, v in self.options),
                         self.condition.split(":")[0], *([self.shape] if self.shape else [])])


PIVOTS = "a zero pivot: "
TIES = "tied values: "
GAUGE = "the gauge: "
CASES = [
    Degenerate("qr", PIVOTS + "linearly dependent columns (R_kk = 0)", "check_singular",
               lambda c, d: _dependent_columns(c), (_ones_like, _ones_like)),
    Degenerate("qr", PIVOTS + "linearly dependent columns (R_kk = 0), pivoting=True",
               "check_singular", lambda c, d: _rank_two(c), (_ones_like, _ones_like, None),
               options=(("pivoting", True),)),
    Degenerate("qr_pivoted", PIVOTS + "rank below min(m, n)", "check_singular",
               lambda c, d: _rank_two(c), (_ones_like, _ones_like, None)),
    Degenerate("geqrf", PIVOTS + "linearly dependent columns", "check_singular",
               lambda c, d: _dependent_columns(c), (_ones_like, _ones_like)),
    Degenerate("lq", PIVOTS + "linearly dependent rows (L_kk = 0)", "check_singular",
               lambda c, d: _dependent_rows(c), (_ones_like, _ones_like)),
    Degenerate("rq", PIVOTS + "linearly dependent rows (R_kk = 0)", "check_singular",
               lambda c, d: _dependent_rows(c), (_ones_like, _ones_like)),
    Degenerate("polar", PIVOTS + "a zero singular value (A rank-deficient)", "check_singular",
               lambda c, d: _rank_deficient(c, 6, 4), (_ones_like, _ones_like),
               options=(("side", "right"),), shape="tall"),
    Degenerate("polar", PIVOTS + "a zero singular value (A rank-deficient)", "check_singular",
               lambda c, d: _rank_deficient(c, 4, 6), (_ones_like, _ones_like),
               options=(("side", "left"),), shape="wide"),
    Degenerate("cholesky", PIVOTS + "a pivot L_kk^2 near zero (A nearly singular)",
               "check_singular",
               _nearly_singular_hpd, (_ones_like,)),
    Degenerate("lu", PIVOTS + "singular (U_kk = 0)", "check_singular",
               lambda c, d: _singular_square(c), (None, _ones_like, _ones_like)),
    Degenerate("lu_factor", PIVOTS + "singular (U_kk = 0)", "check_singular",
               lambda c, d: _singular_square(c), (_ones_like, None)),
    Degenerate("svd", PIVOTS + "a zero singular value of a tall A, a loss of its left vectors",
               "check_singular", lambda c, d: _rank_deficient(c, 6, 4),
               (_leading(), None, None), options=(("full_matrices", False),), shape="tall"),
    Degenerate("svd", PIVOTS + "a zero singular value of a wide A, a loss of its right vectors",
               "check_singular", lambda c, d: _rank_deficient(c, 4, 6),
               (None, None, _leading_rows()), options=(("full_matrices", False),),
               shape="wide"),
    Degenerate("svd", PIVOTS + "a zero singular value of a tall A, a loss of U[:, :k]",
               "check_singular", lambda c, d: _rank_deficient(c, 6, 4),
               (_leading(4), None, None), options=(("full_matrices", True),), shape="tall"),
    Degenerate("svd", PIVOTS + "a zero singular value of a wide A, a loss of Vh[:k]",
               "check_singular", lambda c, d: _rank_deficient(c, 4, 6),
               (None, None, _leading_rows(4)), options=(("full_matrices", True),),
               shape="wide"),
    Degenerate("svd", PIVOTS + "a zero singular value of a square A, a loss of S (a kink: "
               "abs(t) along a tangent)", "check_singular",
               lambda c, d: _rank_deficient(c, 4, 4), (None, _ones_like, None),
               options=(("full_matrices", False),), shape="square"),
    Degenerate("svdvals", PIVOTS + "a zero singular value, a loss of S (a kink: abs(t) along "
               "a tangent)", "check_singular", lambda c, d: _rank_deficient(c, 6, 4),
               (_ones_like,)),
    Degenerate("eigh", TIES + "a repeated eigenvalue, a loss of one of the pair",
               "check_ties", lambda c, d: _tied_hermitian(c), (_first((0,)), None)),
    Degenerate("eigvalsh", TIES + "a repeated eigenvalue, a loss of one of the pair",
               "check_ties", lambda c, d: _tied_hermitian(c), (_first((0,)),)),
    Degenerate("svd", TIES + "a repeated singular value, a loss of one of the pair",
               "check_ties", lambda c, d: _tied_singular(c), (None, _first((1,)), None),
               options=(("full_matrices", False),)),
    Degenerate("svdvals", TIES + "a repeated singular value, a loss of one of the pair",
               "check_ties", lambda c, d: _tied_singular(c), (_first((1,)),)),
    Degenerate("eig", TIES + "a repeated eigenvalue, a loss of one of the pair",
               "check_ties", lambda c, d: _tied_general(c), (_nearest(1), None)),
    Degenerate("eigvals", TIES + "a repeated eigenvalue, a loss of one of the pair",
               "check_ties", lambda c, d: _tied_general(c), (_nearest(1),)),
    Degenerate("schur", TIES + "a repeated eigenvalue, a loss of T's first diagonal entry",
               "check_ties", lambda c, d: _tied_general(c), (_first((0, 0)), None),
               options=(("output", "complex"),)),
    Degenerate("schur", TIES + "a complex-conjugate pair of a real A (a 2 x 2 block of T), "
               "a loss of T's first diagonal entry", "check_ties",
               lambda c, d: _complex_pair(), (_first((0, 0)), None),
               dtypes=("float32", "float64"), options=(("output", "real"),)),
    Degenerate("hessenberg", PIVOTS + "a zero subdiagonal entry of H (A's reduction splits)",
               "check_singular", lambda c, d: _reduced_hessenberg(c), (_ones_like, _ones_like),
               options=(("calc_q", True),)),
    Degenerate("eigh", GAUGE + "a loss of an eigenvector's phase", "check_gauge",
               lambda c, d: _hermitian_batch(c), (None, _phase), dtypes=("complex64",
                                                                          "complex128"),
               jvp_checked=False),
    Degenerate("svd", GAUGE + "a loss of a singular vector's phase", "check_gauge",
               lambda c, d: _general_batch(c), (_phase, None, None),
               dtypes=("complex64", "complex128"), options=(("full_matrices", False),),
               jvp_checked=False),
    Degenerate("svd", GAUGE + "a loss of one column of the completion U[:, k:] of a tall A",
               "check_gauge", lambda c, d: _draw(_rng(11), (3, 6, 4), c),
               (_completion, None, None), options=(("full_matrices", True),),
               jvp_checked=False, shape="tall"),
    Degenerate("schur", GAUGE + "a loss of a Schur vector's phase", "check_gauge",
               lambda c, d: _hermitian_batch(c), (None, _phase), dtypes=("complex64",
                                                                         "complex128"),
               jvp_checked=False, options=(("output", "complex"),)),
    Degenerate("eig", GAUGE + "a loss of an eigenvector's phase", "check_gauge",
               lambda c, d: _hermitian_batch(c), (None, _phase), dtypes=("complex64",
                                                                         "complex128"),
               jvp_checked=False),
]

PARAMS = [pytest.param(c, d, id=f"{c.id}-{d}") for c in CASES for d in c.dtypes]
JVP_PARAMS = [p for p in PARAMS if p.values[0].jvp_checked]
# the traced checks (a compilation each): every case, its dtypes in turn (all under --full)
# (of svd's zero singular values, the thin tall case and the full wide one: the two modes and
# shapes; the others under --full)
TRACED_PARAMS = PARAMS if ladder.FULL else [
    pytest.param(c, d, id=f"{c.id}-{d}")
    for i, c in enumerate(CASES) for d in [c.dtypes[i % len(c.dtypes)]]
    if not (c.op == "svd" and c.option == "check_singular")
    or (c.shape == "tall") == (("full_matrices", False) in c.options)]
# the cases that also run every other traced path (torch.compile; JAX's jit of a jvp: a
# compilation each) by default: one per kind of check (all of them under --full)
EVERY_PATH = {(c.op, c.condition.split(":")[0]) for c in CASES} if ladder.FULL else {
    ("qr", "a zero pivot"), ("eigh", "tied values"), ("svd", "the gauge")}


def _every_path(case):
    return (case.op, case.condition.split(":")[0]) in EVERY_PATH


def _input(case, dtype):
    dtype = np.dtype(dtype)
    return case.make(dtype.kind == "c", dtype).astype(dtype)


def _tangent(a):
    """A generic tangent on A's structure (Hermitian for the Hermitian operations)."""
    t = _draw(_rng(12), a.shape, np.iscomplexobj(a))
    return (t + np.swapaxes(t, -1, -2).conj()).astype(a.dtype) / 2


def _structured(case, a):
    return case.op in ("eigh", "eigvalsh", "cholesky")


def _dA(case, a):
    t = _tangent(a) if _structured(case, a) else _draw(_rng(12), a.shape,
                                                       np.iscomplexobj(a)).astype(a.dtype)
    return t


# the operations torch and JAX differentiate as another (the spec's 'framework'): their
# autograd and jax.grad errors name that one
FRAMEWORK = {"eigvalsh": "eigh", "eigvals": "eig", "svdvals": "svd"}


def _called(case, framework=False):
    """The operation whose message an error carries: qr(pivoting=True) is qr_pivoted's, and
    under the frameworks' differentiation, eigvalsh is eigh's (FRAMEWORK)."""
    if ("pivoting", True) in case.options:
        return "qr_pivoted"
    return FRAMEWORK.get(case.op, case.op) if framework else case.op


def _error(case, framework=False):
    return rf"^{_called(case, framework)}: .*\); pass {case.option}=False to skip this check$"


def _cotangents(case, outputs):
    """The case's cotangents (PyTorch's convention) at the outputs (NumPy arrays)."""
    return [None if f is None else f(y) for f, y in zip(case.cotangents, outputs)]


def _in_convention(backend, g):
    """A cotangent as the backend's pullback takes it (JAX's: the conjugate)."""
    if g is None:
        return None
    return backend.to(np.conj(g) if backend.name == "jax" else g)


def _assert_tangent_only_the_middle_is_nan(t):
    """A tangent of an output: NaN for the middle matrix, unless the output is locally
    constant (a permutation: zero tangent everywhere)."""
    t = np.asarray(t.detach() if isinstance(t, torch.Tensor) else t)
    if t.size and not (np.all(t[0] == 0) and np.all(t[2] == 0) and np.all(t[1] == 0)):
        _assert_only_the_middle_is_nan(t)


def _assert_only_the_middle_is_nan(x):
    x = np.asarray(x.detach() if isinstance(x, torch.Tensor) else x)
    assert np.isnan(x[1]).all(), "the degenerate matrix's derivative is not NaN"
    assert np.isfinite(x[0]).all() and np.isfinite(x[2]).all(), "the others' are not finite"


# -- eager: ValueError ------------------------------------------------------------------------
def _per_backend(params):
    """(backend, case, dtype) for every case and backend, the case's dtypes in turn across the
    backends and each backend's across the cases (the full product under --full)."""
    cases = list(dict.fromkeys(p.values[0] for p in params))
    return [pytest.param(b, c, d, id=f"{c.id}-{d}-{b}")
            for i, c in enumerate(cases) for j, b in enumerate(BACKENDS)
            for k, d in enumerate(c.dtypes) if ladder.FULL or k == (i + j) % len(c.dtypes)]


@pytest.mark.parametrize("backend, case, dtype", _per_backend(PARAMS), indirect=["backend"])
def test_an_eager_pullback_raises_where_the_derivative_does_not_exist(backend, case, dtype):
    a = backend.to(_input(case, dtype))
    options = dict(case.options)
    outputs, pullback = backend.op(case.op, "_vjp")(a, **options)
    cotangents = _cotangents(case, [backend.back(y) for y in as_tuple(outputs)])
    given = [_in_convention(backend, g) for g in cotangents]
    with pytest.raises(ValueError, match=_error(case)):
        pullback(*given)
    _, pullback = backend.op(case.op, "_vjp")(a, **options, **{case.option: False})
    _unchecked(lambda: pullback(*given))


def _unchecked(call):
    """With the switch off, the rule runs: its numbers, whatever they are, or the error of a
    solve that meets an exactly zero pivot (SciPy's LinAlgError), never the check's."""
    try:
        call()
    except ValueError as error:
        assert "to skip this check" not in str(error)


@pytest.mark.parametrize("backend, case, dtype", _per_backend(JVP_PARAMS), indirect=["backend"])
def test_an_eager_jvp_raises_where_the_derivative_does_not_exist(backend, case, dtype):
    a = _input(case, dtype)
    da = backend.to(_dA(case, a))
    with pytest.raises(ValueError, match=_error(case)):
        backend.op(case.op, "_jvp")(backend.to(a), da, **dict(case.options))
    _unchecked(lambda: backend.op(case.op, "_jvp")(backend.to(a), da, **dict(case.options),
                                                   **{case.option: False}))
    if backend.name == "jax":  # jax.jvp of concrete arrays is eager too: the same error
        f = functools.partial(backend.op(case.op), **dict(case.options))
        with pytest.raises(ValueError) as raised:
            jax.jvp(lambda x: as_tuple(f(x)), (backend.to(a),), (da,))
        # (JAX adds lines after the message: where it filtered its frames from the traceback)
        assert re.match(_error(case, framework=True), str(raised.value).splitlines()[0])


def _torch_loss(case, cotangents, **switch):
    def loss(x):
        outputs = as_tuple(getattr(_torch_module(), case.op)(x, **dict(case.options), **switch))
        return sum((torch.as_tensor(g).conj() * y).real.sum()
                   for g, y in zip(cotangents, outputs) if g is not None)
    return loss


def _torch_module():
    return GENERATED_TORCH


def _numpy_outputs(case, a):
    return [np.asarray(y) for y in as_tuple(getattr(importlib.import_module("generated.numpy"),
                                                    case.op)(a, **dict(case.options)))]


@pytest.mark.parametrize("case, dtype", PARAMS)
def test_torch_backward_and_forward_ad_raise_in_eager_mode(case, dtype):
    a = _input(case, dtype)
    cotangents = _cotangents(case, _numpy_outputs(case, a))
    x = torch.tensor(a, requires_grad=True)
    with pytest.raises(ValueError, match=_error(case, framework=True)):
        _torch_loss(case, cotangents)(x).backward()
    if case.jvp_checked:
        import torch.autograd.forward_ad as fwad
        with fwad.dual_level(), pytest.raises(ValueError, match=_error(case, framework=True)):
            getattr(_torch_module(), case.op)(fwad.make_dual(torch.tensor(a),
                                                             torch.tensor(_dA(case, a))),
                                              **dict(case.options))


# -- traced: NaN for the matrices concerned ---------------------------------------------------
@pytest.mark.parametrize("case, dtype", TRACED_PARAMS)
def test_torch_func_and_torch_compile_give_nan_for_the_degenerate_matrix(case, dtype):
    a = _input(case, dtype)
    cotangents = _cotangents(case, _numpy_outputs(case, a))
    loss = _torch_loss(case, cotangents)
    _assert_only_the_middle_is_nan(torch.func.grad(loss)(torch.tensor(a)))

    def one(x, *gs):  # one matrix, its own cotangents: mapped over the batch
        outputs = as_tuple(getattr(_torch_module(), case.op)(x, **dict(case.options)))
        return sum((g.conj() * y).real.sum() for g, y in zip(gs, outputs) if g is not None)
    gs = [torch.as_tensor(g) for g in cotangents if g is not None]
    picked = [i for i, g in enumerate(cotangents) if g is not None]

    def mapped(x, *given):
        full = [None] * len(cotangents)
        for i, g in zip(picked, given):
            full[i] = g
        return one(x, *full)
    _assert_only_the_middle_is_nan(torch.func.vmap(torch.func.grad(mapped))(torch.tensor(a),
                                                                            *gs))
    if _every_path(case):
        x = torch.tensor(a, requires_grad=True)
        torch._dynamo.reset()  # (one loss function for every case: each case compiles anew)
        compiled = torch.compile(loss, backend="aot_eager", fullgraph=True)
        compiled(x).backward()
        _assert_only_the_middle_is_nan(x.grad)
    if case.jvp_checked:
        f = functools.partial(getattr(_torch_module(), case.op), **dict(case.options))
        _, tangents = torch.func.jvp(lambda x: tuple(y for y in as_tuple(f(x))
                                                     if y.is_floating_point()
                                                     or y.is_complex()),
                                     (torch.tensor(a),), (torch.tensor(_dA(case, a)),))
        for t in tangents:
            _assert_tangent_only_the_middle_is_nan(t)


def _jax_loss(case, cotangents):
    def loss(x):
        outputs = as_tuple(getattr(importlib.import_module("generated.jax"), case.op)(
            x, **dict(case.options)))
        return sum((jnp.conj(jnp.asarray(g)) * y).real.sum()
                   for g, y in zip(cotangents, outputs) if g is not None)
    return loss


@pytest.mark.parametrize("case, dtype", TRACED_PARAMS)
def test_jax_traced_gives_nan_for_the_degenerate_matrix_and_checkify_reports_it(case, dtype):
    a = jnp.asarray(_input(case, dtype))
    cotangents = _cotangents(case, _numpy_outputs(case, np.asarray(a)))
    loss = _jax_loss(case, cotangents)
    error, grad = checkify.checkify(jax.grad(loss))(a)
    _assert_only_the_middle_is_nan(grad)
    assert error.get() is not None and error.get().startswith(f"{_called(case, True)}: ")
    assert f"pass {case.option}=False" in error.get()
    _assert_only_the_middle_is_nan(jax.jit(jax.grad(loss))(a))
    picked = [i for i, g in enumerate(cotangents) if g is not None]

    def one(x, *given):  # one matrix, its own cotangents: mapped over the batch
        gs = [None] * len(cotangents)
        for i, g in zip(picked, given):
            gs[i] = g
        outputs = as_tuple(getattr(importlib.import_module("generated.jax"), case.op)(
            x, **dict(case.options)))
        return sum((jnp.conj(g) * y).real.sum() for g, y in zip(gs, outputs) if g is not None)
    given = [jnp.asarray(cotangents[i]) for i in picked]
    _assert_only_the_middle_is_nan(jax.jit(jax.vmap(jax.grad(one)))(a, *given))
    if case.jvp_checked and _every_path(case):
        f = functools.partial(getattr(importlib.import_module("generated.jax"), case.op),
                              **dict(case.options))

        def tangents(x, t):
            return tuple(y for y in as_tuple(jax.jvp(lambda x: as_tuple(f(x)), (x,), (t,))[1])
                         if jnp.issubdtype(y.dtype, jnp.inexact))
        for t in jax.jit(tangents)(a, jnp.asarray(_dA(case, np.asarray(a)))):
            _assert_tangent_only_the_middle_is_nan(t)


# -- losses invariant at a tie keep their finite, correct derivative ---------------------------
_ROWS = np.arange(1.0, 5.0)[:, None]  # row weights r_i


@dataclasses.dataclass(frozen=True)
class Invariant:
    """A loss with a derivative at tied values: symmetric in the tied values, and (of the
    vectors) a function of the eigenspace alone, tr(R Q W Q^H) with W equal on the tie."""

    op: str
    condition: str  # the table's words
    make: Callable  # complex_ -> a batch of three, the middle one tied
    loss: Callable  # (outputs, to) -> the loss; ``to`` makes a constant the backend's array
    cotangents: Callable  # outputs (NumPy) -> their cotangents (PyTorch's convention)
    options: tuple = ()

    @property
    def id(self):
        return f"{self.op}-invariant" + ("-zero" if self.condition.startswith("a zero") else "")


def _weighted(y, rows, w):
    """sum_ij r_i w_j |y_ij|^2 = tr(R Y W Y^H) (R, W diagonal)."""
    return lambda out, to: ((out[y].conj() * out[y]).real * to(rows * w)).sum()


def _eigenspace(y, w):
    return _weighted(y, _ROWS, w)


def _sum_of_squares(i):
    return lambda out, to: (out[i] * out[i]).real.sum()


def _added(*terms):
    return lambda out, to: sum(t(out, to) for t in terms)


_EIGH_W = np.array([1.0, 1.0, 2.0, 3.0])  # equal on the tie (ascending 1, 1, 2, 3)
_SVD_W = np.array([3.0, 2.0, 2.0, 1.0])  # equal on the tie (descending 3, 2, 2, 1)
_ROWS6 = np.arange(1.0, 7.0)[:, None]  # row weights of a 6 x 4 A's U
_ZERO_W = np.array([3.0, 2.0, 1.0, 0.0])  # zero on the last singular value, the zero one
INVARIANT = [
    Invariant("eigh", "tied eigenvalues: sum L^2 + tr(R Q W Q^H), W equal on the tie",
              _tied_hermitian, _added(_sum_of_squares(0), _eigenspace(1, _EIGH_W)),
              lambda out: (2 * out[0], 2 * _ROWS * _EIGH_W * out[1])),
    Invariant("eigvalsh", "tied eigenvalues: sum L^2", _tied_hermitian, _sum_of_squares(0),
              lambda out: (2 * out[0],)),
    Invariant("svd", "tied singular values: sum S^2 + tr(R U W U^H), W equal on the tie",
              _tied_singular, _added(_sum_of_squares(1), _eigenspace(0, _SVD_W)),
              lambda out: (2 * _ROWS * _SVD_W * out[0], 2 * out[1], np.zeros_like(out[2])),
              options=(("full_matrices", False),)),
    Invariant("svdvals", "tied singular values: sum S^2", _tied_singular, _sum_of_squares(0),
              lambda out: (2 * out[0],)),
    Invariant("svd", "a zero singular value of a tall A: sum S^2 + tr(R U W U^H), W zero on "
              "it", lambda c: _rank_deficient(c, 6, 4),
              _added(_sum_of_squares(1), _weighted(0, _ROWS6, _ZERO_W)),
              lambda out: (2 * _ROWS6 * _ZERO_W * out[0], 2 * out[1], np.zeros_like(out[2])),
              options=(("full_matrices", False),)),
    Invariant("svdvals", "a zero singular value of a tall A: sum S^2",
              lambda c: _rank_deficient(c, 6, 4), _sum_of_squares(0), lambda out: (2 * out[0],)),
    Invariant("eig", "tied eigenvalues: Re sum L^2", _tied_general, _sum_of_squares(0),
              lambda out: (2 * out[0].conj(), np.zeros_like(out[1]))),
    Invariant("eigvals", "tied eigenvalues: Re sum L^2", _tied_general, _sum_of_squares(0),
              lambda out: (2 * out[0].conj(),)),
]
INVARIANT_PARAMS = [pytest.param(c, d, id=f"{c.id}-{d}") for c in INVARIANT
                    for d in ("float64", "complex128")]
# under autodiff (compilations): every operation, the two dtypes in turn (all under --full)
AUTODIFF_PARAMS = INVARIANT_PARAMS if ladder.FULL else [
    p for i, p in enumerate(INVARIANT_PARAMS) if i % 4 in (0, 3)]


def _invariant_input(case, dtype):
    return case.make(np.dtype(dtype).kind == "c").astype(dtype)


def _directional(case, a, da):
    """The loss's derivative along da by central differences of the NumPy backend."""
    numpy_op = getattr(importlib.import_module("generated.numpy"), case.op)

    def loss(x):
        return float(case.loss(as_tuple(numpy_op(x, **dict(case.options))), np.asarray))
    h = 1e-6
    return (loss(a + h * da) - loss(a - h * da)) / (2 * h)


def _along(grad, da, conjugated=False):
    """<grad, da> = Re sum(conj(grad) da) for a gradient in PyTorch's convention (JAX's is
    its conjugate)."""
    grad = np.asarray(grad.detach() if isinstance(grad, torch.Tensor) else grad)
    return float(np.real(np.sum((grad if conjugated else grad.conj()) * da)))


def _assert_matches(got, want):
    assert np.isfinite(got) and abs(got - want) <= 1e-6 * max(1.0, abs(want)), (got, want)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
@pytest.mark.parametrize("case, dtype", INVARIANT_PARAMS)
def test_an_invariant_loss_at_a_tie_has_its_derivative_in_eager_pullbacks(backend, case,
                                                                           dtype):
    a = _invariant_input(case, dtype)
    da = _dA(case, a)
    outputs, pullback = backend.op(case.op, "_vjp")(backend.to(a), **dict(case.options))
    cotangents = case.cotangents([backend.back(y) for y in as_tuple(outputs)])
    grad = backend.back(pullback(*[_in_convention(backend, g) for g in cotangents]))
    _assert_matches(_along(grad, da, conjugated=backend.name == "jax"),
                    _directional(case, a, da))


@pytest.mark.parametrize("case, dtype", AUTODIFF_PARAMS)
def test_an_invariant_loss_at_a_tie_has_its_derivative_under_autodiff(case, dtype):
    """torch: backward, torch.func.grad and (eigh, or every operation under --full)
    torch.compile; JAX: grad and jit(grad)."""
    a = _invariant_input(case, dtype)
    da = _dA(case, a)
    want = _directional(case, a, da)

    def torch_loss(x):
        outputs = as_tuple(getattr(_torch_module(), case.op)(x, **dict(case.options)))
        return case.loss(outputs, torch.as_tensor)
    x = torch.tensor(a, requires_grad=True)
    torch_loss(x).backward()
    _assert_matches(_along(x.grad, da), want)
    _assert_matches(_along(torch.func.grad(torch_loss)(torch.tensor(a)), da), want)
    if ladder.FULL or case.op == "eigh":
        torch._dynamo.reset()
        x = torch.tensor(a, requires_grad=True)
        torch.compile(torch_loss, backend="aot_eager", fullgraph=True)(x).backward()
        _assert_matches(_along(x.grad, da), want)

    def jax_loss(x):
        outputs = as_tuple(getattr(importlib.import_module("generated.jax"), case.op)(
            x, **dict(case.options)))
        return case.loss(outputs, jnp.asarray)
    for grad in (jax.grad(jax_loss)(jnp.asarray(a)), jax.jit(jax.grad(jax_loss))(jnp.asarray(a))):
        _assert_matches(_along(grad, da, conjugated=True), want)


# -- forward passes: as the framework's own operation ------------------------------------------
# (the LU of a singular matrix: test_lu_of_a_singular_matrix_returns_its_factors_...)
def _native_numpy():
    return {"qr": np.linalg.qr, "cholesky": np.linalg.cholesky, "eigh": np.linalg.eigh,
            "eigvalsh": np.linalg.eigvalsh, "svd": np.linalg.svd,
            "svdvals": lambda a: np.linalg.svd(a, compute_uv=False), "eig": np.linalg.eig,
            "eigvals": np.linalg.eigvals, "lu": scipy.linalg.lu,
            "lu_factor": scipy.linalg.lu_factor}


NATIVE = {
    "numpy": _native_numpy,
    "torch": lambda: {
        "qr": torch.linalg.qr, "cholesky": torch.linalg.cholesky, "eigh": torch.linalg.eigh,
        "eigvalsh": torch.linalg.eigvalsh, "svd": torch.linalg.svd,
        "svdvals": torch.linalg.svdvals, "eig": torch.linalg.eig,
        # eigvals computes the eigenvectors its rules need: torch.linalg.eig's outcome (it
        # raises on non-finite input, where torch.linalg.eigvals returns values)
        "eigvals": torch.linalg.eig, "lu": torch.linalg.lu,
        "lu_factor": lambda a: torch.linalg.lu_factor_ex(a)[:2], "geqrf": torch.geqrf},
    "jax": lambda: {
        "qr": jnp.linalg.qr, "cholesky": jnp.linalg.cholesky, "eigh": jnp.linalg.eigh,
        "eigvalsh": jnp.linalg.eigvalsh, "svd": jnp.linalg.svd, "svdvals": jnp.linalg.svdvals,
        "eig": jnp.linalg.eig, "eigvals": jnp.linalg.eigvals,
        "lu": jax.vmap(jax.scipy.linalg.lu),  # (it takes one matrix)
        "lu_factor": jax.scipy.linalg.lu_factor},
}
FORWARD_OPS = sorted(_native_numpy())


def _outcome(call, back):
    """What a call does: the exception class it raises, or whether its outputs hold NaN."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outputs = as_tuple(call())
    except Exception as error:  # the outcome compared, whatever it is
        return type(error).__name__
    return any(np.isnan(back(y)).any() for y in outputs
               if np.issubdtype(back(y).dtype, np.inexact))


def _with_nan(dtype):
    a = _hermitian_batch(False) + 2 * np.eye(4)
    a[1, 2, 1] = a[1, 1, 2] = np.nan
    return a.astype(dtype)


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"], indirect=True)
@pytest.mark.parametrize("op", FORWARD_OPS)
def test_non_finite_input_is_treated_as_the_framework_treats_it(backend, op):
    """Raises where the framework's own function raises, NaN where it returns NaN."""
    native = NATIVE[backend.name]().get(op)
    if native is None:
        pytest.skip(f"{backend.name} has no {op} of its own to compare with")
    a = backend.to(_with_nan(np.float64))
    assert _outcome(lambda: backend.op(op)(a), backend.back) == \
        _outcome(lambda: native(a), backend.back)


SINGLE_INPUT_OPS = sorted({c.op for c in CASES} | {"lu", "lu_factor"})


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
@pytest.mark.parametrize("op", SINGLE_INPUT_OPS)
def test_integer_input_is_promoted_where_the_framework_promotes_it(backend, op):
    """numpy.linalg and CuPy take integers as float64; jax.numpy.linalg as float32 up to 32
    bits and float64 for 64-bit ones (with x64 on); torch.linalg refuses them, and so does the
    torch backend."""
    for width in (np.int32, np.int64):
        ints = np.array([[4, 1, 0], [1, 3, 1], [0, 1, 2]], dtype=width)
        if backend.name == "torch":
            with pytest.raises(TypeError, match=rf"^{op}: A must be float32, float64, "
                                                rf"complex64 or complex128, got "
                                                rf"torch\.{np.dtype(width).name}$"):
                backend.op(op)(backend.to(ints))
            continue
        single = backend.name == "jax" and width == np.int32
        got = as_tuple(backend.op(op)(backend.to(ints)))
        want = as_tuple(backend.op(op)(backend.to(ints.astype(
            np.float32 if single else np.float64))))
        for y, z in zip(got, want):
            assert backend.back(y).dtype == backend.back(z).dtype
            assert np.array_equal(backend.back(y), backend.back(z))


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
@pytest.mark.parametrize("op", SINGLE_INPUT_OPS)
def test_half_precision_input_is_refused_as_the_framework_refuses_it(backend, op):
    """float16 (and bfloat16 where the framework has it) is refused with the operation's
    name: NotImplementedError in JAX, as jax.numpy.linalg ("Unsupported dtype float16"),
    TypeError elsewhere (numpy.linalg's)."""
    a = np.array([[4, 1, 0], [1, 3, 1], [0, 1, 2]], dtype=np.float16)
    halves = [("float16", backend.to(a))]
    if backend.name == "jax":
        halves.append(("bfloat16", jax.numpy.asarray(a, jax.numpy.bfloat16)))
    if backend.name == "torch":
        halves.append(("bfloat16", backend.to(a).to(torch.bfloat16)))
    error = NotImplementedError if backend.name == "jax" else TypeError
    for name, x in halves:
        with pytest.raises(error, match=rf"^{op}: A must be float32, float64, complex64 or "
                                        rf"complex128, got (torch\.)?{name}$"):
            backend.op(op)(x)


# -- the page: docs/degenerate-inputs.md is these cases' table --------------------------------
_HEADER = """<!-- Written by `python tests/test_degenerate.py` from the cases that tests/test_degenerate.py checks. Do not edit; rewrite. -->

# Degenerate inputs

One policy, in every backend and for every operation; each cell below is a case of
tests/test_degenerate.py, which checks it (float32 and complex128, complex64 and complex128 for
the gauge, float64 and complex128 where a loss is compared with finite differences), in a batch
of three matrices whose middle one is degenerate: the other two keep their own results.

- **Forward passes** behave like the framework's own operation.
- **Where a derivative does not exist**, an *eager* JVP or pullback raises `ValueError`
  naming the operation, the condition and the switch that turns the check off; *traced* code
  returns NaN for the matrices concerned, never a finite number, and no host synchronisation
  is needed to do so.  With the switch off the rule computes what it computes.
- **Losses invariant at a tie** keep their finite, correct derivative.

Eager: NumPy and CuPy always; torch's `backward()`, forward-mode AD and `<op>_jvp` / `<op>_vjp`
on plain tensors; JAX's `<op>_jvp` / `<op>_vjp` on concrete arrays.  Traced: `torch.func`
(`grad`, `vmap`, `jvp`) and `torch.compile`; in JAX `jax.grad` (which transposes the JVP),
`jax.jit`, `jax.vmap`, and `jax.jvp` under `jit`, where a failed check is also a
`checkify.debug_check`: `checkify.checkify(jax.grad(loss))` reports it, at no cost otherwise.
The errors of
eigvalsh, eigvals and svdvals under torch's and JAX's differentiation name eigh, eig and svd,
as which those frameworks differentiate them.

The conditions, the same in every backend (`eps` of the dtype, `A` the m x n input):

| kind | the derivative does not exist where | switch |
|---|---|---|
| pivots | a value the rules divide by is at most `max(m, n) eps norm(A, 'fro')` | `check_singular` |
| pivots with conditions (svd's S) | a value the rules divide by is zero (as for pivots) and a column of a tangent or cotangent matrix of the spec that it divides is above `sqrt(eps)` times the largest tangent or cotangent entry | `check_singular` |
| ties | values `i != j` with `abs(v_i - v_j) <= k eps max(abs(v))` (k values) tie, and a tangent or cotangent matrix of the spec is not scalar on a block of tied values, by more than `sqrt(eps)` times its largest entry | `check_ties` |
| gauge | a cotangent condition of the spec's gauge is above `sqrt(eps)` times the largest cotangent entry | `check_gauge` |

What the checks cost: `python cli.py bench-checks` times every benchmark row with them on
and off, in one process.  A check reads what the rule computes where it can (eigh's Q^H dA Q
in the JVP); what it needs beyond that is computed only when it can fail.  A check of ties or
of zero pivots reads its values on the tied or zero values alone, so at an input with none
its products are not computed: eager code tests for them first, and traced JAX code computes
the products under `lax.cond` on a CPU, where XLA runs one branch (tests/test_check_cost.py);
the measure of the check (its mask, the largest entries it compares with) is under the same
conditional.  Whether any value ties is read from the gaps between shifted copies of a column
of at most 16 values (no k x k mask: a batch of 3 x 3 matrices pays for 2 gaps a matrix, not
9 entries); of a longer column, from the gaps between its sorted values, or between the
sorted projections of complex values onto a line (a tie's are close; eig's 128 eigenvalues
in torch: 39 us, not the 176 us of their 128 x 128 mask).  A gauge check whose values are imaginary parts of values in the input's field
(svd's and eigh's) is left out for a real input, where they are zero.  A pivots check reads
primal values alone: JAX takes its verdict in the forward pass, and the pullback (JAX's
transposition of the JVP) only applies it, measuring neither `norm(A, 'fro')` nor the pivots.
On a GPU traced code computes them always, as a conditional there reads its predicate on the
host, and so it does where JAX has several CPU devices, over which a batch may be sharded (a
predicate on the whole batch would need a collective: tests/test_jax_sharding.py).

Measured on a 2-core CPU (`python cli.py bench-checks eigh svd eigvalsh svdvals eig eigvals
--repeats 7`: 76 rows, each the median of 7 interleaved runs; a VJP row times the backward pass
alone, as `cli.py bench` does), checked / unchecked is 1.11 at the median.  The rows that cost
more are VJPs, whose backward pass alone is small beside the checks' passes over their values:
batches of 8 x 8 matrices (1.3 to 1.6 in torch and JAX, 2.0 for JAX's svdvals), where the
masks and the checks' reductions are elementwise passes of the size of the rule's own work;
the eigenvalue and singular-value VJPs at 256 to 1024 (1.2 to 1.45), where a check reads an
array the size of A (the zero pivots' limit is ||A||_F) beside a rule of one or two
products; and svd with `full_matrices=True` of a tall or wide matrix (k = min(m, n); 1.8 in
torch, 2.1 in JAX at 512 x 128): the gauge check of the completion reads
`U[:, k:]^H gU[:, k:]` (or `Vh[k:, :] gVh[k:, :]^H`), (m - k)^2 m multiply-adds that the rule
itself never needs (its products cost about m^2 k); `check_gauge=False` removes it.

"""


def _derivative_rows():
    rows = []
    for case in CASES:
        where = "JVP and VJP" if case.jvp_checked else "VJP"
        condition = case.condition.split(": ", 1)[1]
        call = case.op + "".join(f"({k}={v})" for k, v in case.options)
        eager, traced = f"ValueError ({where})", "NaN"
        rows.append((call, condition, f"`{case.option}`", eager, eager, eager, traced, eager,
                     traced))
    for case in INVARIANT:
        call = case.op + "".join(f"({k}={v})" for k, v in case.options)
        rows.append((call, case.condition, "", *["finite, = finite differences"] * 6))
    return rows


def _forward_rows():
    ops = ", ".join(FORWARD_OPS)
    return [
        ("lu, lu_factor", "an exactly singular matrix (in a batch)",
         *["its factors, per matrix"] * 4),
        (ops, "a NaN entry", "as numpy.linalg / SciPy", "not compared (CuPy needs a GPU)",
         "as torch.linalg (eigvals: as torch.linalg.eig, whose eigenvectors its rules need)",
         "as jax.numpy.linalg / jax.scipy.linalg"),
        (", ".join(SINGLE_INPUT_OPS), "integer input", "promoted to float64",
         "promoted to float64", "TypeError, as torch.linalg",
         "promoted as jax.numpy.linalg: float32 up to 32 bits, float64 for 64-bit (x64 on)"),
        (", ".join(SINGLE_INPUT_OPS), "float16 or bfloat16 input", "TypeError",
         "TypeError", "TypeError", "NotImplementedError, as jax.numpy.linalg"),
    ]


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def render_page() -> str:
    derivative = _table(("operation", "condition", "switch", "numpy", "cupy", "torch eager",
                         "torch traced", "jax eager", "jax traced"), _derivative_rows())
    forward = _table(("operation", "input", "numpy", "cupy", "torch", "jax"), _forward_rows())
    return (_HEADER + "## Derivatives\n\n" + derivative + "\n## Forward passes\n\n" + forward)


def test_the_page_is_the_table_of_these_cases():
    assert PAGE.read_text(encoding="utf-8") == render_page(), \
        "docs/degenerate-inputs.md is stale: run `python tests/test_degenerate.py`"


if __name__ == "__main__":
    PAGE.write_text(render_page(), encoding="utf-8")
    print(f"wrote {PAGE.relative_to(ROOT)}")
