"""Helpers the generated JAX rules call: checks, batch-aware solves and structural operations.

Hand-written, not generated: ``python cli.py generate`` copies this file, under its header, into
generated/jax/.  The helpers JAX shares with NumPy and CuPy (checks, pads, permutations) come
from templates/_runtime_shared.py, computing with the array module of _array_module.py.

Cotangents: the spec's VJPs follow PyTorch's convention; ``_cotangent_in/_out`` convert from
and to JAX's (the two differ by complex conjugation).
"""
import jax as _jax
import jax.extend.core as _jax_core
import jax.numpy as _jnp
import jax.scipy.linalg  # noqa: F401  (signature calls name jax.scipy.linalg)
import numpy as _np
from jax.experimental import checkify as _checkify
from jax.interpreters import ad as _ad
from jax.interpreters import batching as _batching
from jax.interpreters import mlir as _mlir

from ._array_module import DOT_OPTIONS
from ._runtime_shared import (
    _host_unbatched, _LazyModule,
    _is_complex,
    _diagonal_skew, _skew_diag,
    SHIFTED_TIES_MAX, _Check, _any_entry, _check, _check_input, _check_tangent, _columns,
    _complex, _complex_of, _diag, _lifted, _mask, _nan_where, _raise_on_violation, _violation,
    _indices_permutation, _pad, _pad_cols, _pad_rows, _pairwise_inv, _permute_cols,
    _permute_rows, _to_field, _native_shapes, _unpacked, _version_tuple, _zeros_like)

# SciPy, for the host fallbacks alone (their calls name _scipy.linalg): imported on first use
_scipy = _LazyModule("scipy", ("linalg",))

# what the generated rules import from here
__all__ = [
    "_np", "_on_host", "_scipy",
    "_is_complex",
    "_diagonal_skew", "_skew_diag",
    "_check_input", "_check_tangent", "_columns", "_complex", "_complex_of", "_copyltu",
    "_cotangent_in", "_check", "_checked_jvp", "_checked_vjp", "_cotangent_out", "_diag",
    "_diag_part", "_empty_like", "_eye", "_raise_if_failed",
    "_indices", "_indices_permutation", "_mm", "_neg_mm", "_pad", "_pad_cols", "_pad_rows",
    "_pairwise_inv", "_permute_cols", "_permute_rows", "_pivots_permutation", "_skew", "_solve",
    "_solve_hessenberg_sylvester", "_solve_sylvester", "_solve_tril_sylvester",
    "_solve_triangular", "_sym", "_to_field",
    "_traced", "_transposed", "_unbatched",
    "_native_shapes", "_unpacked",
    "_version_tuple", "_zero_tangent", "_zeros_like"]


_HIGHEST = DOT_OPTIONS["precision"]


def _cotangent_in(g):
    return _jnp.conj(g)


def _cotangent_out(g):
    return _jnp.conj(g)


def _empty_like(x):
    return _jnp.zeros((0,), dtype=x.dtype)


def _eye(rows, cols, like):
    """The rows x cols identity of like's dtype, with like's number of axes (leading ones of
    size 1): it broadcasts against a stack without rank promotion."""
    return _lifted(_jnp.eye(rows, cols, dtype=like.dtype), like.ndim)


def _diag_part(x):
    """diag(diagonal(x)) of a square (..., n, n) x: a select, which XLA fuses (no gather)."""
    return _jnp.where(_lifted(_jnp.eye(x.shape[-1], dtype=bool), x.ndim), x,
                      _jnp.zeros((), x.dtype))


def _mm(a, b):
    """a @ b at full precision (lax.Precision.HIGHEST, as jax.lax.linalg's rules compute):
    the default on GPUs and TPUs rounds float32 operands to TF32 or bfloat16.  Inside a
    ``jax.default_matmul_precision`` context the user's precision applies instead (read
    while tracing: an explicit precision would override it)."""
    chosen = _jax.config.jax_default_matmul_precision is not None
    return _jnp.matmul(a, b, precision=None if chosen else _HIGHEST)


