"""What tests, verification and benchmarks need to know about a variant's gauge (spec.Gauge).

A gauge is a freedom of the outputs that no computation settles.  Its blocks are parsed by
factorules.compiler.check (``cv.gauge_phases``, ``cv.gauge_rotations``: an output, a block of one, or
the adjoint of either; C below stands for a block's columns):

* phases: column j of every phase block carries one unit factor u_j, the same in every block
  (eigh ``[Q]``: Q -> Q D; svd ``[U, Vh.H]``: U -> U D and Vh^H -> Vh^H D together; D
  diagonal unitary for complex dtypes, signs for real ones);
* rotations: each rotation block is any orthonormal basis of its span, C -> C W with its own
  unitary (orthogonal) W (the completion of a full SVD).

Two correct computations (two backends, LAPACK and cuSOLVER, A and A + h dA) may differ by
such a transformation, so anything that compares them first *aligns* them:

* ``phases(outputs, reference, cv)``: the ``Alignment`` that carries ``outputs`` closest to
  ``reference``: u_j making sum over phase blocks of C_ref_j^H C_j u_j real and positive,
  and per rotation block the unitary polar factor W of C^H C_ref (orthogonal Procrustes);
  None when no returned output carries a gauge;
* ``rotate(values, alignment, cv)``: C -> C diag(u) on phase blocks and C -> C W on rotation
  blocks, for outputs, their tangents and cotangents in PyTorch's convention alike: if
  rotate(X_b) = X_r, then rotate(dX_b) = dX_r, and a cotangent gX_r of the reference is
  rotate(gX_r, inverse=True) for the backend;
* ``align(outputs, reference, cv)``: ``rotate(outputs, phases(outputs, reference, cv), cv)``;
  aligned to the outputs at A, those at A + h dA differ from them by h times the tangent in
  the gauge im(diagonal(C^H dC)) = 0, skew(C^H dC) = 0, so finite differences compare with a
  JVP that picks it, and with any JVP once both are projected (``project_tangent``:
  eigh_generalized's picks im(diagonal(V^H B dV)) = 0);
* ``fix(outputs, reference, cv)``: a gauge-invariant map of the outputs in array methods
  only (sum, conj, abs, matmul; torch, JAX, NumPy; differentiable): phase blocks aligned as
  ``align`` does, rotation blocks replaced by C (C^H C_ref), the projection of C_ref onto
  their span.  An operation composed with it has a derivative, which the framework checks.

A loss that depends on the gauge has no derivative; the pullbacks check the spec's gauge
cotangent expressions (``cv.gauge_cotangents``: im(diagonal(Q^H gQ)) for eigh) and raise.
Random cotangents are therefore projected first:

* ``invariant_cotangent(outputs, cotangents, cv, convention)``: on phase blocks, column by
  column, gC_j <- gC_j - i c_j C_j with c_j = sum im(C_j^H gC_j) / sum |C_j|^2 over the
  blocks; on rotation blocks gC <- gC - C skew(C^H gC).  JAX's cotangent is the complex
  conjugate of PyTorch's (``convention='jax'``): it is conjugated, projected, conjugated back;
* ``project_tangent(outputs, tangents, cv)``: the same projection of tangents: it removes
  what differs between two JVPs that pick different points of the gauge orbit (a native
  rule's choice and the spec's);
* ``dependent_cotangent(outputs, rng, cv, convention)``: a cotangent along the gauge only:
  i r_j C_j on phase blocks (r_j in [1, 2]) and C K on rotation blocks (K skew-Hermitian);
* ``residual(outputs, cotangents, cv, convention)``: the largest entry of the spec's gauge
  cotangent expressions evaluated on them (factorules.audit.numeric, not the generated code): 0 for
  a gauge-invariant cotangent; ``tangent_residual(outputs, tangents, cv)`` likewise for the
  gauge tangent expressions, 0 for the derivative the JVP must pick.

``outputs``, ``reference``, ``cotangents`` are sequences over the outputs a variant returns
(hidden ones left out), vectors as (..., n) arrays, as the generated functions give them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from ..audit import numeric as num
from ..compiler import ops

CONVENTIONS = ("torch", "jax")


def returned(cv) -> tuple:
    """The outputs a variant returns (its spec Tensors, hidden ones left out), in order."""
    return tuple(t for t in cv.variant.outputs if t.returned not in ("hidden", "omitted"))


def has_gauge_cotangent(cv) -> bool:
    """Whether the pullbacks of this variant check a gauge (and take ``check_gauge``)."""
    return bool(cv.gauge_cotangents)


def _check(values, cv, what):
    if len(values) != len(returned(cv)):
        raise ValueError(f"{what}: {len(values)} values for the {len(returned(cv))} returned "
                         f"outputs of {cv.variant.label}")


def _conj_if(x, convention):
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown cotangent convention {convention!r} (known: {CONVENTIONS})")
    return x if convention == "torch" or x is None else np.conj(x)


def _adjoint(x):
    return np.conj(np.swapaxes(x, -1, -2))


# -- blocks -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Block:
    """One gauge block bound to array sizes: output ``index`` (among the returned outputs),
    rows and columns of that output, and whether the gauge columns are those of its adjoint."""

    index: int
    rows: slice
    cols: slice
    adjoint: bool

    def get(self, x):
        """The block's gauge columns C of the array x."""
        y = np.asarray(x)[..., self.rows, self.cols]
        return _adjoint(y) if self.adjoint else y

    def put(self, x, c):
        """A copy of x with the block's gauge columns replaced by c."""
        x = np.array(x, copy=True)
        x[..., self.rows, self.cols] = _adjoint(c) if self.adjoint else c
        return x


