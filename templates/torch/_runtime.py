"""Helpers the generated PyTorch rules call: checks and the few structural operations
torch has no single call for.  All are differentiable torch code on (..., rows, cols).

Hand-written, not generated: ``python cli.py generate`` copies this file, under its header, into
generated/torch/.  The few helpers that need no array operation of NumPy's kind (the checks'
verdicts among them) come from templates/_runtime_shared.py (``xp`` = torch, _array_module.py).

Under torch.compile the generated ops trace their rules like any torch code; what dynamo cannot
trace (a NumPy/SciPy primal) runs as a torch.library operator (_host_op).
"""
import ast as _ast
import math as _math

import numpy as _np
import torch as _torch

from . import _fused
from ._runtime_shared import (
    _check, _check_array, _check_like, _cotangent_in, _cotangent_out, _host_unbatched,
    _joined_rows, _LazyModule, _no_derivative, _projected, _row_blocked, _row_blocks,
    _sum_rows, _native_shapes, _unpacked, _version_tuple, _zeros_like)

# SciPy, for the host fallbacks alone (their calls name _scipy.linalg): imported on first use
_scipy = _LazyModule("scipy", ("linalg",))

# what the generated rules import from here
__all__ = [
    "_same_dtype",
    "_is_complex",
    "_addmm", "_check_input", "_check_tangent", "_columns", "_complex", "_copyltu",
    "_apply", "_check", "_checked_jvp", "_checked_vjp", "_cotangent_in", "_cotangent_out",
    "_fused_vjp",
    "_raise_if_failed",
    "_diagonal_skew", "_empty_like", "_host_op", "_im",
    "_indices", "_indices_permutation", "_laid_out_like", "_materialized", "_mm", "_mm_like", "_np",
    "_plus_diag", "_joined_rows", "_put_rows", "_row_blocked", "_row_blocks", "_sum_rows",
    "_on_host", "_pad_cols", "_pad_rows", "_pairwise_inv", "_permute_cols", "_permute_rows",
    "_pivots_permutation", "_re", "_scipy", "_skew", "_skew_diag", "_solve_sylvester",
    "_solve_hessenberg_sylvester", "_solve_tril_sylvester", "_sym", "_to_field",
    "_transposed", "_tril_diag", "_triu_herm", "_unbatched", "_unit_tril", "_native_shapes",
    "_unpacked",
    "_version_tuple", "_zeros_like"]


def _check_input(op, name, x, ndim=2):
    if not isinstance(x, _torch.Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(x).__name__}")
    return _check_array(op, name, x, ndim)


def _check_tangent(op, name, t, x):
    if not isinstance(t, _torch.Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(t).__name__}")
    return _check_like(op, name, t, x)


def _empty_like(x):
    return x.new_empty(0)


def _re(x):
    # x.real of a real tensor is an alias, which has no batching rule under vmap
    return x.real if x.is_complex() else x


def _copyltu(x):
    # tril(x, -1) + its adjoint + diag(re(diagonal(x))): the diagonal of L + L^H is exactly
    # 2 re(diagonal(x)), and halving it is exact.  In place on a fresh tensor (autograd and
    # torch.func record it); no diagonal matrix is built.
    lower = x.tril()
    out = _add_adjoint(lower)
    out.diagonal(dim1=-2, dim2=-1).mul_(0.5)
    return out


def _triu_herm(x):
    # triu(x + x^H, 1) + diag(re(diagonal(x))), computed as torch's own QR rules do.
    out = _add_adjoint(x).triu()
    out.diagonal(dim1=-2, dim2=-1).mul_(0.5)
    return out


def _materialized(x):
    """x as a tensor of its own, not a view (a transpose) of another: an output of the
    primal that is a view breaks torch's batched forward AD (an internal layout assert).
    Under torch.compile x itself: the compiled op has no forward AD, and dynamo cannot read
    whether a tensor is a view."""
    if _torch.compiler.is_compiling():
        return x
    return x.clone() if x._is_view() else x


def _tril_diag(x, scale):
    # tril(x, -1) + scale * diag(re(diagonal(x))), in one pass over a fresh lower triangle.
    out = x.tril()
    d = out.diagonal(dim1=-2, dim2=-1)
    if out.is_complex():
        d.copy_(d.real * scale)
    else:
        d.mul_(scale)
    return out


def _unit_tril(x):
    """tril(x, -1) + eye(rows, cols), its diagonal written into a fresh lower triangle."""
    out = x.tril(-1)
    out.diagonal(dim1=-2, dim2=-1).fill_(1)
    return out


def _add_adjoint(x):
    """x + x^H, stored row-major: x^H + x is the same sum, and an elementwise result is laid
    out like its first operand.  A row-major factor next to a column-major LAPACK factor
    leaves _addmm free to lay a product out like the term it is added to."""
    return x.mH + x if _colmajor(x) else x + x.mH


def _colmajor(x):
    """True when each matrix of x is stored column by column (as LAPACK returns them)."""
    return not x.is_contiguous() and x.mT.is_contiguous()