def _neg_mm(a, b):
    """-(a @ b), negating the smallest of a, b and a @ b (shapes are static under tracing)."""
    size_a, size_b = a.shape[-2] * a.shape[-1], b.shape[-2] * b.shape[-1]
    size_ab = a.shape[-2] * b.shape[-1]
    if size_b <= min(size_a, size_ab):
        return _mm(a, -b)
    if size_a <= size_ab:
        return _mm(-a, b)
    return -_mm(a, b)


def _copyltu(x):
    lower = _jnp.tril(x, -1)
    return lower + lower.mT.conj() + _diag_part(_jnp.real(x).astype(x.dtype))


def _sym(x):
    return (x + x.mT.conj()) / 2


def _skew(x):
    return (x - x.mT.conj()) / 2


def _broadcast(a, b):
    batch = _jnp.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    return (_jnp.broadcast_to(a, batch + a.shape[-2:]), _jnp.broadcast_to(b, batch + b.shape[-2:]))


def _solve_triangular(t, b, upper, left=True, unit=False):
    """T^-1 B (left) or B T^-1 (right), T read from one triangle."""
    t, b = _broadcast(t, b)
    if b.size == 0 or t.shape[-1] == 0:
        return _jnp.zeros(b.shape, _jnp.result_type(t, b))
    return _jax.lax.linalg.triangular_solve(t, b, left_side=left, lower=not upper,
                                            unit_diagonal=unit)


def _solve(a, b, left=True):
    """A^-1 B (left) or B A^-1 (right)."""
    a, b = _broadcast(a, b)
    if b.size == 0 or a.shape[-1] == 0:
        return _jnp.zeros(b.shape, _jnp.result_type(a, b))
    if left:
        return _jnp.linalg.solve(a, b)
    return _jnp.linalg.solve(a.mT, b.mT).mT


def _solve_tril_sylvester(t, c, adjoint=False):
    """The strictly lower X with tril(X S - S X, -1) = tril(C, -1), S = triu(T) or T^H
    (templates/_runtime_shared.py's _tril_sylvester_by_columns, each column set functionally:
    JAX differentiates the loop, which is rational in T and C, to any order)."""
    n = t.shape[-1]
    batch = _np.broadcast_shapes(t.shape[:-2], c.shape[:-2])
    x = _jnp.zeros(batch + (n, n), _jnp.result_type(t, c))
    s = _jnp.triu(t)
    if adjoint:
        s = s.conj().mT
    for j in (range(n - 2, -1, -1) if adjoint else range(n - 1)):
        below = slice(j + 1, n)
        rhs = c[..., below, j:j + 1] - _mm(x[..., below, :], s[..., :, j:j + 1])
        eye = _jnp.eye(n - j - 1, dtype=s.dtype)[(None,) * (s.ndim - 2)]  # as s's rank
        shifted = s[..., j:j + 1, j:j + 1] * eye - s[..., below, below]
        x = x.at[..., below, j:j + 1].set(_solve_triangular(shifted, rhs, not adjoint))
    return x



