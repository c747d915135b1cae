"""sparse_qr_r: the R factor of a sparse QR (SuiteSparseQR), with a JVP and a VJP on A's pattern.

Hand-written, not generated from a spec: SuiteSparseQR's R of a sparse A, with the JVP and the
VJP written here (derived below).  ``python cli.py generate`` copies this file, under its header,
into generated/numpy/, beside the NumPy runtime it imports from.

For a SciPy sparse A (m x n, m >= n, full column rank, float64 or complex128),
``sparse_qr_r(A)`` returns ``SparseQRResult(R, E)`` with

    A[:, E] = Q R        (the reduced QR of A with its columns permuted by E)

computed by SuiteSparseQR (Davis, ACM TOMS 38(1), 2011) through the ``sparseqr`` binding, without
ever forming Q. Q = A[:, E] R^-1 is implied, never computed.

Column ordering. SuiteSparseQR permutes A's columns to reduce the fill in R; the permutation is
returned, not hidden: ``E`` is an int64 index vector with ``A[:, E] = Q R``, as the ``P`` of
``scipy.linalg.qr(pivoting=True)``. ``ordering="default"`` is SuiteSparseQR's default choice
(COLAMD, or AMD/METIS when it judges them better); ``"colamd"``, ``"amd"``, ``"metis"`` and
``"best"`` (the best of those three) ask for one; ``"natural"`` keeps A's column order,
``E = arange(n)`` (SPQR_ORDERING_FIXED; SuiteSparseQR's own "natural" ordering still moves singleton
columns first). The ordering depends on A's pattern only, so it is locally constant and has no
derivative: ``E`` gets no tangent and its cotangent is ignored.

Sign convention. SuiteSparseQR's R may have negative (for complex input, complex) diagonal
entries: singleton columns keep A's own entry as pivot. The R returned is normalised to a real,
positive diagonal by scaling row k of SuiteSparseQR's R by conj(R[k, k]) / |R[k, k]| (and storing
|R[k, k]| on the diagonal): that is again a QR of A[:, E], with Q's column k scaled by the
conjugate factor, and it is the unique one with a positive diagonal, the R of
``numpy.linalg.qr(A[:, E])`` after the same row scaling. The JVP and the VJP are those of this R.

R is a SciPy sparse CSR of shape (n, n) (the reduced R, upper triangular), a ``csr_array`` when A is
a sparse array and a ``csr_matrix`` when A is a sparse matrix: the point of a fill-reducing
ordering is that R stays sparse, and R is what a least-squares solve or a log-determinant needs.
Its pattern is SuiteSparseQR's (it may store entries that are numerically zero).

Full column rank is required: SuiteSparseQR is called with no rank-detection tolerance
(SPQR_NO_TOL), so R is the plain Householder QR of A[:, E], and A is refused when
min |R[k, k]| <= max(m, n) * eps * max |R[k, k]|.

Derivatives (PyTorch's complex convention: Re<gA, dA> = Re<gR, dR>, <X, Y> = sum conj(X) Y):

    VJP  [LLWX2019] eq. (7) with gQ = 0, for A E = Q R:
             (gA_dense) E = Q copyltu(M) R^-H,   M = R gR^H,
             copyltu(M) = tril(M, -1) + tril(M, -1)^H + diag(Re diag M),
         and with Q = A E R^-1:
             gA_dense = A (E G E^T),   G = R^-1 copyltu(M) R^-H   (n x n, Hermitian),
         evaluated only at A's stored entries: gA[i, j] = sum_l A[i, l] (E G E^T)[l, j] for every
         stored (i, j); entries of gA_dense outside A's pattern are dropped (the gradient of a loss
         of A's stored values). Neither Q nor any m x n dense array is formed.
         (The diagonal of copyltu keeps Re diag M only: R's diagonal is real, so Im diag M pairs
         with no tangent; for real input this is tril(M) + tril(M, -1)^T.)
    JVP  [WLL2012] Sec. 3: dR = U R with
             B = Q^H dA E R^-1 = R^-H E^T (A^H dA) E R^-1,
             U = triu(B + B^H, 1) + diag(Re diag B).

Cost: the factorization is SuiteSparseQR's. The pullback costs two dense n x n triangular solves
(O(n^3)) plus sum_i r_i^2 multiply-adds over A's rows (r_i stored entries in row i; at most
nnz(A) * n), in blocks of rows with at most _PAIRS_PER_BLOCK products each: memory O(n^2 + nnz(A)).
The dense n x n work arrays make the rules suited to tall-skinny A (n up to a few thousand).

References:
    [D2011] T. A. Davis, "Algorithm 915, SuiteSparseQR: Multifrontal multithreaded rank-revealing
        sparse QR factorization", ACM Trans. Math. Softw. 38(1), 8:1-8:22 (2011).
    [LLWX2019] H.-J. Liao, J.-G. Liu, L. Wang, T. Xiang, "Differentiable programming tensor
        networks", Phys. Rev. X 9, 031041 (2019), eq. (7): gA = [gQ + Q copyltu(M)] R^-H with
        M = R gR^H - gQ^H Q.
    [WLL2012] S. F. Walter, L. Lehmann, R. Lamour, "On evaluating higher-order derivatives of the
        QR decomposition of tall matrices with full column rank in forward and reverse mode
        algorithmic differentiation", Optim. Methods Softw. 27(2), 391-403 (2012), Sec. 3.

The sparseqr binding keeps one CHOLMOD workspace per process: do not call these functions from
several threads at once.
"""
import collections as _collections

