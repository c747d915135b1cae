"""`cli.py audit`: run the audit on the chosen specs, print its table, and write the
derivation pages (--report)."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ..compiler import pipeline
from ..compiler.render import load_checked
from . import derivation
from .audit import CHECKS, TOLERANCE, Result, audit_spec


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1e}"


def summarize(results: list[Result]) -> list[dict]:
    """One row per spec x variant x check: configurations, worst residual, pass/fail."""
    rows: dict[tuple, dict] = {}
    for r in results:
        key = (r.spec, r.variant, r.check)
        row = rows.setdefault(key, {"spec": r.spec, "variant": r.variant, "check": r.check,
                                    "configurations": set(), "worst": None, "failed": 0,
                                    "tolerance": TOLERANCE[r.check]})
        row["configurations"].add((r.case, r.shape, r.field))
        if r.residual is not None and (row["worst"] is None or r.residual > row["worst"]):
            row["worst"] = r.residual
        row["failed"] += not r.passed
    order = {c: i for i, c in enumerate(CHECKS)}
    out = list(rows.values())
    for row in out:
        row["configurations"] = len(row["configurations"])
    spec_order: dict = {}  # specs and variants in the order they were audited
    for r in results:
        spec_order.setdefault((r.spec, r.variant), len(spec_order))
    out.sort(key=lambda row: (spec_order[(row["spec"], row["variant"])], order[row["check"]]))
    return out


def print_table(rows: list[dict], out) -> None:
    head = ("spec", "variant", "check", "configs", "worst residual", "tolerance", "result")
    table = [head] + [(r["spec"], r["variant"], r["check"], str(r["configurations"]),
                       _fmt(r["worst"]), f"{r['tolerance']:.0e}",
                       "pass" if not r["failed"] else f"FAIL ({r['failed']})") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip(), file=out)


def main(args) -> int:
    start = time.perf_counter()
    checked_specs = load_checked(pipeline.spec_paths(Path(args.spec_dir)))
    names = {c.spec.name for c in checked_specs}
    unknown = [n for n in args.names if n not in names]
    if unknown:
        print(f"unknown spec(s): {', '.join(unknown)} (known: {', '.join(sorted(names))})",
              file=sys.stderr)
        return 2
    chosen = [c for c in checked_specs if not args.names or c.spec.name in args.names]
    results = []
    per_spec = {}
    for checked in chosen:
        spec_results = audit_spec(checked)
        per_spec[checked.spec.name] = spec_results
        results.extend(spec_results)
    elapsed = time.perf_counter() - start
    if args.report:
        files = {derivation.page_path(c.spec.name): derivation.page(c, per_spec[c.spec.name])
                 for c in chosen}
        derivation.write(files)
    failed = [r for r in results if not r.passed]
    if args.json:
        print(json.dumps([r.__dict__ for r in results], indent=1))
    else:
        if args.verbose:
            for r in results:
                print(f"{'ok  ' if r.passed else 'FAIL'} {r.where}: {_fmt(r.residual)} "
                      f"{r.note}".rstrip())
            print()
        print_table(summarize(results), sys.stdout)
        print(f"\naudit: {len(results)} checks in "
              f"{len({(r.spec, r.variant, r.case, r.shape, r.field) for r in results})} "
              f"configurations, {len(failed)} failed ({elapsed:.1f} s)")
        if args.report:
            print(f"wrote {len(chosen)} derivation page(s) to docs/derivations/")
    for r in failed:
        print(f"FAIL {r.where}: residual {_fmt(r.residual)} > {TOLERANCE[r.check]:.0e}"
              + (f" ({r.note})" if r.note else ""), file=sys.stderr)
    return 1 if failed else 0
