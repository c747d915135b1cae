"""``cli.py bench``: generated rules against native autodiff, timed side by side.

Every row times one derivative (VJP: the backward pass alone, of a graph kept from one forward
-- torch's autograd.grad, JAX's jitted pullback; JVP: the forward-mode derivative with its
outputs) of a generated function and of the framework's own, in one process, with the
generated and native samples interleaved so that machine noise hits both alike.  A row reports
the fastest sample of each, their spread (min, median, max), the number of samples, and the
ratio generated / native of the fastest samples (below 1: generated is faster) -- only with at
least MIN_SAMPLES samples each (factorules/tools/bench_rows.py): ``--quick`` gives none.

Before timing, every row checks that the generated derivative is right: against native
autodiff, or, where native refuses (QR in complete mode with more rows than columns) or the
framework has no such operation, against central finite differences in float64.  The rows
are each spec's ``benchmarks``; inputs are drawn from the spec (factorules/audit/sample.py).  The relative error is a column of the table; a row
whose error exceeds its tolerance makes the command exit 1.

Each row runs in a process of its own (``python -m factorules.tools.bench REQUEST``: the rows as
JSON on the command line, each result as one JSON line on stdout), generated and native side
by side in it as before; ``--quick`` runs the rows of one backend (every spec) in one process.
A row that outlives ``--row-timeout`` is killed, and one whose process dies is reported;
either is a line of the table, the other rows still run (those after it in a new process),
and the command exits 1.

``--plot FILE.png`` draws the rows after the run (factorules/tools/bench_plot.py): the ratios,
and the large rows' model GFLOP/s against this machine's DGEMM rate, which the parent measures
after the rows and ``--json`` keeps in every row.

Each row, as it finishes, is a progress line on stderr (factorules.tools.progress): its
ratio, its error and the seconds it took, counted from the end of the row before it in its
process (or the process's start).
"""
from __future__ import annotations

import concurrent.futures
import faulthandler
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path

from . import bench_plot
from .adapters import adapter_class
from .bench_rows import Case, Harness, Row, cases, run_case
from .bench_table import footnote, format_table
from .progress import Progress
from ..compiler.backends import BACKENDS
from ..compiler.paths import ROOT, SPEC_DIR
from ..compiler.pipeline import spec_paths

# a row still running after this long is taken to hang (--row-timeout; smaller for --quick)
ROW_TIMEOUT_S = 300
QUICK_ROW_TIMEOUT_S = 60
RESULT_TAG = "factorules-bench-row "  # the row process's result line: this tag, then JSON


# -- rows, in processes of their own ------------------------------------------------------------

def _request(rows: list[tuple[int, str, Path, Case]], repeats: int, quick: bool,
             timeout: float) -> dict:
    """Everything the rows' process needs, as JSON (no pickled functions): rows (seed, spec
    name, spec file, case), each with its spec and seed."""
    return {"rows": [{"spec": name, "spec_path": str(Path(path).resolve()),
                      "backend": case.backend, "options": [list(pair) for pair in case.options],
                      "shape": list(case.shape), "dtype": case.dtype,
                      "direction": case.direction, "seed": seed}
                     for seed, name, path, case in rows],
            "repeats": repeats, "quick": quick, "timeout": timeout}


def _child_command(request: dict) -> list[str]:
    """The rows' process: this module (run from the repository root) on one request."""
    return [sys.executable, "-m", "factorules.tools.bench", json.dumps(request)]


def _child_env() -> dict:
    env = dict(os.environ)  # the caller's thread and XLA settings travel with the row
    for entry in BACKENDS:
        adapter_class(entry).prepare_environment(env)
    return env


def _signal(proc, sig) -> None:
    try:
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, sig)  # the row's own session (start_new_session)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass


def _stop(proc, posix: bool) -> None:
    """A hang: ask for its Python stacks (faulthandler, see _child), then kill it."""
    if posix:
        _signal(proc, signal.SIGUSR1)
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        _signal(proc, signal.SIGKILL)
    else:
        proc.kill()
    proc.wait()