import numpy as _np
import scipy.linalg as _sla
import scipy.sparse as _sparse

from ._runtime import _adjoint, _copyltu

SparseQRResult = _collections.namedtuple("SparseQRResult", ["R", "E"])

ORDERINGS = ("default", "natural", "colamd", "amd", "metis", "best")
_SPQR_ORDERING = {
    "default": "SPQR_ORDERING_DEFAULT",
    "natural": "SPQR_ORDERING_FIXED",
    "colamd": "SPQR_ORDERING_COLAMD",
    "amd": "SPQR_ORDERING_AMD",
    "metis": "SPQR_ORDERING_METIS",
    "best": "SPQR_ORDERING_BEST",
}
_DTYPES = (_np.dtype(_np.float64), _np.dtype(_np.complex128))
# Products A[i, l] * H[l, j] evaluated per block of rows in the pullback (bounds its memory).
_PAIRS_PER_BLOCK = 1 << 15


def _binding():
    """The sparseqr binding's module, imported on first use (generated.numpy works without it)."""
    try:
        from sparseqr import sparseqr as module
    except ImportError as exc:
        raise ImportError(
            "sparse_qr_r needs the sparseqr package (SuiteSparseQR's Python binding, pinned in "
            "requirements.txt; it builds against Debian's libsuitesparse-dev)") from exc
    return module


def _check_matrix(op, name, A):
    if not _sparse.issparse(A):
        raise TypeError(f"{op}: {name} must be a SciPy sparse matrix or array, "
                        f"got {type(A).__name__}")
    if A.ndim != 2:
        raise ValueError(f"{op}: {name} must be 2-D, got shape {A.shape}")
    if A.dtype not in _DTYPES:
        raise TypeError(f"{op}: {name} must be float64 or complex128, got {A.dtype}")


def _canonical(A):
    """A copy of A in CSR with duplicates summed and sorted indices; explicit zeros are kept."""
    csr = _sparse.csr_array(A, copy=True)
    csr.sum_duplicates()
    return csr


def _like(A, csr, formats=("csr", "csc")):
    """csr (a csr_array) as a sparse array or matrix like A, in A's format when in formats."""
    if not isinstance(A, _sparse.sparray):
        csr = _sparse.csr_matrix(csr)
    return csr.asformat(A.format if A.format in formats else "csr")


def _check_ordering(op, ordering):
    if not (isinstance(ordering, str) and ordering in ORDERINGS):
        raise ValueError(f"{op}: ordering must be one of {list(ORDERINGS)}, got {ordering!r}")


def _factor(op, A, ordering):
    """(A canonical CSR, R canonical CSR with a positive real diagonal, E) for A[:, E] = Q R."""
    _check_matrix(op, "A", A)
    _check_ordering(op, ordering)
    m, n = A.shape
    if m < n:
        raise ValueError(f"{op}: A must have at least as many rows as columns (m >= n), "
                         f"got shape {A.shape}")
    a = _canonical(A)
    if not _np.isfinite(a.data).all():
        raise ValueError(f"{op}: A has a non-finite entry")
    if n == 0:
        return a, _sparse.csr_array((0, 0), dtype=A.dtype), _np.zeros(0, dtype=_np.int64)
    r, e = _spqr_r(a, ordering)
    d = r.diagonal()
    size = _np.abs(d)
    bound = max(m, n) * _np.finfo(_np.float64).eps * size.max()
    k = int(_np.argmin(size))
    if not size[k] > bound:
        raise ValueError(f"{op}: A must have full column rank: |R[{k}, {k}]| = {size[k]:.3g} "
                         f"<= max(m, n) * eps * max|diag(R)| = {bound:.3g} (ordering "
                         f"{ordering!r})")
    # Row k times conj(d_k) / |d_k|: the QR with a positive real diagonal.
    rows = _np.repeat(_np.arange(n), _np.diff(r.indptr))
    r.data *= (_np.conj(d) / size)[rows]
    on_diagonal = r.indices == rows
    r.data[on_diagonal] = size[rows[on_diagonal]]
    return a, r, e


