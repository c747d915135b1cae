"""Helpers that several backends' runtimes share, written once against an array module ``xp``.

Hand-written, not generated: ``python cli.py generate`` copies this file, under its header, into
every generated/<backend>/ as ``_runtime_shared.py``, beside that backend's ``_array_module.py``
(templates/<backend>/_array_module.py), which binds ``xp`` (numpy, cupy, jax.numpy or torch),
the row numbers' ``INDEX_DTYPE`` and the keywords of products (``DOT_OPTIONS``: JAX's full
precision).  Each backend's ``_runtime.py`` imports the helpers that fit its arrays and offers
them, with its own, to the generated rules: NumPy, CuPy and JAX most of them, PyTorch only
those that need no array operation beyond ``xp.zeros_like`` (the checks' verdicts
``_check_array`` and ``_check_like`` among them; PyTorch has its own pads, solves and
permutations).  The helpers named ``_host_*`` and ``_pivots_permutation`` compute with NumPy
whatever ``xp`` is.

Every function works on (..., rows, cols) stacks, including zero-size ones.
"""
import importlib as _importlib
import typing as _typing

import numpy as _np

from ._array_module import DOT_OPTIONS, INDEX_DTYPE, UNSUPPORTED_DTYPE, inexact_dtype, xp

_DTYPES = (xp.float32, xp.float64, xp.complex64, xp.complex128)


class _LazyModule:
    """A module imported, with the submodules the generated code names, on its first use:
    SciPy for the host fallbacks of torch and CuPy, cupyx (which loads cuBLAS and cuSOLVER),
    none of which importing a generated package may need."""

    def __init__(self, name, submodules):
        self._name, self._submodules = name, submodules

    def __getattr__(self, attribute):
        for sub in self._submodules:
            _importlib.import_module(f"{self._name}.{sub}")
        return getattr(_importlib.import_module(self._name), attribute)


def _check_input(op, name, x, ndim=2):
    return _check_array(op, name, _inexact(xp.asarray(x)), ndim)


def _inexact(x):
    """Integer and boolean arrays as numpy.linalg and jax.numpy.linalg take them: promoted to
    the float dtype the framework's linalg computes them in (_array_module.inexact_dtype)."""
    if _np.dtype(x.dtype).kind in "biu":
        return x.astype(inexact_dtype(x.dtype))
    return x


def _check_array(op, name, x, ndim):
    """x, an array of the backend's, if it is a stack of matrices (ndim 2) or of vectors
    (ndim 1) of a supported dtype; an error saying what it is otherwise."""
    if x.ndim < ndim:
        what = ("a matrix or a stack of matrices" if ndim == 2
                else "a vector or a stack of vectors")
        raise ValueError(f"{op}: {name} must be {what} (ndim >= {ndim}), "
                         f"got shape {tuple(x.shape)}")
    if x.dtype not in _DTYPES:
        # the framework's own error type for a dtype its linalg does not support
        raise UNSUPPORTED_DTYPE(f"{op}: {name} must be float32, float64, complex64 or "
                                f"complex128, got {x.dtype}")
    return x


def _check_tangent(op, name, t, x):
    return _check_like(op, name, xp.asarray(t), x)


def _check_like(op, name, t, x):
    """t, an array of the backend's, if it has x's shape and dtype (a tangent of x); an error
    saying which differs otherwise."""
    if t.shape != x.shape:
        raise ValueError(f"{op}: {name} has shape {tuple(t.shape)}, expected {tuple(x.shape)}")
    if t.dtype != x.dtype:
        raise TypeError(f"{op}: {name} has dtype {t.dtype}, expected {x.dtype}")
    return t


def _cotangent_in(g):
    return g


def _cotangent_out(g):
    return g


# -- rules evaluated a block of rows at a time (factorules/compiler/row_blocks.py; each backend
# writes a block's rows with a _put_rows of its own) ---------------------------------------

ROW_BLOCKS = 16  # the rows below a rule's top, in this many blocks,
ROW_BLOCK_MIN = 1024  # each of at least this many rows (BLAS's products stay efficient)


