"""``cli.py bench``: generated rules against native autodiff, timed side by side.

Every row times one derivative (VJP: forward and backward of a scalar loss; JVP: forward-mode
derivative) of a generated function and of the framework's own, in one process, with the
generated and native runs interleaved so that machine noise hits both alike.  A row reports
the median time of each over the repeats and the median of the ratios generated / native of
the samples taken back to back (below 1: generated is faster).

Before timing, every row checks that the generated derivative is right: against native
autodiff, or, where native refuses (QR in complete mode with more rows than columns) or the
framework has no such operation, against central finite differences in float64.  The rows
are each spec's ``benchmarks``; inputs are drawn from the spec (generator/audit/sample.py).  The relative error is a column of the table; a row
whose error exceeds its tolerance makes the command exit 1.

Each row runs in a process of its own (``python -m generator.tools.bench REQUEST``: the rows as
JSON on the command line, each result as one JSON line on stdout), generated and native side
by side in it as before; ``--quick`` runs the rows of one spec and backend in one process.
A row that outlives ``--row-timeout`` is killed, and one whose process dies is reported;
either is a line of the table, the other rows still run (those after it in a new process),
and the command exits 1.
"""
from __future__ import annotations

import concurrent.futures
import faulthandler
import json
import math
import os
import queue
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import gauge, natives
from ..audit import sample
from ..compiler.paths import ROOT, SPEC_DIR
from ..compiler.pipeline import spec_paths
from .verify import as_tuple

# Tolerances on the relative error of the generated derivative: against native autodiff
# (both rounding errors, the rules' conditioning is that of R), and against finite
# differences (truncation and cancellation of a central difference with step FD_STEP).
TOLERANCE = {"float32": 1e-3, "complex64": 1e-3, "float64": 1e-8, "complex128": 1e-8}
FD_TOLERANCE = 1e-6
FD_STEP = 1e-6
MIN_SAMPLE_S = 0.05  # a timed sample repeats a fast call until it lasts about this long
# a row still running after this long is taken to hang (--row-timeout; smaller for --quick)
ROW_TIMEOUT_S = 300
QUICK_ROW_TIMEOUT_S = 60
RESULT_TAG = "factorules-bench-row "  # the row process's result line: this tag, then JSON


@dataclass(frozen=True)
class Case:
    backend: str          # torch | jax
    options: tuple        # (option, value) pairs of the operation
    shape: tuple          # input shape, batch dims first
    dtype: str            # float32 | float64 | complex64 | complex128
    direction: str        # vjp | jvp

    @property
    def label(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.options) or "default"


@dataclass
class Row:
    spec: str
    backend: str
    options: str
    shape: list
    dtype: str
    direction: str
    generated_ms: float | None   # None (and rel_err None): the row did not finish, see note
    native_ms: float | None
    ratio: float | None
    native: str | None     # "ok", "refuses", "wrong" (generator.tools.natives: timed, checked
                           # against fd instead), or "none" (the framework has no such op)
    rel_err: float | None
    reference: str | None  # what the derivative was checked against: "native" or "fd"
    ok: bool
    repeats: int
    inner: int             # calls per timed sample
    note: str = field(default="")  # native's refusal, or why the row did not finish

    @property
    def finished(self) -> bool:
        return self.rel_err is not None


# -- the cases ---------------------------------------------------------------------------------

def cases(checked, quick: bool) -> list[Case]:
    """The spec's benchmark rows (its 'benchmarks' list), for both frameworks and directions."""
    return [Case(backend, b.options, b.quick if quick else b.shape, b.dtype, direction)
            for b in checked.spec.benchmarks
            for backend in ("torch", "jax")
            for direction in ("vjp", "jvp")]


def _variant(checked, case: Case):
    return next(v for v in checked.variants if dict(v.variant.when) == dict(case.options))


def _differentiated(checked, case: Case, outputs) -> tuple:
    """The outputs a row differentiates: all returned ones but permutations and pivots
    (locally constant; the frameworks differ in their dtypes: JAX's P of a complex A is
    real, torch's complex)."""
    return tuple(y for y, t in zip(outputs, gauge.returned(_variant(checked, case)))
                 if not t.constant)


