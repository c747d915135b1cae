"""``cli.py bench tsqr``: the generated jax.tsqr on DEVICES host devices against the single-device
jax.qr of the whole matrix, time and peak memory.

For A (m x n, by default 1,000,000 x 32 float64; ``--quick``: QUICK_SIZE) two passes are
measured on each path:

- ``values``: (Q, R), normalized to R's diagonal real and non-negative (tsqr's convention;
  on the qr path ``positive(*qr(A))``);
- ``value+grad``: jax.value_and_grad of loss = sum(sin(Q)) + sum(sin(R)) of those (Q, R).

The ``tsqr`` path runs with XLA's host platform split into DEVICES devices
(``--xla_force_host_platform_device_count``), A's rows sharded over them, one BLAS thread per
device (child_env); the ``qr`` path on one device, with the caller's BLAS threads.  Every (path, pass) is measured in a fresh process (``python -m
factorules.tools.bench_distributed REQUEST``: the request as JSON on the command line, the result
as one tagged JSON line on stdout), so that peaks do not mix: A is drawn and put on the
device(s), the pass is compiled ahead of time (jit(...).lower(A).compile()), the resident set
size's high-water mark is reset (``5`` to /proc/self/clear_refs, Linux >= 4.0; where refused,
the peak is the process's since it started: the method column says "rss, no reset"), the
compiled pass runs once and its peak resident memory above the memory before it (A and the
runtime) is the peak column; then it runs ``--repeats`` more times, and the time is their
median (one more run beforehand, under ``--quick``: none).

The check column compares the two paths: R (values) and the gradient's sum and norm
(value+grad), relative differences; one above CHECK_TOLERANCE fails the command (exit 1).
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time

from .child_process import aligned, memory_status, reset_peak, run_tagged

NAME = "tsqr"                    # its name on the command line: cli.py bench tsqr
DEVICES = 4
SIZE = (1_000_000, 32)
QUICK_SIZE = (4_096, 16)
DTYPE = "float64"
PATHS = ("tsqr", "qr")
PASSES = ("values", "value+grad")
CHECK_TOLERANCE = 1e-8
CHILD_TIMEOUT_S = 900
RESULT_TAG = "factorules-bench-tsqr "
DEVICE_FLAG = "--xla_force_host_platform_device_count"
BLAS_THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


# -- one measurement (in the child) --------------------------------------------------------------

def _functions(path: str, mesh):
    """(values, value_and_grad) of the path, functions of A."""
    import jax
    import jax.numpy as jnp

    import importlib

    from ..compiler.backends import backend

    fj = importlib.import_module(backend("jax").package)

    if path == "tsqr":
        def factor(a):
            return fj.tsqr(a, mesh)
    else:
        def factor(a):
            return fj.distributed.positive(*fj.qr(a))

    def loss(a):
        q, r = factor(a)
        return jnp.sum(jnp.sin(q)) + jnp.sum(jnp.sin(r))

    return factor, jax.value_and_grad(loss)


def measure(request: dict) -> dict:
    """One pass of one path, in this process; its result as a dict."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    path, which = request["path"], request["pass"]
    m, n = request["m"], request["n"]
    devices = jax.devices()
    a_host = np.random.default_rng(request.get("seed", 0)).standard_normal((m, n))
    a_host = a_host.astype(request.get("dtype", DTYPE))
    mesh = None
    if path == "tsqr":
        mesh = Mesh(np.array(devices), ("rows",))
        a = jax.device_put(a_host, NamedSharding(mesh, PartitionSpec("rows", None)))
    else:
        a = jax.device_put(a_host, devices[0])
    # the transfer is asynchronous: done before the memory is read, or its copy of A
    # would count in the peak
    a = jax.block_until_ready(a)
    a_bytes = int(a_host.nbytes)
    del a_host
    values, value_and_grad = _functions(path, mesh)
    fn = values if which == "values" else value_and_grad
    compiled = jax.jit(fn).lower(a).compile()
    reset = reset_peak()
    before = memory_status()
    t0 = time.perf_counter()
    out = jax.block_until_ready(compiled(a))
    first = time.perf_counter() - t0
    after = memory_status()
    if which == "values":
        check = {"R": np.asarray(out[1]).tolist()}
    else:
        g = np.asarray(out[1])
        check = {"loss": float(out[0]), "grad_sum": float(g.sum()),
                 "grad_norm": float(np.linalg.norm(g))}
    del out
    times = []
    for _ in range(request["repeats"] + (0 if request.get("quick") else 1)):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(a))
        times.append(time.perf_counter() - t0)
    if not request.get("quick"):
        times = times[1:]  # a warm-up run
    peak = (after["VmHWM"] - before["VmRSS"]) if "VmHWM" in after and "VmRSS" in before \
        else None
    return {**request, "devices": len(devices), "a_bytes": a_bytes, "first_s": first,
            "median_s": statistics.median(times), "times_s": times, "peak_bytes": peak,
            "method": "rss" if reset else "rss, no reset", "check": check,
            "xla_flags": os.environ.get("XLA_FLAGS", ""), "jax": jax.__version__,
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS")}


# -- running children (in the parent) ------------------------------------------------------------

def child_env(path: str, base=None) -> dict:
    """The environment of a measurement: the caller's, with XLA's host platform split into
    DEVICES devices for the tsqr path and left whole (one device) for the qr path.  The
    device count goes first in XLA_FLAGS: XLA's parser ignores what follows a word without
    the leading "--".  On the tsqr path each device's LAPACK calls run on one BLAS thread
    (BLAS_THREADS): the DEVICES devices run theirs at once, and a pool of threads per call
    on top of them oversubscribes the cores (on two cores, the local QRs alone took 4 times
    as long as with one thread each); the qr path keeps the caller's BLAS threads (by
    default OpenBLAS's, one per core)."""
    env = dict(os.environ if base is None else base)
    flags = [f for f in env.get("XLA_FLAGS", "").split() if not f.startswith(DEVICE_FLAG)]
    if path == "tsqr":
        flags.insert(0, f"{DEVICE_FLAG}={DEVICES}")
        env.update({variable: "1" for variable in BLAS_THREADS})
    env["XLA_FLAGS"] = " ".join(flags)
    return env


def run_child(request: dict, timeout: float = CHILD_TIMEOUT_S) -> dict:
    """One measurement in a fresh process: its result, or the request with an error."""
    result = run_tagged("factorules.tools.bench_distributed", request, RESULT_TAG, timeout,
                        env=child_env(request["path"]))
    if set(result) == {"error"}:
        return {**request, **result}
    return {"error": None, **result}


def _rel(a, b) -> float:
    import numpy as np

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-300))


