"""generated.numpy.sparse_qr_r: R of SuiteSparseQR's sparse QR, its ordering, its sign convention,
and its JVP and VJP (gA on exactly A's pattern) against dense QR and finite differences."""
from __future__ import annotations

import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

import run
from generated import numpy as gn
from generated.numpy import sparse_qr as sqr
from factorules.compiler.paths import ROOT

SHAPES = [(30, 8), (50, 12), (10, 10)]
ORDERINGS = ["default", "natural"]
DTYPES = [np.float64, np.complex128]


def _ids(dtype):
    return np.dtype(dtype).name


def random_sparse(m, n, dtype=np.float64, density=0.3, seed=0, fmt="csr"):
    """Random pattern at `density` plus a diagonal (full column rank), canonical."""
    rng = np.random.default_rng(seed)
    a = sp.random_array((m, n), density=density, rng=rng, format="coo")
    data = rng.standard_normal(a.nnz)
    if np.dtype(dtype).kind == "c":
        data = data + 1j * rng.standard_normal(a.nnz)
    a = sp.coo_array((data.astype(dtype), (a.row, a.col)), shape=(m, n))
    a = (a + 3.0 * sp.eye_array(m, n, dtype=dtype)).tocsr()
    a.sum_duplicates()
    return a.asformat(fmt)


def random_like(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


def dense_positive_r(a):
    """numpy.linalg.qr's R of a dense matrix, rows scaled to a positive real diagonal."""
    r = np.linalg.qr(a, mode="r")
    d = np.diagonal(r)
    return (np.conj(d) / np.abs(d))[:, None] * r


def rel(x, y):
    return np.linalg.norm(np.asarray(x) - np.asarray(y)) / np.linalg.norm(np.asarray(y))


def loss_of(a, w, ordering):
    """sum(Re(conj(W) * R)) of the returned R, as a dense matrix."""
    return float(np.sum(np.real(np.conj(w) * gn.sparse_qr_r(a, ordering=ordering).R.toarray())))


def finite_difference_gradient(a, w, ordering, h=1e-6):
    """Central differences of the loss in each stored value of a (real and imaginary parts),
    as the PyTorch-convention gradient d/dRe + i d/dIm, aligned with a.data."""
    units = (1.0, 1j) if a.dtype.kind == "c" else (1.0,)
    grad = np.zeros(a.nnz, dtype=a.dtype)
    for k in range(a.nnz):
        for unit in units:
            plus, minus = a.copy(), a.copy()
            plus.data[k] += h * unit
            minus.data[k] -= h * unit
            grad[k] += unit * (loss_of(plus, w, ordering) - loss_of(minus, w, ordering)) / (2 * h)
    return grad


# ---------------------------------------------------------------------------------------------
# the primal: R, E, the sign convention


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=_ids)
@pytest.mark.parametrize("ordering", ORDERINGS + ["colamd", "amd", "metis", "best"])
def test_r_is_dense_qr_of_the_permuted_columns_with_a_positive_diagonal(shape, dtype, ordering):
    a = random_sparse(*shape, dtype=dtype, seed=1)
    r, e = gn.sparse_qr_r(a, ordering=ordering)
    m, n = shape
    assert sp.issparse(r) and r.format == "csr" and r.shape == (n, n) and r.dtype == dtype
    assert e.dtype == np.int64 and sorted(e.tolist()) == list(range(n))
    if ordering == "natural":
        assert e.tolist() == list(range(n))
    rd = r.toarray()
    assert np.array_equal(rd, np.triu(rd))
    assert np.all(np.real(np.diagonal(rd)) > 0) and np.all(np.imag(np.diagonal(rd)) == 0)
    ae = a.toarray()[:, e]
    assert rel(rd, dense_positive_r(ae)) < 1e-12
    q = np.linalg.solve(rd.T, ae.T).T                       # Q = A[:, E] R^-1, small sizes only
    assert np.linalg.norm(q.conj().T @ q - np.eye(n)) < 1e-12
    assert rel(q @ rd, ae) < 1e-12
    assert rel(rd.conj().T @ rd, ae.conj().T @ ae) < 1e-12  # R^H R = E^T A^H A E


def test_default_ordering_reduces_fill_where_the_natural_one_fills_in():
    """An arrow matrix: a dense first column fills R completely unless it goes last."""
    m, n = 40, 12
    a = sp.lil_array((m, n))
    a[:, 0] = 1.0
    for k in range(n):
        a[k, k] = 4.0 + k
    a = a.tocsr()
    natural = gn.sparse_qr_r(a, ordering="natural")
    default = gn.sparse_qr_r(a)
    assert natural.E.tolist() == list(range(n))
    assert natural.R.nnz == n * (n + 1) // 2
    assert default.E[-1] == 0
    assert default.R.nnz < 3 * n
    assert rel(default.R.toarray(), dense_positive_r(a.toarray()[:, default.E])) < 1e-12