def _solve_hessenberg_sylvester(h, c, adjoint=False):
    """The skew-Hermitian Om, first row and column zero, with C - (Om S - S Om) Hessenberg
    with a real subdiagonal, S = triu(H, -1) (adjoint=True: its transpose), as
    templates/_runtime_shared.py's _hessenberg_sylvester_by_columns, each column set
    functionally: JAX differentiates the loop, which is rational in H and C, to any order."""
    n = h.shape[-1]
    dtype = _jnp.result_type(h, c)
    batch = _np.broadcast_shapes(h.shape[:-2], c.shape[:-2])
    x = _jnp.zeros(batch + (n, n), dtype)
    s = _jnp.triu(h, -1).astype(dtype)
    sub = _jnp.diagonal(s, -1, -2, -1)
    phases = _jnp.issubdtype(dtype, _jnp.complexfloating) and n > 1
    if not adjoint:
        for j in range(n - 2):
            rhs = c[..., :, j:j + 1] - _mm(x, s[..., :, j:j + 1]) + _mm(s, x[..., :, j:j + 1])
            x = x.at[..., j + 2:, j + 1:j + 2].set(rhs[..., j + 2:, :]
                                                   / s[..., j + 1:j + 2, j:j + 1])
        out = x - x.conj().mT
        if phases:
            residual = c - _mm(x, s) + _mm(s, x)
            steps = _jnp.imag(_jnp.diagonal(residual, -1, -2, -1)) / _jnp.real(sub)
            phi = _jnp.concatenate([_jnp.zeros(steps.shape[:-1] + (1,), steps.dtype),
                                    _jnp.cumsum(steps, axis=-1)], -1)
            eye = _jnp.eye(n, dtype=steps.dtype)[(None,) * (phi.ndim - 1)]  # as phi's rank
            out = out + 1j * (eye * phi[..., None, :]).astype(dtype)
        return out
    g = c - c.conj().mT
    sh = s.conj().mT
    if phases:
        later = _jnp.flip(_jnp.cumsum(_jnp.flip(_jnp.imag(_jnp.diagonal(c, 0, -2, -1)[..., 1:]),
                                                -1), axis=-1), -1)
        eta = _jnp.concatenate([later / _jnp.real(sub),
                                _jnp.zeros(later.shape[:-1] + (1,), later.dtype)], -1)
        below = _jnp.eye(n, k=-1, dtype=eta.dtype)[(None,) * (eta.ndim - 1)]  # (j + 1, j)
        x = x + 1j * (below * eta[..., None, :]).astype(dtype)
    for j in range(n - 3, -1, -1):
        rhs = g[..., :, j + 1:j + 2] - _mm(x, sh[..., :, j + 1:j + 2]) \
            + _mm(sh, x[..., :, j + 1:j + 2])
        x = x.at[..., j + 2:, j:j + 1].set(rhs[..., j + 2:, :]
                                           / s[..., j + 1:j + 2, j:j + 1].conj())
    return x


def _sylvester_by_eigh(a, b, c, eig_a=None, eig_b=None):
    """X with A X + X B = C, A and B Hermitian: in their eigenvector bases the equation is
    elementwise, X = Q_A ((Q_A^H C Q_B) / (a_i + b_j)) Q_B^H (one eigensolver when A is B,
    none where the rules hand their eigendecompositions over: eig_a, eig_b, eigenvalues as
    columns)."""
    la, qa = _jnp.linalg.eigh(a) if eig_a is None else (eig_a[0][..., 0], eig_a[1])
    if eig_b is not None:
        lb, qb = eig_b[0][..., 0], eig_b[1]
    else:
        lb, qb = (la, qa) if b is a else _jnp.linalg.eigh(b)
    mm = lambda x, y: _jnp.matmul(x, y, **DOT_OPTIONS)  # noqa: E731
    inner = mm(mm(qa.conj().mT, c), qb)
    inner = inner / (la[..., :, None] + lb[..., None, :]).astype(inner.dtype)
    return mm(mm(qa, inner), qb.conj().mT).astype(c.dtype)


def _conjugate_basis(basis):
    """The eigenbasis of X^T = conj(X) from X's (X Hermitian): the same values, conjugate
    vectors."""
    return None if basis is None else (basis[0], basis[1].conj())