def _mm(a, b):
    """a @ b, laid out like b: when b is column-major it is computed as (b^T a^T)^T.

    Two column-major operands (LAPACK's results, cotangents shaped like them) then reach
    BLAS as two row-major ones: MKL's GEMM with both operands transposed runs at about half
    speed on large real matrices.  And a product ending in a LAPACK factor keeps that
    factor's layout, so that torch's forward AD need not copy it to match its primal.
    """
    a, b = _same_dtype(a, b)
    if _colmajor(b):
        return (b.mT @ a.mT).mT
    return a @ b


def _mm_like(a, b, like):
    """a @ b laid out like ``like``: a cotangent like the input it is for (autograd's
    AccumulateGrad copies one of another layout into its input's), a tangent like its
    primal (forward AD copies it likewise) -- the transposing copy of an m x n result costs
    as much as a tall product.  Which operands are transposed costs GEMM nothing measurable
    here (MKL, 2 threads: 1024 x 256 x 256 to 2048 x 512 x 2048 float64 within 3%)."""
    a, b = _same_dtype(a, b)
    if _colmajor(like):
        return (b.mT @ a.mT).mT
    return a @ b


def _put_rows(out, rows, start, total):
    """``rows`` written into rows start: of ``out``, a stack of ``total``-row matrices made at
    the first block (``out`` None) like the block (its batch shape, type and device; batched
    under vmap); written in place, which autograd and forward AD differentiate."""
    if out is None:
        out = rows.new_empty((*rows.shape[:-2], total, rows.shape[-1]))
    out[..., start:start + rows.shape[-2], :] = rows
    return out


def _plus_diag(x, v):
    """x + diag(v) for a stack of square x and (..., n, 1) columns v: v added to the diagonal
    of a copy of x (diagonal_scatter: differentiable, traced and vmapped like any op), where
    building diag(v) and adding it would pass over an n x n array three times."""
    d = x.diagonal(dim1=-2, dim2=-1) + v.squeeze(-1)
    if d.dtype != x.dtype or d.shape != x.shape[:-1]:  # v promotes x, or broadcasts it
        return x + _torch.diag_embed(v.squeeze(-1))
    return _torch.diagonal_scatter(x, d, dim1=-2, dim2=-1)


def _same_dtype(a, b):
    """torch's matmul does not promote: a real tangent times a complex factor (eig of a
    real matrix) is promoted here."""
    if a.dtype == b.dtype:
        return a, b
    common = _torch.promote_types(a.dtype, b.dtype)
    return a.to(common), b.to(common)


def _addmm(c, a, b, alpha=1):
    """c + alpha * (a @ b), with the product laid out like c where that costs GEMM nothing.

    An elementwise sum of a row-major and a column-major matrix is slow (one of them is read
    across its rows); a LAPACK result or an autograd cotangent c is often column-major while
    a @ b is row-major.  So a @ b is computed as (b^T a^T)^T when c is column-major, unless
    that would hand GEMM two transposed operands (see _mm).  The sum is not folded into the
    GEMM (torch.addmm): with c accumulated inside it, MKL's result is measurably less
    accurate (about 1.7x the rounding error of the separate sum on random data).
    """
    a, b = _same_dtype(a, b)
    col_a, col_b = _colmajor(a), _colmajor(b)
    transposed = col_a if col_a == col_b else _colmajor(c)
    p = (b.mT @ a.mT).mT if transposed else a @ b
    if alpha == 1:
        return c + p
    if _torch.compiler.is_compiling():
        # inductor (torch 2.13) rewrites add(c, mm(a, b), alpha) into addmm(c, a, b) and drops
        # alpha (its post-grad 'addmm' pattern): the same sum, written without add's alpha
        return c - p if alpha == -1 else c + alpha * p
    return _torch.add(c, p, alpha=alpha)


def _sym(x):
    """(x + x^H) / 2, halved in the sum's own fresh array (no second result; the sum's
    backward reads no output, so the in-place halving is differentiable)."""
    return (x + x.mH).mul_(0.5)


def _skew(x):
    """(x - x^H) / 2, as _sym."""
    return (x - x.mH).mul_(0.5)


def _im(x):
    return x.imag if x.is_complex() else _torch.zeros_like(x)


def _diagonal_skew(x):
    """diagonal(skew(x)) as (..., n, 1) columns, as templates/_runtime_shared.py's: i im(x_jj),
    zeros for a real x."""
    d = x.diagonal(dim1=-2, dim2=-1).unsqueeze(-1)
    return (d - d.conj()).mul_(0.5) if x.is_complex() else _torch.zeros_like(d)


def _skew_diag(v):
    """skew(diag(v)) of (..., n, 1) columns v: diag(i im(v)); for a real v zeros, a broadcast
    view of v's column of them (no n x n array)."""
    if not v.is_complex():
        return _torch.zeros_like(v).expand(*v.shape[:-1], v.shape[-2])
    return _torch.diag_embed((v - v.conj()).mul_(0.5).squeeze(-1))


def _pad_rows(x, extra):
    return _torch.cat([x, x.new_zeros(*x.shape[:-2], extra, x.shape[-1])], dim=-2)


def _pad_cols(x, extra):
    return _torch.cat([x, x.new_zeros(*x.shape[:-1], extra)], dim=-1)