def _spqr_r(a, ordering):
    """SuiteSparseQR's R (canonical CSR, n x n) and column permutation E of the CSR matrix a."""
    spqr = _binding()
    ffi, lib, cc = spqr.ffi, spqr.lib, spqr.cc
    n = a.shape[1]
    chol_a = spqr.scipy2cholmodsparse(a)
    chol_r = ffi.new("cholmod_sparse**")
    chol_e = ffi.new("SuiteSparse_long**")
    try:
        # Z, B, H, HPinv and HTau not requested: R and E only, Q never formed.
        status = lib.SuiteSparseQR_C(
            getattr(lib, _SPQR_ORDERING[ordering]), lib.SPQR_NO_TOL, n, 0, chol_a,
            ffi.NULL, ffi.NULL, ffi.NULL, ffi.NULL, chol_r, chol_e, ffi.NULL, ffi.NULL, ffi.NULL,
            cc)
        if status < 0 or chol_r[0] == ffi.NULL:
            raise RuntimeError(f"sparse_qr_r: SuiteSparseQR failed (status {status})")
        r = _sparse.csr_array(spqr.cholmodsparse2scipy(chol_r[0]))
        if chol_e[0] == ffi.NULL:
            e = _np.arange(n, dtype=_np.int64)
        else:
            size = n * ffi.sizeof("SuiteSparse_long")
            e = _np.frombuffer(ffi.buffer(chol_e[0], size),
                               dtype=_np.dtype(f"i{ffi.sizeof('SuiteSparse_long')}"))
            e = e.astype(_np.int64)
    finally:
        spqr.cholmod_free_sparse(chol_a)
        if chol_r[0] != ffi.NULL:
            spqr.cholmod_free_sparse(chol_r[0])
        if chol_e[0] != ffi.NULL:
            lib.cholmod_l_free(n, ffi.sizeof("SuiteSparse_long"), chol_e[0], cc)
    if r.shape != (n, n):
        raise RuntimeError(f"sparse_qr_r: SuiteSparseQR returned R of shape {r.shape}, "
                           f"expected {(n, n)}")
    r.sum_duplicates()
    return r, e


def _result(A, r, e):
    return SparseQRResult(_like(A, r, formats=("csr",)), e.copy())


def _on_pattern(a, h):
    """(a @ h) at a's stored entries only, aligned with a.data (a canonical CSR, h dense n x n).

    Entry t = (i, j) is the sum over the stored (i, l) of a[i, l] h[l, j]: r_i products for each
    of the r_i entries of row i, evaluated for blocks of rows of at most _PAIRS_PER_BLOCK products
    (a single longer row alone).
    """
    indptr, cols, data = a.indptr, a.indices, a.data
    out = _np.empty(a.nnz, dtype=_np.result_type(data.dtype, h.dtype))
    counts = _np.diff(indptr).astype(_np.int64)
    cost = _np.cumsum(counts * counts)
    del counts
    m = a.shape[0]
    row, done = 0, 0
    while row < m:
        stop = int(_np.searchsorted(cost, done + _PAIRS_PER_BLOCK, side="right"))
        stop = min(max(stop, row + 1), m)
        k0, k1 = int(indptr[row]), int(indptr[stop])
        if k1 > k0:
            size = _np.diff(indptr[row:stop + 1]).astype(_np.int64)   # r_i of the block's rows
            per_target = _np.repeat(size, size)                        # r_i for each entry t
            starts = _np.cumsum(per_target) - per_target
            source = (_np.arange(int(per_target.sum()), dtype=_np.int64)     # the (i, l) entries
                      - _np.repeat(starts, per_target)
                      + _np.repeat(_np.repeat(indptr[row:stop].astype(_np.int64), size),
                                   per_target))
            target_col = _np.repeat(cols[k0:k1], per_target)
            products = data[source] * h[cols[source], target_col]
            out[k0:k1] = _np.add.reduceat(products, starts)
        done = int(cost[stop - 1])
        row = stop
    return out


