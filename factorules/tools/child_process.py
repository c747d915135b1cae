"""What the measuring commands (bench-memory, bench tsqr) share: a measurement run in a
process of its own that answers with one tagged JSON line, the meters of that process's
memory (/proc/self), and the aligned text table their results print as."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from ..compiler.paths import ROOT


def run_tagged(module: str, request: dict, tag: str, timeout: float, env=None) -> dict:
    """``python -m module REQUEST`` (the request as JSON) in a session of its own: the JSON
    after ``tag`` on its last tagged line of stdout, or {"error": ...} when it timed out
    (its whole process group killed), crashed or printed no result."""
    posix = hasattr(os, "killpg")
    proc = subprocess.Popen([sys.executable, "-m", module, json.dumps(request)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=posix)
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
        return {"error": f"timeout after {timeout:g} s"}
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    lines = [line for line in out.splitlines() if line.startswith(tag)]
    if proc.returncode != 0 or not lines:
        tail = " | ".join(err.strip().splitlines()[-3:])
        return {"error": f"crashed (rc={proc.returncode}): {tail}"}
    return json.loads(lines[-1][len(tag):])


def memory_status(keys=("VmRSS", "VmHWM", "VmSize")) -> dict:
    """Those of VmRSS, VmHWM, VmSize of this process, in bytes (empty where /proc is
    missing)."""
    out = {}
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in keys:
                    out[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return out


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where refused."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def aligned(cells: list[list[str]], numeric: set[int]) -> str:
    """Rows of cells (the first the header, underlined) in columns, the ``numeric`` ones
    right-aligned."""
    widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    lines = []
    for j, row in enumerate(cells):
        lines.append("  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                               for i, (c, w) in enumerate(zip(row, widths))).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
