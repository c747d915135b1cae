"""``cli.py bench --plot FILE.png``: the bench's rows drawn as a figure of two panels.

* Ratio: each row's generated / native time (below 1: generated is faster), on a log axis with
  a line at 1, a colour and marker per framework, the rows labelled by operation, options,
  shape, dtype and direction.  Rows without a ratio (fewer than MIN_SAMPLES samples a side, no
  native to compare with, or a row that did not finish) are left out and counted in the title.
* GFLOP/s: the large rows (is_large) of the operations with a flop model (FLOP_MODELS),
  generated and native, under this machine's DGEMM rate.  The flops are a model: the
  factorization's own leading-order count (not its derivative's) times the batch, so that rows
  of every size and the DGEMM line share one scale.

The DGEMM rate is measured by the bench's parent process after its rows
(measure_dgemm_gflops) and kept in every row of ``--json`` (Row.dgemm_gflops);
``--plot FILE.png --from-json FILE.json`` redraws a saved run, measuring the rate again if the
JSON predates it.  matplotlib (requirements.txt, the ``plot`` extra) is imported only to draw,
with the Agg backend (no display).
"""
from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .bench_rows import MIN_SAMPLES, Row, options_of

# The DGEMM reference: the best of DGEMM_REPEATS products of two DGEMM_N x DGEMM_N float64
# matrices (2 n^3 flops each) through numpy's BLAS.
DGEMM_N = 1024
DGEMM_REPEATS = 5

# A row is large when one problem of it (one matrix of a batch, with its other inputs) holds at
# least this many matrix entries: 128 x 128.  From about this size LAPACK's blocked algorithms
# (block size 32-64) do most of their flops in BLAS-3 updates, so a rate near DGEMM's is
# possible; a batch of small matrices is not large, however many of them there are.
LARGE_ENTRIES = 128 * 128

# A complex multiply-add is 8 real flops, a real one 2: a complex problem counts 4 times the
# real flops of the same shape.
COMPLEX_FACTOR = 4


# -- the flop model -------------------------------------------------------------------------------
# Real flops of one problem, leading order, of the factorization itself (the forward), not of
# its derivative.  Sources: LAPACK Working Note 41 (its table of operation counts: geqrf,
# orgqr, ormqr, getrf, potrf) and Golub & Van Loan, Matrix Computations, 4th ed. (eigh: 8.3,
# about 4n^3/3 for the eigenvalues, 9n^3 with the eigenvectors; eig: 7.5.6, about 10n^3 for
# the eigenvalues, 25n^3 with the Schur vectors; svd: figure 8.6.1, Golub-Reinsch).

def householder(m: int, n: int, k: int) -> float:
    """k Householder reflectors of length about m on n columns: orgqr forming an m x n Q from
    k reflectors; with k = min(m, n), geqrf of an m x n matrix (2mn^2 - 2n^3/3 for m >= n)."""
    return 4 * m * n * k - 2 * (m + n) * k ** 2 + 4 * k ** 3 / 3


def _qr(m: int, n: int, options) -> float:
    """geqrf, then orgqr forming Q (m x k reduced, m x m complete, none for mode r)."""
    k = min(m, n)
    columns = {"reduced": k, "complete": m, "r": 0}[options.get("mode", "reduced")]
    return householder(m, n, k) + (householder(m, columns, k) if columns else 0)


def _lu(m: int, n: int, options) -> float:
    """getrf (2n^3/3 for a square matrix); P, L and U are copies of its output."""
    k = min(m, n)
    return 2 * m * n * k - (m + n) * k ** 2 + 2 * k ** 3 / 3


def _ormqr(r: int, p: int, k: int, m: int, n: int, options) -> float:
    """k reflectors applied to the m x n matrix C, from the left or the right."""
    return 4 * m * n * k - 2 * (n if options.get("left", "True") == "True" else m) * k ** 2


def _svd(m: int, n: int, options) -> float:
    """Golub-Reinsch, m >= n: U1 (m x n), S and V, 14mn^2 + 8n^3; with full_matrices U (m x m),
    S and V, 4m^2n + 8mn^2 + 9n^3."""
    if options.get("full_matrices", "True") == "False":
        return 14 * m * n ** 2 + 8 * n ** 3
    return 4 * m ** 2 * n + 8 * m * n ** 2 + 9 * n ** 3


def _tall(function):
    """A count written for m >= n, applied to the transpose of a wide matrix."""
    return lambda m, n, options: function(max(m, n), min(m, n), options)