def test_singleton_pivots_are_made_positive_real():
    """SuiteSparseQR keeps a singleton column's own entry as pivot (here -2 and 3 - 4j); the R
    returned has |pivot| on the diagonal and the rest of that row scaled alike."""
    a = sp.csr_array(np.array([[-2.0, 1.0, 0.0],
                               [0.0, 3 - 4j, 1.0],
                               [0.0, 0.0, 1.0],
                               [0.0, 0.0, 1.0]], dtype=np.complex128))
    r, e = gn.sparse_qr_r(a, ordering="natural")
    rd = r.toarray()
    np.testing.assert_array_equal(np.diagonal(rd)[:2], [2.0, 5.0])
    assert rd[0, 1] == -1.0                                   # row 0 scaled by conj(-2)/2 = -1
    assert abs(rd[1, 2] - (3 + 4j) / 5) < 1e-15              # row 1 scaled by (3 + 4j)/5
    assert rel(rd, dense_positive_r(a.toarray())) < 1e-12


def test_r_and_gradients_are_arrays_or_matrices_like_a():
    a = random_sparse(20, 5, seed=2)
    for container, fmt, grad_fmt in [(sp.csr_array, "csr", "csr"), (sp.csc_array, "csc", "csc"),
                                     (sp.coo_array, "coo", "csr"), (sp.csr_matrix, "csr", "csr"),
                                     (sp.csc_matrix, "csc", "csc"), (sp.coo_matrix, "coo", "csr")]:
        x = container(a)
        assert x.format == fmt
        (r, e), pullback = gn.sparse_qr_r_vjp(x)
        g = pullback(np.ones((5, 5)))
        is_array = isinstance(x, sp.sparray)
        assert isinstance(r, sp.sparray) == is_array and r.format == "csr"
        assert isinstance(g, sp.sparray) == is_array and g.format == grad_fmt
        assert rel(r.toarray(), gn.sparse_qr_r(a).R.toarray()) == 0


def test_zero_columns_give_an_empty_r_and_an_empty_gradient():
    for shape in [(5, 0), (0, 0)]:
        a = sp.csr_array(shape, dtype=np.float64)
        (r, e), pullback = gn.sparse_qr_r_vjp(a)
        assert r.shape == (0, 0) and r.nnz == 0 and r.dtype == np.float64
        assert e.shape == (0,) and e.dtype == np.int64
        g = pullback(np.zeros((0, 0)))
        assert g.shape == shape and g.nnz == 0
        (_, _), (dr, de) = gn.sparse_qr_r_jvp(a, a.copy())
        assert dr.shape == (0, 0) and de is None


# ---------------------------------------------------------------------------------------------
# derivatives


@pytest.mark.parametrize("shape", SHAPES[:2], ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=_ids)
@pytest.mark.parametrize("ordering", ORDERINGS)
def test_vjp_is_the_finite_difference_gradient_on_the_pattern(shape, dtype, ordering):
    a = random_sparse(*shape, dtype=dtype, seed=3)
    n = shape[1]
    w = random_like((n, n), dtype, seed=4)
    (r, e), pullback = gn.sparse_qr_r_vjp(a, ordering=ordering)
    ga = pullback(w)
    fd = finite_difference_gradient(a, w, ordering)
    assert np.abs(ga.data - fd).max() < 1e-6 * np.abs(fd).max()
    assert np.abs(fd).max() > 0.1


