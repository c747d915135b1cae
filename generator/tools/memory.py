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
m * m * itemsize bytes (computed, not run, at the large size).

Every measurement runs in a fresh process (``python -m generator.tools.memory REQUEST``: the
request as JSON on the command line, the result as one tagged JSON line on stdout), so that
peaks do not mix.  The inputs are made before the measurement starts; the peak is what the
forward and backward passes allocate beyond them:

- numpy: tracemalloc (NumPy reports its array buffers to it), the peak of traced memory
  above the traced memory at the start.  It does not see what LAPACK drivers malloc()
  themselves (numpy.linalg.qr's column-major copy of A and its workspace);
- torch: tracemalloc does not see torch's CPU allocator, so the peak resident set size:
  /proc/self/status VmHWM is reset to the current RSS (``5`` written to
  /proc/self/clear_refs, Linux >= 4.0) right before the computation, and the peak is VmHWM
  after it minus VmRSS before it.  Where the reset is refused, VmHWM is the peak since the
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
import linecache
import os
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

from ..compiler.paths import ROOT

TARGET = 3.0                 # the target: operator-path peak <= TARGET x A.nbytes
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
    ga, gtau = ga + ga_v, gtau + gtau_v
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


# -- measuring (in the child) --------------------------------------------------------------------

def _status() -> dict:
    """VmRSS, VmHWM, VmSize of this process, in bytes (empty where /proc is missing)."""
    out = {}
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM", "VmSize"):
                    out[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return out


def _reset_hwm() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where refused."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _cap_address_space(allowance: int | None) -> int | None:
    """Cap RLIMIT_AS at what is mapped now plus allowance bytes (default: a share of the
    memory available); returns the allowance applied, None where it could not be."""
    try:
        import resource
    except ImportError:
        return None
    mapped = _status().get("VmSize")
    if allowance is None:
        available = _available()
        allowance = None if available is None else int(AVAILABLE_SHARE * available)
    if mapped is None or allowance is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = mapped + allowance
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    return allowance


def _is_out_of_memory(err: BaseException) -> bool:
    text = str(err)
    return isinstance(err, MemoryError) or "can't allocate memory" in text \
        or "not enough memory" in text or "Cannot allocate memory" in text


def _generated(filename: str) -> str | None:
    """generated/<backend>/<module>.py of a file inside generated/, else None."""
    parts = Path(filename).parts
    return "/".join(parts[parts.index("generated"):]) if "generated" in parts else None


def _where(tb) -> str:
    """Where in generated/ an error was raised: the innermost statement of a rule module,
    and the runtime helper it was in, if any."""
    rule = helper = ""
    while tb is not None:
        code = tb.tb_frame.f_code
        rel = _generated(code.co_filename)
        if rel is not None:
            text = f"{rel}:{tb.tb_lineno} in {code.co_name}"
            if rel.endswith(("/_runtime.py", "/_runtime_shared.py")):
                helper = text
            else:
                rule, helper = f"{text}: {_statement(code.co_filename, tb.tb_lineno)}", ""
        tb = tb.tb_next
    return rule + (f" (in {helper})" if helper else "")


def _statement(filename: str, lineno: int, width: int = 110) -> str:
    text = linecache.getline(filename, lineno).strip()
    return text if len(text) <= width else text[:width - 3] + "..."


class Tracemalloc:
    """Traced memory (NumPy's buffers among it): (current, peak) and a peak reset."""
    name = "tracemalloc"

    @staticmethod
    def read():
        return tracemalloc.get_traced_memory()

    @staticmethod
    def reset():
        tracemalloc.reset_peak()


class Rss:
    """Resident memory: (VmRSS, VmHWM) and VmHWM reset to VmRSS (what torch allocates)."""
    name = "rss"

    @staticmethod
    def read():
        status = _status()
        return status["VmRSS"], status["VmHWM"]

    @staticmethod
    def reset():
        _reset_hwm()


class LineProfile:
    """Per statement of the traced files, the largest temporary it allocated: the meter's
    peak is reset before the statement runs; after it (or when it calls another traced
    function, or returns), the peak above the memory before it is its temporary.  What a
    traced callee allocates is the callee's statements', not the caller's."""

    def __init__(self, suffixes, meter=Tracemalloc):
        self.suffixes = tuple(suffixes)
        self.meter = meter
        self.stats: dict[tuple, list] = {}   # (file, line, function) -> [max bytes, runs]
        self.key = None
        self.base = 0

    def _traced(self, frame) -> bool:
        name = frame.f_code.co_filename
        return _generated(name) is not None and name.endswith(self.suffixes)

    def _switch(self, key, starts=False):
        """Close the open segment (the statement's peak so far), open one for key; starts:
        key's statement begins (a 'line' event), not resumes after a traced callee."""
        current, peak = self.meter.read()
        if self.key is not None:
            entry = self.stats.setdefault(self.key, [0, 0])
            entry[0] = max(entry[0], peak - self.base)
        if starts:
            self.stats.setdefault(key, [0, 0])[1] += 1
        self.meter.reset()
        self.key, self.base = key, current

    def _local(self, frame, event, arg):
        if event == "line":
            self._switch((frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name),
                         starts=True)
        elif event == "return":
            caller = frame.f_back
            self._switch((caller.f_code.co_filename, caller.f_lineno, caller.f_code.co_name)
                         if caller is not None and self._traced(caller) else None)
        return self._local

    def _global(self, frame, event, arg):
        if event == "call" and self._traced(frame):
            self._switch(None)
            return self._local
        return None

    def __enter__(self):
        sys.settrace(self._global)
        return self

    def __exit__(self, *exc):
        sys.settrace(None)
        self._switch(None)
        return False

    def top(self, count: int, at_least: int = 0) -> list[dict]:
        rows = []
        for (filename, line, function), (peak, runs) in self.stats.items():
            if peak >= at_least:
                rows.append({"where": f"{_generated(filename)}:{line}", "function": function,
                             "bytes": peak, "runs": runs,
                             "statement": _statement(filename, line)})
        rows.sort(key=lambda r: -r["bytes"])
        return rows[:count]


def _measure(request: dict) -> dict:
    """One measurement (in its own process); its result as a dict."""
    import numpy as np

    backend, path = request["backend"], request["path"]
    m, n, dtype = request["m"], request["n"], request.get("dtype", "float64")
    A, w, v, g = inputs(m, n, dtype, seed=request.get("seed", 0))
    if backend == "torch":
        import torch

        import generated.torch  # noqa: F401  (imported before the baseline is taken)

        A, w, v, g = (torch.from_numpy(x) for x in (A, w, v, g))
        compute = torch_operator if path == "operator" else torch_dense
    else:
        import generated.numpy  # noqa: F401

        compute = numpy_operator if path == "operator" else numpy_dense
    allowance = _cap_address_space(request.get("allowance"))
    result = {"backend": backend, "path": path, "m": m, "n": n, "dtype": dtype,
              "a_bytes": int(A.nbytes) if backend == "numpy" else A.numel() * A.element_size(),
              "allowance": allowance, "steps": [], "profile": [], "error": None, "where": None,
              "out_of_memory": False}
    steps = result["steps"]
    profiling = bool(request.get("profile"))

    def mark(step):
        if backend == "numpy" and not profiling:  # (the line tracer resets the peak itself)
            current, peak = tracemalloc.get_traced_memory()
            steps.append({"step": step, "peak": peak - mark.base, "live": current - start})
            tracemalloc.reset_peak()
            mark.base = current

    if backend == "numpy":
        tracemalloc.start()
    start = mark.base = tracemalloc.get_traced_memory()[0]
    profile = LineProfile(RULE_FILES, Tracemalloc if backend == "numpy" else Rss)
    reset = _reset_hwm()
    before = _status()
    t0 = time.perf_counter()
    try:
        if profiling:
            with profile:
                loss, gA = compute(A, w, v, g, mark) if backend == "numpy" \
                    else compute(A, w, v, g)
        elif backend == "numpy":
            loss, gA = compute(A, w, v, g, mark)
        else:
            loss, gA = compute(A, w, v, g)
    except Exception as err:  # an out-of-memory error is a result; anything else too, marked
        result["error"] = f"{type(err).__name__}: {err}"
        result["where"] = _where(err.__traceback__)
        result["out_of_memory"] = _is_out_of_memory(err)
        loss = gA = None
    seconds = time.perf_counter() - t0
    after = _status()
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    if gA is not None:
        result["loss"] = float(loss)
        result["grad_norm"] = float(np.linalg.norm(np.asarray(gA)))
    result["seconds"] = seconds
    if backend == "numpy":
        # the peak over the steps (tracemalloc's peak is reset at each step), each step's
        # above what was live when it began
        live_before = peak = 0
        for s in steps:
            peak = max(peak, live_before + s["peak"])
            live_before = s["live"]
        if not steps or result["error"]:
            peak = max(peak, live_before + traced_peak - mark.base)
        result["tracemalloc_peak"] = None if profiling else peak
    if "VmHWM" in after and "VmRSS" in before and not profiling:
        result["rss_peak"] = after["VmHWM"] - before["VmRSS"]
        result["rss_method"] = "rss" if reset else "rss, no reset"
    else:
        result["rss_peak"], result["rss_method"] = None, "unavailable"
    if profiling:
        result["profile"] = profile.top(PROFILE_TOP)
    return result


def _child(argv: list[str]) -> int:
    request = json.loads(argv[0])
    result = _measure(request)
    print(RESULT_TAG + json.dumps(result), flush=True)
    return 0


# -- running children (in the parent) ------------------------------------------------------------

def run_child(request: dict, timeout: float = CHILD_TIMEOUT_S) -> dict:
    """One measurement in a fresh process: its result, or {"error": ..., "crashed": True}."""
    posix = hasattr(os, "killpg")
    proc = subprocess.Popen([sys.executable, "-m", "generator.tools.memory", json.dumps(request)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=posix)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        if posix:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        else:
            proc.kill()
        proc.communicate()
        return {**request, "error": f"timeout after {timeout:g} s", "crashed": True}
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    lines = [line for line in out.splitlines() if line.startswith(RESULT_TAG)]
    if proc.returncode != 0 or not lines:
        tail = " | ".join(err.strip().splitlines()[-3:])
        return {**request, "error": f"crashed (rc={proc.returncode}): {tail}", "crashed": True}
    return json.loads(lines[-1][len(RESULT_TAG):])


# -- output --------------------------------------------------------------------------------------

def _size(b: float | None) -> str:
    if b is None:
        return "-"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(b) >= scale:
            return f"{b / scale:.3g} {unit}"
    return f"{b:.0f} B"


def _row(r: dict) -> dict:
    """A table row from a child's result (or a computed one)."""
    m, n = r["m"], r["n"]
    a_bytes = m * n * 8
    if r.get("computed") is not None:
        peak, method = r["computed"], "computed (m*m*8, Q alone)"
    elif r["backend"] == "numpy":
        peak, method = r.get("tracemalloc_peak"), "tracemalloc"
    else:
        peak, method = r.get("rss_peak"), r.get("rss_method", "rss")
    failed = r.get("error") is not None
    if failed:
        peak = None
    return {"backend": r["backend"], "path": r["path"], "m": m, "n": n,
            "peak_bytes": peak, "times_a": None if peak is None else peak / a_bytes,
            "times_q": None if peak is None else peak / (m * m * 8),
            "rss_bytes": None if failed or r.get("computed") is not None else r.get("rss_peak"),
            "method": method,
            "seconds": None if failed or r.get("computed") is not None else r.get("seconds"),
            "status": "computed" if r.get("computed") is not None else
            "ok" if not failed else "out of memory" if r.get("out_of_memory") else "failed",
            "note": (r.get("error") or "") + (f" at {r['where']}" if r.get("where") else ""),
            "grad_norm": r.get("grad_norm")}


COLUMNS = ("backend", "path", "m", "n", "peak", "x A", "x m*m*8", "rss peak", "time s",
           "method", "status")


def format_table(rows: list[dict]) -> str:
    cells = [list(COLUMNS)]
    for r in rows:
        cells.append([r["backend"], r["path"], str(r["m"]), str(r["n"]), _size(r["peak_bytes"]),
                      "-" if r["times_a"] is None else f"{r['times_a']:.3g}",
                      "-" if r["times_q"] is None else f"{r['times_q']:.3g}",
                      _size(r["rss_bytes"]),
                      "-" if r["seconds"] is None else f"{r['seconds']:.3f}",
                      r["method"], r["status"]])
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    numeric = {2, 3, 4, 5, 6, 7, 8}
    lines = []
    for j, row in enumerate(cells):
        lines.append("  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                               for i, (c, w) in enumerate(zip(row, widths))).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _footnote(rows, allowance, load=None) -> str:
    lines = [
        "peak: memory the forward and backward passes allocate beyond their inputs; x A: in "
        "units of A's size (m*n*8 bytes); x m*m*8: in units of a dense m x m Q.",
        "tracemalloc: NumPy's array buffers (not what LAPACK drivers malloc() inside "
        "numpy.linalg.qr: a column-major copy of A and workspace). rss: VmHWM, reset to the "
        "current RSS through /proc/self/clear_refs right before the computation, minus VmRSS "
        "before it ('no reset': VmHWM since the process started). rss peak: that figure for "
        "every row.",
        "time s: one run (the measured one; numpy's under tracemalloc), with the thread "
        "settings of the environment" + (f" (load average {load:.2f} when the command began)"
                                         if load is not None else "")
        + ". Every row is a fresh process"
        + (f", its address space capped at what it mapped plus {_size(allowance)}."
           if allowance else "."),
    ]
    for r in rows:
        if r["status"] in ("out of memory", "failed") and r["note"]:
            lines.append(f"{r['backend']} {r['path']} m={r['m']}: {r['note']}")
    return "\n".join(lines)


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
    return verdicts, f"target: operator-path peak <= {TARGET:g}x A at m={m}, n={n}: {text}"


def _format_profile(profile: dict) -> str:
    m, n, meter = profile["m"], profile["n"], profile["meter"]
    a_bytes, q_bytes = m * n * 8, m * m * 8
    lines = [f"where the {profile['backend']} operator path's memory goes (m={m}, n={n}, "
             f"float64; A = {_size(a_bytes)}, an m x m array = {_size(q_bytes)}; {meter}):"]
    if profile["steps"]:
        lines.append("  per step (peak above what was live when the step began; live: what "
                     "the step leaves allocated, beyond the inputs):")
        for s in profile["steps"]:
            lines.append(f"    {s['step']:<26} peak {s['peak'] / a_bytes:9.3g} x A   live "
                         f"after {s['live'] / a_bytes:7.3g} x A")
    lines.append("  statements of the generated rules with a temporary of at least A/2 (the "
                 "peak above the memory live before the statement, its result included; the "
                 "largest over its runs), largest first:")
    for s in profile["statements"]:
        label = "m x m" if s["bytes"] >= 0.5 * q_bytes else "m x n"
        lines.append(f"    {s['bytes'] / a_bytes:9.3g} x A  [{label}]  {s['where']} "
                     f"({s['function']}, {s['runs']} run{'s' if s['runs'] != 1 else ''})")
        lines.append(f"        {s['statement']}")
    if profile.get("error"):
        lines.append(f"  (the profiled run stopped: {profile['error']})")
    return "\n".join(lines)


# -- entry point ---------------------------------------------------------------------------------

def main(args) -> int:
    m, n, dense_m = args.m, args.n, args.dense_m
    if n < 1 or m < n or dense_m < n:
        print(f"bench-memory: needs 1 <= n <= m and n <= --dense-m (got m={m}, n={n}, "
              f"dense-m={dense_m})", file=sys.stderr)
        return 2
    backends = [args.backend] if args.backend else ["numpy", "torch"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    plan = []
    for backend in backends:
        plan.append({"backend": backend, "path": "operator", "m": m, "n": n})
        plan.append({"backend": backend, "path": "dense", "m": m, "n": n,
                     "computed": m * m * 8})
        plan.append({"backend": backend, "path": "operator", "m": dense_m, "n": n})
        plan.append({"backend": backend, "path": "dense", "m": dense_m, "n": n})
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
    rows = [_row(r) for r in results]
    verdicts, verdict_text = _verdict(rows, m, n)
    crashed = [r for r in results if r.get("crashed")
               or (r.get("error") and not r.get("out_of_memory"))]

    # where a backend misses the target: its statements, profiled at m if the operator path
    # ran there, else at --dense-m (numpy: tracemalloc; torch: rss, where VmHWM resets)
    profiles = []
    for v in verdicts:
        if v["met"]:
            continue
        size = m if v["times_a"] is not None else dense_m
        if v["backend"] == "torch" and not any(
                r["backend"] == "torch" and r.get("rss_method") == "rss" for r in results):
            continue
        result = run_child({"backend": v["backend"], "path": "operator", "m": size, "n": n,
                            "profile": True})
        if result.get("crashed"):
            crashed.append(result)
        steps = next((r.get("steps", []) for r in results if r["backend"] == v["backend"]
                      and r["path"] == "operator" and r["m"] == size), [])
        profiles.append({"backend": v["backend"], "m": size, "n": n, "steps": steps,
                         "meter": "tracemalloc" if v["backend"] == "numpy" else "rss",
                         "error": result.get("error"),
                         "statements": [s for s in result.get("profile", [])
                                        if s["bytes"] >= 0.5 * size * n * 8]})

    if args.json:
        print(json.dumps({"rows": rows, "target": {"times_a": TARGET, "verdicts": verdicts},
                          "profiles": profiles, "allowance": allowance,
                          "load_average": load}, indent=2))
    else:
        print(format_table(rows))
        print(_footnote(rows, allowance, load))
        print(verdict_text)
        for profile in profiles:
            print(_format_profile(profile))
    for r in crashed:
        print(f"bench-memory: {r.get('backend')} {r.get('path')} m={r.get('m')}: "
              f"{r.get('error')}", file=sys.stderr)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