@dataclass(frozen=True)
class FlopModel:
    # the names of a row shape's last entries, in the order of the spec's dims that have a
    # source (as bench_rows._inputs reads a row's shape); the entries before them are batch
    dims: tuple[str, ...]
    flops: Callable[..., float]  # flops(*dims, options): real flops of one problem
    entries: Callable[..., int]  # entries(*dims): matrix entries of its inputs, one problem


def _one_matrix(flops) -> FlopModel:
    """An operation of one m x n input."""
    return FlopModel(("m", "n"), flops, lambda m, n: m * n)


FLOP_MODELS: dict[str, FlopModel] = {
    "qr": _one_matrix(_qr),
    "qr_pivoted": _one_matrix(_qr),  # geqp3: geqrf's count (half of it in BLAS-2)
    "lq": _one_matrix(lambda m, n, options: _qr(n, m, options)),  # the transpose's QR
    # the reversed transpose's QR (economic: reduced, full: complete)
    "rq": _one_matrix(lambda m, n, options: _qr(n, m, {"mode": {
        "economic": "reduced", "full": "complete"}[options.get("mode", "full")]})),
    "geqrf": _one_matrix(lambda m, n, options: householder(m, n, min(m, n))),
    "householder_product": FlopModel(("m", "n", "k"),
                                     lambda m, n, k, options: householder(m, n, k),
                                     lambda m, n, k: m * n),
    "ormqr": FlopModel(("r", "p", "k", "m", "n"), _ormqr,
                       lambda r, p, k, m, n: max(r * p, m * n)),
    "cholesky": _one_matrix(lambda m, n, options: n ** 3 / 3),
    "lu": _one_matrix(_lu),
    "lu_factor": _one_matrix(_lu),
    "eigh": _one_matrix(lambda m, n, options: 9 * n ** 3),
    "eigvalsh": _one_matrix(lambda m, n, options: 4 * n ** 3 / 3),
    "eig": _one_matrix(lambda m, n, options: 25 * n ** 3),
    "eigvals": _one_matrix(lambda m, n, options: 10 * n ** 3),
    # gees with Schur vectors: Golub & Van Loan's 25n^3 (Sec. 7.5.6), as eig's
    "schur": _one_matrix(lambda m, n, options: 25 * n ** 3),
    # gehrd (10n^3/3) and, with calc_q, orghr (4n^3/3): Golub & Van Loan Sec. 7.4.3
    "hessenberg": _one_matrix(lambda m, n, options: (10 + 4 * (
        str(options.get("calc_q", False)) == "True")) * n ** 3 / 3),
    "svd": _one_matrix(_tall(_svd)),
    "svdvals": _one_matrix(_tall(lambda m, n, options: 4 * m * n ** 2 - 4 * n ** 3 / 3)),
    # the thin SVD, then U = W Vh (2mn^2) and P = V S V^H (2n^3), m >= n (left: transposed)
    "polar": _one_matrix(_tall(lambda m, n, options: _svd(m, n, {"full_matrices": "False"})
                               + 2 * m * n ** 2 + 2 * n ** 3)),
    # sygvd: potrf (n^3/3), the reduction to a standard problem (sygst, n^3), eigh with
    # vectors (9n^3) and their back-transformation (trsm, n^3); two n x n inputs
    "eigh_generalized": FlopModel(("n",), lambda n, options: (1 / 3 + 1 + 9 + 1) * n ** 3,
                                  lambda n: 2 * n * n),
}


def _problem(row: Row) -> tuple[FlopModel, int, tuple[int, ...]] | None:
    """(flop model, batch size, dims of one problem) of a row; None: no model for its op."""
    model = FLOP_MODELS.get(row.spec)
    if model is None:
        return None
    split = len(row.shape) - len(model.dims)
    return model, math.prod(row.shape[:split]), tuple(row.shape[split:])


def model_flops(row: Row) -> float | None:
    """The row's model flops: one problem's count times the batch (times COMPLEX_FACTOR for
    a complex dtype); None without a flop model."""
    problem = _problem(row)
    if problem is None:
        return None
    model, batch, dims = problem
    factor = COMPLEX_FACTOR if row.dtype.startswith("complex") else 1
    return factor * batch * model.flops(*dims, options_of(row.options))


