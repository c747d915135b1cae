"""What the frameworks' own derivative rules refuse and get wrong: the one place that names
operations for this.

NATIVE_REFUSES: where a native rule raises (the tests pin that it does; bench and verify find
out by calling it).  NATIVE_WRONG: where it differentiates and disagrees with finite
differences (tests/test_svd.py and tests/test_rules.py pin it); bench and verify still time
it but check the generated derivative against finite differences instead.
"""
from __future__ import annotations

import importlib

from ..compiler.backends import NAMES, backend

# Where a framework's native rule refuses to differentiate: op -> {framework: refuses(options,
# values of the primitive dims)}.  Whether a native rule exists at all: native_function
# below (torch.linalg.<op> / jax.numpy.linalg.<op>, or NATIVE_ELSEWHERE); it is expected to
# differentiate every variant and shape not listed.
NATIVE_REFUSES = {
    # torch.linalg.qr has no derivative for mode='r' nor for mode='complete' when m > n
    "qr": {"torch": lambda o, s: o["mode"] == "r" or (o["mode"] == "complete" and s[0] > s[1])},
    # jax.numpy.linalg.svd has no JVP for full_matrices=True unless A is square
    "svd": {"jax": lambda o, s: o["full_matrices"] and s[0] != s[1]},
    # jax.numpy.linalg.eig differentiates eigenvalues only (jax-ml/jax#2748)
    "eig": {"jax": lambda o, s: True},
    # torch.geqrf's derivative is marked not implemented; JAX's geqrf has no JVP rule
    "geqrf": {"torch": lambda o, s: True, "jax": lambda o, s: True},
    # jax.lax.linalg's householder_product and ormqr have no JVP rule
    "householder_product": {"jax": lambda o, s: True},
    "ormqr": {"jax": lambda o, s: True},
}

NATIVE_WRONG = {
    "qr_pivoted": {
        # jax.scipy.linalg.qr(pivoting=True) of a wide matrix: its dR disagrees with finite
        # differences (its dQ agrees), whereas jax.numpy.linalg.qr's wide rule is right
        # (tests/test_qr_pivoted.py)
        "jax": (lambda options, shape: shape[-2] < shape[-1],
                "jax's pivoted QR gets dR of a wide matrix wrong"),
    },
    "svd": {
        # torch.linalg.svd(full_matrices=True) of a tall matrix: the backward drops the
        # cotangent of U[:, n:] and the forward-mode rule leaves U[:, n:] still; both
        # disagree with finite differences for a loss that depends on the completion only
        # through gauge-invariant quantities (tests/test_svd.py)
        "torch": (lambda options, shape: options.get("full_matrices") is True
                  and shape[-2] != shape[-1],
                  "torch's full_matrices=True rule ignores the completion U[:, k:] / Vh[k:, :]"),
    },
}


def native_wrong(op: str, framework: str, options: dict, shape) -> str | None:
    """The reason the native rule of ``op`` is wrong for these options and input shape, or
    None."""
    entry = NATIVE_WRONG.get(op, {}).get(framework)
    if entry is None:
        return None
    predicate, reason = entry
    return reason if predicate(dict(options), tuple(shape)) else None


def _jax_lu():
    # jax.scipy.linalg.lu takes one matrix: vectorized over batch axes (its JVP is JAX's
    # _lu_jvp_rule, for rectangular matrices too); pivot=True is torch.linalg.lu's keyword
    import jax
    lu = jax.numpy.vectorize(jax.scipy.linalg.lu, signature="(m,n)->(m,m),(m,k),(k,n)")

    def native(a, pivot=True):
        assert pivot is True
        return lu(a)
    return native


def _jax_lu_factor():
    # batched already; its pivots count from 0 (ours from 1): not differentiated, not compared
    import jax.scipy.linalg

    def native(a, pivot=True):
        assert pivot is True
        return jax.scipy.linalg.lu_factor(a)
    return native


def _torch_geqrf():
    import torch
    return torch.geqrf


def _jax_geqrf():
    # jax.lax.linalg exports householder_product and ormqr; geqrf itself lives in jax._src
    from jax._src.lax.linalg import geqrf
    return geqrf


def _torch_ormqr():
    # torch.ormqr takes exactly len(tau) columns of a (LAPACK's ormqr reads only those)
    import torch

    def native(a, tau, c, left=True, transpose=False):
        return torch.ormqr(a[..., :tau.shape[-1]], tau, c, left=left, transpose=transpose)
    return native