@pytest.mark.parametrize("dtype", DTYPES, ids=_ids)
@pytest.mark.parametrize("ordering", ORDERINGS)
def test_gradient_has_exactly_the_pattern_of_a(dtype, ordering):
    """Same indptr and indices as A made canonical: duplicates summed, explicit zeros kept."""
    a = random_sparse(30, 8, dtype=dtype, seed=5)
    i, j = np.argwhere(a.toarray() == 0)[7]                  # not stored in a
    coo = a.tocoo()
    row = np.concatenate([coo.row, [0, i]])                  # a duplicate of the stored (0, 0)
    col = np.concatenate([coo.col, [0, j]])                  # and an explicit zero at (i, j)
    data = np.concatenate([coo.data, np.array([1.0, 0.0], dtype=dtype)])
    raw = sp.coo_array((data, (row, col)), shape=a.shape)
    canonical = raw.tocsr()
    canonical.sum_duplicates()
    assert canonical.nnz == a.nnz + 1 and canonical[i, j] == 0
    w = random_like((8, 8), dtype, seed=6)
    grads = []
    for x in (raw, canonical, canonical.tocsc()):
        (_, _), pullback = gn.sparse_qr_r_vjp(x, ordering=ordering)
        g = pullback(w)
        grads.append(g)
        g = g.tocsr()
        np.testing.assert_array_equal(g.indptr, canonical.indptr)
        np.testing.assert_array_equal(g.indices, canonical.indices)
        assert g.nnz == canonical.nnz and g.dtype == dtype
    assert grads[2].format == "csc" and grads[2].nnz == canonical.nnz
    assert grads[0][i, j] != 0                               # the explicit zero has a gradient
    assert np.array_equal((grads[0].toarray() != 0), (raw.toarray() != 0) | (np.arange(30)[:, None] == i) & (np.arange(8) == j))


@pytest.mark.parametrize("dtype", DTYPES, ids=_ids)
def test_vjp_drops_the_dense_gradient_outside_the_pattern(dtype):
    """gA is A (E G E^T) at A's entries: compared with the dense formula and its projection."""
    a = random_sparse(25, 7, dtype=dtype, seed=7)
    w = random_like((7, 7), dtype, seed=8)
    (r, e), pullback = gn.sparse_qr_r_vjp(a)
    rd, ad = r.toarray(), a.toarray()
    q = np.linalg.solve(rd.T, ad[:, e].T).T
    m_ = rd @ np.triu(w).conj().T
    c = np.tril(m_, -1) + np.tril(m_, -1).conj().T + np.diag(np.real(np.diagonal(m_)))
    dense = np.zeros_like(ad)
    dense[:, e] = np.linalg.solve(rd.conj(), (q @ c).T).T      # Q copyltu(M) R^-H, unpermuted
    mask = ad != 0
    assert np.count_nonzero(dense[~mask]) > 0                  # the projection drops something
    g = pullback(w).toarray()
    assert np.all(g[~mask] == 0)
    assert rel(g[mask], dense[mask]) < 1e-12


@pytest.mark.parametrize("shape", SHAPES[:2], ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=_ids)
@pytest.mark.parametrize("ordering", ORDERINGS)
def test_jvp_is_the_finite_difference_of_r_and_the_adjoint_of_the_vjp(shape, dtype, ordering):
    a = random_sparse(*shape, dtype=dtype, seed=9)
    da = a.copy()
    da.data = random_like(a.nnz, dtype, seed=10)
    (r, e), (dr, de) = gn.sparse_qr_r_jvp(a, da, ordering=ordering)
    assert de is None and isinstance(dr, np.ndarray) and dr.dtype == dtype
    assert np.array_equal(dr, np.triu(dr))
    h = 1e-6
    fd = (gn.sparse_qr_r(a + h * da, ordering=ordering).R.toarray()
          - gn.sparse_qr_r(a - h * da, ordering=ordering).R.toarray()) / (2 * h)
    assert np.abs(dr - fd).max() < 1e-6 * np.abs(fd).max()
    w = random_like(r.shape, dtype, seed=11)
    (_, _), pullback = gn.sparse_qr_r_vjp(a, ordering=ordering)
    ga = pullback(w)
    lhs = np.real(np.vdot(ga.tocsr().data, da.data))            # Re<gA, dA>
    rhs = np.real(np.vdot(w, dr))                              # Re<gR, dR>
    assert abs(lhs - rhs) < 1e-12 * abs(rhs)


def test_cotangent_forms_none_sparse_lower_triangle_and_ge():
    a = random_sparse(30, 8, seed=12)
    w = random_like((8, 8), np.float64, seed=13)
    (r, e), pullback = gn.sparse_qr_r_vjp(a)
    g = pullback(w)
    assert np.array_equal(pullback(np.triu(w)).data, g.data)       # R's lower triangle is 0
    assert np.array_equal(pullback(sp.csr_array(w)).data, g.data)  # a sparse gR
    assert np.array_equal(pullback(w, e[::-1]).data, g.data)       # gE is ignored
    zero = pullback()
    assert zero.nnz == a.nnz and not np.any(zero.data)
    assert np.array_equal(zero.indices, a.indices)