def _laid_out_like(t, y):
    """The tangent t with the memory layout of its primal y: forward AD through a view of y
    (a slice, a transpose) requires the two to match (a LAPACK factor is column-major, a
    rule's sum of products need not be)."""
    if t.shape != y.shape or t.stride() == y.stride():
        return t
    # out of place (a copy into y's layout would be an in-place op, which vmap refuses)
    if y.mT.is_contiguous():
        return t.mT.contiguous().mT
    if y.is_contiguous():
        return t.contiguous()
    return t


def _columns(outputs, vectors):
    """Outputs as the rules hold them: a vector (..., n) as a column (..., n, 1), a tensor of
    its own (an autograd.Function that returns a view breaks forward AD)."""
    return tuple(y.unsqueeze(-1).clone() if v else y for y, v in zip(outputs, vectors))


def _complex(outputs, flags):
    """Outputs the spec declares complex (dtype: complex) as complex tensors."""
    return tuple(y.to(_torch.promote_types(y.dtype, _torch.complex64)) if f else y
                 for y, f in zip(outputs, flags))


def _to_field(g, x):
    """The cotangent of a real input is the real part (an input's tangents are real)."""
    return g.real if g is not None and g.is_complex() and not x.is_complex() else g


def _pairwise_inv(v):
    """F[..., i, j] = 1 / (v_j - v_i) for a (..., n, 1) column v; 0 at ties: where
    |v_j - v_i| <= n eps max|v| (equal up to rounding), the diagonal included.  Where no
    two values of the batch can tie (_any_close_neighbours, read with no graph or vmap to
    keep differentiable), the reciprocals of the gaps in place with a zero diagonal: two
    passes over the n x n array where the masked form takes six."""
    gaps = v.mT - v
    tol = _tie_tolerance(v)
    if _untraced_constant(v) and not bool(_any_close_neighbours(
            _projected(v) if v.is_complex() else v, tol)):
        inverse = gaps.reciprocal_()
        inverse.diagonal(dim1=-2, dim2=-1).zero_()
        return inverse
    tie = gaps.abs() <= tol
    return _torch.where(tie, 0, 1 / _torch.where(tie, 1, gaps))


def _sylvester_by_eigh(a, b, c, la=None, qa=None, lb=None, qb=None):
    """X with A X + X B = C, A and B Hermitian: in their eigenvector bases the equation is
    elementwise, X = Q_A ((Q_A^H C Q_B) / (a_i + b_j)) Q_B^H (one eigensolver when A is B,
    none where the rules hand their eigendecompositions over: la, qa, lb, qb, eigenvalues
    as columns).  Its derivative is not taken through here (_SylvesterFunction)."""
    dtype = _torch.promote_types(_torch.promote_types(a.dtype, b.dtype), c.dtype)
    if c.shape[-1] == 0 or c.shape[-2] == 0:
        batch = _torch.broadcast_shapes(a.shape[:-2], b.shape[:-2], c.shape[:-2])
        return c.new_zeros(batch + c.shape[-2:], dtype=dtype)
    la, qa = _torch.linalg.eigh(a) if qa is None else (la.squeeze(-1), qa)
    if qb is not None:
        lb, qb = lb.squeeze(-1), qb
    else:
        lb, qb = (la, qa) if b is a else _torch.linalg.eigh(b)
    qa, qb, c = qa.to(dtype), qb.to(dtype), c.to(dtype)
    inner = (qa.mH @ c @ qb) / (la.unsqueeze(-1) + lb.unsqueeze(-2))
    return qa @ inner @ qb.mH


def _sylvester_context(ctx, inputs, output):
    """What _sylvester_backward needs, for both autograd.Functions."""
    a, b, c, *bases = inputs
    ctx.save_for_backward(a, b, output, *(x for x in bases if x is not None))
    ctx.bases = [x is not None for x in bases]
    ctx.c_complex = c.is_complex()
    ctx.set_materialize_grads(False)


def _saved_sylvester(ctx):
    """(A, B, X, the eigenbases given: la, qa, lb, qb or None each)."""
    a, b, x, *given = ctx.saved_tensors
    given = iter(given)
    return a, b, x, [next(given) if kept else None for kept in ctx.bases]


def _sylvester_backward(ctx, gx):
    """The cotangents of A, B and C: with G = solve_sylvester(A, B, gX) (the map C -> X is
    its own adjoint for Hermitian A and B), gC = G, gA = -G X^H, gB = -X^H G; none of the
    eigenbases (they are A's and B's, not inputs of their own)."""
    if gx is None:
        return (None,) * 7
    a, b, x, bases = _saved_sylvester(ctx)
    g = _solve_sylvester(a, b, gx, *bases)
    ga = -(g @ x.mH) if ctx.needs_input_grad[0] else None
    gb = -(x.mH @ g) if ctx.needs_input_grad[1] else None
    gc = g.real if g.is_complex() and not ctx.c_complex else g  # a real C's is real
    return _to_field(ga, a), _to_field(gb, b), gc, None, None, None, None