def _shape(x) -> tuple:
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


def _sizes(cv, outputs) -> dict:
    """{primitive dimension symbol: int} read off the shapes of the returned outputs, as the
    gauge expressions (parsed with the spec's dims, k = min(m, n) unsettled) size them."""
    symbols = {}
    for e in (*cv.gauge_phases, *cv.gauge_rotations, *cv.gauge_tangents, *cv.gauge_cotangents):
        symbols.update({s.name: s for s in e.atoms(sp.MatrixSymbol)})
    out = {}
    for t, x in zip(returned(cv), outputs):
        if x is None or t.name not in symbols:
            continue
        shape = _shape(x) + ((1,) if t.is_vector else ())
        for size, value in zip(symbols[t.name].shape, shape[-2:]):
            size = ops.as_expr(size)
            if isinstance(size, sp.Symbol):
                out[size] = value
    return out


def _bind(exprs, cv, outputs) -> list[Block]:
    """The gauge blocks ``exprs`` bound to the sizes of ``outputs``; blocks of outputs that are
    hidden or returned empty are left out."""
    index = {t.name: i for i, t in enumerate(returned(cv)) if t.returned == "value"}
    ev = num.Evaluator(_sizes(cv, outputs), num.Field("float"))
    out = []
    for e in exprs:
        adjoint = isinstance(e, sp.Adjoint)
        e = e.arg if adjoint else e
        if isinstance(e, ops.Block):
            name = e.arg.name
            r0, r1, c0, c1 = (ev.dim(b) for b in e.bounds)
            rows, cols = slice(r0, r1), slice(c0, c1)
        else:
            name, rows, cols = e.name, slice(None), slice(None)
        if name in index:
            out.append(Block(index[name], rows, cols, adjoint))
    return out


def phase_blocks(cv, outputs) -> list[Block]:
    """The phase blocks among the returned outputs, bound to their sizes."""
    return _bind(cv.gauge_phases, cv, outputs)


def rotation_blocks(cv, outputs) -> list[Block]:
    """The rotation blocks among the returned outputs, bound to their sizes."""
    return _bind(cv.gauge_rotations, cv, outputs)


