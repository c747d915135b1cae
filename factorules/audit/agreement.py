"""``cli.py derive``: each case's JVP derived from its defining equation (``jvp: derive``,
factorules.compiler.derive_jvp), printed as spec text next to the written one, with their
agreement at the audit's precision.

Agreement is measured on the audit's own drawn configurations (each shape class the case
covers, real and complex): both programs run on the same primal and input tangent in mpmath
at ``audit.DPS`` digits, and the largest relative difference of an output tangent,
||d_written - d_derived|| / ||d_written||, is reported.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import mpmath

from ..compiler import derive_jvp
from ..compiler.check import check_spec
from ..compiler.spec import Spec, Text
from . import audit
from . import numeric as num

AGREE = 1e-40  # the audit's tolerance for two programs meant to be equal


@dataclass(frozen=True)
class Derivation:
    """One case: its derived program (or why there is none), the written one, agreement."""

    variant: str
    case: str
    derived: str | None  # spec text; None: the catalogue has no entry (``failure`` says why)
    failure: str
    written: str | None  # None: the spec itself says 'jvp: derive'
    residual: float | None  # max relative difference at DPS digits; None: not compared
    configurations: int  # how many drawn configurations it was compared on


def _with_jvp(spec: Spec, vi: int, ci: int, text: str) -> Spec:
    v = spec.variants[vi]
    cases = list(v.cases)
    cases[ci] = replace(cases[ci], jvp=Text(text, cases[ci].jvp.line), derived=False,
                        written_jvp=None)
    variants = list(spec.variants)
    variants[vi] = replace(v, cases=tuple(cases))
    return replace(spec, variants=tuple(variants))


def _residual(spec: Spec, vi: int, ci: int, written_text: str,
              derived: str) -> tuple[float, int]:
    written = check_spec(_with_jvp(spec, vi, ci, written_text))
    other = check_spec(_with_jvp(spec, vi, ci, derived))
    worst, count = 0.0, 0
    for cv, case, shape, prims, field_name in audit.configurations(written):
        if cv is not written.variants[vi] or case is not cv.cases[ci]:
            continue
        s = audit.prepare(written, cv, case, shape, prims, field_name,
                          finite_differences=False)
        mine = other.variants[vi].cases[ci]
        with mpmath.workdps(audit.DPS):
            env = {**s.primal, **s.tangents}
            a = audit.run_statements(s.mp, case.jvp.statements, env)
            b = audit.run_statements(s.mp, mine.jvp.statements, env)
            for t in cv.variant.outputs:
                name = "d" + t.name
                if t.constant or name not in a or name not in b:
                    continue
                scale = max(num.norm(a[name]), 1e-300)
                worst = max(worst, float(num.norm(a[name] - b[name])) / float(scale))
        count += 1
    return worst, count


def derivations(spec: Spec) -> list[Derivation]:
    """Every case of the spec, derived where the catalogue can, compared where written."""
    out = []
    for vi, v in enumerate(spec.variants):
        for ci, c in enumerate(v.cases):
            try:
                text, failure = derive_jvp.derive_text(spec, v, c.when), ""
            except derive_jvp.DeriveFailure as err:
                text, failure = None, str(err)
            written = c.written_jvp if c.derived else c.jvp
            written = None if written is None else written.text
            residual, count = None, 0
            if text is not None and written is not None:
                residual, count = _residual(spec, vi, ci, written, text)
            out.append(Derivation(v.label, c.when, text, failure, written, residual, count))
    return out


def _indented(text: str) -> list[str]:
    return ["    " + line for line in text.rstrip().splitlines()]


def report(name: str, rows: list[Derivation]) -> tuple[list[str], bool]:
    """The printed report of one spec, and whether every comparison agreed."""
    lines, ok = [], True
    for d in rows:
        lines.append(f"{name} {d.variant} [{d.case}]")
        if d.derived is None:
            lines.append(f"  not derived: {d.failure}")
            continue
        lines.append("  derived:")
        lines += _indented(d.derived)
        if d.written is None:
            lines.append("  written: none (the spec says 'jvp: derive' and gives no "
                         "written_jvp; the audit checks the derived rule)")
            continue
        lines.append("  written:")
        lines += _indented(d.written)
        agrees = d.residual is not None and d.residual <= AGREE and d.configurations > 0
        ok = ok and agrees
        lines.append(f"  agreement at {audit.DPS} digits: max relative difference "
                     f"{d.residual:.1e} over {d.configurations} configurations "
                     f"({'agree' if agrees else 'DIFFER'})")
    return lines, ok


def main(args) -> int:
    import sys
    from pathlib import Path

    from ..compiler import pipeline
    from ..compiler.spec_loader import load_spec

    paths = {p.stem: p for p in pipeline.spec_paths(Path(args.spec_dir))}
    unknown = [n for n in args.names if n not in paths]
    if unknown:
        print(f"unknown spec: {', '.join(unknown)} (known: {', '.join(sorted(paths))})",
              file=sys.stderr)
        return 2
    all_ok = True
    for name in args.names or sorted(paths):
        spec = load_spec(paths[name], display_path=f"spec/{paths[name].name}")
        lines, ok = report(spec.name, derivations(spec))
        all_ok = all_ok and ok
        print("\n".join(lines))
    print("every derived rule agrees with the written one" if all_ok
          else "some derived rule differs from the written one", file=sys.stderr)
    return 0 if all_ok else 1