def _cotangents(checked, case: Case, outs, rng, convention: str) -> list:
    """Random cotangents of the returned outputs, of their dtypes (real eigenvalues of a
    complex input, complex eigenvectors of a real one), projected so that the loss does not depend on a gauge (generator.tools.gauge)."""
    drawn = []
    for y in outs:
        y = np.asarray(y)
        drawn.append(_random(rng, y.shape, y.dtype.name))  # real for real outputs
    cv = _variant(checked, case)
    if cv.variant.gauge is None:
        return drawn
    projected = gauge.invariant_cotangent([np.asarray(y) for y in outs], drawn, cv, convention)
    return [np.asarray(g).astype(d.dtype) for g, d in zip(projected, drawn)]


def _inputs(checked, case: Case, rng):
    """(inputs, tangents), tuples, drawn from the spec: well conditioned for the
    factorization, and tangents in the inputs' tangent spaces (e.g. Hermitian for a
    Hermitian input).  A row's shape is the input's (batch dimensions first), or, for an
    operation with several inputs, the batch dimensions then every primitive dimension in
    the order of the spec's dims."""
    variant = _variant(checked, case)
    primitive = [d for d in checked.dims if d.source is not None]
    if len(checked.spec.inputs) > 1:
        prims = tuple(case.shape[len(case.shape) - len(primitive):])
        batch = tuple(case.shape[:len(case.shape) - len(primitive)])
    else:
        prims = tuple(case.shape[d.source[1]] for d in primitive)
        batch = tuple(case.shape[:-2])
    complex_ = case.dtype.startswith("complex")
    drawn = sample.inputs(checked, variant, prims, np.complex128 if complex_ else np.float64,
                          batch, rng)
    xs, dxs = [], []
    for t in checked.spec.inputs:
        x = drawn[t.name]
        dx = sample.project(_random(rng, x.shape, case.dtype), t.structure)
        # a tangent as large as the input itself: the finite-difference step is then
        # relative to it (a draw with orthonormal factors has entries ~ 1/sqrt(n))
        scale = np.linalg.norm(x) / max(np.linalg.norm(dx), 1e-300)
        xs.append(x.astype(case.dtype))
        dxs.append((dx * scale).astype(case.dtype))
    return tuple(xs), tuple(dxs)


# -- inputs --------------------------------------------------------------------------------------

def _random(rng: np.random.Generator, shape, dtype: str) -> np.ndarray:
    x = rng.standard_normal(shape)
    if dtype.startswith("complex"):
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


def _aligned(checked, case: Case, outputs, reference) -> list:
    """Outputs in the order and gauge of ``reference`` (finite differences of
    eigenvectors; eig's eigenvalues have no order of their own)."""
    cv = _variant(checked, case)
    return list(outputs) if cv.variant.gauge is None else gauge.align(outputs, reference, cv)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.complex128)
    b = np.asarray(b, dtype=np.complex128)
    scale = np.linalg.norm(b.ravel())
    diff = np.linalg.norm((a - b).ravel())
    return float(diff / scale) if scale > 0 else float(diff)


# -- one backend's derivative functions -------------------------------------------------------