# -- alignment --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Alignment:
    """Unit factors of the phase blocks' columns and unitary matrices of the rotation blocks,
    with the blocks they act on."""

    phase_blocks: tuple[Block, ...]
    phase: np.ndarray | None  # (..., k)
    rotation_blocks: tuple[Block, ...]
    rotations: tuple[np.ndarray, ...]  # (..., p, p) each
    # an unordered vector output's order (eig's eigenvalues: LAPACK's order is not a
    # function of A): outputs[i][..., perm] matches the reference, for every (i, vector?)
    # in permuted: the vector and the outputs whose columns it indexes
    permutation: np.ndarray | None = None  # (..., n) integer
    permuted: tuple[tuple[int, bool], ...] = ()


def _unordered(cv) -> list[tuple[int, list[tuple[int, bool]]]]:
    """For each unordered vector output (no 'order', general values: eig's eigenvalues), its
    index and the (index, is_vector) of every returned output indexed by its dimension along
    the last axis (eigenvectors' columns)."""
    shown = returned(cv)
    out = []
    for i, t in enumerate(shown):
        if t.is_vector and t.order is None and t.structure == "general":
            out.append((i, [(j, u.is_vector) for j, u in enumerate(shown)
                            if u.returned == "value" and u.shape[-1] == t.shape[0]]))
    return out


def _permutation(outputs, reference, cv):
    """(perm, permuted): the order of each unordered vector of ``outputs`` matched to the
    nearest values of ``reference``'s; (None, ()) when there is none."""
    for i, permuted in _unordered(cv):
        got, want = np.asarray(outputs[i]), np.asarray(reference[i])
        perm = np.zeros(got.shape, dtype=int)
        for index in np.ndindex(*got.shape[:-1]):
            cost = np.abs(want[index][:, None] - got[index][None, :])
            taken = []
            for row in range(cost.shape[0]):  # greedy: values are well separated
                order = [int(k) for k in np.argsort(cost[row]) if int(k) not in taken]
                taken.append(order[0])
            perm[index] = taken
        return perm, tuple(permuted)
    return None, ()


def _permute(x, perm, is_vector: bool, inverse: bool):
    if x is None:
        return None
    if inverse:
        perm = np.argsort(perm, axis=-1)
    x = np.asarray(x)
    idx = perm if is_vector else np.broadcast_to(perm[..., None, :], x.shape)
    return np.take_along_axis(x, idx, axis=-1)


def phases(outputs, reference, cv) -> Alignment | None:
    """What carries ``outputs`` into the gauge of ``reference`` (see the module docstring)."""
    _check(outputs, cv, "phases")
    _check(reference, cv, "phases")
    pb, rb = phase_blocks(cv, outputs), rotation_blocks(cv, outputs)
    perm, permuted = _permutation(outputs, reference, cv)
    if not pb and not rb and perm is None:
        return None
    if perm is not None:
        outputs = list(outputs)
        for j, is_vector in permuted:
            outputs[j] = _permute(outputs[j], perm, is_vector, False)
    for b in (*pb, *rb):
        x, r = np.shape(outputs[b.index]), np.shape(reference[b.index])
        if x != r:
            raise ValueError(f"phases: shape {x} against a reference of shape {r}")
    phase = None
    if pb:
        inner = sum(np.sum(np.conj(b.get(reference[b.index])) * b.get(outputs[b.index]), axis=-2)
                    for b in _estimating(pb))
        size = np.abs(inner)
        phase = np.where(size == 0, 1, np.conj(inner) / np.where(size == 0, 1, size))
        phase = phase.astype(np.asarray(outputs[pb[0].index]).dtype)
        if _overlapping(pb) and np.iscomplexobj(phase):
            phase = _nearest_phase(outputs, reference, pb, phase, cv)
    rotations = []
    for b in rb:
        c, r = b.get(outputs[b.index]), b.get(reference[b.index])
        m = _adjoint(c) @ r.astype(c.dtype)
        if m.size:
            x, _, yh = np.linalg.svd(m)
            m = x @ yh
        rotations.append(m)
    return Alignment(tuple(pb), phase, tuple(rb), tuple(rotations), perm, permuted)