def _run_child(request: dict, timeout: float,
               on_row=None) -> list[tuple[dict | None, str, str]]:
    """(result, failure, stderr) of each row of the request, in order: result its JSON (None
    if it did not finish), failure why not ("timeout after N s", "crashed (rc=N)"), stderr
    that of the process it ran in.  A row gets ``timeout`` seconds from the end of the one
    before; a row that hangs or kills its process is reported, and the rows after it run in
    a new process.  ``on_row(index, result, failure, stderr, seconds)`` is called as each
    row's outcome is known (the last of a process's once the process has ended: it may yet
    crash on exit), seconds counted from the end of the row before it in its process, or the
    process's start."""
    posix = hasattr(os, "killpg")
    rows = list(request["rows"])
    out: list[tuple[dict | None, str, str]] = []
    took: list[float] = []
    reported = 0

    def report(upto: int) -> None:
        nonlocal reported
        while reported < upto:
            if on_row is not None:
                on_row(reported, *out[reported], took[reported])
            reported += 1

    while rows:
        last = time.perf_counter()
        proc = subprocess.Popen(_child_command({**request, "rows": rows}), cwd=ROOT,
                                env=_child_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=posix)
        lines: queue.Queue = queue.Queue()
        err_parts: list[str] = []
        readers = [threading.Thread(target=_pump, args=(proc.stdout, lines.put, True),
                                    daemon=True),
                   threading.Thread(target=_pump, args=(proc.stderr, err_parts.append, False),
                                    daemon=True)]
        for reader in readers:
            reader.start()
        failure = ""
        try:
            while rows:
                try:
                    line = lines.get(timeout=timeout)
                except queue.Empty:
                    _stop(proc, posix)
                    failure = f"timeout after {timeout:g} s"
                    break
                if line is None:  # the process ended with rows left
                    failure = f"crashed (rc={proc.wait()})"
                    break
                if line.startswith(RESULT_TAG):
                    rows.pop(0)
                    out.append((json.loads(line[len(RESULT_TAG):]), "", ""))
                    now = time.perf_counter()
                    took.append(now - last)
                    last = now
                    if rows:  # the process's last row is reported once it has ended
                        report(len(out))
        except BaseException:  # e.g. Ctrl-C, which the row's session does not get from a terminal
            if posix:
                _signal(proc, signal.SIGKILL)
            else:
                proc.kill()
            proc.wait()
            raise
        proc.wait()
        for reader in readers:
            reader.join(timeout=5)
        err = "".join(err_parts)
        if failure:  # the first row left is the one that hung or crashed
            rows.pop(0)
            out.append((None, failure, err))
            took.append(time.perf_counter() - last)
        elif proc.returncode != 0 and out:  # every row printed, then it failed on exit
            out[-1] = (None, f"crashed (rc={proc.returncode})", err)
        report(len(out))
    return out


def _pump(stream, put, end: bool) -> None:
    """Every line of ``stream`` to ``put``, then None when ``end`` (the end of stdout)."""
    for line in stream:
        put(line)
    if end:
        put(None)


def _unfinished(name: str, case: Case, repeats: int, why: str) -> Row:
    return Row(spec=name, backend=case.backend, options=case.label, shape=list(case.shape),
               dtype=case.dtype, direction=case.direction, generated_ms=None, native_ms=None,
               ratio=None, native=None, rel_err=None, reference=None, ok=False,
               repeats=repeats, inner=0, note=why)


def _child(argv: list[str]) -> int:
    """The rows' process: run the rows of the request in order, print a result line each."""
    request = json.loads(argv[0])
    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, all_threads=True)  # the parent's "where?"
    from ..compiler.render import load_checked

    specs, harnesses = {}, {}  # spec file: its checked spec; (spec, backend): its harness
    for item in request["rows"]:
        # should the parent be gone, a hang still ends, with tracebacks on stderr
        faulthandler.dump_traceback_later(request["timeout"] + 60, exit=True)
        case = Case(backend=item["backend"],
                    options=tuple(tuple(pair) for pair in item["options"]),
                    shape=tuple(item["shape"]), dtype=item["dtype"],
                    direction=item["direction"])
        if item["spec_path"] not in specs:
            (specs[item["spec_path"]],) = load_checked([Path(item["spec_path"])])
        key = (item["spec_path"], case.backend)
        if key not in harnesses:
            harnesses[key] = Harness(adapter_class(case.backend)(), specs[item["spec_path"]])
        backend = harnesses[key]
        row = run_case(item["spec"], backend, case, request["repeats"], request["quick"],
                       seed=item["seed"])
        print(RESULT_TAG + json.dumps({"row": asdict(row),
                                       "environment": backend.adapter.environment()}),
              flush=True)
    faulthandler.cancel_dump_traceback_later()
    return 0


def _quick_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _text(name: str, case: Case) -> str:
    """A row as its progress line names it, in the order of the table's columns."""
    return (f"{name} {case.backend} {case.label} {'x'.join(map(str, case.shape))} "
            f"{case.dtype} {case.direction}")


def _outcome(row: Row) -> str:
    """A finished row in a few words: its ratio (or why it has none) and its error."""
    ratio = (f"ratio {row.ratio:.2f}" if row.ratio is not None else
             "native refuses" if row.native == "refuses" else
             "no native" if row.native == "none" else f"no ratio (n={row.samples})")
    return (f"{ratio}, rel err {row.rel_err:.1e} vs {row.reference}"
            + ("" if row.ok else " FAIL"))


