"""Draw random factorizations from a spec, outputs first.

Each output is drawn from its declared structure (orthonormal columns by Gram-Schmidt or
QR, triangular with a diagonal of modulus in [1, 2], real, unit or positive where declared),
then the defining equations of the form ``OUTPUT[block] = ...`` are applied, then those of
the form ``INPUT = ...``.  The inputs so made are well conditioned for the factorization by
construction, whatever it is: the audit draws its high-precision samples this way and the
verification and tests draw their inputs this way.  Only transcendental-free arithmetic is
used on the random numbers (sqrt, not exp/cos), so draws are the same on every machine.
"""
from __future__ import annotations

import math

import numpy as np
import sympy as sp
from sympy import MatrixSymbol

from . import numeric as num
from ..compiler import ops
from ..compiler.check_dims import structure_offset


class SampleError(ValueError):
    """A spec whose factorization cannot be drawn."""


def gaussian(rng, shape, complex_field: bool):
    x = rng.standard_normal(shape)
    if complex_field:
        x = (x + 1j * rng.standard_normal(shape)) / math.sqrt(2)
    return x


def orthonormalize(x, f: num.Field):
    """Orthonormal columns spanning those of x (rows >= cols)."""
    if f.kind == "float":
        q, r = np.linalg.qr(x)
        d = np.diagonal(r).copy()
        d[d == 0] = 1
        return q * (d / np.abs(d))  # a deterministic phase per column
    x = x.copy()
    for _ in range(2):  # Gram-Schmidt, twice, in mpmath
        for j in range(x.shape[1]):
            for i in range(j):
                x[:, j] = x[:, j] - num.inner_c(x[:, i], x[:, j]) * x[:, i]
            x[:, j] = x[:, j] / num.norm(x[:, j])
    return x


def _phases(rng, k: int, complex_field: bool):
    if not complex_field:
        return rng.choice([-1.0, 1.0], size=k)
    z = gaussian(rng, (k,), True)
    return z / np.abs(z)


def structured(rng, rows, cols, structure, diagonal, complex_field, f: num.Field,
               offset: int = 0):
    """A well-conditioned random matrix with the declared structure (a general one: a
    diagonal of modulus in [1, 2] and small off-diagonal entries); ``offset``: the diagonal
    that bounds a triangular one and carries its declared diagonal (RQ's tall R: n - m)."""
    g = gaussian(rng, (rows, cols), complex_field)
    if structure == "permutation":
        return f.array(np.eye(rows)[:, rng.permutation(rows)])
    if structure in ("orthonormal_columns", "unitary"):
        if rows < cols:
            raise SampleError(f"cannot draw {rows}x{cols} orthonormal columns")
        return orthonormalize(f.array(g), f)
    if structure == "unit_columns":
        # eigenvectors of a non-normal matrix: columns of norm 1, not orthogonal, but a
        # unitary plus a perturbation of norm ~1/2, so that the matrix is well conditioned
        # (random unit columns can be nearly dependent: ill-conditioned eigenproblems)
        if rows != cols:
            raise SampleError(f"cannot draw {rows}x{cols} eigenvectors (square only)")
        x = orthonormalize(f.array(g), f) + f.array(
            gaussian(rng, (rows, cols), complex_field) / (2 * math.sqrt(max(rows, 1))))
        for j in range(cols):
            x[:, j] = x[:, j] / num.norm(x[:, j])
        return x
    if structure == "orthonormal_rows":
        if rows > cols:
            raise SampleError(f"cannot draw {rows}x{cols} orthonormal rows")
        return num.adjoint(orthonormalize(f.array(g.conj().T), f))
    if structure in ("upper_triangular", "lower_triangular", "general"):
        # off-diagonal entries of variance 1/size keep a triangular draw well conditioned at
        # any size (with unit variance its condition number grows exponentially with size);
        # a general output (lu_factor's LU: both triangles of one) is drawn the same way
        g = g / math.sqrt(max(rows, cols, 1))
        if structure != "general":
            g = np.triu(g, offset) if structure == "upper_triangular" else np.tril(g, offset)
    elif structure == "hermitian":
        g = (g + g.conj().T) / 2
    elif structure == "diagonal":
        g = np.diag(np.diag(g)) if rows == cols else np.eye(rows, cols) * g
    # the entries of diagonal ``offset``: (i, i + offset)
    first = np.arange(max(0, -offset), min(rows, cols - offset))
    k = len(first)
    magnitude = 1 + rng.uniform(size=k)
    if diagonal == "unit":
        d = np.ones(k)
    elif diagonal == "positive":
        d = magnitude
    elif diagonal == "real":
        d = magnitude * rng.choice([-1.0, 1.0], size=k)
    elif diagonal == "spread":  # eigenvalues (schur's T): as vector() draws them
        d = vector(rng, k, "general", None, complex_field, num.Field("float"))[:, 0]
        d = d if complex_field else d.real
    elif structure in ("upper_triangular", "lower_triangular", "diagonal", "general"):
        d = magnitude * _phases(rng, k, complex_field)
    else:
        d = None
    if d is not None:
        g = g.astype(complex if complex_field else float)
        g[first, first + offset] = d
    return f.array(g)