class _Torch:
    name = "torch"

    def __init__(self, checked):
        import torch

        import generated.torch as gen

        op = checked.spec.name
        self.checked = checked
        self.torch = torch
        self.generated = getattr(gen, op)
        self.native = natives.native_function("torch", op)  # None: it has none
        self.forward = self.native or self.generated

    def sync(self, x):
        return x

    def to_numpy(self, x):
        return x.detach().cpu().resolve_conj().numpy()

    def setup(self, case: Case, rng):
        """(generated callable, native callable, data) for one row."""
        torch = self.torch
        opts = dict(case.options)
        xs, dxs = _inputs(self.checked, case, rng)
        A, dA = tuple(map(torch.from_numpy, xs)), tuple(map(torch.from_numpy, dxs))
        outs = _differentiated(self.checked, case, as_tuple(self.forward(*A, **opts)))
        # the loss below is Re sum(y * c): its PyTorch cotangent is conj(c), which is JAX's
        # convention for c
        cot = [torch.from_numpy(c) for c in _cotangents(
            self.checked, case, [self.to_numpy(y) for y in outs], rng, "jax")]
        data = {"A": A, "dA": dA, "cot": cot, "opts": opts}

        def fn_of(f):
            return lambda *X: _differentiated(self.checked, case, as_tuple(f(*X, **opts)))

        def vjp(f):
            g = fn_of(f)
            Ar = [x.clone().requires_grad_() for x in A]

            def run():
                loss = sum((y * c).real.sum() for y, c in zip(g(*Ar), cot))
                return torch.autograd.grad(loss, Ar)
            return run

        def jvp(f):
            g = fn_of(f)

            def run():
                return torch.func.jvp(g, A, dA)
            return run

        make = vjp if case.direction == "vjp" else jvp
        return make(self.generated), self.native and make(self.native), data

    def derivative(self, case, result):
        """The numbers to compare: the inputs' cotangents (vjp) or the output tangents (jvp)."""
        if case.direction == "vjp":
            return [self.to_numpy(g) for g in result]
        return [self.to_numpy(t) for t in result[1]]

    def fd(self, case, data):
        """Finite-difference reference in float64 (complex128) for the same numbers."""
        torch = self.torch
        wide = torch.complex128 if case.dtype.startswith("complex") else torch.float64
        A, dA = [x.to(wide) for x in data["A"]], [x.to(wide) for x in data["dA"]]
        cot = [c.to(wide) for c in data["cot"]]

        def outs(X):
            return _differentiated(self.checked, case,
                                   as_tuple(self.forward(*X, **data["opts"])))

        # in the gauge of the outputs at the row's own dtype, which the derivative refers to
        here = [self.to_numpy(y) for y in outs(data["A"])]
        plus, minus = (_aligned(self.checked, case, [self.to_numpy(y) for y in outs(X)], here)
                       for X in ([x + FD_STEP * d for x, d in zip(A, dA)],
                                 [x - FD_STEP * d for x, d in zip(A, dA)]))
        tangents = [(p - q) / (2 * FD_STEP) for p, q in zip(plus, minus)]
        if case.direction == "jvp":
            return tangents, None
        # vjp: the directional derivative of the loss along dA, <gA, dA> (real part)
        slope = sum(float((torch.from_numpy(t) * c).real.sum()) for t, c in zip(tangents, cot))
        return slope, [self.to_numpy(d) for d in dA]


# jaxlib 0.10 runs a batched LAPACK call (geqrf, orgqr, trsm, ...) on a worker of XLA's
# intra-op thread pool, splits the batch into tasks on that same pool and blocks the worker
# until they are done (jax::ParallelBatchMap).  When as many such calls are in flight as the
# pool has workers (XLA runs independent thunks concurrently: two on a two-core machine, e.g.
# the orgqr and the trsm of the JVP of a batch of LQs), every worker waits and the process
# hangs in block_until_ready.  XLA sizes the pool from the CPUs it may use unless PJRT_NPROC
# (or NPROC) says otherwise: a pool of at least JAX_POOL_MIN workers, more than any of these
# rules has LAPACK calls in flight, always leaves workers free for the batches.  (Neither
# --xla_cpu_enable_concurrency_optimized_scheduler=false nor --xla_cpu_multi_thread_eigen=false
# prevents the hang.)  A user's own setting wins.
JAX_POOL_MIN = 8


def _jax_pool_env(env) -> None:
    """Size XLA's CPU pool so that batched LAPACK calls cannot exhaust it: in env (a mapping
    such as os.environ), before jax creates its CPU client."""
    if "PJRT_NPROC" not in env and "NPROC" not in env:
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            cpus = os.cpu_count() or 1
        env["PJRT_NPROC"] = str(max(JAX_POOL_MIN, cpus))


