"""``cli.py bench-checks``: what the checks of degenerate inputs cost (docs/degenerate-inputs.md).

For every benchmark row of every spec with a switch (check_singular, check_ties, check_gauge:
the options that select no variant), the generated derivative is timed with its switches on
(the default) and off, interleaved in one process (factorules/tools/bench_rows.py's timing),
in torch (autograd) and JAX (jitted); the ratio on/off is the checks' cost.  At a
non-degenerate input the checks change no number (beyond rounding, where a compiler fuses the
two programs differently): the command also asserts that.
"""
from __future__ import annotations

import json
import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .adapters import adapter_class
from .bench_rows import Harness, _once, _rel, _time, cases
from .child_process import aligned
from .progress import Progress
from ..compiler.paths import SPEC_DIR
from ..compiler.pipeline import spec_paths


# the largest relative difference between the derivatives with and without the checks
SAME = {"float32": 1e-5, "complex64": 1e-5, "float64": 1e-12, "complex128": 1e-12}


@dataclass
class CheckRow:
    spec: str
    backend: str
    options: str
    shape: list
    dtype: str
    direction: str
    checked_ms: float  # the derivative with every switch on (the default), median
    unchecked_ms: float  # with every switch off, median
    ratio: float  # median over the repeats of checked / unchecked, taken back to back


def switches(checked) -> dict:
    """The spec's switches, all off."""
    return {o.name: False for o in checked.spec.options if not o.selects}


def _without_checks(harness: Harness, checked) -> Harness:
    off = Harness(harness.adapter, checked)
    generated, off_switches = harness.generated, switches(checked)
    off.generated = lambda *a, **kw: generated(*a, **kw, **off_switches)
    return off


def run_row(name, checked, adapters, case, repeats: int, quick: bool) -> CheckRow:
    on = Harness(adapters[case.backend], checked)
    off = _without_checks(on, checked)
    f_on, _, _ = on.setup(case, np.random.default_rng(0))
    f_off, _, _ = off.setup(case, np.random.default_rng(0))  # the same draws
    _, got = _once(on, f_on)
    _, want = _once(off, f_off)
    for g, w in zip(on.derivative(case, got), off.derivative(case, want)):
        # equal up to rounding: a compiler may fuse the two programs differently
        if not _rel(g, w) <= SAME[case.dtype]:
            raise AssertionError(f"{name} {case}: the checks changed the derivative (relative "
                                 f"difference {_rel(g, w):.1e})")
    checked_s, unchecked_s, _ = _time(on, f_on, f_off, repeats, quick)
    ratio = statistics.median(c / u for c, u in zip(checked_s, unchecked_s))
    return CheckRow(name, case.backend, case.label, list(case.shape), case.dtype,
                    case.direction, statistics.median(checked_s) * 1e3,
                    statistics.median(unchecked_s) * 1e3, ratio)


def format_table(rows: list[CheckRow]) -> str:
    header = ["spec", "backend", "options", "shape", "dtype", "dir", "checked ms",
              "unchecked ms", "ratio"]
    body = [[r.spec, r.backend, r.options, "x".join(map(str, r.shape)), r.dtype, r.direction,
             f"{r.checked_ms:.3f}", f"{r.unchecked_ms:.3f}", f"{r.ratio:.3f}"] for r in rows]
    return aligned([header, *body], numeric={6, 7, 8})


def main(args) -> int:
    from ..compiler.render import load_checked

    spec_dir = Path(getattr(args, "spec_dir", None) or SPEC_DIR)
    checked_specs = {c.spec.name: c for c in load_checked(spec_paths(spec_dir))}
    with_switches = [n for n, c in checked_specs.items() if switches(c) and c.spec.benchmarks]
    names = list(args.names) or with_switches
    unknown = [n for n in names if n not in with_switches]
    if unknown:
        print(f"bench-checks: no spec with switches and benchmarks named "
              f"{', '.join(map(repr, unknown))} (have: {', '.join(with_switches)})",
              file=sys.stderr)
        return 2
    repeats = min(args.repeats, 2) if args.quick else args.repeats
    plan = [(n, case) for n in names for case in cases(checked_specs[n], args.quick)]
    adapters = {b: adapter_class(b)() for b in {case.backend for _, case in plan}}
    progress = Progress("bench-checks", len(plan))
    rows = []
    try:
        for name, case in plan:
            text = f"{name} {case.backend} {case.label} {case.shape} {case.dtype} {case.direction}"
            progress.running(text)
            row = run_row(name, checked_specs[name], adapters, case, repeats, args.quick)
            progress.finished(f"{text}: ratio {row.ratio:.3f}")
            rows.append(row)
    finally:
        progress.done()
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
        return 0
    print(format_table(rows))
    ratios = [r.ratio for r in rows]
    print(f"\nchecked / unchecked: median {np.median(ratios):.3f}, largest {max(ratios):.3f} "
          f"({len(rows)} rows, median of {repeats} interleaved runs each)")
    return 0