def vector(rng, size, structure, order, complex_field, f: num.Field):
    """A random (size, 1) column: values at least 1 apart (well-separated eigenvalues or
    singular values), real, positive (in [1, size + 2)) or complex as declared, in the
    declared order."""
    gaps = 1 + rng.uniform(size=size)
    values = np.cumsum(gaps)
    if structure == "positive":
        values = values - values[0] + 1 if size else values
    elif structure == "real":
        values = values - values.mean() if size else values
    else:  # general: complex values spread in the plane when the field is complex
        values = values - values.mean() if size else values
        if complex_field:
            values = values + 1j * gaussian(rng, (size,), False)
    if order in ("ascending", "descending") and structure in ("real", "positive"):
        values = np.sort(values)
        if order == "descending":
            values = values[::-1]
    else:
        values = rng.permutation(values)
    return f.array(np.asarray(values).reshape(size, 1))


def tangent(rng, rows, cols, structure, complex_field, f: num.Field):
    """A random element of the tangent space of an input with this structure."""
    g = gaussian(rng, (rows, cols), complex_field)
    if structure == "hermitian":
        g = (g + g.conj().T) / 2
    elif structure == "upper_triangular":
        g = np.triu(g)
    elif structure == "lower_triangular":
        g = np.tril(g)
    return f.array(g)


def _symbol_or_block_of(e, names) -> str | None:
    if isinstance(e, MatrixSymbol) and e.name in names:
        return e.name
    if isinstance(e, ops.Block) and isinstance(e.arg, MatrixSymbol) and e.arg.name in names:
        return e.arg.name
    return None


def factorization(checked, cv, case, ev: num.Evaluator, complex_field: bool, rng) -> dict:
    """{name: value} of every output and input of one drawn factorization (unbatched)."""
    cdims = dict(case.dims)

    def draw(t):
        """A tensor of the spec drawn from its structure."""
        if t.is_vector:
            return vector(rng, ev.dim(cdims[t.shape[0]]), t.structure, t.order,
                          complex_field, ev.field)
        rows, cols = (ev.dim(cdims[d]) for d in t.shape)
        return structured(rng, rows, cols, t.structure, t.diagonal, complex_field, ev.field,
                          ev.dim(structure_offset(t, cdims)))

    primal = {}
    for t in cv.variant.outputs:
        if not t.is_index:  # integer data for users (pivots): no equation reads it
            primal[t.name] = draw(t)
    outputs = {t.name for t in cv.variant.outputs}
    inputs = {t.name for t in checked.spec.inputs}
    # an operation whose outputs are explicit functions of its inputs ('Y = f(a, tau, C)',
    # ormqr) is drawn inputs first: each input from its structure, then the outputs
    explicit = {eq.lhs.name: eq.rhs for eq in case.defining
                if isinstance(eq.lhs, MatrixSymbol) and eq.lhs.name in outputs
                and not {s.name for s in eq.rhs.atoms(MatrixSymbol)} & outputs}
    inputs_first = set(explicit) == outputs
    if inputs_first:
        for t in checked.spec.inputs:
            primal[t.name] = draw(t)
    for name, e in cv.sample:  # values the spec computes from the others ('sample')
        primal[name] = ev(e, primal)
    if inputs_first:
        for name, e in explicit.items():
            primal[name] = ev(e, primal)
        return primal
    assigned = set()
    for target in ("output", "input"):
        for eq in case.defining:
            for lhs, rhs in ((eq.lhs, eq.rhs), (eq.rhs, eq.lhs)):
                if target == "output":
                    name = _symbol_or_block_of(lhs, outputs)
                    if name is None or not isinstance(lhs, ops.Block):
                        continue  # 'X = ...' of a whole output is a constraint here
                    r0, r1, c0, c1 = (ev.dim(b) for b in lhs.bounds)
                    primal[name] = primal[name].copy()
                    primal[name][r0:r1, c0:c1] = ev(rhs, primal)
                else:
                    if not (isinstance(lhs, MatrixSymbol) and lhs.name in inputs - assigned):
                        continue
                    value = ev(rhs, primal)
                    structure = next(t.structure for t in checked.spec.inputs
                                     if t.name == lhs.name)
                    if structure == "hermitian":  # exactly, not up to rounding
                        value = (value + num.adjoint(value)) * ev.field.scalar(sp.Rational(1, 2))
                    primal[lhs.name] = value
                    assigned.add(lhs.name)
                break
    missing = inputs - assigned
    if missing:
        raise SampleError(f"no defining equation gives the input(s) {', '.join(sorted(missing))} "
                          f"as 'INPUT = expression of the outputs' (nor every output as "
                          f"'OUTPUT = expression of the inputs')")
    return primal


