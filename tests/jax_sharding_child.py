"""The process tests/test_jax_sharding.py starts: every generated JAX operation differentiated
under jax.jit on a batch of matrices sharded over a mesh of host devices, one JSON line of
results on stdout.

``python tests/jax_sharding_child.py`` run from the repository root, with XLA_FLAGS holding
--xla_force_host_platform_device_count=N (N >= 2, dividing BATCH).  For each case (an operation,
its options, a dtype): the inputs, batches of BATCH matrices, are put on a one-axis mesh of the
N devices with the batch axis split over it (NamedSharding, PartitionSpec("batch"));
``jax.jit(jax.grad(loss, argnums=every input))`` is lowered and compiled for them, and the
result records

- the sharding of each gradient, and whether it is its input's;
- the collectives in the compiled HLO (all-gather, all-reduce, reduce-scatter, all-to-all,
  collective-permute, and their -start forms);
- the largest difference from the same function jitted on unsharded inputs (one device),
  relative to the largest entry of that gradient.

The losses are weighted sums of |entry|^2 over the outputs (fixed weights per entry): a
phase (a sign, for real data) of an eigenvector or singular vector column leaves every |entry|
as it is, so the losses of eig, eigh and svd do not depend on the gauge (as in
tests/test_jax_harness.py).  The complete U of svd(full_matrices=True) of a tall matrix is
arbitrary beyond its first min(m, n) columns: that loss sees U only through U U^H (= I), as in
tests/test_svd.py.

The case "control" is not an operation: its loss couples the matrices of the batch (it
factorizes each matrix minus the batch mean), so its gradient needs communication; the test
asserts that collectives are found there, which shows that the search for them can fail.
"""
from __future__ import annotations

import json
import os
import re
import sys

import numpy as np

BATCH = 8
COLLECTIVE = re.compile(
    r"\b(all-gather|all-reduce|reduce-scatter|all-to-all|collective-permute)(?:-start)?\(")


def _full_svd(fj, jnp, A):
    """svd(full_matrices=True) of a tall matrix, U seen only as U U^H (its columns beyond
    min(m, n) are an arbitrary orthonormal completion)."""
    u, s, vh = fj.svd(A)
    return u @ jnp.conj(jnp.swapaxes(u, -1, -2)), s, vh


# (name, its inputs (keys of _inputs), the function of them); the names are the test ids
CASES = [
    ("cholesky", ("positive",), lambda fj, jnp: fj.cholesky),
    ("eig", ("square",), lambda fj, jnp: fj.eig),
    ("eigh", ("hermitian",), lambda fj, jnp: fj.eigh),
    ("eigh_generalized", ("hermitian", "positive"), lambda fj, jnp: fj.eigh_generalized),
    ("eigvals", ("square",), lambda fj, jnp: fj.eigvals),
    ("eigvalsh", ("hermitian",), lambda fj, jnp: fj.eigvalsh),
    ("geqrf", ("tall",), lambda fj, jnp: fj.geqrf),
    ("householder_product", ("a", "tau"), lambda fj, jnp: fj.householder_product),
    ("lq", ("wide",), lambda fj, jnp: fj.lq),
    ("lu", ("square",), lambda fj, jnp: fj.lu),
    ("lu_factor", ("square",), lambda fj, jnp: fj.lu_factor),
    ("ormqr", ("a", "tau", "c_left"), lambda fj, jnp: fj.ormqr),
    ("ormqr left=False transpose=True", ("a", "tau", "c_right"),
     lambda fj, jnp: lambda a, t, c: fj.ormqr(a, t, c, left=False, transpose=True)),
    *[(f"qr mode={mode!r}{' pivoting=True' * pivoting}", ("tall",),
       lambda fj, jnp, mode=mode, pivoting=pivoting:
       lambda A: fj.qr(A, mode=mode, pivoting=pivoting))
      for mode in ("reduced", "complete", "r") for pivoting in (False, True)],
    ("qr wide", ("wide",), lambda fj, jnp: fj.qr),
    ("rq", ("wide",), lambda fj, jnp: fj.rq),
    ("polar", ("tall",), lambda fj, jnp: fj.polar),
    ("schur", ("square",), lambda fj, jnp: lambda A: fj.schur(A, output="complex")),
    ("hessenberg", ("square",), lambda fj, jnp: lambda A: fj.hessenberg(A, calc_q=True)),
    ("qr_pivoted", ("tall",), lambda fj, jnp: fj.qr_pivoted),
    ("svd full_matrices=False", ("tall",),
     lambda fj, jnp: lambda A: fj.svd(A, full_matrices=False)),
    ("svd full_matrices=True", ("tall",), lambda fj, jnp: lambda A: _full_svd(fj, jnp, A)),
    ("svdvals", ("tall",), lambda fj, jnp: fj.svdvals),
    ("control", ("tall",), lambda fj, jnp: lambda A: fj.qr(A - jnp.mean(A, axis=0))),
]
# the cases run in complex128 as well as in float64: the operations whose vectors have a
# continuous phase, and qr (its rules take the real part of a diagonal)
COMPLEX_CASES = ("eig", "eigh", "svd full_matrices=False", "svd full_matrices=True",
                 "qr mode='reduced'")