class _SylvesterFunction(_torch.autograd.Function):
    """solve_sylvester(A, B, C) differentiated by its own rule in both modes (and so to any
    order, the rule being written with this function): dX = solve_sylvester(A, B, dC - dA X
    - X dB).  Torch's derivative of the eigensolver would be singular where A has tied
    eigenvalues (the polar decomposition of a matrix with orthogonal columns), this is not.
    The eigenbases of A and B (la, qa, lb, qb), where given, are constants: the solve is a
    function of A, B and C alone."""

    generate_vmap_rule = True

    @staticmethod
    def forward(a, b, c, la, qa, lb, qb):
        return _sylvester_by_eigh(a, b, c, la, qa, lb, qb)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _sylvester_context(ctx, inputs, output)
        ctx.save_for_forward(*inputs[:2], output, *(x for x in inputs[3:] if x is not None))

    @staticmethod
    def backward(ctx, gx):
        return _sylvester_backward(ctx, gx)

    @staticmethod
    def jvp(ctx, da, db, dc, *_):
        a, b, x, bases = _saved_sylvester(ctx)
        inner = _torch.zeros_like(x) if dc is None else dc.to(x.dtype)
        if da is not None:
            inner = inner - da.to(x.dtype) @ x
        if db is not None:
            inner = inner - x @ db.to(x.dtype)
        return _solve_sylvester(a, b, inner, *bases)


class _SylvesterCompiledFunction(_torch.autograd.Function):
    """_SylvesterFunction as torch.compile traces it: without the jvp dynamo refuses."""

    @staticmethod
    def forward(a, b, c, la, qa, lb, qb):
        return _sylvester_by_eigh(a, b, c, la, qa, lb, qb)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _sylvester_context(ctx, inputs, output)

    @staticmethod
    def backward(ctx, gx):
        return _sylvester_backward(ctx, gx)


def _solve_sylvester(a, b, c, la=None, qa=None, lb=None, qb=None, *, eig_a=None, eig_b=None):
    """X with A X + X B = C for Hermitian A and B (see _SylvesterFunction); eig_a, eig_b:
    the rules' (eigenvalues as a column, eigenvectors) of A and B, where they have them."""
    if eig_a is not None:
        la, qa = eig_a
    if eig_b is not None:
        lb, qb = eig_b
    return _apply(_SylvesterFunction, _SylvesterCompiledFunction, a, b, c, la, qa, lb, qb)


def _solve_tril_sylvester(t, c, adjoint=False):
    """The strictly lower X with tril(X S - S X, -1) = tril(C, -1), S = triu(T) or T^H
    (templates/_runtime_shared.py's _tril_sylvester_by_columns), each column a new tensor
    (nothing written in place): autograd differentiates the loop, which is rational in T and
    C, to any order."""
    n = t.shape[-1]
    dtype = _torch.promote_types(t.dtype, c.dtype)
    batch = _torch.broadcast_shapes(t.shape[:-2], c.shape[:-2])
    s, c = t.triu().to(dtype), c.to(dtype)
    if adjoint:
        s = s.mH
    columns = [c.new_zeros(batch + (n, 1))] * n
    for j in (range(n - 2, -1, -1) if adjoint else range(n - 1)):
        # the columns k already solved are those with S[k, j] != 0 (k < j, or k > j)
        known = slice(j + 1, n) if adjoint else slice(0, j)
        rhs = c[..., j + 1:, j:j + 1]
        if known.start < known.stop:
            solved = _torch.cat([x[..., j + 1:, :] for x in columns[known]], -1)
            rhs = rhs - solved @ s[..., known, j:j + 1]
        eye = _torch.eye(n - j - 1, dtype=dtype, device=s.device)
        shifted = s[..., j:j + 1, j:j + 1] * eye - s[..., j + 1:, j + 1:]
        solution = _torch.linalg.solve_triangular(shifted, rhs, upper=not adjoint)
        columns[j] = _torch.cat([rhs.new_zeros(solution.shape[:-2] + (j + 1, 1)), solution], -2)
    if n == 0:
        return c.new_zeros(batch + (0, 0))
    return _torch.cat([x.expand(batch + (n, 1)) for x in columns], -1)



def _solve_hessenberg_sylvester(h, c, adjoint=False):
    """The skew-Hermitian Om, first row and column zero, with C - (Om S - S Om) Hessenberg
    with a real subdiagonal, S = triu(H, -1) (adjoint=True: its transpose), as
    templates/_runtime_shared.py's _hessenberg_sylvester_by_columns, each column a new
    tensor (nothing written in place): autograd differentiates the loop, which is rational
    in H and C, to any order."""
    n = h.shape[-1]
    dtype = _torch.promote_types(h.dtype, c.dtype)
    batch = _torch.broadcast_shapes(h.shape[:-2], c.shape[:-2])
    s, c = h.triu(-1).to(dtype), c.to(dtype).expand(batch + (n, n))
    if n == 0:
        return c.new_zeros(batch + (0, 0))
    sub = s.diagonal(-1, -2, -1)
    phases = dtype.is_complex and n > 1
    zero = c.new_zeros(batch + (n, 1))
    columns = [zero] * n
    if not adjoint:
        for j in range(n - 2):
            known = _torch.cat(columns[:j + 1], -1)
            rhs = c[..., j + 2:, j:j + 1] - known[..., j + 2:, :] @ s[..., :j + 1, j:j + 1] \
                + s[..., j + 2:, :] @ columns[j]
            solved = rhs / s[..., j + 1:j + 2, j:j + 1]
            columns[j + 1] = _torch.cat([c.new_zeros(batch + (j + 2, 1)), solved], -2)
        x = _torch.cat(columns, -1)
        out = x - x.mH
        if phases:
            residual = c - x @ s + s @ x
            steps = residual.diagonal(-1, -2, -1).imag / sub.real
            phi = _torch.cat([steps.new_zeros(batch + (1,)), steps.cumsum(-1)], -1)
            out = out + _torch.diag_embed(phi * 1j)
        return out
    g = c - c.mH
    sh = s.mH
    if phases:
        diagonal = c.diagonal(0, -2, -1)[..., 1:].imag
        later = diagonal.flip(-1).cumsum(-1).flip(-1)  # sum of im(C[l, l]) over l > j
        subdiagonal = _torch.diag_embed(later / sub.real * 1j, -1)
        columns = list(subdiagonal.split(1, -1))
    for j in range(n - 3, -1, -1):
        known = _torch.cat(columns[j + 1:], -1)
        rhs = g[..., j + 2:, j + 1:j + 2] - known[..., j + 2:, :] @ sh[..., j + 1:, j + 1:j + 2] \
            + sh[..., j + 2:, :] @ columns[j + 1]
        solved = rhs / s[..., j + 1:j + 2, j:j + 1].conj()
        columns[j] = columns[j] + _torch.cat([c.new_zeros(batch + (j + 2, 1)), solved], -2)
    return _torch.cat(columns, -1)