def rotate(values, alignment: Alignment | None, cv, inverse: bool = False) -> list:
    """The values (outputs, tangents, or cotangents in PyTorch's convention) transformed by
    the alignment (by its inverse if ``inverse``); None and values off the gauge unchanged."""
    _check(values, cv, "rotate")
    out = list(values)
    if alignment is None:
        return out
    if alignment.permutation is not None and not inverse:
        for j, is_vector in alignment.permuted:
            out[j] = _permute(out[j], alignment.permutation, is_vector, False)
    if alignment.phase is not None:
        u = np.conj(alignment.phase) if inverse else alignment.phase
        for b in alignment.phase_blocks:
            if out[b.index] is not None:
                c = b.get(out[b.index])
                out[b.index] = b.put(out[b.index], c * u[..., None, :].astype(c.dtype))
    for b, w in zip(alignment.rotation_blocks, alignment.rotations):
        if out[b.index] is not None:
            c = b.get(out[b.index])
            w = _adjoint(w) if inverse else w
            out[b.index] = b.put(out[b.index], c @ w.astype(c.dtype))
    if alignment.permutation is not None and inverse:
        for j, is_vector in alignment.permuted:
            out[j] = _permute(out[j], alignment.permutation, is_vector, True)
    return out


def align(outputs, reference, cv) -> list:
    """The outputs in the gauge of ``reference`` (and, for a Schur form, its order)."""
    outputs = _in_reference_order(outputs, reference, cv)
    return rotate(outputs, phases(outputs, reference, cv), cv)


def _schur_form(cv):
    """(index of T, index of Z) among the returned outputs of a Schur form A = Z T Z^H whose
    diagonal order is the algorithm's, not a function of A (LAPACK's gees: another
    precision, or A + h dA near a deflation decision, may order the eigenvalues otherwise):
    a variant that has no derivative at ties of diagonal(T) (ties without conditions), T
    upper triangular, Z unitary; None for every other variant."""
    ties, outs = cv.variant.ties, returned(cv)
    if ties is None or ties.tangent or ties.cotangent:
        return None
    text = ties.values.text.replace(" ", "")
    t = next((i for i, o in enumerate(outs) if text == f"diagonal({o.name})"
              and o.structure == "upper_triangular"), None)
    z = next((i for i, o in enumerate(outs) if o.structure == "unitary"), None)
    return None if t is None or z is None else (t, z)


def _in_reference_order(outputs, reference, cv) -> list:
    """A Schur form's (T, Z) with T's diagonal moved into the order of the reference's by
    LAPACK's trexc (unitary swaps of adjacent diagonal entries: the Schur form of the same A
    in the reference's order), so that its gauge can be aligned; other outputs unchanged."""
    found = _schur_form(cv)
    if found is None:
        return list(outputs)
    from scipy.linalg import lapack
    it, iz = found
    t, z = (np.array(outputs[i]) for i in found)
    want = np.diagonal(np.asarray(reference[it]), 0, -2, -1)
    trexc = lapack.ztrexc if np.iscomplexobj(t) else lapack.dtrexc
    wide = np.complex128 if np.iscomplexobj(t) else np.float64
    for index in np.ndindex(*t.shape[:-2]):
        tt, zz = t[index].astype(wide), z[index].astype(wide)
        for k in range(tt.shape[-1]):
            i = k + int(np.argmin(np.abs(np.diagonal(tt)[k:] - want[index][k])))
            if i != k:  # 1-based: the entry at i moves to k
                tt, zz, _ = trexc(tt, zz, i + 1, k + 1)
        t[index], z[index] = tt, zz
    out = list(outputs)
    out[it], out[iz] = t, z
    return out