def _solve_sylvester(a, b, c, eig_a=None, eig_b=None):
    """X with A X + X B = C for Hermitian A and B, as a linear solve whose derivatives (any
    order, in A, B and C) JAX takes from the equation (jax.lax.custom_linear_solve: dX solves
    A dX + dX B = dC - dA X - X dB), never through the eigensolver, whose derivative is
    singular where A has tied eigenvalues and this solve is not.  Its transpose solves
    A^T Y + Y B^T = G (JAX's transposes are not conjugated).  eig_a, eig_b: the rules'
    (eigenvalues as a column, eigenvectors) of A and B, where they have them: constants of
    the solve (JAX does not differentiate its solve functions)."""
    dtype = _jnp.result_type(a, b, c)
    batch = _np.broadcast_shapes(a.shape[:-2], b.shape[:-2], c.shape[:-2])
    c = _jnp.broadcast_to(c.astype(dtype), batch + c.shape[-2:])
    if c.size == 0:
        return c
    same = b is a

    def matvec(x):
        return _jnp.matmul(a, x, **DOT_OPTIONS) + _jnp.matmul(x, b, **DOT_OPTIONS)

    def solve(_, rhs):
        return _sylvester_by_eigh(a, a if same else b, rhs, eig_a, eig_b)

    def transpose_solve(_, rhs):
        at = a.mT
        return _sylvester_by_eigh(at, at if same else b.mT, rhs, _conjugate_basis(eig_a),
                                  _conjugate_basis(eig_b))

    return _jax.lax.custom_linear_solve(matvec, c, solve, transpose_solve)


def _traced(arrays):
    return any(isinstance(x, _jax.core.Tracer) for x in arrays)


def _on_host(fn, arrays, batched):
    """``fn``, NumPy/SciPy code for a routine JAX lacks (the spec's 'host: true'), on host
    copies of the arrays; batched=False: fn takes one matrix and is mapped over the batch
    axes.  Concrete arrays are copied and the results moved back; traced ones (jit, vmap,
    the rules' own transformations) go through jax.pure_callback, its result shapes those of
    fn run once on identities of one matrix's shape (_host_results), a vmapped axis handed
    to fn as one more batch axis."""
    if not _traced(arrays):
        return tuple(_jnp.asarray(y) for y in _host_results(fn, arrays, batched))
    batch = tuple(arrays[0].shape[:-2])
    eyes = [_np.eye(a.shape[-2], a.shape[-1], dtype=a.dtype) for a in arrays]
    like = fn(*(e[None] for e in eyes)) if batched else fn(*eyes)
    # (a float64 result without x64, SciPy's identity Q of hessenberg: float32, as
    # jnp.asarray makes it in the concrete branch)
    shapes = tuple(_jax.ShapeDtypeStruct(batch + _np.shape(y)[1 if batched else 0:],
                                         _jax.dtypes.canonicalize_dtype(_np.asarray(y).dtype))
                   for y in like)

    def callback(*host):
        return tuple(_np.asarray(y, dtype=s.dtype)
                     for y, s in zip(_host_results(fn, host, batched), shapes))

    return _jax.pure_callback(callback, shapes, *arrays, vmap_method="broadcast_all")


def _host_results(fn, arrays, batched):
    host = [_np.asarray(a) for a in arrays]
    return fn(*host) if batched else _host_unbatched(fn, host)


def _on_cpu_only_if(condition, computed, otherwise):
    """``computed()`` where ``condition`` (a traced bool) holds, ``otherwise()`` where not, on
    a CPU: XLA runs one branch of the conditional.  Elsewhere ``computed()`` always: a GPU's
    conditional reads its predicate on the host (a synchronisation per call), and on several
    CPU devices the batch may be sharded over them, where a predicate on the whole batch
    would need a collective."""
    if len(_jax.devices("cpu")) > 1:
        return computed()
    return _jax.lax.platform_dependent(
        cpu=lambda: _jax.lax.cond(condition, computed, otherwise), default=computed)