def _untraced_constant(x):
    """Whether x is a CPU tensor that can be read (no torch.compile, no vmap: no graph break,
    no host synchronisation) and that no derivative is taken of (no graph recorded)."""
    return (x.device.type == "cpu" and not _torch.compiler.is_compiling() and not _batched(x)
            and not (x.requires_grad and _torch.is_grad_enabled()))


def _batched(x):
    """A tensor of a vmap (torch.func's, or the legacy one of autograd.grad's
    is_grads_batched): no single value to test."""
    return (_torch._C._functorch.is_functorch_wrapped_tensor(x)
            or _torch._C._functorch.is_legacy_batchedtensor(x))


def _traced(tensors):
    """Whether a rule runs traced: under torch.compile, or on tensors of a torch.func
    transform or vmap, where a check neither raises nor reads a value (no host
    synchronisation) and marks the failing matrices' results NaN instead."""
    return _torch.compiler.is_compiling() or any(_batched(t) for t in tensors)


def _matrix_max(x, empty=0.0):
    """The largest entry of each matrix of a real stack; ``empty`` for matrices without
    entries."""
    if x.shape[-2] * x.shape[-1] == 0:
        return _torch.full(x.shape[:-2], empty, dtype=x.dtype, device=x.device)
    return x.amax(dim=(-2, -1))


def _largest(tensors):
    """The largest |entry| of each matrix, over tensors of one batch shape."""
    out = None
    for t in tensors:
        m = _abs_max(t)
        out = m if out is None else _torch.maximum(out, m)
    return out


def _abs_max(t):
    """The largest |entry| of each matrix of t.  A complex one's from the largest
    re^2 + im^2 of each matrix (two passes over real views: the modulus of every entry,
    hypot's, costs five times as much on the CPU); its moduli where that square leaves the
    dtype's normal range (|entry| above 1e154 or below 1e-154 in double, or 0), and where a
    rule runs traced (no value read)."""
    if not t.is_complex() or t.shape[-2] * t.shape[-1] == 0 or _traced((t,)):
        return _matrix_max(t.abs())
    squared = _matrix_max(t.real.square().add_(t.imag.square()))
    info = _torch.finfo(squared.dtype)
    if bool(((squared > info.max) | (squared < info.tiny)).any()):
        return _matrix_max(t.abs())
    return squared.sqrt()


def _is_complex(x):
    """Whether x is complex (templates/_runtime_shared.py's _is_complex)."""
    return x.is_complex()


def _tie_tolerance(v):
    """k eps max|v| per matrix of the (..., k, 1) column v, as (..., 1, 1): two values at most
    this far apart tie (equal up to rounding)."""
    return v.shape[-2] * _torch.finfo(v.dtype).eps * _matrix_max(v.abs())[..., None, None]


def _tie_mask(v):
    """T[..., i, j]: entries i != j of the (..., k, 1) column v that tie, |v_j - v_i| <= k eps
    max|v| (the zeros of _pairwise_inv off its diagonal)."""
    gaps = (v.mT - v).abs()
    tol = _tie_tolerance(v)
    eye = _torch.eye(v.shape[-2], dtype=_torch.bool, device=v.device)
    return (gaps <= tol) & ~eye


def _pivot_limit(a, size=None):
    """max(m, n) eps ||A||_F per matrix of the (..., m, n) stack A: pivots at most this are
    zero.  ``size``: max(m, n) where ``a`` is not A but a stack of A's norm (svd's S)."""
    norm = _torch.linalg.vector_norm(a, dim=(-2, -1))
    size = max(a.shape[-2], a.shape[-1]) if size is None else size
    return size * _torch.finfo(a.dtype).eps * norm


def _zero_mask(check):
    """Z[..., 0, j]: whether pivot j of a 'zeros' check is zero (a row, to mask columns)."""
    return check.vector.abs().mT <= _pivot_limit(check.against[0], check.size)[..., None, None]