class _Jax:
    name = "jax"

    def __init__(self, checked):
        op = checked.spec.name
        self.checked = checked
        _jax_pool_env(os.environ)
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        import generated.jax as gen

        self.jax = jax
        self.jnp = jnp
        self.generated = getattr(gen, op)
        self.native = natives.native_function("jax", op)  # None: it has none
        self.forward = self.native or self.generated

    def sync(self, x):
        return self.jax.block_until_ready(x)

    def to_numpy(self, x):
        return np.asarray(x)

    def setup(self, case: Case, rng):
        jax, jnp = self.jax, self.jnp
        opts = dict(case.options)
        xs, dxs = _inputs(self.checked, case, rng)
        A, dA = tuple(map(jnp.asarray, xs)), tuple(map(jnp.asarray, dxs))
        outs = _differentiated(self.checked, case, as_tuple(self.forward(*A, **opts)))
        cot = tuple(jnp.asarray(c) for c in _cotangents(
            self.checked, case, [np.asarray(y) for y in outs], rng, "jax"))
        data = {"A": A, "dA": dA, "cot": cot, "opts": opts}

        def fn_of(f):
            return lambda *X: _differentiated(self.checked, case, as_tuple(f(*X, **opts)))

        def vjp(f):
            g = fn_of(f)

            @jax.jit
            def pulled(X, cts):
                _, pullback = jax.vjp(g, *X)
                return pullback(cts)
            return lambda: pulled(A, cot)

        def jvp(f):
            g = fn_of(f)
            pushed = jax.jit(lambda X, dX: jax.jvp(g, X, dX))
            return lambda: pushed(A, dA)

        make = vjp if case.direction == "vjp" else jvp
        return make(self.generated), self.native and make(self.native), data

    def derivative(self, case, result):
        if case.direction == "vjp":
            return [self.to_numpy(g) for g in result]
        return [self.to_numpy(t) for t in result[1]]

    def fd(self, case, data):
        wide = np.complex128 if case.dtype.startswith("complex") else np.float64
        A = [np.asarray(x).astype(wide) for x in data["A"]]
        dA = [np.asarray(x).astype(wide) for x in data["dA"]]

        def outs(X):
            return [np.asarray(y) for y in _differentiated(
                self.checked, case, as_tuple(self.forward(*map(self.jnp.asarray, X),
                                                          **data["opts"])))]

        # in the gauge of the outputs at the row's own dtype, which the derivative refers to
        here = outs([np.asarray(x) for x in data["A"]])
        plus, minus = (_aligned(self.checked, case, outs(X), here)
                       for X in ([x + FD_STEP * d for x, d in zip(A, dA)],
                                 [x - FD_STEP * d for x, d in zip(A, dA)]))
        tangents = [(p - q) / (2 * FD_STEP) for p, q in zip(plus, minus)]
        if case.direction == "jvp":
            return tangents, None
        # JAX's convention: the pullback transposes the JVP under Re sum(x * y) (no conjugate)
        slope = sum(float(np.real(np.sum(t * np.asarray(c))))
                    for t, c in zip(tangents, data["cot"]))
        return slope, dA


BACKENDS = {"torch": _Torch, "jax": _Jax}


# -- checking and timing -----------------------------------------------------------------------