def _anywhere(check):
    """Whether the mask of a 'ties' or 'zeros' check may have an entry anywhere in the batch
    (_any_entry; a long real column by its k x k mask: XLA's sort on a CPU costs more than
    it, not than a complex one's: eigvals' pullback at 256 x 256, 1.22 -> 1.15 x native)."""
    if (check.kind in ("ties", "tied") and check.vector.shape[-2] > SHIFTED_TIES_MAX
            and not _jnp.iscomplexobj(check.vector)):
        return _mask(check).any()
    return _any_entry(check)


def _lazy(check):
    """The check with its values computed only where they can fail it, or None where it
    cannot fail.  A 'ties' or 'zeros' check reads its values on its mask only (tied or zero
    values): with no entry in the mask anywhere in the batch it passes, and its values (the
    products) need not be computed, as _raise_on_violation does eagerly.  A mask known here
    (concrete arrays) decides in Python; a traced one decides on a CPU under lax.cond
    (_on_cpu_only_if), the values being zeros where it has no entry."""
    if check.kind not in ("ties", "tied", "zeros"):
        return check
    anywhere = _anywhere(check)
    if not isinstance(anywhere, _jax.core.Tracer):
        return check if bool(anywhere) else None
    shapes = _jax.eval_shape(lambda: tuple(check.values()))
    values = _on_cpu_only_if(
        anywhere, lambda: tuple(check.values()),
        lambda: tuple(_jnp.zeros(v.shape, v.dtype) for v in shapes))
    return check._replace(values=lambda: values)


def _switched_on(checks):
    """The checks switched on (not None), each as _lazy makes it (dropped where it cannot
    fail)."""
    return [c for c in map(_lazy, (c for c in checks if c is not None)) if c is not None]


def _failure(check):
    """Per matrix, whether the derivative fails ``check``; None where it cannot fail.  A
    'ties' or 'zeros' check is measured (its values computed, its mask built and read) only
    where its mask has an entry somewhere in the batch: in Python for concrete arrays,
    under lax.cond on a CPU for traced ones (_on_cpu_only_if; False where none).  A 'failed'
    check (_checked_jvp's) holds its verdict."""
    if check.kind == "failed":
        return check.values()[0]
    if check.kind not in ("ties", "tied", "zeros"):
        return _violation(check)[0]
    anywhere = _anywhere(check)
    if not isinstance(anywhere, _jax.core.Tracer):
        return _violation(check)[0] if bool(anywhere) else None
    shape = _jax.eval_shape(lambda: _violation(check)[0])
    return _on_cpu_only_if(anywhere, lambda: _violation(check)[0],
                           lambda: _jnp.zeros(shape.shape, shape.dtype))


def _failed(checks):
    """Per matrix, whether any of the checks fails (each measured as _failure says); None
    when none can."""
    failed = None
    for check in checks:
        f = None if check is None else _failure(check)
        if f is not None:
            failed = f if failed is None else failed | f
    return failed


def _raise_if_failed(op, checks, derivatives, of="tangent"):
    """Eager: raise the error of the first check that fails, before the rule computes
    anything.  Traced (the rule's tangents or cotangents ``derivatives``, or what the checks
    read, are traced): nothing (_checked_jvp / _checked_vjp mark the results)."""
    checks = [c for c in checks if c is not None]
    if not checks or _traced([*(d for d in derivatives if d is not None),
                              *(a for c in checks for a in c.against)]):
        return
    for check in checks:
        _raise_on_violation(op, check, of)


def _checked_vjp(op, results, checks):
    """A VJP's results (the explicit pullback of <op>_vjp) where its checks pass: traced,
    NaN in the matrices that fail one (concrete arrays were checked by _raise_if_failed)."""
    checks = [c for c in checks if c is not None]
    if checks and _traced((*results, *(a for c in checks for a in c.against))):
        failed = _failed(checks)
        return results if failed is None else _nan_where(results, failed)
    return results