def _mask(check):
    """The entries a 'ties' or 'zeros' check reads: its tie mask or zero mask."""
    return _zero_mask(check) if check.kind == "zeros" else _tie_mask(check.vector)


def _any_entry(check):
    """Whether the mask of a 'ties' or 'zeros' check may have an entry anywhere in the batch,
    as templates/_runtime_shared.py's _any_entry reads it (ties from sorted neighbours: of
    the values, or of complex values' projections onto a line, which a tie's are)."""
    v = check.vector
    if check.kind == "zeros":
        return _mask(check).any()
    return _any_close_neighbours(_projected(v) if v.is_complex() else v, _tie_tolerance(v))


def _any_close_neighbours(p, tol):
    """templates/_runtime_shared.py's, in torch operations (sort returns values and indices)."""
    s = p.sort(dim=-2).values
    return ((s[..., 1:, :] - s[..., :-1, :]) <= tol).any()


def _violation(check, mask=None, values=None):
    """(failed, value, limit) per matrix of the batch, as templates/_runtime_shared.py's
    _violation measures them, in torch operations."""
    values = check.values() if values is None else values
    if check.kind == "tied":  # any tie fails: the number of tied pairs, against 0
        tied = _tie_mask(check.vector) if mask is None else mask
        value = tied.to(check.vector.real.dtype).sum((-2, -1)) * 0.5
        return value > 0, value, _torch.zeros_like(value)
    if check.kind == "pivots":
        value = None
        for p in values:
            smallest = -_matrix_max(-p.abs(), -float("inf"))
            value = smallest if value is None else _torch.minimum(value, smallest)
        limit = _pivot_limit(check.against[0], check.size)
        return value <= limit, value, limit
    derivatives = check.against[1:] if check.kind == "zeros" else check.against
    limit = _torch.finfo(values[0].dtype).eps ** 0.5 * _largest(derivatives)
    if check.kind == "zeros":
        zero = _zero_mask(check) if mask is None else mask
        value = None
        for m in values:
            worst = _matrix_max(_torch.where(zero, m.abs(), 0))
            value = worst if value is None else _torch.maximum(value, worst)
    elif check.kind == "ties":
        tied = _tie_mask(check.vector) if mask is None else mask
        value = None
        for m in values:
            d = m.diagonal(dim1=-2, dim2=-1).unsqueeze(-1)
            off = _torch.maximum(m.abs(), (d.mT - d).abs())
            worst = _matrix_max(_torch.where(tied, off, 0))
            value = worst if value is None else _torch.maximum(value, worst)
    else:
        value = _largest(values)
    return value > limit, value, limit


def _raise_on_violation(op, check, of):
    """Raise the error of a failed check (eager).  A 'ties' or 'zeros' check with no tied
    values or zero pivots computes nothing more."""
    with _torch.no_grad():
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
            first = int(failed.reshape(-1).to(_torch.uint8).argmax())
            raise _no_derivative(op, check, float(value.reshape(-1)[first]),
                                 float(limit.reshape(-1)[first]), of)


def _nan_where(results, failed):
    """The results, NaN in the matrices that failed (a product, which autograd and
    transforms carry through)."""
    mask = _torch.where(failed, float("nan"), 1.0)[..., None, None]
    return tuple(r * mask.to(r.real.dtype if r.is_complex() else r.dtype) for r in results)


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


def _vmapped():
    """Whether a torch.func.vmap is running (a level of it, under grad or jvp too)."""
    from torch._functorch.pyfunctorch import retrieve_all_functorch_interpreters
    return any(i.key() == _torch._C._functorch.TransformType.Vmap
               for i in retrieve_all_functorch_interpreters())


def _passes_for_want_of_entries(check):
    """Whether a 'ties' or 'zeros' check passes because no value of the batch ties or
    vanishes, where that can be read with no host synchronisation or graph break: a CPU
    mask, outside torch.compile and vmap (torch.func's jvp and grad).  Its values (products)
    are then not computed, as in eager code."""
    if check.kind not in ("ties", "tied", "zeros") or _torch.compiler.is_compiling():
        return False
    anywhere = _any_entry(check)
    if (anywhere.device.type != "cpu" or _vmapped()
            or _torch._C._functorch.is_legacy_batchedtensor(anywhere)):
        return False
    return not bool(anywhere)


def _checked(results, checks):
    """Traced: the results, NaN in the matrices that fail a check.  Eager: the results (the
    checks passed in _raise_if_failed)."""
    checks = [c for c in checks if c is not None]
    if not checks or not _traced((*results, *(a for c in checks for a in c.against))):
        return results
    checks = [c for c in checks if not _passes_for_want_of_entries(c)]
    if not checks:
        return results
    failed = None
    for check in checks:
        f = _violation(check)[0]
        failed = f if failed is None else failed | f
    return _nan_where(results, failed)


def _checked_jvp(op, results, checks, vjp_checks=None, primals=(), flags=(), options=()):
    """A JVP's results where its checks pass (traced: NaN where they fail)."""
    return _checked(results, checks)


def _checked_vjp(op, results, checks):
    """A VJP's results where its checks pass (traced: NaN where they fail)."""
    return _checked(results, checks)


def _transposed(outputs, flags):
    """Outputs a call returns transposed (the spec's 'transposed'), turned back (a tensor of
    its own, not a view)."""
    return tuple(y.mT.clone() if f else y for y, f in zip(outputs, flags))


