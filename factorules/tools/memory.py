"""``cli.py bench-memory``: peak memory of a gradient through geqrf -> ormqr, the Householder
Q applied as an operator against Q formed densely.

The loss, for A m x n (m >= n), (a, tau) = geqrf(A) and Q the m x m product of its
Householder reflectors:

    y = Q w + Q [v; 0] = ormqr(a, tau, w[:, None]) + ormqr(a, tau, [v; 0][:, None]),
    loss = Re <g, y>,

w and g m-vectors, v an n-vector (Q[:, :n] v is Q applied to v padded with zeros).  Its
gradient with respect to A goes through both ormqr pullbacks and geqrf's.  The operator path
never needs an m x m array: its target is a peak of at most TARGET times the size of A.  The
dense path forms Q = ormqr(a, tau, eye(m)) and takes y = Q w + Q[:, :n] v; its Q alone is
m * m * itemsize bytes (computed, not run, at the large size).  For torch, two more rows
compare the tall QR's gradient (reduced mode, loss Re <g, Q v> + Re <v, R v>) through the
generated rule and through torch's own: its target is a peak no higher than native's.

Every measurement runs in a fresh process (``python -m factorules.tools.memory_measure REQUEST``:
the request as JSON on the command line, the result as one tagged JSON line on stdout), so that
peaks do not mix.  The inputs are made before the measurement starts; the peak is what the
forward and backward passes allocate beyond them:

- numpy: tracemalloc (NumPy reports its array buffers to it), the peak of traced memory
  above the traced memory at the start.  It does not see what LAPACK drivers malloc()
  themselves (numpy.linalg.qr's column-major copy of A and its workspace);
- torch: tracemalloc does not see torch's CPU allocator, so the peak resident set size:
  /proc/self/status VmHWM is reset to the current RSS (``5`` written to
  /proc/self/clear_refs, Linux >= 4.0) right before the computation, and the peak is VmHWM
  after it minus VmRSS before it.  The computation runs once at WARM_UP_ROWS rows first (what
  the libraries set up on first use is no part of it), and glibc's malloc keeps a fixed mmap
  threshold (CHILD_ENV), so that a freed array leaves the resident set.  Where the reset is refused, VmHWM is the peak since the
  process started (an upper bound; the method column says "rss, no reset").  The numpy rows
  report the same RSS figure beside tracemalloc's.

Each child caps its address space (RLIMIT_AS) at what it has mapped plus a share of the
memory available, so that an m x m allocation fails at once with an out-of-memory error (a
row of the table, not a killed machine).  Times are of one run each (the one measured).

For each backend whose operator path misses the target, one more process runs it under a
line tracer (at m where the operator path ran there, else at ``--dense-m``): before each
statement of the generated rule modules (geqrf.py, ormqr.py) the peak is reset
(tracemalloc's for numpy, VmHWM for torch), after it the peak above the memory live before
it is that statement's temporary (its result included).  Those of at least half A's size are
listed, largest first: the rule statements that allocate m x n (and m x m) temporaries.  The
numpy operator path also reports its peak step by step.
"""
from __future__ import annotations

import json
import os
import sys

from .child_process import run_tagged
from .memory_table import format_profile, footnote, format_table, row