def _checked_jvp(op, results, checks, vjp_checks=None, primals=(), flags=(), options=()):
    """A JVP's results where its checks pass (concrete arrays were checked by
    _raise_if_failed).  Traced, the results pass through _CHECKED, a primitive that is the
    identity on them except that the matrices failing a check are NaN: applied to tangents
    (jvp, jit), it tests ``checks``; transposed (jax.grad, vjp: the JVP transposed), it tests
    the cotangents with ``vjp_checks`` (the generated _vjp_checks of ``primals``, the inputs
    and outputs, ``flags``, which outputs have cotangents, and ``options``), so that a
    cotangent the derivative does not exist for gives NaN there too.  Transposed, it also
    states each failure as a checkify.debug_check, which a checkify.checkify'd function
    reports (and which costs nothing otherwise)."""
    checks = [c for c in checks if c is not None]
    if not _traced((*results, *primals, *(a for c in checks for a in c.against))):
        return results  # (checked by _raise_if_failed)
    # a pivots check reads primal values alone: its verdict is taken here, in the forward
    # pass (a residual of the pullback, which then does not measure it again)
    checks = [_Check("failed", lambda f=_violation(c)[0]: (f,), (), c.message, c.option)
              if c.kind == "pivots" else c for c in _switched_on(checks)]
    values = [tuple(c.values()) for c in checks]
    arrays = [a for c, vs in zip(checks, values)
              for a in (*vs, *c.against, *(() if c.vector is None else (c.vector,)))]
    shapes = tuple((c.kind, len(vs), len(c.against), c.vector is not None, c.message, c.option,
                    c.size) for c, vs in zip(checks, values))
    return tuple(_CHECKED.bind(
        *results, *arrays, *primals, op=op, results=len(results), shapes=shapes,
        vjp_checks=vjp_checks, flags=tuple(flags), options=tuple(options)))


def _unflattened(arrays, shapes):
    """The checks from their arrays, as _checked_jvp laid them out."""
    checks, at = [], 0
    for kind, values, against, has_vector, message, option, size in shapes:
        vs = tuple(arrays[at:at + values])
        at += values
        ag = tuple(arrays[at:at + against])
        at += against
        vector = arrays[at] if has_vector else None
        at += has_vector
        checks.append(_Check(kind, lambda vs=vs: vs, ag, message, option, vector, size))
    return checks, at


def _checked_impl(*operands, op, results, shapes, vjp_checks, flags, options):
    checks, _ = _unflattened(operands[results:], shapes)
    outputs = operands[:results]
    return list(_nan_where(outputs, _failed(checks)) if checks else outputs)


def _checked_transpose(cotangents, *operands, op, results, shapes, vjp_checks, flags,
                       options):
    """The cotangents of the results, NaN in the matrices whose cotangents the derivative
    does not exist for; nothing for the other operands (tangent-side check values: not
    linear inputs of the results; primal values: constants)."""
    taken_in_jvp, taken = _unflattened(operands[results:], shapes)
    primals = operands[results + taken:]
    # a symbolic zero is None to the checks (they leave out its terms, as the rules do)
    given = iter(None if type(ct) is _ad.Zero else _cotangent_in(ct) for ct in cotangents)
    full = [next(given) if f else None for f in flags]
    # the pivots check of the VJP is the JVP's, whose verdict the forward pass took
    checks = [c for c in vjp_checks(*primals, *full, *options)
              if c is not None and c.kind != "pivots"]
    checks += [c for c in taken_in_jvp if c.kind == "failed"]
    failures = [(c, f) for c, f in ((c, _failure(c)) for c in checks) if f is not None]
    out = list(cotangents)
    if failures:
        failed = None
        for check, f in failures:
            _checkify.debug_check(~_jnp.any(f), f"{op}: {check.message}; pass "
                                                f"{check.option}=False to skip this check")
            failed = f if failed is None else failed | f
        # a symbolic zero stays one: the rule's terms in it are not computed (masked, it
        # would be data, and its terms computed); the NaN reaches the inputs through the
        # other cotangents
        data = [i for i, ct in enumerate(cotangents) if type(ct) is not _ad.Zero]
        for i, masked in zip(data, _nan_where([cotangents[i] for i in data], failed)):
            out[i] = masked
    return out + [None] * (len(operands) - results)