DTYPES = {"float64": [name for name, _, _ in CASES],
          "complex128": list(COMPLEX_CASES)}


def _draw(rng, shape, dtype):
    x = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


def _inputs(fj, jax, dtype, seed=0):
    """Batches of BATCH matrices: general tall, square and wide, Hermitian positive definite,
    Hermitian; geqrf's (a, tau) of the tall ones; the C of ormqr from the left and right."""
    rng = np.random.default_rng(seed)
    tall = _draw(rng, (BATCH, 6, 4), dtype)
    square = _draw(rng, (BATCH, 4, 4), dtype)
    a, tau = (np.asarray(y) for y in jax.jit(fj.geqrf)(tall))
    return {"tall": tall, "square": square, "wide": _draw(rng, (BATCH, 3, 5), dtype),
            "hermitian": square + np.conj(np.swapaxes(square, -1, -2)),
            "positive": square @ np.conj(np.swapaxes(square, -1, -2)) + 4 * np.eye(4),
            "a": a, "tau": tau, "c_left": _draw(rng, (BATCH, 6, 3), dtype),
            "c_right": _draw(rng, (BATCH, 3, 6), dtype)}


def _outputs(fn, args) -> tuple:
    """The outputs of fn as a tuple (cholesky, eigvals, ... return one array)."""
    out = fn(*args)
    return tuple(out) if isinstance(out, tuple) else (out,)


def _weights(outputs, seed):
    """Fixed weights per entry of each output that carries a derivative (none for integer
    pivots and for an output returned empty)."""
    rng = np.random.default_rng(seed)
    return [rng.uniform(0.5, 2.0, o.shape)
            if np.prod(o.shape) and np.issubdtype(o.dtype, np.inexact) else None
            for o in outputs]


def _loss(jnp, fn, weights):
    def loss(*args):
        total = 0.0
        for y, w in zip(_outputs(fn, args), weights):
            if w is not None:
                total = total + jnp.sum(jnp.abs(y) ** 2 * w)
        return total
    return loss


def run_case(jax, jnp, mesh, fn, inputs, seed):
    from jax.sharding import NamedSharding, PartitionSpec

    batch = NamedSharding(mesh, PartitionSpec("batch"))
    unsharded = tuple(jnp.asarray(x) for x in inputs)
    weights = _weights(jax.eval_shape(lambda *a: _outputs(fn, a), *unsharded), seed)
    grad = jax.jit(jax.grad(_loss(jnp, fn, weights), argnums=tuple(range(len(inputs)))))
    sharded = tuple(jax.device_put(x, batch) for x in inputs)
    compiled = grad.lower(*sharded).compile()
    hlo = compiled.as_text()
    got = compiled(*sharded)
    want = grad(*unsharded)
    kept = [bool(g.sharding.is_equivalent_to(x.sharding, x.ndim)) for g, x in zip(got, sharded)]
    errors = [float(np.max(np.abs(np.asarray(g) - np.asarray(w))) / np.max(np.abs(w)))
              for g, w in zip(got, want)]
    return {"sharding_kept": all(kept),
            "input_shardings": [str(x.sharding.spec) for x in sharded],
            "gradient_shardings": [str(g.sharding.spec) for g in got],
            "gradient_devices": [len(g.sharding.device_set) for g in got],
            "collectives": sorted({m.group(1) for m in COLLECTIVE.finditer(hlo)}),
            "max_rel_err": max(errors),
            "smallest_gradient_max": float(min(np.max(np.abs(w)) for w in want))}


def main(dtype_names) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax.sharding import Mesh

    from generated import jax as fj

    devices = jax.devices()
    if len(devices) < 2 or BATCH % len(devices):
        raise SystemExit(f"jax_sharding_child: needs 2 or more devices dividing {BATCH}, has "
                         f"{len(devices)} (XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r})")
    mesh = Mesh(np.array(devices), ("batch",))
    table = {name: (keys, make) for name, keys, make in CASES}
    results = []
    for dtype in dtype_names:
        inputs = _inputs(fj, jax, dtype)
        for i, name in enumerate(DTYPES[dtype]):
            keys, make = table[name]
            try:
                result = run_case(jax, jnp, mesh, make(fj, jnp), [inputs[k] for k in keys],
                                  seed=100 + i)
            except Exception as err:  # reported for this case alone; the test fails it
                result = {"error": f"{type(err).__name__}: {err}"}
            results.append({"case": name, "dtype": dtype, "error": None, **result})
    print(json.dumps({"devices": len(devices), "platform": devices[0].platform,
                      "jax": jax.__version__, "results": results}))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.getcwd())
    sys.exit(main(sys.argv[1:] or list(DTYPES)))
