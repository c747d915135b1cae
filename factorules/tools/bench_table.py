"""The table and footnote of ``cli.py bench``."""
from __future__ import annotations

from .bench_rows import MIN_SAMPLES, NATIVE_BUDGET_S, SEPARATED, Row


COLUMNS = ("spec", "backend", "options", "shape", "dtype", "dir", "generated ms", "native ms", "ratio",
           "rel err", "vs", "generated min/med/max", "native min/med/max", "n")


def _spread(values) -> str:
    return "-" if values is None else "/".join(f"{v:.3g}" for v in values)


def _cells(r: Row) -> list[str]:
    head = [r.spec, r.backend, r.options, "x".join(map(str, r.shape)), r.dtype, r.direction]
    if not r.finished:
        return head
    return head + [f"{r.generated_ms:.3f}",
            ("refuses" if r.native == "refuses" else "-") if r.native_ms is None
            else f"{r.native_ms:.3f}",
            "-" if r.ratio is None else f"{r.ratio:.2f}",
            f"{r.rel_err:.1e}" + ("" if r.ok else " FAIL"),
            r.reference + ("*" if r.native == "wrong" else ""),
            _spread(r.generated_spread), _spread(r.native_spread), _count(r)]


def _count(r: Row) -> str:
    """n: the samples of each side, or generated/native where native's were fewer."""
    few = r.native_samples and r.native_samples < r.samples
    return f"{r.samples}/{r.native_samples}" if few else str(r.samples)


def format_table(rows: list[Row]) -> str:
    """The table; a row that did not finish says why after its first six columns."""
    cells = [list(COLUMNS)] + [_cells(r) for r in rows]
    notes = [""] + [("" if r.finished else r.note) for r in rows]
    widths = [max(len(c[i]) for c in cells if i < len(c)) for i in range(len(COLUMNS))]
    numeric = {6, 7, 8, 9, 11, 12, 13}
    lines = []
    for j, row in enumerate(cells):
        parts = [c.rjust(w) if i in numeric else c.ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(parts + ([notes[j]] if notes[j] else [])).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def footnote(rows, repeats: int, environments) -> str:
    lines = [f"vjp: the backward pass alone (torch: autograd.grad of the kept graph; jax: the "
             f"jitted pullback of jax.vjp); jvp: the forward-mode derivative with its outputs. "
             f"ms: the fastest of n interleaved samples after a warm-up (min/med/max: their "
             f"spread), generated and native alternating which goes first; ratio: generated / "
             f"native of those fastest samples (below 1: generated is faster), given only with "
             f"n >= {MIN_SAMPLES} (n = 15/3: a native call so slow that its samples stopped "
             f"after {NATIVE_BUDGET_S:g} s, the ratio given only where every generated sample is "
             f"below {SEPARATED:g} x native's fastest); rel err: the generated derivative "
             f"against native autodiff, or against central differences (fd) where native "
             f"refuses (a vjp as the directional derivative <gA, dA>, relative to |gA| |dA|)."]
    if environments:
        lines.append("; ".join(environments) + ".")
    seen = set()
    for r in rows:
        if r.native == "refuses" and (r.backend, r.note) not in seen:
            seen.add((r.backend, r.note))
            lines.append(f"native {r.backend} refuses {r.spec} {r.options} for "
                         f"{'x'.join(map(str, r.shape))}: {r.note}")
        if r.native == "wrong" and (r.backend, r.note) not in seen:
            seen.add((r.backend, r.note))
            lines.append(f"fd*: native {r.backend} is timed but wrong for {r.spec} {r.options} "
                         f"({'x'.join(map(str, r.shape))}), checked against fd: {r.note}")
    return "\n".join(lines)