def _jax_householder_product():
    from jax.lax.linalg import householder_product
    return householder_product


def _jax_ormqr():
    from jax.lax.linalg import ormqr

    def native(a, tau, c, left=True, transpose=False):
        return ormqr(a, tau, c, left=left, transpose=transpose)
    return native


def _jax_qr():
    # jax.numpy.linalg.qr(mode='r') returns R alone: given here with Q empty, as ours
    import jax.numpy as jnp

    def native(a, mode="reduced"):
        if mode == "r":
            return jnp.zeros((0,), a.dtype), jnp.linalg.qr(a, mode="r")
        return jnp.linalg.qr(a, mode=mode)
    return native


def _jax_qr_pivoted():
    # jax.scipy.linalg.qr(pivoting=True), mode spelled SciPy's way (its mode='r' returns an
    # m x n R: ours, k x n with Q empty, is its mode='economic' without Q).  It takes stacks,
    # but its JVP fails on them (a batched triangular_solve, also under vmap, jax 0.10.2), so
    # the matrices of a stack are differentiated one by one and stacked, as a user would
    import jax.numpy as jnp
    from jax.scipy.linalg import qr

    def native(a, mode="reduced"):
        scipy_mode = {"reduced": "economic", "complete": "full", "r": "economic"}[mode]
        flat = a.reshape((-1,) + a.shape[-2:])
        results = [qr(x, mode=scipy_mode, pivoting=True) for x in flat]
        if not results:  # an empty stack: the shapes from one matrix
            results = [qr(jnp.eye(*a.shape[-2:], dtype=a.dtype), mode=scipy_mode,
                          pivoting=True)]
            out = [jnp.stack(y)[:0] for y in zip(*results)]
        else:
            out = [jnp.stack(y) for y in zip(*results)]
        out = [y.reshape(a.shape[:-2] + y.shape[1:]) for y in out]
        if mode == "r":
            return (jnp.zeros(a.shape[:-2] + (0,), a.dtype), *out[1:])
        return tuple(out)
    return native


# Native functions outside torch.linalg / jax.numpy.linalg, or wrapped to give our outputs:
# op -> {framework: () -> function with our outputs in our order}.
def _jax_polar():
    # jax.scipy.linalg.polar's default method (QDWH, a while loop) has no reverse-mode
    # derivative; method='svd' is differentiated through JAX's SVD rule
    from jax.scipy.linalg import polar

    def native(a, side="right"):
        return polar(a, side=side, method="svd")
    return native


def _torch_polar():
    # torch has no polar decomposition: what a user writes, from torch.linalg.svd (as SciPy
    # computes it), differentiated by torch's SVD rule
    import torch

    def native(a, side="right"):
        w, s, vh = torch.linalg.svd(a, full_matrices=False)
        basis = vh.mH if side == "right" else w
        return w @ vh, (basis * s.unsqueeze(-2).to(a.dtype)) @ basis.mH
    return native


NATIVE_ELSEWHERE = {
    "qr": {"jax": _jax_qr},
    "lu": {"jax": _jax_lu},
    "lu_factor": {"jax": _jax_lu_factor},
    "geqrf": {"torch": _torch_geqrf, "jax": _jax_geqrf},
    "householder_product": {"jax": _jax_householder_product},
    "ormqr": {"torch": _torch_ormqr, "jax": _jax_ormqr},
    # torch has no pivoted QR
    "qr_pivoted": {"jax": _jax_qr_pivoted},
    "polar": {"torch": _torch_polar, "jax": _jax_polar},
}


def native_function(framework: str, op: str):
    """The framework's own function for ``op`` (differentiated by its native rule), or None:
    <op> of the backend's linear algebra module (torch.linalg, jax.numpy.linalg: its
    ``native_linalg`` in factorules/compiler/backends.py), or NATIVE_ELSEWHERE's."""
    elsewhere = NATIVE_ELSEWHERE.get(op, {}).get(framework)
    if elsewhere is not None:
        return elsewhere()
    linalg = backend(framework).native_linalg if framework in NAMES else None
    if linalg is None:
        raise ValueError(f"no native functions for {framework!r}")
    return getattr(importlib.import_module(linalg), op, None)
