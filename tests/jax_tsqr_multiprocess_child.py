"""One of the processes tests/test_tsqr.py starts to run generated.jax.tsqr as on several hosts:
``python tests/jax_tsqr_multiprocess_child.py PROCESS_ID PROCESSES PORT`` from the repository
root, with XLA_FLAGS splitting this process's host platform into DEVICES_PER_PROCESS devices.

The processes meet through jax.distributed.initialize (the coordinator: process 0, on
localhost:PORT), collectives between them go through gloo (JAX's CPU collectives); the mesh
spans every process's devices, and A is the global array of each process's rows
(jax.make_array_from_process_local_data).  Each process reports, as one JSON line on stdout,
what it holds of Q, R and the gradient of a loss of (Q, R) against the same computed on one of
its devices from the whole matrix (positive(*qr(A)), tsqr's sign convention).
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np

M, N = 96, 5
DEVICES_PER_PROCESS = 2


def main(process_id: int, processes: int, port: int) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"localhost:{port}",
                               num_processes=processes, process_id=process_id)
    import jax.numpy as jnp
    from jax.sharding import NamedSharding, PartitionSpec

    from generated import jax as fj

    mesh = jax.make_mesh((jax.device_count(),), ("rows",))
    whole = np.random.default_rng(0).standard_normal((M, N))
    sharding = NamedSharding(mesh, PartitionSpec("rows", None))
    # the rows of this process's devices, in order (a block per device)
    mine = np.concatenate([np.arange(M)[index[0]] for index in sorted(
        sharding.addressable_devices_indices_map((M, N)).values(), key=lambda i: i[0].start)])
    A = jax.make_array_from_process_local_data(sharding, whole[mine], (M, N))

    def loss(factor):
        def f(a):
            q, r = factor(a)
            return jnp.sum(jnp.sin(q)) + jnp.sum(r[0] ** 2)
        return f

    def distributed(a):
        return fj.tsqr(a, mesh, "rows")

    def reference(a):
        return fj.distributed.positive(*fj.qr(a))

    q, r = jax.jit(distributed)(A)
    g = jax.jit(jax.grad(loss(distributed)))(A)
    local = jax.device_put(whole, jax.local_devices()[0])
    q_ref, r_ref = (np.asarray(x) for x in jax.jit(reference)(local))
    g_ref = np.asarray(jax.jit(jax.grad(loss(reference)))(local))

    def held(x):
        """This process's rows of a row-sharded global array, in the order of ``mine``."""
        shards = sorted(x.addressable_shards, key=lambda s: s.index[0].start)
        assert [i for s in shards for i in np.arange(M)[s.index[0]]] == mine.tolist()
        return np.concatenate([np.asarray(s.data) for s in shards])

    def rel(got, want):
        return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))

    print(json.dumps({
        "process": jax.process_index(), "processes": jax.process_count(),
        "devices": jax.device_count(), "local_devices": jax.local_device_count(),
        "rows_held": len(mine), "q_err": rel(held(q), q_ref[mine]),
        "r_err": rel(np.asarray(r.addressable_data(0)), r_ref),
        "grad_err": rel(held(g), g_ref[mine]), "grad_spec": str(g.sharding.spec)}),
        flush=True)
    jax.distributed.shutdown()
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.getcwd())
    sys.exit(main(*map(int, sys.argv[1:4])))