def test_pullback_blocks_give_the_same_gradient(monkeypatch):
    """Blocks of 1, 5 and 1 << 15 products per block, rows with no entry, a row over budget."""
    a = random_sparse(40, 9, seed=14).tolil()
    a[[11, 12, 30], :] = 0                                    # rows with no entry
    a[20, :] = 2.0                                            # 81 products: over 1 and 5
    a = a.tocsr()
    a.eliminate_zeros()
    assert np.all(np.diff(a.indptr)[[11, 12, 30]] == 0) and np.diff(a.indptr)[20] == 9
    w = random_like((9, 9), np.float64, seed=15)
    grads = []
    for block in (1, 5, 1 << 15):
        monkeypatch.setattr(sqr, "_PAIRS_PER_BLOCK", block)
        (_, _), pullback = gn.sparse_qr_r_vjp(a)
        grads.append(pullback(w).data)
    assert np.array_equal(grads[0], grads[1]) and np.array_equal(grads[0], grads[2])
    fd = finite_difference_gradient(a, w, "default")
    assert np.abs(grads[0] - fd).max() < 1e-6 * np.abs(fd).max()


def test_pullback_allocates_nothing_of_size_m_by_n():
    """m = 200000, n = 50, about two entries a row: a dense m x n float64 array is 80 MB."""
    m, n = 200_000, 50
    rng = np.random.default_rng(16)
    rows = np.concatenate([np.arange(m), np.arange(m)])
    cols = np.concatenate([np.arange(m) % n, rng.integers(0, n, m)])
    a = sp.csr_array((rng.standard_normal(2 * m), (rows, cols)), shape=(m, n))
    a.sum_duplicates()
    (r, e), pullback = gn.sparse_qr_r_vjp(a)
    w = random_like((n, n), np.float64, seed=17)
    tracemalloc.start()
    try:
        g = pullback(w)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert g.nnz == a.nnz
    assert peak < m * n * 8 / 5, f"peak {peak / 1e6:.1f} MB"
    rows_checked = rng.choice(m, 50, replace=False)           # spot check against A (E G E^T)
    rd = r.toarray()
    m_ = rd @ np.triu(w).T
    c = np.tril(m_, -1) + np.tril(m_, -1).T + np.diag(np.diagonal(m_))
    gram = np.linalg.solve(rd, np.linalg.solve(rd, c).T)
    hmat = np.empty_like(gram)
    hmat[np.ix_(e, e)] = gram
    want = a[rows_checked].toarray() @ hmat
    got = g[rows_checked].toarray()
    mask = a[rows_checked].toarray() != 0
    assert rel(got[mask], want[mask]) < 1e-12 and np.all(got[~mask] == 0)


# ---------------------------------------------------------------------------------------------
# errors


def test_errors_are_pinned():
    good = random_sparse(6, 3, seed=18)
    with pytest.raises(TypeError, match=r"^sparse_qr_r: A must be a SciPy sparse matrix or "
                                        r"array, got ndarray$"):
        gn.sparse_qr_r(good.toarray())
    with pytest.raises(TypeError, match=r"^sparse_qr_r: A must be float64 or complex128, "
                                        r"got float32$"):
        gn.sparse_qr_r(good.astype(np.float32))
    with pytest.raises(TypeError, match=r"^sparse_qr_r: A must be float64 or complex128, "
                                        r"got int64$"):
        gn.sparse_qr_r(sp.csr_array(np.eye(4, 3, dtype=np.int64)))
    with pytest.raises(ValueError, match=r"^sparse_qr_r: A must have at least as many rows as "
                                         r"columns \(m >= n\), got shape \(3, 6\)$"):
        gn.sparse_qr_r(good.T)
    with pytest.raises(ValueError, match=r"^sparse_qr_r: ordering must be one of \['default', "
                                         r"'natural', 'colamd', 'amd', 'metis', 'best'\], "
                                         r"got 'fixed'$"):
        gn.sparse_qr_r(good, ordering="fixed")
    nan = good.copy()
    nan.data[0] = np.nan
    with pytest.raises(ValueError, match=r"^sparse_qr_r: A has a non-finite entry$"):
        gn.sparse_qr_r(nan)


@pytest.mark.parametrize("ordering", ORDERINGS)
@pytest.mark.parametrize("case", ["repeated column", "zero column", "combination"])
def test_rank_deficient_input_is_refused(case, ordering):
    a = random_sparse(20, 6, seed=19).toarray()
    if case == "repeated column":
        a[:, 4] = a[:, 1]
    elif case == "zero column":
        a[:, 2] = 0
    else:
        a[:, 5] = 0.5 * a[:, 0] - 2.0 * a[:, 3]
    for fn in (gn.sparse_qr_r, gn.sparse_qr_r_vjp):
        with pytest.raises(ValueError, match=r"^sparse_qr_r(_vjp)?: A must have full column "
                                             r"rank: \|R\[\d+, \d+\]\| = "):
            fn(sp.csr_array(a), ordering=ordering)