def is_large(row: Row) -> bool:
    """Whether one problem of the row holds at least LARGE_ENTRIES matrix entries (False
    without a flop model)."""
    problem = _problem(row)
    return problem is not None and problem[0].entries(*problem[2]) >= LARGE_ENTRIES


def gflops(row: Row, milliseconds: float | None) -> float | None:
    """The model rate of one side of a row that took ``milliseconds``."""
    flops = model_flops(row)
    if flops is None or not milliseconds:
        return None
    return flops / (milliseconds * 1e-3) / 1e9


# -- the DGEMM reference --------------------------------------------------------------------------

def measure_dgemm_gflops(n: int = DGEMM_N, repeats: int = DGEMM_REPEATS) -> float:
    """This machine's float64 matrix product rate in GFLOP/s: the best of ``repeats`` numpy
    products of two n x n matrices.  numpy's BLAS runs as many threads as the environment says
    (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, else a thread per core): the environment the
    bench's rows inherit (bench._child_env adds only JAX's settings)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    a @ b  # starts BLAS's threads
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9


# -- the figure -----------------------------------------------------------------------------------

def _pyplot():
    """matplotlib's pyplot on the Agg backend; without matplotlib, a message on stderr and
    SystemExit(2), the exit code of bad input."""
    try:
        import matplotlib
    except ImportError:
        print("bench: --plot needs matplotlib: pip install -r requirements.txt (or the "
              "package's 'plot' extra)", file=sys.stderr)
        raise SystemExit(2) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def require_matplotlib() -> None:
    """Fail before a long run, not after it, when --plot cannot draw."""
    _pyplot()


def _key(row: Row) -> tuple:
    """A position on the x axis: every framework's row of the same case shares it."""
    return row.spec, row.options, tuple(row.shape), row.dtype, row.direction


def _label(key: tuple) -> str:
    spec, options, shape, dtype, direction = key
    return " ".join([spec] + ([options] if options != "default" else [])
                    + ["x".join(map(str, shape)), dtype, direction])


def _positions(rows: list[Row]) -> dict[tuple, int]:
    keys: dict[tuple, int] = {}
    for row in rows:
        keys.setdefault(_key(row), len(keys))
    return keys


MARKERS = "osD^v<>"
# the ratio axis's labelled values (a log axis labels only powers of ten, often none of them)
RATIO_TICKS = (0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 1, 1.1, 1.25, 1.5, 2, 3, 5, 10, 20, 50)


def _styles(rows: list[Row]) -> dict[str, tuple[str, str, float]]:
    """(colour, marker, x offset) of each framework, in the order of their names."""
    backends = sorted({row.backend for row in rows})
    return {b: (f"C{i}", MARKERS[i % len(MARKERS)], 0.3 * (i - (len(backends) - 1) / 2))
            for i, b in enumerate(backends)}


def _axis(ax, positions: dict[tuple, int], empty: str) -> None:
    ax.set_xticks(range(len(positions)))
    ax.set_xticklabels([_label(k) for k in positions], rotation=90, fontsize=7)
    ax.set_xlim(-0.7, max(len(positions), 1) - 0.3)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    if not positions:
        ax.text(0.5, 0.5, empty, transform=ax.transAxes, ha="center", va="center")


def _ratio_panel(ax, rows: list[Row], styles) -> None:
    shown = [r for r in rows if r.ratio is not None]
    positions = _positions(shown)
    for backend, (colour, marker, offset) in styles.items():
        mine = [r for r in shown if r.backend == backend]
        ax.scatter([positions[_key(r)] + offset for r in mine], [r.ratio for r in mine],
                   color=colour, marker=marker, label=backend, zorder=3)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    low, high = ax.get_ylim()
    ax.set_yticks([tick for tick in RATIO_TICKS if low <= tick <= high])
    ax.yaxis.set_major_formatter(lambda y, _: f"{y:g}")
    ax.yaxis.set_minor_formatter(lambda y, _: "")
    ax.set_ylabel("generated / native time")
    left_out = len(rows) - len(shown)
    ax.set_title(f"generated / native time of each row (below 1: generated is faster)\n"
                 f"{left_out} row(s) without a ratio left out (fewer than {MIN_SAMPLES} "
                 f"samples a side, no native, or not finished)", fontsize=9)
    _axis(ax, positions, "no row has a ratio")
    if shown:
        ax.legend(fontsize=8)


