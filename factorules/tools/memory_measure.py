"""One measurement of ``cli.py bench-memory``, in a process of its own
(``python -m factorules.tools.memory_measure REQUEST``: the request as JSON on the command line,
the result as one tagged JSON line on stdout): the meters (tracemalloc, the resident set size),
the address-space cap, and the line profile of the generated rule modules.  The computations
measured and the parent's side are factorules/tools/memory.py.
"""
from __future__ import annotations

import json
import linecache
import sys
import time
import tracemalloc
from pathlib import Path

from .adapters import adapter_class
from .child_process import memory_status, reset_peak
from .memory import (AVAILABLE_SHARE, PATHS, PROFILE_TOP, RESULT_TAG, RULE_FILES, TRACED,
                     WARM_UP_ROWS, inputs)

# -- measuring (in the child) --------------------------------------------------------------------

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
    mapped = memory_status().get("VmSize")
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
        status = memory_status()
        return status["VmRSS"], status["VmHWM"]

    @staticmethod
    def reset():
        reset_peak()


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
    traced = backend in TRACED
    # the adapter imports the framework and the generated package before the baseline
    adapter = adapter_class(backend)()
    arrays = inputs(m, n, dtype, seed=request.get("seed", 0))
    a_bytes = int(arrays[0].nbytes)
    A, w, v, g = (adapter.to(x) for x in arrays)
    compute = PATHS[backend][path]
    if not traced:
        # one run at a small size first: what the first call of a library sets up once (its
        # thread pools, LAPACK's and the autograd engine's state) is no part of the
        # computation's memory, and resident memory would count it
        compute(*(adapter.to(x) for x in inputs(min(m, WARM_UP_ROWS), n, dtype, seed=1)))
    allowance = _cap_address_space(request.get("allowance"))
    result = {"backend": backend, "path": path, "m": m, "n": n, "dtype": dtype,
              "a_bytes": a_bytes,
              "allowance": allowance, "steps": [], "profile": [], "error": None, "where": None,
              "out_of_memory": False}
    steps = result["steps"]
    profiling = bool(request.get("profile"))

    def mark(step):
        if traced and not profiling:  # (the line tracer resets the peak itself)
            current, peak = tracemalloc.get_traced_memory()
            steps.append({"step": step, "peak": peak - mark.base, "live": current - start})
            tracemalloc.reset_peak()
            mark.base = current

    if traced:
        tracemalloc.start()
    start = mark.base = tracemalloc.get_traced_memory()[0]
    profile = LineProfile(RULE_FILES, Tracemalloc if traced else Rss)
    reset = reset_peak()
    before = memory_status()
    t0 = time.perf_counter()
    try:
        if profiling:
            with profile:
                loss, gA = compute(A, w, v, g, mark) if traced else compute(A, w, v, g)
        elif traced:
            loss, gA = compute(A, w, v, g, mark)
        else:
            loss, gA = compute(A, w, v, g)
    except Exception as err:  # an out-of-memory error is a result; anything else too, marked
        result["error"] = f"{type(err).__name__}: {err}"
        result["where"] = _where(err.__traceback__)
        result["out_of_memory"] = _is_out_of_memory(err)
        loss = gA = None
    seconds = time.perf_counter() - t0
    after = memory_status()
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    if gA is not None:
        result["loss"] = float(loss)
        result["grad_norm"] = float(np.linalg.norm(np.asarray(gA)))
    result["seconds"] = seconds
    if traced:
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



if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
