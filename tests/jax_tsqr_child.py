"""The process tests/test_tsqr.py starts: generated.jax.tsqr on a mesh of host devices against the
single-device qr of the whole matrix, one JSON line of results on stdout.

``python tests/jax_tsqr_child.py`` run from the repository root, with XLA_FLAGS holding
--xla_force_host_platform_device_count=N (N >= 2).  For each case (a dtype, a shape): A with
its rows sharded over the mesh axis "rows"; Q, R = tsqr(A, mesh) against
positive(*qr(A)) on one device (the same sign convention), and, under jax.jit, the gradient
of a loss of (Q, R) and a JVP against the same of the single-device function.  Every figure is
a largest difference relative to the largest entry of the reference.  Besides: the shardings
of Q, R and the gradient, the collectives of the compiled forward and gradient, and the
errors tsqr raises for rows that do not split evenly and for blocks that are not tall.  It
runs under JAX's strict dtype promotion and rank promotion "raise".
"""
from __future__ import annotations

import json
import os
import re
import sys

import numpy as np

COLLECTIVE = re.compile(
    r"\b(all-gather|all-reduce|reduce-scatter|all-to-all|collective-permute)(?:-start)?\(")
# (dtype, rows per device, columns): blocks of 50 x 8, and square blocks (m / p = n)
CASES = [("float64", 50, 8), ("float64", 8, 8), ("complex128", 50, 8), ("complex128", 8, 8),
         ("float32", 50, 8), ("complex64", 8, 8)]


def _draw(rng, shape, dtype):
    x = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


def _rel(got, want) -> float:
    got, want = np.asarray(got), np.asarray(want)
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def _collectives(compiled) -> list[str]:
    return sorted({m.group(1) for m in COLLECTIVE.finditer(compiled.as_text())})


def run_case(jax, jnp, fj, mesh, dtype, rows, n, seed, host_input):
    from jax.sharding import NamedSharding, PartitionSpec

    p = mesh.shape["rows"]
    m = rows * p
    rng = np.random.default_rng(seed)
    a = _draw(rng, (m, n), dtype)
    da = _draw(rng, (m, n), dtype)
    w_q, w_r = _draw(rng, (m, n), dtype), _draw(rng, (n, n), dtype)
    by_rows = NamedSharding(mesh, PartitionSpec("rows", None))
    sharded = jax.device_put(a, by_rows)
    single = jnp.asarray(a)

    def distributed(x):
        return fj.tsqr(x, mesh, "rows")

    def reference(x):
        return fj.distributed.positive(*fj.qr(x))

    def loss(factorize):
        # depends on the signs of Q's columns and R's rows (the convention is part of the
        # function), and on every entry of both
        def f(x):
            q, r = factorize(x)
            return (jnp.sum(jnp.real(jnp.conj(w_q) * q)) + jnp.sum(jnp.abs(w_r * r) ** 2)
                    + jnp.sum(jnp.abs(q) ** 4))
        return f

    forward = jax.jit(distributed).lower(sharded).compile()
    q, r = forward(sharded)
    q_ref, r_ref = jax.jit(reference)(single)
    grad = jax.jit(jax.grad(loss(distributed))).lower(sharded).compile()
    g = grad(sharded)
    g_ref = jax.jit(jax.grad(loss(reference)))(single)
    (_, _), (dq, dr) = jax.jit(lambda x, t: jax.jvp(distributed, (x,), (t,)))(
        sharded, jax.device_put(da, by_rows))
    (_, _), (dq_ref, dr_ref) = jax.jit(lambda x, t: jax.jvp(reference, (x,), (t,)))(
        single, jnp.asarray(da))
    q_np, r_np = np.asarray(q), np.asarray(r)
    diagonal = np.diagonal(r_np)
    out = {
        "dtype": dtype, "m": m, "n": n, "devices": p,
        "q_err": _rel(q, q_ref), "r_err": _rel(r, r_ref), "grad_err": _rel(g, g_ref),
        "jvp_q_err": _rel(dq, dq_ref), "jvp_r_err": _rel(dr, dr_ref),
        "residual": float(np.linalg.norm(q_np @ r_np - a) / np.linalg.norm(a)),
        "orthogonality": float(np.max(np.abs(q_np.conj().T @ q_np - np.eye(n)))),
        "diagonal_real_nonnegative": bool(np.all(np.real(diagonal) >= 0)
                                          and np.all(np.imag(diagonal) == 0)),
        "upper_triangular": bool(np.all(np.tril(r_np, -1) == 0)),
        "q_dtype": str(q.dtype), "r_dtype": str(r.dtype), "grad_dtype": str(g.dtype),
        "q_spec": str(q.sharding.spec), "r_spec": str(r.sharding.spec),
        "r_replicated": bool(r.sharding.is_fully_replicated),
        "grad_spec": str(g.sharding.spec),
        "grad_kept": bool(g.sharding.is_equivalent_to(sharded.sharding, 2)),
        "forward_collectives": _collectives(forward),
        "grad_collectives": _collectives(grad),
        "grad_max": float(np.max(np.abs(np.asarray(g_ref)))),
    }
    if host_input:  # A given as a NumPy array, not sharded (eagerly): resharded by rows
        q_host, r_host = distributed(a)
        out["host_input_err"] = max(_rel(q_host, q_ref), _rel(r_host, r_ref))
        out["host_input_q_spec"] = str(q_host.sharding.spec)
    return out


def _message(call) -> str | None:
    try:
        call()
    except ValueError as err:
        return str(err)
    return None


def main() -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    # JAX's strictest settings, as tests/test_jax_harness.py holds the generated code to them
    jax.config.update("jax_numpy_dtype_promotion", "strict")
    jax.config.update("jax_numpy_rank_promotion", "raise")
    import jax.numpy as jnp
    from jax.sharding import Mesh

    from generated import jax as fj

    devices = jax.devices()
    if len(devices) < 2:
        raise SystemExit(f"jax_tsqr_child: needs 2 or more devices, has {len(devices)} "
                         f"(XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r})")
    mesh = Mesh(np.array(devices), ("rows",))
    p = len(devices)
    results = [run_case(jax, jnp, fj, mesh, dtype, rows, n, seed=i, host_input=i == 0)
               for i, (dtype, rows, n) in enumerate(CASES)]
    errors = {
        "uneven": _message(lambda: fj.tsqr(np.ones((8 * p + 1, 2)), mesh)),
        "not_tall": _message(lambda: fj.tsqr(np.ones((4 * p, 5)), mesh)),
    }
    print(json.dumps({"devices": p, "platform": devices[0].platform, "results": results,
                      "errors": errors}))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.getcwd())
    sys.exit(main())