def checks(results: list[dict]) -> dict:
    """Per pass, the largest relative difference between the tsqr and qr results (None
    where either failed)."""
    out = {}
    for which in PASSES:
        got = {r["path"]: r for r in results if r["pass"] == which and not r.get("error")}
        if set(got) != set(PATHS):
            out[which] = None
        elif which == "values":
            out[which] = _rel(got["tsqr"]["check"]["R"], got["qr"]["check"]["R"])
        else:
            t, q = got["tsqr"]["check"], got["qr"]["check"]
            out[which] = max(_rel(t[k], q[k]) for k in ("loss", "grad_sum", "grad_norm"))
    return out


def plan(quick: bool, repeats: int, m: int | None = None, n: int | None = None) -> list[dict]:
    size_m, size_n = QUICK_SIZE if quick else SIZE
    m, n = m or size_m, n or size_n
    return [{"path": path, "pass": which, "m": m, "n": n, "dtype": DTYPE,
             "repeats": repeats, "quick": quick, "seed": 0}
            for which in PASSES for path in PATHS]


def rows(results: list[dict]) -> list[dict]:
    """Table rows: one per (path, pass), with the time ratio tsqr / qr on the tsqr rows."""
    found = checks(results)
    base = {r["pass"]: r for r in results if r["path"] == "qr" and not r.get("error")}
    out = []
    for r in results:
        failed = bool(r.get("error"))
        ref = base.get(r["pass"])
        ratio = (r["median_s"] / ref["median_s"] if r["path"] == "tsqr" and ref and not failed
                 else None)
        err = found.get(r["pass"])
        out.append({"path": r["path"], "pass": r["pass"],
                    "devices": None if failed else r["devices"], "m": r["m"], "n": r["n"],
                    "dtype": r["dtype"], "median_ms": None if failed else 1e3 * r["median_s"],
                    "ratio": ratio, "peak_bytes": None if failed else r["peak_bytes"],
                    "times_a": None if failed or r["peak_bytes"] is None
                    else r["peak_bytes"] / r["a_bytes"],
                    "method": None if failed else r["method"], "check": err,
                    "ok": not failed and err is not None and err <= CHECK_TOLERANCE,
                    "repeats": r["repeats"], "error": r.get("error")})
    return out