def test_tangent_and_cotangent_errors_are_pinned():
    a = random_sparse(6, 3, seed=20)
    with pytest.raises(TypeError, match=r"^sparse_qr_r_jvp: dA must be a SciPy sparse matrix or "
                                        r"array, got ndarray$"):
        gn.sparse_qr_r_jvp(a, a.toarray())
    with pytest.raises(ValueError, match=r"^sparse_qr_r_jvp: dA has shape \(6, 2\), expected "
                                         r"\(6, 3\)$"):
        gn.sparse_qr_r_jvp(a, a[:, :2])
    with pytest.raises(TypeError, match=r"^sparse_qr_r_jvp: dA has dtype complex128, expected "
                                        r"float64$"):
        gn.sparse_qr_r_jvp(a, a.astype(np.complex128))
    (_, _), pullback = gn.sparse_qr_r_vjp(a)
    with pytest.raises(ValueError, match=r"^sparse_qr_r_vjp: gR has shape \(3, 4\), expected "
                                         r"\(3, 3\)$"):
        pullback(np.zeros((3, 4)))
    with pytest.raises(TypeError, match=r"^sparse_qr_r_vjp: gR has dtype complex128, expected "
                                        r"float64$"):
        pullback(np.zeros((3, 3), dtype=np.complex128))


def test_generated_numpy_imports_without_sparseqr_and_says_what_is_missing():
    code = ("import sys; sys.modules['sparseqr'] = None\n"
            "import scipy.sparse as sp\n"
            "from generated import numpy as gn\n"
            "print(gn.qr.__name__)\n"
            "try:\n"
            "    gn.sparse_qr_r(sp.eye_array(3))\n"
            "except ImportError as exc:\n"
            "    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "qr",
        "sparse_qr_r needs the sparseqr package (SuiteSparseQR's Python binding, pinned in "
        "requirements.txt; it builds against Debian's libsuitesparse-dev)"]


def test_sparseqr_is_installed():
    import sparseqr

    assert sparseqr.__version__ == "1.6.0"


# ---------------------------------------------------------------------------------------------
# run.py installs SuiteSparseQR's header


def test_run_py_does_nothing_when_the_header_is_there(tmp_path, monkeypatch, capsys):
    header = tmp_path / "SuiteSparseQR_C.h"
    header.write_text("")
    monkeypatch.setattr(run, "SPQR_HEADER", header)
    monkeypatch.setattr(run.subprocess, "run", lambda *a, **k: pytest.fail("ran a command"))
    run.ensure_suitesparse()
    assert capsys.readouterr().out == ""


def test_run_py_names_the_package_when_it_cannot_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(run, "SPQR_HEADER", tmp_path / "SuiteSparseQR_C.h")
    monkeypatch.setattr(run.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit) as exc:
        run.ensure_suitesparse()
    assert str(exc.value) == (
        f"run.py: {tmp_path / 'SuiteSparseQR_C.h'} is missing and apt-get is not available: "
        "install the Debian package libsuitesparse-dev (SuiteSparseQR, which the sparseqr "
        "package in requirements.txt builds against), then rerun")
    monkeypatch.setattr(run.shutil, "which", lambda name: "/usr/bin/apt-get")
    monkeypatch.setattr(run.os, "geteuid", lambda: 1000)
    with pytest.raises(SystemExit, match="not running as root: install the Debian package "
                                         "libsuitesparse-dev"):
        run.ensure_suitesparse()


def test_run_py_installs_the_package_with_apt_get_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(run, "SPQR_HEADER", tmp_path / "SuiteSparseQR_C.h")
    monkeypatch.setattr(run.shutil, "which", lambda name: "/usr/bin/apt-get")
    monkeypatch.setattr(run.os, "geteuid", lambda: 0)
    commands = []

    def fake_run(command, **kwargs):
        commands.append((command, kwargs["env"]["DEBIAN_FRONTEND"]))
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(run.subprocess, "run", fake_run)
    run.ensure_suitesparse()
    assert commands == [
        (["/usr/bin/apt-get", "-q", "update"], "noninteractive"),
        (["/usr/bin/apt-get", "-q", "install", "-y", "--no-install-recommends",
          "libsuitesparse-dev"], "noninteractive")]
    assert capsys.readouterr().out == (
        f"installing libsuitesparse-dev with apt-get ({tmp_path / 'SuiteSparseQR_C.h'} is "
        "missing)\n")