def fix(outputs, reference, cv) -> tuple:
    """A gauge-invariant map of framework arrays (see the module docstring); ``reference``
    (the outputs at some point, constant) are the same framework's arrays."""
    _check(outputs, cv, "fix")
    out = list(outputs)
    pb, rb = phase_blocks(cv, outputs), rotation_blocks(cv, outputs)

    def take(x, lo, hi, axis):
        # integer-array indexing copies (a slice would be a view of an output, and torch's
        # batched forward AD asserts on views of an autograd.Function's outputs)
        index = np.arange(lo, hi)
        return x[..., index, :] if axis == -2 else x[..., :, index]

    def get(x, b):
        rows, cols = _full(b.rows, x.shape[-2]), _full(b.cols, x.shape[-1])
        y = take(take(x, *rows, -2), *cols, -1)
        return _conj(y).swapaxes(-1, -2) if b.adjoint else y

    def put(x, b, c):
        # the block replaced by c, without writing in place (differentiable)
        rows, cols = _full(b.rows, x.shape[-2]), _full(b.cols, x.shape[-1])
        c = _conj(c).swapaxes(-1, -2) if b.adjoint else c
        if (rows, cols) == ((0, x.shape[-2]), (0, x.shape[-1])):
            return c
        # rows above, the band of the block's rows, rows below; the band likewise by columns
        band = take(x, *rows, -2)
        band = _cat([take(band, 0, cols[0], -1), c, take(band, cols[1], x.shape[-1], -1)], -1, x)
        return _cat([take(x, 0, rows[0], -2), band, take(x, rows[1], x.shape[-2], -2)], -2, x)

    if pb:
        inner = sum((get(reference[b.index], b).conj() * get(out[b.index], b)).sum(-2)
                    for b in _estimating(pb))
        # conj(inner) / |inner|, the modulus as a complex value: no real operand, which
        # JAX's strict dtype promotion would refuse
        u = _conj(inner) / (inner * _conj(inner)) ** 0.5
        for b in pb:
            out[b.index] = put(out[b.index], b, get(out[b.index], b) * u[..., None, :])
    for b in rb:
        c = get(out[b.index], b)
        out[b.index] = put(out[b.index], b,
                           c @ (_conj(c).swapaxes(-1, -2) @ get(reference[b.index], b)))
    return tuple(out)


def _conj(x):
    """The complex conjugate as an array of its own: torch's conj() is a lazy view, and
    forward AD through a view of an autograd.Function's output asserts when batched."""
    return x.conj_physical() if hasattr(x, "conj_physical") else x.conj()


def _full(s: slice, size: int) -> tuple[int, int]:
    start, stop, _ = s.indices(size)
    return start, stop


def _cat(parts, axis, like):
    """Concatenate framework arrays of the kind of ``like`` (torch.cat or *.concatenate)."""
    parts = [p for p in parts if p.shape[axis] > 0] or parts[:1]
    if len(parts) == 1:
        return parts[0]
    module = type(like).__module__.split(".")[0]
    if module == "torch":
        import torch
        return torch.cat(parts, axis)
    if module in ("jax", "jaxlib"):
        import jax.numpy as jnp
        return jnp.concatenate(parts, axis)
    return np.concatenate(parts, axis)


# -- cotangents -------------------------------------------------------------------------------
def _skew(x):
    return (x - _adjoint(x)) / 2


def invariant_cotangent(outputs, cotangents, cv, convention: str = "torch") -> list:
    """Cotangents whose loss does not depend on the gauge (see the module docstring);
    None stays None (a zero cotangent)."""
    _check(outputs, cv, "invariant_cotangent")
    _check(cotangents, cv, "invariant_cotangent")
    out = [_conj_if(None if g is None else np.asarray(g), convention) for g in cotangents]
    pb = [b for b in phase_blocks(cv, outputs) if out[b.index] is not None]
    if pb and np.iscomplexobj(outputs[pb[0].index]) and _overlapping(pb):
        out = _without_phase_directions(outputs, out, pb)
    elif pb and np.iscomplexobj(outputs[pb[0].index]):  # a real phase is a sign: discrete
        inner = sum(np.sum(np.conj(b.get(outputs[b.index])) * b.get(out[b.index]), axis=-2)
                    for b in pb)
        norms = sum(np.sum(np.abs(b.get(outputs[b.index])) ** 2, axis=-2) for b in pb)
        step = 1j * np.imag(inner) / np.where(norms == 0, 1, norms)
        for b in pb:
            c, g = b.get(outputs[b.index]), b.get(out[b.index])
            out[b.index] = b.put(out[b.index], (g - c * step[..., None, :]).astype(g.dtype))
    for b in rotation_blocks(cv, outputs):
        if out[b.index] is None:
            continue
        c, g = b.get(outputs[b.index]), b.get(out[b.index])
        out[b.index] = b.put(out[b.index], (g - c @ _skew(_adjoint(c) @ g)).astype(g.dtype))
    return [_conj_if(g, convention) for g in out]