def sparse_qr_r(A, ordering="default"):
    """R of the sparse QR A[:, E] = Q R (SuiteSparseQR), as ``SparseQRResult(R, E)``.

    A: SciPy sparse (m, n), m >= n, full column rank, float64 or complex128.
    ordering: one of ORDERINGS ("default", "natural", "colamd", "amd", "metis", "best");
        "natural" gives E = arange(n).
    Returns R, a CSR (n, n) upper triangular with a positive real diagonal (a csr_array when A is
    a sparse array, a csr_matrix otherwise), and E, an int64 permutation of range(n).
    See the module docstring for the ordering and the sign convention.
    """
    a, r, e = _factor("sparse_qr_r", A, ordering)
    return _result(A, r, e)


def sparse_qr_r_jvp(A, dA, ordering="default"):
    """((R, E), (dR, None)): dR = U R, U = triu(B + B^H, 1) + diag(Re diag B) [WLL2012].

    B = R^-H E^T (A^H dA) E R^-1. dA: SciPy sparse of A's shape and dtype (typically on A's
    pattern; R is differentiated along dA as given). dR is a dense (n, n) ndarray, upper
    triangular: R's stored pattern can omit an entry whose derivative is not zero.
    """
    op = "sparse_qr_r_jvp"
    _check_matrix(op, "A", A)
    _check_matrix(op, "dA", dA)
    if dA.shape != A.shape:
        raise ValueError(f"{op}: dA has shape {dA.shape}, expected {A.shape}")
    if dA.dtype != A.dtype:
        raise TypeError(f"{op}: dA has dtype {dA.dtype}, expected {A.dtype}")
    a, r, e = _factor(op, A, ordering)
    n = A.shape[1]
    if n == 0:
        return _result(A, r, e), SparseQRResult(_np.zeros((0, 0), dtype=A.dtype), None)
    rd = r.toarray()
    k = _np.asarray((a.conj().T @ _canonical(dA)).todense())[_np.ix_(e, e)]  # E^T A^H dA E
    y = _sla.solve_triangular(rd, k, trans="C", check_finite=False)           # R^-H K
    b = _adjoint(_sla.solve_triangular(rd, _adjoint(y), trans="C", check_finite=False))
    u = _np.triu(b + _adjoint(b), 1) + _np.diag(_np.real(_np.diagonal(b)))
    dr = _np.triu(u @ rd).astype(A.dtype, copy=False)
    return _result(A, r, e), SparseQRResult(dr, None)


def sparse_qr_r_vjp(A, ordering="default"):
    """((R, E), pullback), ``pullback(gR=None, gE=None) -> gA`` on exactly A's pattern.

    gR: dense ndarray or SciPy sparse (n, n) with R's dtype (None: zero); its strictly lower
    triangle is ignored (R is upper triangular), and so is gE (E has no derivative).
    gA: SciPy sparse with the pattern of A (duplicates summed, indices sorted, explicit zeros
    kept), in A's format when that is CSR or CSC (CSR otherwise), an array or a matrix like A:
    gA = A (E G E^T) at A's stored entries, G = R^-1 copyltu(R gR^H) R^-H [LLWX2019, eq. (7)].
    """
    op = "sparse_qr_r_vjp"
    a, r, e = _factor(op, A, ordering)
    n = A.shape[1]

    def pullback(gR=None, gE=None):
        if gR is None or n == 0 or a.nnz == 0:
            if gR is not None:
                _check_cotangent(op, gR, r)
            data = _np.zeros(a.nnz, dtype=A.dtype)
        else:
            g = _np.triu(_check_cotangent(op, gR, r))
            rd = r.toarray()
            c = _copyltu(rd @ _adjoint(g))
            x = _sla.solve_triangular(rd, c, check_finite=False)                 # R^-1 C
            gram = _sla.solve_triangular(rd, _adjoint(x), check_finite=False)    # R^-1 C R^-H
            inverse = _np.empty_like(e)
            inverse[e] = _np.arange(n)
            data = _on_pattern(a, gram[_np.ix_(inverse, inverse)]).astype(A.dtype, copy=False)
        grad = _sparse.csr_array((data, a.indices.copy(), a.indptr.copy()), shape=A.shape)
        return _like(A, grad)

    return _result(A, r, e), pullback


def _check_cotangent(op, g, r):
    if _sparse.issparse(g):
        if g.ndim != 2:
            raise ValueError(f"{op}: gR has shape {g.shape}, expected {r.shape}")
        dtype = g.dtype
        g_shape = g.shape
    else:
        g = _np.asarray(g)
        dtype, g_shape = g.dtype, g.shape
    if g_shape != r.shape:
        raise ValueError(f"{op}: gR has shape {g_shape}, expected {r.shape}")
    if dtype != r.dtype:
        raise TypeError(f"{op}: gR has dtype {dtype}, expected {r.dtype}")
    return g.toarray() if _sparse.issparse(g) else g