def _size(b) -> str:
    if b is None:
        return "-"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(b) >= scale:
            return f"{b / scale:.3g} {unit}"
    return f"{b:.0f} B"


COLUMNS = ("path", "pass", "devices", "shape", "dtype", "median ms", "vs qr", "peak rss",
           "x A", "method", "check")


def format_table(table: list[dict]) -> str:
    cells = [list(COLUMNS)]
    for r in table:
        head = [r["path"], r["pass"], "-" if r["devices"] is None else str(r["devices"]),
                f"{r['m']}x{r['n']}", r["dtype"]]
        if r["error"]:
            cells.append(head + ["-"] * 5 + [r["error"]])
            continue
        cells.append(head + [f"{r['median_ms']:.1f}",
                             "-" if r["ratio"] is None else f"{r['ratio']:.2f}",
                             _size(r["peak_bytes"]),
                             "-" if r["times_a"] is None else f"{r['times_a']:.2f}",
                             r["method"],
                             "-" if r["check"] is None
                             else f"{r['check']:.1e}" + ("" if r["ok"] else " FAIL")])
    return aligned(cells, {2, 5, 6, 7, 8})


def footnote(table: list[dict], results: list[dict]) -> str:
    repeats = table[0]["repeats"] if table else 0
    qr = next((r for r in results if r["path"] == "qr" and not r.get("error")), {})
    flags = qr.get("xla_flags", os.environ.get("XLA_FLAGS", ""))
    threads = qr.get("blas_threads", os.environ.get("OPENBLAS_NUM_THREADS"))
    jax = next((r["jax"] for r in results if not r.get("error")), "?")
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count()
    return (f"median ms: median of {repeats} run(s) of the compiled pass; vs qr: tsqr's time / "
            f"qr's; peak rss: the resident set size's peak during one run above the memory "
            f"before it (A on the device(s) and the runtime), x A: that over A's size; check: "
            f"tsqr against qr, relative difference of R (values) or of the loss, the "
            f"gradient's sum and norm (value+grad), FAIL above {CHECK_TOLERANCE:g}. "
            f"jax {jax}, {cpus} CPU(s); tsqr on {DEVICES} host devices ({DEVICE_FLAG}), "
            f"one BLAS thread each; qr on one device, OPENBLAS_NUM_THREADS="
            f"{threads or '(unset: one per core)'}; XLA_FLAGS of the qr path: "
            f"{flags or '(none)'}.")


def main(args) -> int:
    """``cli.py bench tsqr`` (args: the bench command's)."""
    repeats = min(args.repeats, 2) if args.quick else args.repeats
    if repeats < 1:
        print(f"bench: --repeats must be at least 1, got {args.repeats}", file=sys.stderr)
        return 2
    results = []
    for request in plan(args.quick, repeats):
        if sys.stderr.isatty():
            print(f"bench tsqr: {request['path']} {request['pass']} "
                  f"{request['m']}x{request['n']} ...", file=sys.stderr)
        results.append(run_child(request))
    table = rows(results)
    if args.json:
        print(json.dumps(table, indent=2))
    else:
        print(format_table(table))
        print()
        print(footnote(table, results))
    failed = [r for r in table if not r["ok"]]
    for r in failed:
        print(f"bench tsqr: {r['path']} {r['pass']}: "
              + (r["error"] or f"check {r['check']} over {CHECK_TOLERANCE:g}"),
              file=sys.stderr)
    return 1 if failed else 0


def _child(argv: list[str]) -> int:
    result = measure(json.loads(argv[0]))
    print(RESULT_TAG + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
