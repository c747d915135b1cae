"""The table, footnote and line profile of ``cli.py bench-memory``."""
from __future__ import annotations

from .child_process import aligned


def _size(b: float | None) -> str:
    if b is None:
        return "-"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(b) >= scale:
            return f"{b / scale:.3g} {unit}"
    return f"{b:.0f} B"


def row(r: dict, traced: bool) -> dict:
    """A table row from a child's result (or a computed one)."""
    m, n = r["m"], r["n"]
    a_bytes = m * n * 8
    if r.get("computed") is not None:
        peak, method = r["computed"], "computed (m*m*8, Q alone)"
    elif traced:
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
    return aligned(cells, {2, 3, 4, 5, 6, 7, 8})


def footnote(rows, allowance, load=None) -> str:
    lines = [
        "peak: memory the forward and backward passes allocate beyond their inputs; x A: in "
        "units of A's size (m*n*8 bytes); x m*m*8: in units of a dense m x m Q.",
        "tracemalloc: NumPy's array buffers (not what LAPACK drivers malloc() inside "
        "numpy.linalg.qr: a column-major copy of A and workspace). rss: VmHWM, reset to the "
        "current RSS through /proc/self/clear_refs right before the computation, minus VmRSS "
        "before it ('no reset': VmHWM since the process started), after one run at 1000 rows "
        "(what the libraries set up on first use is not counted), with glibc's mmap threshold "
        "fixed at 128 KiB (a freed array leaves the resident set). rss peak: that figure for "
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


def format_profile(profile: dict) -> str:
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