def _overlapping(pb) -> bool:
    """Whether two phase blocks are of one output (schur's T and T.H: T -> D^H T D)."""
    return len({b.index for b in pb}) < len(pb)


def _estimating(pb) -> list:
    """The phase blocks that the unit factors are read from: those of outputs carrying one
    block (where a block's columns carry their own factor alone: schur's Z, not T, whose
    entry (i, j) carries conj(u_i) u_j), or all where none is."""
    alone = [b for b in pb if sum(c.index == b.index for c in pb) == 1]
    return alone or list(pb)


def _phase_directions(outputs, pb) -> dict:
    """{output index: (..., k, rows, cols)}: the gauge's direction j at ``outputs`` where phase
    blocks overlap, the sum over the blocks of i C_j e_j^H (schur: dZ = i Z e_j e_j^H,
    dT = i (T e_j e_j^H - e_j e_j^H T))."""
    k = pb[0].get(outputs[pb[0].index]).shape[-1]
    directions = {}
    for b in pb:
        x = np.asarray(outputs[b.index])
        c = b.get(x)
        d = directions.setdefault(b.index, np.zeros(x.shape[:-2] + (k,) + x.shape[-2:],
                                                    np.complex128))
        for j in range(k):
            e = np.zeros(c.shape, np.complex128)
            e[..., :, j] = 1j * c[..., :, j]
            d[..., j, :, :] += b.put(np.zeros(x.shape, np.complex128), e)
    return directions


def _along(directions, values):
    """(..., k): the coefficients c of the combination sum_j c_j d_j of the directions
    nearest ``values`` (Re<,>): their Gram system, the directions not being orthogonal."""
    gram = sum(np.real(np.einsum("...irc,...jrc->...ij", np.conj(d), d))
               for d in directions.values())
    rhs = sum(np.real(np.einsum("...irc,...rc->...i", np.conj(d), values[i]))
              for i, d in directions.items())
    return (np.linalg.pinv(gram) @ rhs[..., None])[..., 0]


def _without_phase_directions(outputs, out, pb) -> list:
    """``out`` (arrays of the returned outputs' shapes, None for zero) projected orthogonally
    (Re<,>) off the gauge's directions at ``outputs`` where phase blocks overlap."""
    directions = _phase_directions(outputs, pb)
    coefficients = _along(directions, out)
    out = list(out)
    for i, d in directions.items():
        step = np.einsum("...j,...jrc->...rc", coefficients, d)
        out[i] = (out[i] - step).astype(out[i].dtype)
    return out


def _nearest_phase(outputs, reference, pb, phase, cv, steps: int = 4):
    """Where phase blocks overlap, the unit factors ``phase`` (read from the blocks that
    carry them alone) refined by Newton steps to the point of the gauge orbit of ``outputs``
    nearest ``reference``: the difference is then orthogonal to the gauge's directions, the
    gauge in which the rules pick their tangents (schur's); each step removes the part of
    the difference along the directions at ``reference``."""
    directions = _phase_directions(reference, pb)
    alignment = Alignment(tuple(pb), phase, (), ())
    for _ in range(steps):
        moved = rotate(outputs, alignment, cv)
        difference = {i: np.asarray(moved[i]) - np.asarray(reference[i]) for i in directions}
        phase = phase * np.exp(-1j * _along(directions, difference)).astype(phase.dtype)
        alignment = Alignment(tuple(pb), phase, (), ())
    return phase


def project_tangent(outputs, tangents, cv) -> list:
    """Tangents with their component along the gauge removed (the projection of
    ``invariant_cotangent``, orthogonal for Re<,>): two JVPs that pick different gauges (ours
    and a framework's native rule) agree after it; one that picks the declared gauge is left
    as it is."""
    return invariant_cotangent(outputs, tangents, cv, "torch")