def _check(backend, case: Case, data, gen_result, nat_result) -> tuple[float, str]:
    """(relative error of the generated derivative, reference used)."""
    got = backend.derivative(case, gen_result)
    cv = _variant(backend.checked, case)
    if case.direction == "jvp" and cv.variant.gauge is not None:
        # tangents of gauge outputs are compared without their gauge component: another
        # rule (a framework's) may pick another gauge
        outs = [backend.to_numpy(y) for y in gen_result[0]] if isinstance(
            gen_result[0], (tuple, list)) else [backend.to_numpy(gen_result[0])]
        got = gauge.project_tangent(outs, got, cv)
    if nat_result is not None:
        want = backend.derivative(case, nat_result)
        if case.direction == "jvp" and cv.variant.gauge is not None:
            want = gauge.project_tangent(outs, want, cv)
        if case.direction == "vjp":
            # compared on the input's tangent space: for a Hermitian input, torch's native
            # complex Cholesky gradient has a non-Hermitian part ours (like JAX's) projects out
            structures = [t.structure for t in backend.checked.spec.inputs]
            got, want = ([sample.project(x, s) for x, s in zip(xs, structures)]
                         for xs in (got, want))
        return max(_rel(g, w) for g, w in zip(got, want)), "native"
    ref, dA = backend.fd(case, data)
    if case.direction == "jvp":
        if cv.variant.gauge is not None:
            ref = gauge.project_tangent(outs, ref, cv)
        return max(_rel(g, w) for g, w in zip(got, ref)), "fd"
    grads = [g.astype(np.complex128) for g in got]
    if backend.name == "torch":   # PyTorch: d loss = Re <gA, dA> = Re sum(conj(gA) dA)
        slope = sum(float(np.real(np.sum(np.conj(g) * d))) for g, d in zip(grads, dA))
    else:
        slope = sum(float(np.real(np.sum(g * d))) for g, d in zip(grads, dA))  # JAX's
    # relative to |gA| |dA|, the largest the slope can be: a slope that happens to be small
    # (cancellation among its terms) would otherwise measure the difference's rounding
    scale = max(abs(ref), sum(float(np.linalg.norm(g) * np.linalg.norm(d))
                              for g, d in zip(grads, dA)), 1e-300)
    return abs(slope - ref) / scale, "fd"


def _once(backend, f):
    t0 = time.perf_counter()
    out = backend.sync(f())
    return time.perf_counter() - t0, out


def _inner_count(seconds: float, quick: bool) -> int:
    if quick or seconds <= 0:
        return 1
    return max(1, min(1000, math.ceil(MIN_SAMPLE_S / seconds)))


def _sample(backend, f, inner: int) -> float:
    t0 = time.perf_counter()
    for _ in range(inner):
        backend.sync(f())
    return (time.perf_counter() - t0) / inner


def _time(backend, gen, nat, repeats: int, quick: bool):
    """Medians (seconds) of interleaved samples of gen and nat (nat may be None), and the
    median over the repeats of the ratio of the two samples taken back to back (None
    without nat): a drift in the machine's load between repeats cancels in each ratio."""
    warm = [_once(backend, gen)[0]]
    if nat is not None:
        warm.append(_once(backend, nat)[0])
    inner = _inner_count(min(warm), quick)
    times = {"gen": [], "nat": []}
    pair = [("gen", gen)] + ([("nat", nat)] if nat is not None else [])
    for i in range(repeats):
        for key, f in (pair if i % 2 == 0 else pair[::-1]):
            times[key].append(_sample(backend, f, inner))
    gen_s = statistics.median(times["gen"])
    if nat is None:
        return gen_s, None, None, inner
    ratio = statistics.median(g / n for g, n in zip(times["gen"], times["nat"]))
    return gen_s, statistics.median(times["nat"]), ratio, inner


def run_case(spec: str, backend, case: Case, repeats: int, quick: bool, seed: int) -> Row:
    rng = np.random.default_rng(seed)
    gen, nat, data = backend.setup(case, rng)
    _, gen_result = _once(backend, gen)         # compiles (jax) and warms up
    refusal = ""
    if nat is None:
        nat_result, native = None, "none"
    else:
        try:
            _, nat_result = _once(backend, nat)
            native = "ok"
        except Exception as err:  # noqa: BLE001 (any refusal by the framework is reported)
            nat, nat_result, native = None, None, "refuses"
            refusal = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    wrong = natives.native_wrong(spec, case.backend, dict(case.options), case.shape)
    if wrong and nat_result is not None:
        # timed, but not a reference: the generated derivative is checked against fd
        native, refusal = "wrong", wrong
    err, reference = _check(backend, case, data, gen_result,
                            None if native == "wrong" else nat_result)
    # against fd the tolerance is the larger of the difference's own and the dtype's
    ok = err <= (TOLERANCE[case.dtype] if reference == "native"
                 else max(FD_TOLERANCE, TOLERANCE[case.dtype]))
    gen_s, nat_s, ratio, inner = _time(backend, gen, nat, repeats, quick)
    return Row(spec=spec, backend=case.backend, options=case.label, shape=list(case.shape),
               dtype=case.dtype, direction=case.direction, generated_ms=gen_s * 1e3,
               native_ms=None if nat_s is None else nat_s * 1e3,
               ratio=ratio, native=native, rel_err=err,
               reference=reference, ok=ok, repeats=repeats, inner=inner,
               note=refusal)