# the target: operator-path peak <= TARGET x A.nbytes.  3 is the floor (a, the cotangent of a
# and gA are alive at once in geqrf's pullback), the cotangents of a from both ormqr pullbacks
# and the rules' row blocks take a little more
TARGET = 4.0
WARM_UP_ROWS = 1000           # rows of the run before a resident-memory measurement
# glibc's malloc with a fixed mmap threshold (not one that grows to 32 MB after the first large
# free): a freed array of more than 128 KiB goes back to the system, so that resident memory
# is what is live and not what the heap keeps for reuse
CHILD_ENV = {"MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}
CHILD_TIMEOUT_S = 600        # one measurement still running after this long is killed
RESULT_TAG = "factorules-bench-memory "
AVAILABLE_SHARE = 0.75       # of MemAvailable, the most one child may map beyond its start
PROFILE_TOP = 15             # statements listed by the line profile
RULE_FILES = ("geqrf.py", "ormqr.py")
STEPS = ("geqrf", "ormqr Q w", "ormqr Q [v; 0]", "loss", "ormqr pullback (w)",
         "ormqr pullback ([v; 0])", "cotangents summed", "geqrf pullback")


# -- the computations (in the child) -------------------------------------------------------------

def inputs(m: int, n: int, dtype: str = "float64", seed: int = 0):
    """A (m x n), w (m), v (n), g (m): NumPy arrays (complex dtypes: complex entries)."""
    import numpy as np

    rng = np.random.default_rng(seed)

    def draw(*shape):
        x = rng.standard_normal(shape)
        if np.dtype(dtype).kind == "c":
            x = x + 1j * rng.standard_normal(shape)
        return x.astype(dtype)

    return draw(m, n), draw(m), draw(n), draw(m)


def numpy_operator(A, w, v, g, mark=lambda step: None):
    """The gradient of Re <g, Q w + Q [v; 0]> w.r.t. A with NumPy's explicit pullbacks, Q
    applied by ormqr (never formed); mark(step) is called after each step."""
    import numpy as np

    from generated import numpy as gn

    m, n = A.shape
    (a, tau), pull_geqrf = gn.geqrf_vjp(A)
    mark("geqrf")
    y1, pull_w = gn.ormqr_vjp((a, tau, w[:, None]))
    mark("ormqr Q w")
    padded = np.concatenate([v, np.zeros(m - n, v.dtype)])[:, None]
    y2, pull_v = gn.ormqr_vjp((a, tau, padded))
    del padded
    mark("ormqr Q [v; 0]")
    loss = np.vdot(g, y1[:, 0] + y2[:, 0]).real
    del y1, y2
    mark("loss")
    ga, gtau, _ = pull_w(g[:, None])  # PyTorch's convention: Re <g, y> pulls back g
    del pull_w
    mark("ormqr pullback (w)")
    ga_v, gtau_v, _ = pull_v(g[:, None])
    del pull_v
    mark("ormqr pullback ([v; 0])")
    # the two cotangents of a summed; only what the rules need stays alive (a, ga)
    # (into ga, as autograd's gradient buffers accumulate, where ga is an array of its own)
    ga = np.add(ga, ga_v, out=ga) if ga.flags.owndata and ga.flags.writeable else ga + ga_v
    gtau = gtau + gtau_v
    del ga_v, gtau_v, a, tau
    mark("cotangents summed")
    gA = pull_geqrf(ga, gtau)
    del ga, gtau, pull_geqrf
    mark("geqrf pullback")
    return loss, gA


def numpy_dense(A, w, v, g, mark=lambda step: None):
    """The same gradient through Q = ormqr(a, tau, eye(m)) formed densely."""
    import numpy as np

    from generated import numpy as gn

    m, n = A.shape
    (a, tau), pull_geqrf = gn.geqrf_vjp(A)
    mark("geqrf")
    Q, pull_q = gn.ormqr_vjp((a, tau, np.eye(m, dtype=A.dtype)))
    mark("ormqr Q = op(eye)")
    loss = np.vdot(g, Q @ w + Q[:, :n] @ v).real
    del Q, a, tau
    mark("loss")
    gQ = np.outer(g, w.conj())
    gQ[:, :n] += np.outer(g, v.conj())
    ga, gtau, _ = pull_q(gQ)
    del gQ, pull_q
    mark("ormqr pullback")
    gA = pull_geqrf(ga, gtau)
    del ga, gtau, pull_geqrf
    mark("geqrf pullback")
    return loss, gA


def torch_operator(A, w, v, g):
    """The operator path with torch.autograd through generated.torch (tensors in, gradient
    out as a tensor)."""
    import torch

    from generated import torch as gt

    m, n = A.shape
    A = A.detach().requires_grad_()
    a, tau = gt.geqrf(A)
    padded = torch.cat([v, v.new_zeros(m - n)])[:, None]
    y = gt.ormqr(a, tau, w[:, None])[:, 0] + gt.ormqr(a, tau, padded)[:, 0]
    loss = torch.vdot(g, y).real
    (gA,) = torch.autograd.grad(loss, A)
    return loss.detach(), gA


def torch_dense(A, w, v, g):
    """The dense path with torch.autograd: Q = ormqr(a, tau, eye(m)) formed."""
    import torch

    from generated import torch as gt

    m, n = A.shape
    A = A.detach().requires_grad_()
    a, tau = gt.geqrf(A)
    Q = gt.ormqr(a, tau, torch.eye(m, dtype=A.dtype))
    loss = torch.vdot(g, Q @ w + Q[:, :n] @ v).real
    (gA,) = torch.autograd.grad(loss, A)
    return loss.detach(), gA


def _torch_qr(qr, A, w, v, g):
    """loss = Re <g, Q v> + Re <v, R v> of the reduced QR of A: the gradient through qr's
    VJP, both cotangents given (gQ = g v^H, m x n)."""
    import torch

    A = A.detach().requires_grad_()
    Q, R = qr(A)
    loss = torch.vdot(g, Q @ v).real + torch.vdot(v, R @ v).real
    (gA,) = torch.autograd.grad(loss, A)
    return loss.detach(), gA


def torch_qr(A, w, v, g):
    """The tall QR's gradient through generated.torch's qr."""
    from generated import torch as gt

    return _torch_qr(gt.qr, A, w, v, g)


def torch_qr_native(A, w, v, g):
    """The same through torch.linalg.qr and torch's own rule."""
    import torch

    return _torch_qr(torch.linalg.qr, A, w, v, g)


# The backends measured and their two paths (torch: and the tall QR's gradient, generated and
# native, whose peaks are compared).  tracemalloc sees the allocations of those in
# TRACED (NumPy reports its buffers to it; their operator path marks its steps); the others
# are measured by the resident set size.
PATHS = {"numpy": {"operator": numpy_operator, "dense": numpy_dense},
         "torch": {"operator": torch_operator, "dense": torch_dense, "qr": torch_qr,
                   "qr native": torch_qr_native}}
QR_PATHS = ("qr", "qr native")  # not the Q-operator chain: the target is native's peak
TRACED = ("numpy",)


# -- running children (in the parent) ------------------------------------------------------------

def run_child(request: dict, timeout: float = CHILD_TIMEOUT_S) -> dict:
    """One measurement in a fresh process: its result, or {"error": ..., "crashed": True}."""
    result = run_tagged("factorules.tools.memory_measure", request, RESULT_TAG, timeout,
                        env={**os.environ, **CHILD_ENV})
    if "error" in result and set(result) == {"error"}:
        return {**request, **result, "crashed": True}
    return result


def _verdict(rows, m, n) -> tuple[list[dict], str]:
    verdicts = []
    for r in rows:
        if r["path"] == "operator" and r["m"] == m and r["n"] == n:
            met = r["times_a"] is not None and r["times_a"] <= TARGET
            verdicts.append({"backend": r["backend"], "m": m, "n": n, "met": met,
                             "times_a": r["times_a"], "status": r["status"]})
    text = "; ".join(
        f"{v['backend']} {'MET' if v['met'] else 'NOT MET'} ("
        + (f"{v['times_a']:.3g}x A" if v["times_a"] is not None else v["status"]) + ")"
        for v in verdicts)
    lines = [f"target: operator-path peak <= {TARGET:g}x A at m={m}, n={n}: {text}"]
    qr = {r["path"]: r for r in rows if r["path"] in QR_PATHS and r["m"] == m}
    if len(qr) == len(QR_PATHS) and all(r["times_a"] is not None for r in qr.values()):
        ours, native = qr["qr"]["times_a"], qr["qr native"]["times_a"]
        met = ours <= native
        verdicts.append({"backend": qr["qr"]["backend"], "path": "qr", "m": m, "n": n,
                         "met": met, "times_a": ours, "native_times_a": native})
        lines.append(f"target: the tall QR's gradient (reduced, m={m}, n={n}) peaks no higher "
                     f"than native torch's: {'MET' if met else 'NOT MET'} ({ours:.3g}x A "
                     f"against {native:.3g}x A)")
    return verdicts, "\n".join(lines)


# -- entry point ---------------------------------------------------------------------------------

def main(args) -> int:
    m, n, dense_m = args.m, args.n, args.dense_m
    if n < 1 or m < n or dense_m < n:
        print(f"bench-memory: needs 1 <= n <= m and n <= --dense-m (got m={m}, n={n}, "
              f"dense-m={dense_m})", file=sys.stderr)
        return 2
    backends = [args.backend] if args.backend else list(PATHS)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    plan = []
    for backend in backends:
        plan.append({"backend": backend, "path": "operator", "m": m, "n": n})
        plan.append({"backend": backend, "path": "dense", "m": m, "n": n,
                     "computed": m * m * 8})
        plan.append({"backend": backend, "path": "operator", "m": dense_m, "n": n})
        plan.append({"backend": backend, "path": "dense", "m": dense_m, "n": n})
        plan.extend({"backend": backend, "path": path, "m": m, "n": n}
                    for path in QR_PATHS if path in PATHS[backend])
    results, allowance = [], None
    for request in plan:
        if request.get("computed") is not None:
            results.append({**request})
            continue
        if sys.stderr.isatty():
            print(f"bench-memory: {request['backend']} {request['path']} m={request['m']} "
                  f"n={request['n']} ...", file=sys.stderr)
        result = run_child(request)
        allowance = allowance or result.get("allowance")
        results.append(result)
    rows = [row(r, r["backend"] in TRACED) for r in results]
    verdicts, verdict_text = _verdict(rows, m, n)
    crashed = [r for r in results if r.get("crashed")
               or (r.get("error") and not r.get("out_of_memory"))]

    # where a backend misses the target: its statements, profiled at m if the operator path
    # ran there, else at --dense-m (numpy: tracemalloc; torch: rss, where VmHWM resets)
    profiles = []
    for v in verdicts:
        if v["met"] or v.get("path") == "qr":  # (the profile is of the operator path's rules)
            continue
        size = m if v["times_a"] is not None else dense_m
        if v["backend"] not in TRACED and not any(
                r["backend"] == v["backend"] and r.get("rss_method") == "rss" for r in results):
            continue
        result = run_child({"backend": v["backend"], "path": "operator", "m": size, "n": n,
                            "profile": True})
        if result.get("crashed"):
            crashed.append(result)
        steps = next((r.get("steps", []) for r in results if r["backend"] == v["backend"]
                      and r["path"] == "operator" and r["m"] == size), [])
        profiles.append({"backend": v["backend"], "m": size, "n": n, "steps": steps,
                         "meter": "tracemalloc" if v["backend"] in TRACED else "rss",
                         "error": result.get("error"),
                         "statements": [s for s in result.get("profile", [])
                                        if s["bytes"] >= 0.5 * size * n * 8]})

    if args.json:
        print(json.dumps({"rows": rows, "target": {"times_a": TARGET, "verdicts": verdicts},
                          "profiles": profiles, "allowance": allowance,
                          "load_average": load}, indent=2))
    else:
        print(format_table(rows))
        print(footnote(rows, allowance, load))
        print(verdict_text)
        for profile in profiles:
            print(format_profile(profile))
    for r in crashed:
        print(f"bench-memory: {r.get('backend')} {r.get('path')} m={r.get('m')}: "
              f"{r.get('error')}", file=sys.stderr)
    return 1 if crashed else 0