def _rate_panel(ax, rows: list[Row], styles, dgemm_gflops: float, dgemm_note: str) -> None:
    finished = [r for r in rows if r.finished]
    shown = [r for r in finished if is_large(r)]
    positions = _positions(shown)
    for backend, (colour, marker, offset) in styles.items():
        mine = [r for r in shown if r.backend == backend]
        for side, filled in (("generated", True), ("native", False)):
            points = [(positions[_key(r)] + offset, gflops(r, getattr(r, f"{side}_ms")))
                      for r in mine]
            points = [(x, y) for x, y in points if y is not None]
            ax.scatter([x for x, _ in points], [y for _, y in points], marker=marker,
                       color=colour if filled else "none", edgecolors=colour, zorder=3,
                       label=f"{backend} {side}")
    ax.axhline(dgemm_gflops, color="black", linestyle="--", linewidth=0.8,
               label=f"DGEMM {DGEMM_N}x{DGEMM_N}: {dgemm_gflops:.1f} GFLOP/s ({dgemm_note})")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(lambda y, _: f"{y:g}")
    ax.set_ylabel("model GFLOP/s")
    side = math.isqrt(LARGE_ENTRIES)
    ax.set_title(f"model GFLOP/s of the large rows (one problem >= {side}x{side} matrix "
                 f"entries): the factorization's leading-order\nflop count (complex "
                 f"x{COMPLEX_FACTOR}) times the batch, over the derivative's time", fontsize=9)
    unmodelled = sorted({r.spec for r in finished if r.spec not in FLOP_MODELS})
    small = sum(1 for r in finished if r.spec in FLOP_MODELS and not is_large(r))
    note = [f"left out: {small} small row(s)"]
    if unmodelled:
        note.append(f"no flop model for {', '.join(unmodelled)}")
    if len(finished) < len(rows):
        note.append(f"{len(rows) - len(finished)} unfinished row(s)")
    ax.text(0.01, 0.02, "; ".join(note), transform=ax.transAxes, fontsize=8, va="bottom")
    _axis(ax, positions, "no large row with a flop model")
    ax.legend(fontsize=8)


def draw(rows: list[Row], path: Path | str, dgemm_gflops: float,
         dgemm_note: str = "measured by the run") -> None:
    """The figure of ``rows`` as a PNG at ``path``."""
    plt = _pyplot()
    styles = _styles(rows)
    columns = max(len(_positions([r for r in rows if r.ratio is not None])),
                  len(_positions([r for r in rows if r.finished and is_large(r)])))
    figure, (ratio_ax, rate_ax) = plt.subplots(2, 1, figsize=(max(10.0, 2 + 0.2 * columns), 13))
    specs = ", ".join(dict.fromkeys(r.spec for r in rows))
    figure.suptitle(f"cli.py bench: {len(rows)} row(s) of {specs}")
    _ratio_panel(ratio_ax, rows, styles)
    _rate_panel(rate_ax, rows, styles, dgemm_gflops, dgemm_note)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# -- --plot FILE --from-json FILE -----------------------------------------------------------------

def read_rows(path: Path | str) -> list[Row]:
    """The rows of a saved ``cli.py bench --json``; ValueError if it is not one."""
    try:
        data = json.loads(Path(path).read_text())
        return [Row(**item) for item in data]
    except (TypeError, ValueError) as err:  # JSONDecodeError is a ValueError
        raise ValueError(f"{path} is not the output of `cli.py bench --json`: {err}") from None


def redraw(args) -> int:
    """``cli.py bench --plot FILE.png --from-json FILE.json [NAME ...]``: the figure of a saved
    run (of the named specs only, if any are named), without running the bench again."""
    if not args.plot:
        print("bench: --from-json redraws a plot: give --plot FILE.png", file=sys.stderr)
        return 2
    require_matplotlib()
    try:
        rows = read_rows(args.from_json)
    except (OSError, ValueError) as err:
        print(f"bench: {err}", file=sys.stderr)
        return 2
    if args.names:
        missing = sorted(set(args.names) - {r.spec for r in rows})
        if missing:
            print(f"bench: {args.from_json} has no rows of {', '.join(missing)}",
                  file=sys.stderr)
            return 2
        rows = [r for r in rows if r.spec in args.names]
    rate = next((r.dgemm_gflops for r in rows if r.dgemm_gflops), None)
    note = "measured by the run"
    if rate is None:
        rate, note = measure_dgemm_gflops(), "measured when plotted"
    draw(rows, args.plot, rate, note)
    print(f"bench: wrote {args.plot}", file=sys.stderr)
    return 0