def allowed(cv, dims: dict) -> bool:
    """Whether integer dimensions {symbol: int} meet a variant's 'requires'."""
    return all(_compare(c, dims) for c in cv.requires)


def holds(case, dims: dict) -> bool:
    """Whether a case's condition holds for integer dimensions {symbol: int}."""
    return _compare(case.condition, dims)


def _compare(c, dims: dict) -> bool:
    lhs, rhs = (int(ops.as_expr(x).subs(dims)) for x in (c.lhs, c.rhs))
    return {">=": lhs >= rhs, ">": lhs > rhs, "<=": lhs <= rhs, "<": lhs < rhs,
            "==": lhs == rhs}[c.op]


def takes(checked, cv, shape: tuple[int, ...]) -> bool:
    """Whether a variant takes the primitive dimensions ``shape`` (in the order of the
    spec's dims): its 'requires' hold there (a tall-only variant takes no wide shape)."""
    prims = [d.name for d in checked.dims if d.source is not None]
    return allowed(cv, primitive_dims(checked, dict(zip(prims, shape))))


def primitive_dims(checked, values: dict[str, int]) -> dict:
    """{dimension symbol: int} from values of the primitive dimensions by name."""
    symbols = {d.name: d.expr for d in checked.dims if d.source is not None}
    return {symbols[k]: v for k, v in values.items()}


def inputs(checked, cv, shape: tuple[int, ...], dtype, batch=(), rng=None) -> dict:
    """{input name: array of batch + its shape, dtype} for one variant, drawn outputs-first.

    ``shape`` gives the primitive dimensions in the order of the spec's ``dims``.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    prims = [d.name for d in checked.dims if d.source is not None]
    dims = primitive_dims(checked, dict(zip(prims, shape)))
    case = next((c for c in cv.cases if holds(c, dims)), None)
    if case is None:
        raise SampleError(f"no case of {cv.variant.label} covers {shape}")
    ev = num.Evaluator(dims, num.Field("float"))
    complex_field = np.issubdtype(dtype, np.complexfloating)
    cdims = dict(case.dims)
    out = {}
    for t in checked.spec.inputs:
        size = tuple(ev.dim(cdims[d]) for d in t.shape)
        out[t.name] = np.zeros(tuple(batch) + size, dtype=np.complex128)
    for index in np.ndindex(*batch):
        drawn = factorization(checked, cv, case, ev, complex_field, rng)
        for name in out:  # a vector input is drawn as a column
            out[name][index] = drawn[name].reshape(out[name][index].shape)
    return {k: (v if complex_field else v.real).astype(dtype) for k, v in out.items()}


def project(x, structure: str):
    """A batched NumPy array projected onto the tangent space of an input's structure
    (Hermitian part for 'hermitian', a triangle for triangular, itself otherwise)."""
    if structure == "hermitian":
        return (x + np.conj(np.swapaxes(x, -1, -2))) / 2
    if structure == "upper_triangular":
        return np.triu(x)
    if structure == "lower_triangular":
        return np.tril(x)
    return x