def _checked_jvp_rule(primals, tangents, *, results, **params):
    """Forward-mode derivative of _CHECKED: the same masks applied to the results'
    tangents (the masks are constants: piecewise constant in the primal values)."""
    out = _CHECKED.bind(*primals, results=results, **params)
    dots = [_ad.instantiate_zeros(t) for t in tangents[:results]]
    return out, _CHECKED.bind(*dots, *primals[results:], results=results, **params)


def _checked_batch(operands, dims, **params):
    size = next(x.shape[d] for x, d in zip(operands, dims) if d is not None)
    operands = [_batching.bdim_at_front(x, d, size) for x, d in zip(operands, dims)]
    return _CHECKED.bind(*operands, **params), [0] * params["results"]


def _checked_primitive():
    checked = _jax_core.Primitive("factorules_checked")
    checked.multiple_results = True
    checked.def_impl(_checked_impl)
    # the results' avals as they are (under shard_map they carry the varying mesh axes)
    checked.def_abstract_eval(lambda *operands, results, **params: list(operands[:results]))
    _mlir.register_lowering(checked, _mlir.lower_fun(_checked_impl, multiple_results=True))
    _ad.primitive_jvps[checked] = _checked_jvp_rule
    _ad.primitive_transposes[checked] = _checked_transpose
    _batching.primitive_batchers[checked] = _checked_batch
    return checked


_CHECKED = _checked_primitive()


def _transposed(outputs, flags):
    """Outputs a call returns transposed (the spec's 'transposed'), turned back."""
    return tuple(_jnp.swapaxes(y, -1, -2) if f else y for y, f in zip(outputs, flags))


def _unbatched(fn, *arrays):
    """``fn`` of single matrices (jax.scipy.linalg.lu takes one) vectorized over the batch
    axes with jax.vmap; a tuple of its results."""
    batch = arrays[0].shape[:-2]
    flat = [a.reshape((_np.prod(batch, dtype=int),) + tuple(a.shape[-2:])) for a in arrays]
    out = _jax.vmap(fn)(*flat)
    return tuple(y.reshape(batch + y.shape[1:]) for y in out)


def _pivots_permutation(pivots, like):
    """The permutation matrix P (A = P L U) of LAPACK pivots held as a (..., k, 1) column
    (row i swapped with row pivots[i] - 1, in order); like's dtype, m = its rows."""
    m = like.shape[-2]
    perm = _jax.lax.linalg.lu_pivots_to_permutation(pivots[..., 0] - 1, m)
    # LU = P^T A, whose row i is A's row perm[i]: P's column i is e_perm[i]
    count = _lifted(_jnp.arange(m, dtype=perm.dtype)[:, None], perm.ndim + 1)
    return (perm[..., None, :] == count).astype(like.dtype)


def _zero_tangent(y):
    """The zero tangent of an output that has none: float0 for integers (pivots), as JAX
    requires, zeros of y's dtype otherwise."""
    if _jnp.issubdtype(y.dtype, _jnp.integer):
        return _np.zeros(y.shape, dtype=_jax.dtypes.float0)
    return _jnp.zeros_like(y)


def _indices(indices, like):
    """Column numbers a call returned (a (..., n, 1) column), as returned to users: for a
    matrix with no rows every order is a pivoting, and the identity order (SciPy's) is
    returned whatever the call gave (JAX's pivoted QR gives zeros, jax 0.10.2)."""
    if like.shape[-2] == 0:
        count = _jnp.arange(like.shape[-1], dtype=indices.dtype)[:, None]
        return _jnp.broadcast_to(count, indices.shape)
    return indices