def dependent_cotangent(outputs, rng, cv, convention: str = "torch") -> list:
    """A cotangent along the gauge only (see the module docstring): None for outputs off the
    gauge, and wherever the gauge is discrete (real phases, rotations of one column)."""
    _check(outputs, cv, "dependent_cotangent")
    out = [None] * len(outputs)

    def add(b, g):
        base = np.zeros(np.shape(outputs[b.index]), np.asarray(outputs[b.index]).dtype)
        current = base if out[b.index] is None else out[b.index]
        out[b.index] = b.put(current, b.get(current) + g.astype(current.dtype))

    pb = phase_blocks(cv, outputs)
    if pb and np.iscomplexobj(outputs[pb[0].index]):
        k = pb[0].get(outputs[pb[0].index]).shape
        r = rng.uniform(1.0, 2.0, k[:-2] + k[-1:])
        for b in pb:
            add(b, 1j * b.get(outputs[b.index]) * r[..., None, :])
    for b in rotation_blocks(cv, outputs):
        c = b.get(outputs[b.index])
        p = c.shape[-1]
        if p < 2 and not np.iscomplexobj(c):
            continue
        k = rng.standard_normal(c.shape[:-2] + (p, p))
        if np.iscomplexobj(c):
            k = k + 1j * rng.standard_normal(k.shape)
        add(b, c @ _skew(k))
    return [_conj_if(g, convention) for g in out]


# -- the spec's gauge expressions on numbers --------------------------------------------------
def residual(outputs, cotangents, cv, convention: str = "torch") -> float:
    """max |entry| of the spec's gauge cotangent expressions on the outputs and cotangents
    (None = zero), evaluated by factorules.audit.numeric, not by the generated code's check."""
    if not cv.gauge_cotangents:
        raise ValueError(f"{cv.variant.label} has no gauge cotangent")
    _check(cotangents, cv, "residual")
    values = [None if g is None else _conj_if(np.asarray(g), convention) for g in cotangents]
    return max(_evaluate(e, "g", outputs, values, cv) for e in cv.gauge_cotangents)


def tangent_residual(outputs, tangents, cv) -> float:
    """max |entry| of the spec's gauge tangent expressions on the outputs and their tangents:
    0 when the JVP picks the derivative the spec declares."""
    if not cv.gauge_tangents:
        raise ValueError(f"{cv.variant.label} has no gauge")
    _check(tangents, cv, "tangent_residual")
    return max(_evaluate(e, "d", outputs, tangents, cv) for e in cv.gauge_tangents)


def tangent_observable(cv) -> bool:
    """Whether the gauge tangent expressions use returned outputs and tangents only (not
    those of a hidden output, like eigvalsh's Q)."""
    if not cv.gauge_tangents:
        return False
    known = {t.name for t in returned(cv) if t.returned == "value"}
    known |= {"d" + name for name in known}
    return all({s.name for s in e.atoms(sp.MatrixSymbol)} <= known for e in cv.gauge_tangents)


def _evaluate(expr, prefix, outputs, values, cv) -> float:
    _check(outputs, cv, "gauge")
    env = {}
    for t, x, v in zip(returned(cv), outputs, values):
        x = np.asarray(x)
        column = (lambda a: a[..., None]) if t.is_vector else (lambda a: a)
        env[t.name] = column(x).astype(np.complex128)
        env[prefix + t.name] = column(np.zeros_like(x) if v is None
                                      else np.asarray(v)).astype(np.complex128)
    needed = {s.name for s in expr.atoms(sp.MatrixSymbol)} - set(env)
    if needed:
        raise ValueError(f"the gauge expression of {cv.variant.label} needs "
                         f"{', '.join(sorted(needed))}, which are not returned")
    value = num.Evaluator(_sizes(cv, outputs), num.Field("float"))(expr, env)
    return float(np.max(np.abs(value))) if value.size else 0.0
