"""tsqr: the reduced QR of a tall-skinny matrix whose rows are sharded over a mesh axis (TSQR).

Hand-written, not generated from a spec: ``python cli.py generate`` copies this file, under its
header, into generated/jax/, beside the generated ``qr`` it is built from.  It has no
differentiation rule of its own: its JVP and VJP are those of ``qr`` (spec/qr.yaml) composed
with the collectives by JAX.

For A (m x n) whose rows are split over the ``p`` devices of the mesh axis ``axis_name``
(block i, rows i m/p to (i + 1) m/p, on device i), ``tsqr(A, mesh, axis_name)`` returns
``QRResult(Q, R)`` with A = Q R, Q m x n with orthonormal columns, sharded by rows as A
(``PartitionSpec(axis_name, None)``), and R n x n upper triangular, replicated on every device
(``PartitionSpec()``).  It is the parallel TSQR of J. Demmel, L. Grigori, M. Hoemmen and
J. Langou, "Communication-optimal parallel and sequential QR and LU factorizations", SIAM J.
Sci. Comput. 34(1), A206-A239 (2012), with a reduction tree of one level (a flat tree):

    A_i = Q_i R_i                      reduced QR of each device's block (m/p x n), locally
    [R_0; ...; R_{p-1}] = Q' R         the p stacked n x n factors, gathered on every device
                                       (one all-gather of p n^2 entries) and factorized there
    Q_i' = rows i n to (i + 1) n of Q' (n x n)
    Q block i = Q_i Q_i'               on device i, no further communication

(with the sign convention below applied to Q' and R, so that the m x n product is the last
pass over Q).

Each QR is the package's ``qr`` (mode="reduced"), so A's rows never leave their device: the
only collective of the forward pass is the all-gather of the R_i; the gradient adds one sum
over the axis, of the cotangent of Q' (p n x n; each device's slice of Q' transposes to it).

Sign convention.  QR is unique only up to a sign (a phase, for complex A) per diagonal entry
of R, and the Householder signs LAPACK picks for the blocks are not those it picks for the
whole matrix.  The result is normalized so that R has a real, non-negative diagonal: with
d_k = R[k, k] / |R[k, k]| (1 where R[k, k] = 0), column k of Q is multiplied by d_k and row k
of R by conj(d_k).  For A of full column rank that is the unique reduced QR with a positive
diagonal (Trefethen and Bau, "Numerical Linear Algebra", SIAM 1997, Lecture 7, Theorem 7.2):
the same Q and R as the single-device ``qr(A)`` after the same normalization (``positive``,
below), in exact arithmetic and to rounding in practice.  (``qr`` returns R with a real
diagonal, so d_k is a sign, for complex A too.)  The gradient is that of the normalized
factorization, defined where A has full column rank.

Limits: A is one matrix (2-D, no batch axes), float32, float64, complex64 or complex128, with
at least one row and one column; its rows split evenly over the axis (m divisible by p), and
each block is tall (m / p >= n, so that each local R is n x n).  The gathered p n x n stack is
factorized on every device: a one-level tree suits a moderate p n (a deeper reduction tree, as
in the paper, is not implemented).

Use: ``jax.jit``, ``jax.grad``, ``jax.vjp`` and ``jax.jvp`` apply to ``tsqr`` (mesh and axis
name static); A may be a NumPy array or a jax.Array of any sharding (it is resharded by rows).
On several hosts: ``jax.distributed.initialize()`` in one process per host, a mesh over
``jax.devices()`` (all hosts' devices), and A a global array built from each process's rows by
``jax.make_array_from_process_local_data`` (docs/distributed.md).
"""
import jax as _jax
import jax.numpy as _jnp
from jax.sharding import Mesh as _Mesh
from jax.sharding import PartitionSpec as _P

from ._runtime import _check_input
from .qr import QRResult, qr

__all__ = ["tsqr", "positive"]


def positive(Q, R):
    """(Q D, D^H R) for D = diag(d), d_k = R[k, k] / |R[k, k]| (1 where R[k, k] = 0): the QR
    with R's diagonal real and non-negative (the convention of ``tsqr``), for Q, R of any QR
    of a matrix (or a stack of them)."""
    diagonal = _jnp.diagonal(R, axis1=-2, axis2=-1)
    nonzero = _jnp.where(diagonal == 0, _jnp.ones((), diagonal.dtype), diagonal)
    d = nonzero / _jnp.abs(nonzero).astype(nonzero.dtype)
    return QRResult(Q * d[..., None, :], _jnp.conj(d)[..., :, None] * R)


def _axis(mesh, axis_name):
    if not isinstance(mesh, _Mesh):
        raise TypeError(f"tsqr: mesh must be a jax.sharding.Mesh, got {type(mesh).__name__}")
    names = tuple(mesh.axis_names)
    if axis_name is None:
        if len(names) != 1:
            raise ValueError(f"tsqr: the mesh has axes {names}: give axis_name, the one the "
                             f"rows are split over")
        return names[0]
    if axis_name not in names:
        raise ValueError(f"tsqr: axis_name {axis_name!r} is not an axis of the mesh "
                         f"(its axes: {names})")
    return axis_name


def _local(block, axis_name):
    """One device's part: its block's QR, the gathered stack's QR, its block of Q."""
    n = block.shape[-1]
    q_local, r_local = qr(block)
    # every device gets the p n x n factors, in device order along the axis; they and what
    # is computed from them alone are the same on every device ('invarying')
    stacked = _jax.lax.all_gather(r_local, axis_name, tiled=True, to="invarying")
    # the sign convention applied to the small factors: Q' D, D^H R (Q = Q_local Q' D)
    q_stacked, r = positive(*qr(stacked))
    index = _jax.lax.axis_index(axis_name)
    q_mine = _jax.lax.dynamic_slice_in_dim(q_stacked, index * n, n, axis=0)
    return _jnp.matmul(q_local, q_mine, precision=_jax.lax.Precision.HIGHEST), r


def tsqr(A, mesh, axis_name=None):
    """A = Q R for a tall-skinny A whose rows are split over the mesh axis ``axis_name``
    (which may be left out on a mesh of one axis): TSQR, each QR the package's ``qr``.

    Returns ``QRResult(Q, R)``: Q (m x n, orthonormal columns) sharded by rows over the
    axis, R (n x n, upper triangular, real non-negative diagonal) replicated.  Needs m
    divisible by the axis size p and m / p >= n (module docstring).
    """
    axis_name = _axis(mesh, axis_name)
    A = _check_input("tsqr", "A", A)
    if A.ndim != 2:
        raise ValueError(f"tsqr: A must be a matrix (ndim 2; no batch axes), got shape "
                         f"{tuple(A.shape)}")
    m, n = A.shape
    p = mesh.shape[axis_name]
    if m == 0 or n == 0:
        raise ValueError(f"tsqr: A must have at least one row and one column, got shape "
                         f"{(m, n)}")
    if m % p:
        raise ValueError(f"tsqr: A's {m} rows do not split evenly over the {p} devices of "
                         f"mesh axis {axis_name!r} (m must be divisible by {p})")
    if m // p < n:
        raise ValueError(f"tsqr: each device's block of A must be tall: {m} rows over {p} "
                         f"devices is {m // p} rows per block, fewer than A's {n} columns "
                         f"(need m / {p} >= {n}, i.e. m >= {p * n})")
    spec = _P(axis_name, None)
    local = _jax.shard_map(lambda block: tuple(_local(block, axis_name)), mesh=mesh,
                           in_specs=spec, out_specs=(spec, _P()))
    return QRResult(*local(A))