def _tail(err: str, lines: int = 30) -> str:
    return "\n".join("    " + line for line in err.rstrip().splitlines()[-lines:])


# -- entry point ---------------------------------------------------------------------------------

def main(args) -> int:
    spec_dir = Path(getattr(args, "spec_dir", None) or SPEC_DIR)
    paths = {p.stem: p for p in spec_paths(spec_dir)}
    known = list(paths)
    names = list(args.names) or known
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"bench: no spec named {', '.join(map(repr, unknown))} in {spec_dir} "
              f"(have: {', '.join(known)})", file=sys.stderr)
        return 2
    if args.repeats < 1:
        print(f"bench: --repeats must be at least 1, got {args.repeats}", file=sys.stderr)
        return 2
    timeout = getattr(args, "row_timeout", None)
    if timeout is None:
        timeout = QUICK_ROW_TIMEOUT_S if args.quick else ROW_TIMEOUT_S
    if not timeout > 0:
        print(f"bench: --row-timeout must be positive, got {timeout:g}", file=sys.stderr)
        return 2
    repeats = min(args.repeats, 2) if args.quick else args.repeats
    plot = getattr(args, "plot", None)
    if plot:
        bench_plot.require_matplotlib()  # before the run, not after it

    from ..compiler.render import load_checked

    checked_specs = {c.spec.name: c for c in load_checked(spec_paths(spec_dir))}
    plan = []
    for name in names:
        if not checked_specs[name].spec.benchmarks:
            print(f"bench: spec {name!r} has no 'benchmarks'; skipped", file=sys.stderr)
            continue
        plan.extend((name, case) for case in cases(checked_specs[name], args.quick))
    shapes = getattr(args, "shape", None)
    if shapes:
        plan = [(name, case) for name, case in plan if "x".join(map(str, case.shape)) in shapes]
        if not plan:
            print(f"bench: no row of shape {', '.join(shapes)} in {', '.join(names)}",
                  file=sys.stderr)
            return 2

    environments: dict[str, str] = {}  # backend: its footnote text, from its first row
    progress = Progress("bench", len(plan))
    finished: dict[int, Row] = {}  # plan position -> its row
    # --quick (a smoke test, its times mean little) runs the rows of one backend in one
    # process (its framework imported once for every spec), a process per CPU at once; timed
    # runs give each row a process of its own and run them one at a time, so that rows do not
    # slow each other
    workers = _quick_workers() if args.quick else 1
    groups: dict = {}
    for i, (name, case) in enumerate(plan, 1):
        key = case.backend if args.quick else i
        groups.setdefault(key, []).append((i, name, case))

    def run(group):
        name = group[0][1]
        if workers == 1:  # one row at a time: a terminal shows which is running
            progress.running(_text(name, group[0][2]))
        request = _request([(i, row_name, paths[row_name], case) for i, row_name, case in group],
                           repeats, args.quick, timeout)

        def on_row(k, result, failure, err, seconds):
            _, name, case = group[k]
            text = _text(name, case)
            if result is None:
                progress.finished(f"{text}: {failure} ({seconds:.1f} s)")
                if err.strip() or progress.tty:  # a line that stays, with the row's stderr
                    progress.message(f"bench: {text}: {failure}" + (
                        f"; its stderr ends:\n{_tail(err)}" if err.strip() else ""))
            else:
                progress.finished(f"{text}: {_outcome(Row(**result['row']))} "
                                  f"({seconds:.1f} s)")

        return _run_child(request, timeout, on_row)

    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [(group, pool.submit(run, group)) for group in groups.values()]
            for group, future in futures:
                for (i, name, case), (result, failure, err) in zip(group, future.result()):
                    if result is None:
                        finished[i] = _unfinished(name, case, repeats, failure)
                        continue
                    finished[i] = Row(**result["row"])
                    environments.setdefault(case.backend, result["environment"])
    finally:
        progress.done()
    rows = [finished[i] for i in sorted(finished)]
    # measured with no row running, under the rows' thread settings
    dgemm = bench_plot.measure_dgemm_gflops() if args.json or plot else None
    rows = [replace(r, dgemm_gflops=dgemm) for r in rows]

    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
    else:
        print(format_table(rows))
        print()
        print(footnote(rows, repeats, list(environments.values())))
    if plot:
        bench_plot.draw(rows, plot, dgemm)
        print(f"bench: wrote {plot}", file=sys.stderr)
    status = 0
    unfinished = [r for r in rows if not r.finished]
    if unfinished:
        print(f"bench: {len(unfinished)} row(s) did not finish: "
              + ", ".join(sorted({r.note for r in unfinished})), file=sys.stderr)
        status = 1
    failed = [r for r in rows if r.finished and not r.ok]
    if failed:
        print(f"bench: {len(failed)} row(s) with a derivative error over tolerance",
              file=sys.stderr)
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