def _row_blocks(rows):
    """(start, stop) of each block of ``rows`` rows; one empty block where there are none, so
    that a sum over the blocks is a zero of its shape and type."""
    width = max(ROW_BLOCK_MIN, -(-rows // ROW_BLOCKS), 1)
    return [(i, min(i + width, rows)) for i in range(0, rows, width)] or [(0, 0)]


ROW_BLOCKED_RATIO = 8  # a rule goes by row blocks where the rows below its top are this many
# times the top's (and at least ROW_BLOCK_MIN): a tall-skinny input, whose m x n temporaries
# are what its memory holds; below that the rule as one block costs less (what the loops
# compute twice, a triangular solve of the rows, is then a sizeable part of its time)


def _row_blocked(rows, top):
    """Whether a rule whose top has ``top`` rows and ``rows`` rows below it goes by blocks."""
    return rows >= ROW_BLOCKED_RATIO * top and rows >= ROW_BLOCK_MIN


def _sum_rows(total, part):
    """A sum over the row blocks: ``part`` (None: the first block's)."""
    return part if total is None else total + part


def _joined_rows(out, top, rows):
    """``out`` with its first ``rows`` rows set to ``top`` (0: zeros)."""
    out[..., :rows, :] = top
    return out


def _zeros_like(x):
    return xp.zeros_like(x)


def _empty_like(x):
    return xp.empty((0,), dtype=x.dtype)


def _lifted(x, ndim):
    """x with leading axes of size 1 up to ``ndim`` axes: broadcasting without rank
    promotion (which JAX's jax_numpy_rank_promotion="raise" refuses)."""
    return x.reshape((1,) * (ndim - x.ndim) + tuple(x.shape))


def _diag(v):
    """diag of a (..., n, 1) column: (..., n, n)."""
    return v * _lifted(xp.eye(v.shape[-2], dtype=v.dtype), v.ndim)


def _diagonal_skew(x):
    """diagonal(skew(x)) of a square stack x, as (..., n, 1) columns: i im(x_jj) -- zeros for
    a real x, made from its shape alone, so that JAX's linearization leaves a term of them
    out of the linear map."""
    d = xp.diagonal(x, 0, -2, -1)[..., :, None]
    if not xp.iscomplexobj(d):
        return xp.zeros(d.shape, d.dtype)
    return (d - xp.conj(d)) / 2


def _skew_diag(v):
    """skew(diag(v)) of (..., n, 1) columns v: diag(i im(v)) -- zeros for a real v."""
    if not xp.iscomplexobj(v):
        return xp.zeros(v.shape[:-1] + v.shape[-2:-1], v.dtype)
    return _diag((v - xp.conj(v)) / 2)


def _broadcast(a, b):
    batch = _np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    return (xp.broadcast_to(a, batch + a.shape[-2:]), xp.broadcast_to(b, batch + b.shape[-2:]),
            xp.result_type(a, b))


def _solve(a, b, left=True):
    """A^-1 B (left) or B A^-1 (right)."""
    a, b, dtype = _broadcast(a, b)
    if b.size == 0 or a.shape[-1] == 0:
        return xp.zeros(b.shape, dtype)
    if left:
        return xp.linalg.solve(a, b)
    return xp.swapaxes(xp.linalg.solve(xp.swapaxes(a, -1, -2), xp.swapaxes(b, -1, -2)),
                       -1, -2)


def _eigenbasis(x, given, same=None):
    """(eigenvalues, eigenvectors) of a Hermitian x: ``given`` ((values as a column,
    vectors): the rules' eigenbasis of x), those of ``same`` (x is the other operand), or
    computed."""
    if given is not None:
        return given[0][..., 0], given[1]
    return same if same is not None else xp.linalg.eigh(x)


def _sylvester_by_eigh(a, b, c, eig_a=None, eig_b=None):
    """X with A X + X B = C, A and B Hermitian: in their eigenvector bases the equation is
    elementwise, X = Q_A ((Q_A^H C Q_B) / (a_i + b_j)) Q_B^H (one eigensolver when A is B,
    none where the rules hand their eigendecompositions over: eig_a, eig_b)."""
    dtype = xp.result_type(a, b, c)
    batch = _np.broadcast_shapes(a.shape[:-2], b.shape[:-2], c.shape[:-2])
    if c.shape[-1] == 0 or c.shape[-2] == 0:
        return xp.zeros(batch + c.shape[-2:], dtype)
    la, qa = _eigenbasis(a, eig_a)
    lb, qb = _eigenbasis(b, eig_b, (la, qa) if b is a else None)
    mm = lambda x, y: xp.matmul(x, y, **DOT_OPTIONS)  # noqa: E731
    inner = mm(mm(xp.conj(xp.swapaxes(qa, -1, -2)), c), qb)
    inner = inner / (la[..., :, None] + lb[..., None, :])
    return xp.asarray(mm(mm(qa, inner), xp.conj(xp.swapaxes(qb, -1, -2))), dtype=dtype)


def _tril_sylvester_by_columns(t, c, adjoint, solve_triangular):
    """The strictly lower X with tril(X S - S X, -1) = tril(C, -1), S = triu(T) or its
    adjoint (factorules/compiler/ops/solves.py, solve_tril_sylvester), a column at a time:
    (S[j, j] I - S[j+1:, j+1:]) X[j+1:, j] = C[j+1:, j] - X[j+1:, :] S[:, j], from the first
    column (S upper) or the last (S lower), with the backend's ``solve_triangular``."""
    n = t.shape[-1]
    dtype = xp.result_type(t, c)
    batch = _np.broadcast_shapes(t.shape[:-2], c.shape[:-2])
    x = xp.zeros(batch + (n, n), dtype)
    s = xp.triu(t)
    if adjoint:
        s = xp.conj(xp.swapaxes(s, -1, -2))
    for j in (range(n - 2, -1, -1) if adjoint else range(n - 1)):
        below = slice(j + 1, n)
        rhs = c[..., below, j:j + 1] - xp.matmul(x[..., below, :], s[..., :, j:j + 1])
        eye = xp.eye(n - j - 1, dtype=s.dtype)
        shifted = s[..., j:j + 1, j:j + 1] * eye - s[..., below, below]
        x[..., below, j:j + 1] = solve_triangular(shifted, rhs, not adjoint)
    return x


def _hessenberg_sylvester_by_columns(h, c, adjoint):
    """solve_hessenberg_sylvester (factorules/compiler/ops/solves.py), a column at a time with
    S = triu(H, -1): adjoint=False, the skew-Hermitian Om = X - X^H + i diag(phi) with X's
    column j + 1 (rows j + 2:) = (C - X S + S X)[j + 2:, j] / S[j + 1, j] from the first
    column, phi the running sum of im(C - X S + S X)[j + 1, j] / re(S[j + 1, j]); adjoint=True,
    its transpose Y: the imaginary subdiagonal first, i (sum of im(C[l, l]), l > j) /
    re(S[j + 1, j]) at (j + 1, j), then column j (rows j + 2:) = (C - C^H - Y S^H + S^H Y)[j + 2:,
    j + 1] / conj(S[j + 1, j]) from the last column."""
    n = h.shape[-1]
    dtype = xp.result_type(h, c)
    batch = _np.broadcast_shapes(h.shape[:-2], c.shape[:-2])
    x = xp.zeros(batch + (n, n), dtype)
    s = xp.triu(h, -1).astype(dtype)
    sub = xp.diagonal(s, -1, -2, -1)  # (..., n - 1): S[j + 1, j]
    phases = _np.dtype(dtype).kind == "c"
    if not adjoint:
        for j in range(n - 2):
            rhs = c[..., :, j:j + 1] - xp.matmul(x, s[..., :, j:j + 1]) \
                + xp.matmul(s, x[..., :, j:j + 1])
            x[..., j + 2:, j + 1:j + 2] = rhs[..., j + 2:, :] / s[..., j + 1:j + 2, j:j + 1]
        out = x - xp.conj(xp.swapaxes(x, -1, -2))
        if phases and n > 1:
            residual = c - xp.matmul(x, s) + xp.matmul(s, x)
            steps = xp.imag(xp.diagonal(residual, -1, -2, -1)) / xp.real(sub)
            phi = xp.concatenate([xp.zeros(steps.shape[:-1] + (1,), steps.dtype),
                                  xp.cumsum(steps, axis=-1)], -1)
            out = out + 1j * xp.eye(n, dtype=steps.dtype) * phi[..., None, :]
        return out
    g = c - xp.conj(xp.swapaxes(c, -1, -2))
    sh = xp.conj(xp.swapaxes(s, -1, -2))
    if phases and n > 1:
        later = xp.flip(xp.cumsum(xp.flip(xp.imag(xp.diagonal(c, 0, -2, -1)[..., 1:]), -1),
                                  axis=-1), -1)  # sum of im(C[l, l]) over l > j
        eta = xp.concatenate([later / xp.real(sub),
                              xp.zeros(later.shape[:-1] + (1,), later.dtype)], -1)
        x = x + 1j * xp.eye(n, k=-1, dtype=eta.dtype) * eta[..., None, :]  # at (j + 1, j)
    for j in range(n - 3, -1, -1):
        rhs = g[..., :, j + 1:j + 2] - xp.matmul(x, sh[..., :, j + 1:j + 2]) \
            + xp.matmul(sh, x[..., :, j + 1:j + 2])
        x[..., j + 2:, j:j + 1] = rhs[..., j + 2:, :] / xp.conj(s[..., j + 1:j + 2, j:j + 1])
    return x


def _pad_rows(x, extra):
    return xp.concatenate([x, xp.zeros(x.shape[:-2] + (extra, x.shape[-1]), x.dtype)], -2)


def _pad_cols(x, extra):
    return xp.concatenate([x, xp.zeros(x.shape[:-1] + (extra,), x.dtype)], -1)


def _pad(x, top, bottom, left, right):
    """x with top/bottom zero rows and left/right zero columns around it (an embed); x itself
    where every width is zero (ormqr's cotangent of a when k = p: no m x p copy)."""
    if not (top or bottom or left or right):
        return x
    return xp.pad(x, ((0, 0),) * (x.ndim - 2) + ((top, bottom), (left, right)))


# -- sums written into a fresh array (NumPy and CuPy; the printers call them only on arrays
# that a product or a sum has just made, which nothing else holds) --------------------------

def _accumulate(x, y, alpha=1):
    """x + alpha * y, written into x where x has the sum's shape and type: a sum of m x n
    products then holds two of them at once, not three (x: a fresh array)."""
    if x.shape == _np.broadcast_shapes(x.shape, y.shape) and xp.result_type(x, y) == x.dtype:
        if alpha == 1:
            return xp.add(x, y, out=x)
        if alpha == -1:
            return xp.subtract(x, y, out=x)
        x += alpha * y
        return x
    return x + alpha * y


def _add_eye(x, scale=1):
    """x + scale * eye(rows, cols), written into x (x: a fresh array): Q = I - V W with no
    m x n identity beside it."""
    i = xp.arange(min(x.shape[-2:]))
    x[..., i, i] += scale
    return x


def _unit_tril(x):
    """tril(x, -1) + eye(rows, cols): unit lower trapezoidal (Householder vectors V from the
    compact a), one array instead of three."""
    return _add_eye(xp.tril(x, -1))


def _columns(outputs, vectors):
    """Outputs as the rules hold them: a vector (..., n) as a column (..., n, 1)."""
    return tuple(y[..., None] if v else y for y, v in zip(outputs, vectors))


def _complex_of(x):
    """x as a complex array of its precision (NumPy's promotion of the dtypes, asked
    explicitly: JAX's strict mode promotes nothing implicitly)."""
    return x.astype(_np.result_type(x.dtype, _np.complex64))


def _complex(outputs, flags):
    """Outputs the spec declares complex (dtype: complex) as complex arrays (NumPy returns
    real eigenpairs of a real matrix as real arrays)."""
    return tuple(_complex_of(y) if f else y for y, f in zip(outputs, flags))


def _to_field(g, x):
    """The cotangent of a real input is the real part (an input's tangents are real)."""
    return xp.real(g) if xp.iscomplexobj(g) and not xp.iscomplexobj(x) else g


def _pairwise_inv(v):
    """F[..., i, j] = 1 / (v_j - v_i) for a (..., n, 1) column v; 0 at ties: where
    |v_j - v_i| <= n eps max|v| (equal up to rounding), the diagonal included.  Both
    branches are finite, so that derivatives of F (JAX's) have no NaN either."""
    gaps = xp.swapaxes(v, -1, -2) - v
    tol = v.shape[-2] * xp.finfo(v.dtype).eps * xp.abs(v).max(axis=(-2, -1), keepdims=True,
                                                              initial=0)
    tie = xp.abs(gaps) <= tol
    return xp.where(tie, 0, 1 / xp.where(tie, 1, gaps))


# -- where a derivative does not exist ---------------------------------------------------------
# The generated _jvp_checks / _vjp_checks give a rule's checks (the spec's 'pivots', 'ties'
# and gauge 'cotangent'); _raise_if_failed tests them before the rule, _checked_jvp /
# _checked_vjp after it, on its results.  Eager (here,
# NumPy and CuPy always): a failed check raises ValueError naming the operation, the condition
# and the option that turns it off.  Traced (JAX's tracers, torch.func and torch.compile, in
# those backends' runtimes): the results of the matrices that fail are NaN.

class _Check(_typing.NamedTuple):
    """One test of whether the derivative a rule computes exists."""

    kind: str  # 'pivots': no |value| at most max(m, n) eps ||A||_F (A = against[0]);
    # 'vanish': every value at most sqrt(eps) times the largest entry of ``against``;
    # 'ties': every value scalar, to that tolerance, on each block of tied entries of ``vector``;
    # 'tied': no two entries of ``vector`` tied (no values: no derivative exists at a tie);
    # 'zeros': every column j of the values vanishing, to that tolerance (against[1:]), where
    # vector[j] is a zero pivot (as 'pivots' measures it, A = against[0])
    values: object  # a function of no arguments giving the tested arrays (called when needed)
    against: tuple  # the first input (pivots), or the tangents or cotangents the values read
    message: str  # the spec's words for the condition
    option: str  # the option that turns the check off
    vector: object = None  # 'ties', 'tied', 'zeros': the (..., k, 1) column whose ties or
    # zeros matter
    # 'pivots', 'zeros': max(m, n) of A where against[0] is not A but an array of its norm
    # (svd's S, the spec's 'pivots.norm'); None: against[0]'s own
    size: object = None


def _is_complex(x):
    """Whether x is complex (a gauge check whose values are the imaginary parts of values in
    the input's field runs only for complex input: of real input they are zero)."""
    return xp.iscomplexobj(x)


def _check(kind, values, against, message, option, vector=None, size=None):
    return _Check(kind, values, tuple(a for a in against if a is not None), message, option,
                  vector, size)


# how each kind reports its numbers, after the spec's message
_MEASURES = {
    "pivots": "smallest pivot {value:.2e} <= max(m, n) eps ||A||_F = {limit:.2e}",
    "ties": "residual on tied values {value:.2e} > sqrt(eps) times the largest {of} entry "
            "= {limit:.2e}",
    "tied": "{value:.0f} pairs of values tied up to rounding",
    "zeros": "residual on zero values {value:.2e} > sqrt(eps) times the largest {of} entry "
             "= {limit:.2e}",
    "vanish": "gauge residual {value:.2e} > sqrt(eps) times the largest {of} entry "
              "= {limit:.2e}",
}


def _no_derivative(op, check, value, limit, of):
    """The error of a failed check (the same words in every backend)."""
    measure = _MEASURES[check.kind].format(value=value, limit=limit, of=of)
    return ValueError(f"{op}: {check.message} ({measure}); pass {check.option}=False to skip "
                      f"this check")


def _matrix_max(x, empty=0):
    """The largest entry of each matrix of a real stack; ``empty`` for matrices without
    entries (CuPy's max takes no initial value)."""
    if x.shape[-2] * x.shape[-1] == 0:
        return xp.full(x.shape[:-2], empty, dtype=x.dtype)
    return x.max(axis=(-2, -1))


def _largest(arrays):
    """The largest |entry| of each matrix, over arrays of one batch shape (0 for none)."""
    out = None
    for a in arrays:
        m = _matrix_max(xp.abs(a))
        out = m if out is None else xp.maximum(out, m)
    return out


def _frobenius(a):
    """||a||_F of each matrix, with no temporary as large as a: products of the real and
    imaginary parts (views) summed by einsum."""
    parts = (a.real, a.imag) if xp.iscomplexobj(a) else (a,)
    return xp.sqrt(sum(xp.einsum("...ij,...ij->...", p, p, **DOT_OPTIONS) for p in parts))


def _tie_tolerance(v):
    """k eps max|v| per matrix of the (..., k, 1) column v, as (..., 1, 1): two values at most
    this far apart tie (equal up to rounding)."""
    return v.shape[-2] * _np.finfo(v.dtype).eps * _matrix_max(xp.abs(v))[..., None, None]


def _tie_mask(v):
    """T[..., i, j]: entries i != j of the (..., k, 1) column v that tie, |v_j - v_i| <= k eps
    max|v| (the zeros of _pairwise_inv off its diagonal)."""
    gaps = xp.abs(xp.swapaxes(v, -1, -2) - v)
    return (gaps <= _tie_tolerance(v)) & ~_lifted(xp.eye(v.shape[-2], dtype=bool), v.ndim)


def _pivot_limit(a, size=None):
    """max(m, n) eps ||A||_F per matrix of the (..., m, n) stack A: pivots at most this are
    zero.  ``size``: max(m, n) where ``a`` is not A but a stack of A's norm (svd's S)."""
    size = max(a.shape[-2], a.shape[-1]) if size is None else size
    return size * _np.finfo(a.dtype).eps * _frobenius(a)


def _zero_mask(check):
    """Z[..., 0, j]: whether pivot j of a 'zeros' check is zero (a row, to mask columns)."""
    return xp.swapaxes(xp.abs(check.vector), -1, -2) <= \
        _pivot_limit(check.against[0], check.size)[..., None, None]


def _mask(check):
    """The entries a 'ties' or 'zeros' check reads: its tie mask or zero mask."""
    return _zero_mask(check) if check.kind == "zeros" else _tie_mask(check.vector)


# a column of at most this many values tests its ties by shifted differences (below)
SHIFTED_TIES_MAX = 16


def _any_shifted_tie(v):
    """Whether two entries of the (..., k, 1) column v tie (as _tie_mask says) anywhere in
    the batch, from the gaps v[i + d] - v[i], d = 1 .. k - 1: each pair once, in one
    reduction, with no k x k broadcast (whose loops over tiny k are slow)."""
    k = v.shape[-2]
    if k < 2 or v.size == 0:
        return False
    tol = k * _np.finfo(v.dtype).eps * xp.abs(v).max(axis=-2, keepdims=True)
    gaps = xp.concatenate([xp.abs(v[..., d:, :] - v[..., :-d, :]) for d in range(1, k)],
                          axis=-2)
    return (gaps <= tol).any()


def _any_zero(check):
    """Whether a pivot of a 'zeros' check is zero (as _zero_mask says) anywhere in the
    batch, with no transposed mask."""
    limit = _pivot_limit(check.against[0], check.size)
    return (xp.abs(check.vector) <= limit[..., None, None]).any()


def _any_entry(check):
    """Whether the mask of a 'ties' or 'zeros' check (_mask) may have an entry anywhere in
    the batch: False where it has none, True where it has one -- or, for a long complex
    column, where the values' projections onto a line have close neighbours, as a tie's do
    (_projected; its values then measured, as with an entry).  Short columns compare
    shifted copies (_any_shifted_tie).  Longer ones need not be paired
    (_any_close_neighbours: O(k log k), not _tie_mask's O(k^2))."""
    v = check.vector
    if check.kind == "zeros":
        return _any_zero(check)
    if v.shape[-2] <= SHIFTED_TIES_MAX:
        return _any_shifted_tie(v)
    return _any_close_neighbours(_projected(v) if xp.iscomplexobj(v) else v, _tie_tolerance(v))


def _any_close_neighbours(p, tol):
    """Whether two entries of the real (..., k, 1) column p are at most tol apart anywhere
    in the batch: sorted, two are that close only if every gap between neighbours from one
    to the other is, so it is a small gap between neighbours (O(k log k))."""
    s = xp.sort(p, axis=-2)
    return ((s[..., 1:, :] - s[..., :-1, :]) <= tol).any()


# the direction (cos 1, sin 1) onto which complex values are projected (_projected): one
# that neither the real axis nor a conjugate pair's (a + bi, a - bi) is perpendicular to
_PROJECTION = (float(_np.cos(1.0)), float(_np.sin(1.0)))


def _projected(v):
    """The complex column v projected onto the line at angle 1 rad: real values at most as
    far apart as v's, so that a tie of v (|v_i - v_j| <= tol) is one of its projections
    (the converse need not hold: values far apart on a perpendicular)."""
    return v.real * _PROJECTION[0] + v.imag * _PROJECTION[1]


def _violation(check, mask=None, values=None):
    """(failed, value, limit) per matrix of the batch: whether the derivative fails the
    check, the value tested and the limit it passes (for the error).  ``mask``: the tie or
    zero mask of a 'ties' or 'zeros' check (_mask), ``values`` its values, when already
    computed."""
    values = check.values() if values is None else values
    if check.kind == "tied":  # any tie fails: the number of tied pairs, against 0
        tied = _tie_mask(check.vector) if mask is None else mask
        value = tied.astype(_np.finfo(check.vector.dtype).dtype).sum(axis=(-2, -1)) * 0.5
        return value > 0, value, xp.zeros_like(value)
    if check.kind == "pivots":
        value = None
        for p in values:
            smallest = -_matrix_max(-xp.abs(p), -_np.inf)
            value = smallest if value is None else xp.minimum(value, smallest)
        limit = _pivot_limit(check.against[0], check.size)
        return value <= limit, value, limit
    derivatives = check.against[1:] if check.kind == "zeros" else check.against
    limit = _np.sqrt(_np.finfo(values[0].dtype).eps) * _largest(derivatives)
    if check.kind == "zeros":
        zero = _zero_mask(check) if mask is None else mask
        value = None
        for m in values:
            worst = _matrix_max(xp.where(zero, xp.abs(m), 0))
            value = worst if value is None else xp.maximum(value, worst)
    elif check.kind == "ties":
        tied = _tie_mask(check.vector) if mask is None else mask
        value = None
        for m in values:
            d = xp.diagonal(m, 0, -2, -1)[..., :, None]
            off = xp.maximum(xp.abs(m), xp.abs(xp.swapaxes(d, -1, -2) - d))
            worst = _matrix_max(xp.where(tied, off, 0))
            value = worst if value is None else xp.maximum(value, worst)
    else:
        value = _largest(values)
    return value > limit, value, limit


def _raise_on_violation(op, check, of):
    """Raise the error of a failed check (eager code).  A 'ties' or 'zeros' check with no
    tied values or zero pivots computes nothing more."""
    mask = None
    if check.kind in ("ties", "tied", "zeros"):
        if not bool(_any_entry(check)):
            return
        mask = _mask(check)
    values = None
    if check.kind == "vanish":
        values = check.values()
        if not any(bool(v.any()) for v in values):
            return  # zero never exceeds its limit (the gauge of a real rule)
    failed, value, limit = _violation(check, mask, values)
    if bool(failed.any()):
        first = int(xp.argmax(failed.reshape(-1)))
        raise _no_derivative(op, check, float(value.reshape(-1)[first]),
                             float(limit.reshape(-1)[first]), of)


def _nan_where(results, failed):
    """The results, NaN in the matrices that failed (a product, so that transposing and
    differentiating it keeps the NaN)."""
    mask = xp.where(failed, _np.nan, 1.0)[..., None, None]
    return tuple(r * mask.astype(r.dtype) for r in results)


def _raise_if_failed(op, checks, derivatives, of="tangent"):
    """Raise the error of the first check that fails (eager: NumPy, CuPy), before the rule
    computes anything (it may divide by the zero pivot).  ``derivatives``: the rule's
    tangents or cotangents (which tell traced code in JAX and torch); ``of``: which."""
    for check in checks:
        if check is not None:
            _raise_on_violation(op, check, of)


def _checked_jvp(op, results, checks, vjp_checks=None, primals=(), flags=(), options=()):
    """A JVP's results, its checks passed (_raise_if_failed): as they are in eager code.
    The other arguments are for JAX, whose transposition of the JVP checks the cotangents
    with ``vjp_checks``."""
    return results


def _checked_vjp(op, results, checks):
    """A VJP's results, its checks passed (_raise_if_failed): as they are in eager code."""
    return results


def _transposed(outputs, flags):
    """Outputs a call returns transposed (the spec's 'transposed'), turned back."""
    return tuple(xp.ascontiguousarray(xp.swapaxes(y, -1, -2)) if f else y
                 for y, f in zip(outputs, flags))


def _native_shapes(results, call, declared, like):
    """The results of a native ``call`` (text: 'qr: torch.linalg.qr(A, mode=...)'), each of
    whose trailing shape is checked against the sizes the spec declares for it:
    ``declared`` holds (name, sizes, 'spec/qr.yaml:61 declares Q: [m, k]', field) per
    result, in order (results past them are not the spec's: LAPACK's info).  A call that
    returns other shapes (a wrong mode, a changed signature) fails here, in one line naming
    it, and not deep in a rule.  A result of field 'input' ('real') that has another dtype
    than ``like``, the first input (its real counterpart), is cast to it: SciPy's
    hessenberg returns a float64 identity as Q of a matrix of at most two rows."""
    results = tuple(results)
    cast = []
    for y, (name, sizes, where, field) in zip(results, declared):
        shape = tuple(y.shape)
        if shape[max(len(shape) - len(sizes), 0):] != tuple(sizes) or len(shape) < len(sizes):
            raise ValueError(f"{call} returned {name} of shape {shape}, where {where} = "
                             f"{tuple(sizes)}")
        if field is not None:
            dtype = (like if field == "input" else xp.real(like[..., :0, :0])).dtype
            y = y if y.dtype == dtype else xp.asarray(y, dtype=dtype)
        cast.append(y)
    return tuple(cast) + results[len(cast):]


def _unpacked(op, name, values, count):
    """The arrays of an operation with several inputs, given as a tuple (or list)."""
    if not isinstance(values, (tuple, list)) or len(values) != count:
        raise TypeError(f"{op}: {name} must be a tuple of {count} arrays")
    return tuple(values)


def _unbatched(fn, *arrays):
    """``fn`` of single matrices (a call that takes one, like cupyx's lu) applied to every
    matrix of a stack, one call each; its results stacked back."""
    return _map_matrices(xp, fn, arrays)


def _host_unbatched(fn, arrays):
    """``fn`` of single NumPy matrices applied to every matrix of a host stack; its results
    stacked back."""
    return _map_matrices(_np, fn, arrays)


def _map_matrices(module, fn, arrays):
    """``fn`` applied to every matrix of stacks of ``module``'s arrays, its results stacked
    back.  A zero-size stack calls it once on an identity for the shapes of its results."""
    batch = arrays[0].shape[:-2]
    flat = [a.reshape((_np.prod(batch, dtype=int),) + tuple(a.shape[-2:])) for a in arrays]
    count = flat[0].shape[0]
    first = fn(*(a[0] if count else module.eye(*a.shape[1:], dtype=a.dtype) for a in flat))
    rest = [fn(*(a[i] for a in flat)) for i in range(1, count)]
    return tuple(module.stack([r[j] for r in [first, *rest]])[:count].reshape(
        batch + first[j].shape) for j in range(len(first)))


def _pivots_permutation(pivots, like):
    """The permutation matrix P (A = P L U) of LAPACK pivots held as a (..., k, 1) NumPy
    column: row i was swapped with row pivots[i] - 1, in order.  P is a NumPy array with
    like's dtype and m = its rows."""
    m = like.shape[-2]
    pivots = pivots[..., 0]
    perm = _np.broadcast_to(_np.arange(m), pivots.shape[:-1] + (m,)).copy()
    index = _np.indices(pivots.shape[:-1])
    for i in range(pivots.shape[-1]):
        j = pivots[..., i].astype(_np.intp) - 1
        row_i, row_j = perm[..., i].copy(), perm[(*index, j)]
        perm[..., i] = row_j
        perm[(*index, j)] = row_i
    # LU = P^T A, whose row i is A's row perm[i]: P's column i is e_perm[i]
    return (perm[..., None, :] == _np.arange(m)[:, None]).astype(like.dtype)


def _permute_rows(p, x, transpose):
    """P @ X, or P^T @ X when transpose, for a permutation matrix P: a gather of X's rows,
    (P X)[j] = X[i] and (P^T X)[i] = X[j] where P[j, i] = 1.  The row numbers come from
    one product with (0, 1, ..., m-1), faster than an argmax across rows."""
    m = p.shape[-1]
    if m == 0:
        return x
    real = xp.real(p)
    count = xp.arange(m, dtype=real.dtype)
    # (exact integers at full precision, whatever the user's default matmul precision: TF32
    # or bfloat16 would round row numbers above 2^11 or 2^8)
    index = xp.matmul(count, real, **DOT_OPTIONS) if transpose else \
        xp.matmul(real, count, **DOT_OPTIONS)
    return xp.take_along_axis(x, xp.rint(index).astype(INDEX_DTYPE)[..., None], axis=-2)


def _permute_cols(p, x, transpose):
    """X @ P, or X @ P^T when transpose, for a permutation matrix P: a gather of X's
    columns, (P^T X^T)^T or (P X^T)^T."""
    return xp.swapaxes(_permute_rows(p, xp.swapaxes(x, -1, -2), not transpose), -1, -2)


def _indices(indices, like):
    """Column numbers a call returned (a (..., n, 1) column), as returned to users: for a
    matrix with no rows every order is a pivoting, and the identity order (SciPy's) is
    returned whatever the call gave (JAX's pivoted QR gives zeros, jax 0.10.2)."""
    if like.shape[-2] == 0:
        count = xp.arange(like.shape[-1], dtype=indices.dtype)[:, None]
        return xp.broadcast_to(count, indices.shape).copy()
    return indices


def _indices_permutation(indices, like):
    """The permutation matrix Pi of column numbers held as a (..., n, 1) column, with
    A Pi = A[..., indices]: Pi[indices[j], j] = 1; like's dtype, n = its columns."""
    n = like.shape[-1]
    count = _lifted(xp.arange(n, dtype=indices.dtype)[:, None], indices.ndim)
    return (indices[..., None, :, 0] == count).astype(like.dtype)


def _version_tuple(text):
    """The leading numeric components of a version string: '2.13.0+cpu' -> (2, 13, 0)."""
    parts = []
    for piece in str(text).split("."):
        digits = piece[:len(piece) - len(piece.lstrip("0123456789"))]
        if not digits:
            break
        parts.append(int(digits))
        if digits != piece:
            break
    return tuple(parts)