def _unbatched(fn, *arrays):
    """``fn`` of single matrices applied to every matrix of a stack; its results stacked
    back.  A zero-size stack calls it once on an identity for the shapes of its results."""
    batch = arrays[0].shape[:-2]
    flat = [a.reshape((batch.numel(),) + tuple(a.shape[-2:])) for a in arrays]
    count = flat[0].shape[0]
    first = fn(*(a[0] if count else _torch.eye(*a.shape[1:], dtype=a.dtype, device=a.device)
                 for a in flat))
    rest = [fn(*(a[i] for a in flat)) for i in range(1, count)]
    return tuple(_torch.stack([r[j] for r in [first, *rest]])[:count].reshape(
        batch + first[j].shape) for j in range(len(first)))


def _pivots_permutation(pivots, like):
    """The permutation matrix P (A = P L U) of LAPACK pivots held as a (..., k, 1) column,
    by torch.lu_unpack (which reads only the shape of like); like's dtype."""
    return _torch.lu_unpack(like, pivots[..., 0].to(_torch.int32), unpack_data=False)[0]


def _permute_rows(p, x, transpose):
    """P @ X, or P^T @ X when transpose, for a permutation matrix P: a gather of X's rows,
    (P X)[j] = X[i] and (P^T X)[i] = X[j] where P[j, i] = 1 (differentiable in X).  The row
    numbers come from one product with (0, 1, ..., m-1), faster than an argmax across rows."""
    m = p.shape[-1]
    if m == 0:
        return x
    real = p.real if p.is_complex() else p
    count = _torch.arange(m, dtype=real.dtype, device=real.device)
    index = (count @ real if transpose else real @ count).round().long()
    batch = _torch.broadcast_shapes(index.shape[:-1], x.shape[:-2])
    return _torch.gather(x.expand(*batch, *x.shape[-2:]), -2,
                         index.expand(*batch, m).unsqueeze(-1).expand(*batch, m, x.shape[-1]))



def _indices(indices, like):
    """Column numbers a call returned (a (..., n, 1) column), as returned to users: for a
    matrix with no rows every order is a pivoting, and the identity order (SciPy's) is
    returned whatever the call gave (JAX's pivoted QR gives zeros, jax 0.10.2)."""
    if like.shape[-2] == 0:
        count = _torch.arange(like.shape[-1], dtype=indices.dtype, device=indices.device)
        return count[:, None].expand(indices.shape).clone()
    return indices


def _indices_permutation(indices, like):
    """The permutation matrix Pi of column numbers held as a (..., n, 1) column, with
    A Pi = A[..., indices]: Pi[indices[j], j] = 1; like's dtype and device, n = its columns."""
    n = like.shape[-1]
    count = _torch.arange(n, device=indices.device)[:, None]
    return (indices[..., 0].unsqueeze(-2) == count).to(like.dtype)


def _permute_cols(p, x, transpose):
    """X @ P, or X @ P^T when transpose, for a permutation matrix P: a gather of X's
    columns, (P^T X^T)^T or (P X^T)^T (differentiable in X)."""
    return _permute_rows(p, x.mT, not transpose).mT


def _on_host(fn, arrays, batched):
    """``fn``, NumPy/SciPy code for a routine torch lacks (the spec's 'host: true'), on host
    copies of the arrays; its results are moved back to the first array's device (one copy
    each way).  batched=False: fn takes one matrix and is mapped over the batch axes."""
    if isinstance(arrays[0], _torch._subclasses.FakeTensor):
        return _host_like(fn, arrays, batched)
    device = arrays[0].device
    host = [a.detach().resolve_conj().cpu().numpy() for a in arrays]
    results = fn(*host) if batched else _host_unbatched(fn, host)
    return tuple(_torch.from_numpy(_np.ascontiguousarray(y)).to(device) for y in results)


def _host_like(fn, arrays, batched):
    """Empty tensors with the shapes and dtypes of _on_host's results, for the fake tensors
    of torch.compile (which have no values): ``fn`` is run once on identities of one matrix's
    shape, as _host_unbatched does for a zero-size stack, for the shapes of its results."""
    batch = tuple(arrays[0].shape[:-2])
    eyes = [_np.eye(int(a.shape[-2]), int(a.shape[-1]),
                    dtype=_np.dtype(str(a.dtype).removeprefix("torch."))) for a in arrays]
    results = fn(*(e[None] for e in eyes)) if batched else fn(*eyes)
    return tuple(arrays[0].new_empty(batch + _np.shape(y)[1 if batched else 0:],
                                     dtype=getattr(_torch, _np.asarray(y).dtype.name))
                 for y in results)


# -- torch.compile: what dynamo cannot trace, as torch.library operators ----------------------
# A generated package may be imported more than once (under other names): each import
# defines operators of its own, named after its modules.
_NAMESPACE = "factorules"


def _operator_name(module, what):
    """A name for an operator of ``module`` that no operator has yet."""
    base = f"{module}_{what}".replace(".", "_")
    name, count = base, 0
    while hasattr(getattr(_torch.ops, _NAMESPACE), name):
        count += 1
        name = f"{base}_{count}"
    return name