# -- output --------------------------------------------------------------------------------------

COLUMNS = ("spec", "backend", "options", "shape", "dtype", "dir", "generated ms", "native ms", "ratio",
           "rel err", "vs")


def _cells(r: Row) -> list[str]:
    head = [r.spec, r.backend, r.options, "x".join(map(str, r.shape)), r.dtype, r.direction]
    if not r.finished:
        return head
    return head + [f"{r.generated_ms:.3f}",
            ("refuses" if r.native == "refuses" else "-") if r.native_ms is None
            else f"{r.native_ms:.3f}",
            "-" if r.ratio is None else f"{r.ratio:.2f}",
            f"{r.rel_err:.1e}" + ("" if r.ok else " FAIL"),
            r.reference + ("*" if r.native == "wrong" else "")]


def format_table(rows: list[Row]) -> str:
    """The table; a row that did not finish says why after its first six columns."""
    cells = [list(COLUMNS)] + [_cells(r) for r in rows]
    notes = [""] + [("" if r.finished else r.note) for r in rows]
    widths = [max(len(c[i]) for c in cells if i < len(c)) for i in range(len(COLUMNS))]
    numeric = {6, 7, 8, 9}
    lines = []
    for j, row in enumerate(cells):
        parts = [c.rjust(w) if i in numeric else c.ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(parts + ([notes[j]] if notes[j] else [])).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


class _Progress:
    """One line on stderr, rewritten in place; silent when stderr is not a terminal."""

    def __init__(self, total: int):
        self.total = total
        self.live = sys.stderr.isatty()
        self.width = 0

    def show(self, i: int, text: str):
        if self.live:
            line = f"bench [{i}/{self.total}] {text}"
            sys.stderr.write("\r" + line.ljust(self.width))
            sys.stderr.flush()
            self.width = len(line)

    def done(self):
        if self.live:
            sys.stderr.write("\r" + " " * self.width + "\r")
            sys.stderr.flush()


def _environment(backend) -> str:
    """The framework's version and threads, for the footnote (in the row's process, where
    the framework is loaded)."""
    module = getattr(backend, backend.name)
    text = f"{backend.name} {module.__version__}"
    if backend.name == "torch":
        text += f" ({module.get_num_threads()} threads)"
    if backend.name == "jax":
        text += (f" (XLA_FLAGS={os.environ.get('XLA_FLAGS', '')}, "
                 f"PJRT_NPROC={os.environ.get('PJRT_NPROC', '')})")
    return text


def _footnote(rows, repeats: int, environments) -> str:
    lines = [f"ms: median of {repeats} interleaved samples after a warm-up; ratio: median over "
             f"the {repeats} repeats of generated / native timed back to back (below 1: generated "
             f"is faster); rel err: the generated derivative against native autodiff, or against "
             f"central differences (fd) where native refuses (a vjp as the directional "
             f"derivative <gA, dA>, relative to |gA| |dA|)."]
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


# -- rows, in processes of their own ------------------------------------------------------------

def _request(spec_path: Path, name: str, rows: list[tuple[int, Case]], repeats: int,
             quick: bool, timeout: float) -> dict:
    """Everything the rows' process needs, as JSON (no pickled functions): rows of one spec
    and backend, each with its seed."""
    return {"spec_path": str(Path(spec_path).resolve()), "spec": name,
            "rows": [{"backend": case.backend, "options": [list(pair) for pair in case.options],
                      "shape": list(case.shape), "dtype": case.dtype,
                      "direction": case.direction, "seed": seed} for seed, case in rows],
            "repeats": repeats, "quick": quick, "timeout": timeout}


def _child_command(request: dict) -> list[str]:
    """The rows' process: this module (run from the repository root) on one request."""
    return [sys.executable, "-m", "generator.tools.bench", json.dumps(request)]


def _child_env() -> dict:
    env = dict(os.environ)  # the caller's thread and XLA settings travel with the row
    _jax_pool_env(env)
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


def _run_child(request: dict, timeout: float) -> list[tuple[dict | None, str, str]]:
    """(result, failure, stderr) of each row of the request, in order: result its JSON (None
    if it did not finish), failure why not ("timeout after N s", "crashed (rc=N)"), stderr
    that of the process it ran in.  A row gets ``timeout`` seconds from the end of the one
    before; a row that hangs or kills its process is reported, and the rows after it run in
    a new process."""
    posix = hasattr(os, "killpg")
    rows = list(request["rows"])
    out: list[tuple[dict | None, str, str]] = []
    while rows:
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
        elif proc.returncode != 0 and out:  # every row printed, then it failed on exit
            out[-1] = (None, f"crashed (rc={proc.returncode})", err)
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

    (checked,) = load_checked([Path(request["spec_path"])])
    backends = {}
    for item in request["rows"]:
        # should the parent be gone, a hang still ends, with tracebacks on stderr
        faulthandler.dump_traceback_later(request["timeout"] + 60, exit=True)
        case = Case(backend=item["backend"],
                    options=tuple(tuple(pair) for pair in item["options"]),
                    shape=tuple(item["shape"]), dtype=item["dtype"],
                    direction=item["direction"])
        if case.backend not in backends:
            backends[case.backend] = BACKENDS[case.backend](checked)
        backend = backends[case.backend]
        row = run_case(request["spec"], backend, case, request["repeats"], request["quick"],
                       seed=item["seed"])
        print(RESULT_TAG + json.dumps({"row": asdict(row),
                                       "environment": _environment(backend)}), flush=True)
    faulthandler.cancel_dump_traceback_later()
    return 0


def _quick_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


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

    from ..compiler.render import load_checked

    checked_specs = {c.spec.name: c for c in load_checked(spec_paths(spec_dir))}
    plan = []
    for name in names:
        if not checked_specs[name].spec.benchmarks:
            print(f"bench: spec {name!r} has no 'benchmarks'; skipped", file=sys.stderr)
            continue
        plan.extend((name, case) for case in cases(checked_specs[name], args.quick))

    environments: dict[str, str] = {}  # backend: its footnote text, from its first row
    progress = _Progress(len(plan))
    finished: dict[int, Row] = {}  # plan position -> its row
    # --quick (a smoke test, its times mean little) runs the rows of one spec and backend in
    # one process, a process per CPU at once; timed runs give each row a process of its own
    # and run them one at a time, so that rows do not slow each other
    workers = _quick_workers() if args.quick else 1
    groups: dict = {}
    for i, (name, case) in enumerate(plan, 1):
        key = (name, case.backend) if args.quick else i
        groups.setdefault(key, []).append((i, name, case))

    def text_of(name, case):
        return (f"{name} {case.backend} {case.direction} {case.label} "
                f"{'x'.join(map(str, case.shape))} {case.dtype}")

    def run(group):
        name = group[0][1]
        request = _request(paths[name], name, [(i, case) for i, _, case in group], repeats,
                           args.quick, timeout)
        return _run_child(request, timeout)

    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [(group, pool.submit(run, group)) for group in groups.values()]
            count = 0
            for group, future in futures:
                for (i, name, case), (result, failure, err) in zip(group, future.result()):
                    count += 1
                    text = text_of(name, case)
                    progress.show(count, text)
                    if result is None:
                        finished[i] = _unfinished(name, case, repeats, failure)
                        progress.done()
                        print(f"bench: {text}: {failure}"
                              + (f"; its stderr ends:\n{_tail(err)}" if err.strip() else ""),
                              file=sys.stderr)
                        continue
                    finished[i] = Row(**result["row"])
                    environments.setdefault(case.backend, result["environment"])
    finally:
        progress.done()
    rows = [finished[i] for i in sorted(finished)]

    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
    else:
        print(format_table(rows))
        print()
        print(_footnote(rows, repeats, list(environments.values())))
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