def _apply(eager, compiled, *args):
    """``eager.apply(*args)``, the operation's autograd.Function; under torch.compile
    ``compiled``, the same without the jvp that dynamo refuses.  Inside a torch.func transform
    (grad, vmap, jacrev, ...) dynamo would trace the forward alone and differentiate the
    primal by torch's own rules (or none): there the eager autograd.Function runs, outside
    the graph (a graph break; an error under fullgraph=True)."""
    if not _torch.compiler.is_compiling():
        return eager.apply(*args)
    if _torch._C._are_functorch_transforms_active():
        return _apply_outside_graph(eager, *args)
    return compiled.apply(*args)


@_torch.compiler.disable(reason="a factorules operation inside a torch.func transform runs "
                                 "eagerly: traced, its own derivative rules would be dropped")
def _apply_outside_graph(function, *args):
    return function.apply(*args)


def _host_op(module, primal, count):
    """``primal``, a spec's 'host: true' primal (NumPy/SciPy code through _on_host), as an
    operator that torch.compile calls without tracing into it; its fake implementation is
    the same primal, which _on_host then answers with empty tensors (_host_like).  Called as
    primal is: ``count`` input tensors, then the options (Python literals, which reach the
    operator as the text of their tuple)."""
    name = _operator_name(module, "primal")

    def run(inputs, options):
        return list(primal(*inputs, *_ast.literal_eval(options)))

    op = _torch.library.custom_op(f"{_NAMESPACE}::{name}", run, mutates_args=(),
                                  schema="(Tensor[] inputs, str options) -> Tensor[]")
    op.register_fake(run)
    overload = getattr(getattr(_torch.ops, _NAMESPACE), name).default

    def call(*args):
        return tuple(overload(list(args[:count]), repr(tuple(args[count:]))))

    return call


# -- fused pullbacks (_fused.py) ------------------------------------------------------------------

_SUFFIXES = {_torch.float32: "f32", _torch.float64: "f64", _torch.complex64: "c64",
             _torch.complex128: "c128"}
_REAL = {_torch.complex64: _torch.float32, _torch.complex128: _torch.float64}
_COMPLEX = {_torch.float32: _torch.complex64, _torch.float64: _torch.complex128}


def _fused_vjp(op, name, sizes, arrays, fields, inputs, checks):
    """The cotangents of ``inputs`` by the fused kernel ``name`` of ``op`` on ``arrays`` (the
    rule's operands; ``fields``: 'real', 'input' or 'complex' each), which also measures the
    rule's ``checks`` (kind, message, option, whether it is on) as _violation does and raises
    the first that fails; None where it does not run: a tensor that needs a differentiable
    result (create_graph), traced or mapped code, a device other than the CPU, a batch of
    fewer than _fused.MIN_BATCH matrices or one larger than _fused.MAX_SIZE, mixed batches,
    no compiler."""
    if (not _fused.enabled() or _torch.is_grad_enabled() or _torch.compiler.is_compiling()
            or any(a is None for a in arrays) or _vmapped()):
        return None
    first = inputs[0]
    suffix = _SUFFIXES.get(first.dtype)
    shape = tuple(first.shape)  # plain ints: torch.Size comparisons go through SymPy-aware code
    axes = len(shape) - 2
    batch = shape[:axes]
    count = _math.prod(batch)
    if (suffix is None or first.device.type != "cpu" or count < _fused.MIN_BATCH
            or max(sizes.values()) > _fused.MAX_SIZE):
        return None
    wrapped = _torch._C._functorch.is_functorch_wrapped_tensor
    for x in (*arrays, *inputs):
        if x.device != first.device or tuple(x.shape[:axes]) != batch or wrapped(x):
            return None
    kernel = _fused.kernel(op, name, suffix, sizes)
    if kernel is None:
        return None
    real = _REAL.get(first.dtype, first.dtype)
    dtypes = {"real": real, "input": first.dtype,
              "complex": _COMPLEX.get(first.dtype, first.dtype)}
    # each operand as (count, rows, cols) with its own strides (a vector as a column): no copy
    # unless its dtype differs or its batch axes do not collapse into one
    given, strides, kept = [], [], []
    for a, f in zip(arrays, fields):
        if a.dtype != dtypes[f]:
            a = a.to(dtypes[f])
        if a.dim() == axes + 1:
            a = a.unsqueeze(-1)
        if axes != 1:
            a = a.reshape(count, a.shape[-2], a.shape[-1])
        kept.append(a)  # alive until the kernel has run
        given.append(a.data_ptr())
        strides.extend(a.stride())
    results = [_torch.empty(x.shape, dtype=x.dtype) for x in inputs]
    report = _np.empty((count, len(checks), 2), dtype=_np.float32 if real == _torch.float32
                       else _np.float64)
    if not _fused.run(kernel, given, strides,
                      [*(r.data_ptr() for r in results), report.ctypes.data], count):
        return None
    for i, (kind, message, option, on) in enumerate(checks):
        if not on:
            continue
        value, limit = report[:, i, 0], report[:, i, 1]
        failed = (value <= limit) if kind == "pivots" else (value > limit)
        if failed.any():
            first = int(failed.argmax())
            raise _no_derivative(op, _check(kind, None, (), message, option),
                                 float(value[first]), float(limit[first]), "cotangent")
    return tuple(results)
