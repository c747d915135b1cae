"""One row of ``cli.py bench``, measured: its inputs drawn from the spec, the generated and the
native derivative set up through the backend's adapter (factorules/tools/adapters.py),
checked against native autodiff or central finite differences, and timed side by side.

Runs in the rows' process (factorules/tools/bench.py starts it).
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field

import numpy as np

from . import gauge, natives
from .adapters import adapter_class, as_tuple
from ..audit import sample
from ..compiler.backends import BACKENDS

# Tolerances on the relative error of the generated derivative: against native autodiff
# (both rounding errors, the rules' conditioning is that of R), and against finite
# differences (truncation and cancellation of a central difference with step FD_STEP).
TOLERANCE = {"float32": 1e-3, "complex64": 1e-3, "float64": 1e-8, "complex128": 1e-8}
FD_TOLERANCE = 1e-6
FD_STEP = 1e-6
MIN_SAMPLE_S = 0.05  # a timed sample repeats a fast call until it lasts about this long
# a ratio needs this many interleaved samples of each side: fewer (--quick) give none
MIN_SAMPLES = 15
# A native call so slow that MIN_SAMPLES of it would outlast a row (torch's forward-mode
# householder_product at 2048x512x512: 35 s a call) is sampled until its samples have taken
# NATIVE_BUDGET_S, and no fewer than NATIVE_MIN_SAMPLES of them; the row then gives a ratio
# only if the generated's slowest sample is below half the native's fastest (SEPARATED), a
# conclusion so few samples can carry.
NATIVE_BUDGET_S = 45.0
NATIVE_MIN_SAMPLES = 3
SEPARATED = 0.5


@dataclass(frozen=True)
class Case:
    backend: str          # a backend whose framework differentiates (torch, jax)
    options: tuple        # (option, value) pairs of the operation
    shape: tuple          # input shape, batch dims first
    dtype: str            # float32 | float64 | complex64 | complex128
    direction: str        # vjp | jvp

    @property
    def label(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.options) or "default"


def options_of(label: str) -> dict[str, str]:
    """A row's options back from their label (Case.label), each value as its text."""
    return {} if label == "default" else dict(pair.split("=", 1) for pair in label.split(","))


@dataclass
class Row:
    spec: str
    backend: str
    options: str
    shape: list
    dtype: str
    direction: str
    generated_ms: float | None   # the fastest sample; None (and rel_err None): the row did
    native_ms: float | None      # not finish, see note
    ratio: float | None  # generated_ms / native_ms; None with fewer than MIN_SAMPLES samples
    native: str | None     # "ok", "refuses", "wrong" (factorules.tools.natives: timed, checked
                           # against fd instead), or "none" (the framework has no such op)
    rel_err: float | None
    reference: str | None  # what the derivative was checked against: "native" or "fd"
    ok: bool
    repeats: int
    inner: int             # calls per timed sample
    note: str = field(default="")  # native's refusal, or why the row did not finish
    generated_spread: list | None = None  # [min, median, max] of the samples, ms
    native_spread: list | None = None
    samples: int = 0  # timed samples of the generated side
    native_samples: int = 0  # of the native side: samples, or fewer (NATIVE_BUDGET_S)
    # this machine's DGEMM rate, GFLOP/s, measured by bench's parent after the rows
    # (bench_plot.measure_dgemm_gflops), the same in every row of a run: the reference line
    # of --plot.  None: not measured (a table run, or JSON from before it was kept)
    dgemm_gflops: float | None = None

    @property
    def finished(self) -> bool:
        return self.rel_err is not None


# -- the cases ---------------------------------------------------------------------------------

def benchmarked() -> tuple[str, ...]:
    """The backends bench times: those whose framework has autodiff of its own."""
    return tuple(b.name for b in BACKENDS if adapter_class(b).differentiates)


def cases(checked, quick: bool) -> list[Case]:
    """The spec's benchmark rows (its 'benchmarks' list), for every benchmarked backend and
    both directions."""
    return [Case(backend, b.options, b.quick if quick else b.shape, b.dtype, direction)
            for b in checked.spec.benchmarks
            for backend in benchmarked()
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
    complex input, complex eigenvectors of a real one), projected so that the loss does not depend on a gauge (factorules.tools.gauge)."""
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

class Harness:
    """A spec's generated and native functions on one backend, through its adapter: a row's
    timed derivatives, the numbers they compare, and the finite-difference reference."""

    def __init__(self, adapter, checked):
        op = checked.spec.name
        self.adapter = adapter
        self.name = adapter.name
        self.checked = checked
        self.generated = getattr(adapter.module, op)
        self.native = adapter.native_function(op)  # None: it has none
        self.forward = self.native or self.generated

    def setup(self, case: Case, rng):
        """(generated callable, native callable, data) for one row."""
        adapter, opts = self.adapter, dict(case.options)
        xs, dxs = _inputs(self.checked, case, rng)
        A, dA = tuple(map(adapter.to, xs)), tuple(map(adapter.to, dxs))
        outs = _differentiated(self.checked, case, as_tuple(self.forward(*A, **opts)))
        # the loss is Re sum(y * c): its PyTorch cotangent is conj(c), which is JAX's
        # convention for c
        cot = tuple(adapter.to(c) for c in _cotangents(
            self.checked, case, [adapter.back(y) for y in outs], rng, "jax"))
        data = {"A": A, "dA": dA, "cot": cot, "opts": opts}

        def make(f):
            def g(*X):
                return _differentiated(self.checked, case, as_tuple(f(*X, **opts)))
            if case.direction == "vjp":
                return adapter.timed_vjp(g, A, cot)
            return adapter.timed_jvp(g, A, dA)

        return make(self.generated), self.native and make(self.native), data

    def derivative(self, case, result):
        """The numbers to compare: the inputs' cotangents (vjp) or the output tangents (jvp)."""
        if case.direction == "vjp":
            return [self.adapter.back(g) for g in result]
        return [self.adapter.back(t) for t in result[1]]

    def fd(self, case, data):
        """Finite-difference reference in float64 (complex128) for the same numbers."""
        adapter = self.adapter
        wide = np.complex128 if case.dtype.startswith("complex") else np.float64
        A = [adapter.back(x).astype(wide) for x in data["A"]]
        dA = [adapter.back(x).astype(wide) for x in data["dA"]]

        def outs(X):
            return [adapter.back(y) for y in _differentiated(
                self.checked, case, as_tuple(self.forward(*map(adapter.to, X),
                                                          **data["opts"])))]

        # in the gauge of the outputs at the row's own dtype, which the derivative refers to
        here = outs([adapter.back(x) for x in data["A"]])
        plus, minus = (_aligned(self.checked, case, outs(X), here)
                       for X in ([x + FD_STEP * d for x, d in zip(A, dA)],
                                 [x - FD_STEP * d for x, d in zip(A, dA)]))
        tangents = [(p - q) / (2 * FD_STEP) for p, q in zip(plus, minus)]
        if case.direction == "jvp":
            return tangents, None
        # vjp: the directional derivative of the loss Re sum(y * c) along dA
        return adapter.real_dot(tangents, data["cot"]), dA


# -- checking and timing -----------------------------------------------------------------------

def _check(backend, case: Case, data, gen_result, nat_result) -> tuple[float, str]:
    """(relative error of the generated derivative, reference used)."""
    got = backend.derivative(case, gen_result)
    cv = _variant(backend.checked, case)
    if case.direction == "jvp" and cv.variant.gauge is not None:
        # tangents of gauge outputs are compared without their gauge component: another
        # rule (a framework's) may pick another gauge
        outs = [backend.adapter.back(y) for y in gen_result[0]] if isinstance(
            gen_result[0], (tuple, list)) else [backend.adapter.back(gen_result[0])]
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
    if backend.adapter.conjugate_cotangents:  # JAX's: d loss = Re sum(gA dA)
        slope = sum(float(np.real(np.sum(g * d))) for g, d in zip(grads, dA))
    else:  # PyTorch's: d loss = Re <gA, dA> = Re sum(conj(gA) dA)
        slope = sum(float(np.real(np.sum(np.conj(g) * d))) for g, d in zip(grads, dA))
    # relative to |gA| |dA|, the largest the slope can be: a slope that happens to be small
    # (cancellation among its terms) would otherwise measure the difference's rounding
    scale = max(abs(ref), sum(float(np.linalg.norm(g) * np.linalg.norm(d))
                              for g, d in zip(grads, dA)), 1e-300)
    return abs(slope - ref) / scale, "fd"


def _once(backend, f):
    t0 = time.perf_counter()
    out = backend.adapter.sync(f())
    return time.perf_counter() - t0, out


def _inner_count(seconds: float, quick: bool) -> int:
    if quick or seconds <= 0:
        return 1
    return max(1, min(1000, math.ceil(MIN_SAMPLE_S / seconds)))


def _sample(backend, f, inner: int) -> float:
    t0 = time.perf_counter()
    for _ in range(inner):
        backend.adapter.sync(f())
    return (time.perf_counter() - t0) / inner


def _time(backend, gen, nat, repeats: int, quick: bool, nat_warm_s: float | None = None):
    """Interleaved samples (seconds) of gen and of nat (None: no native), gen and nat
    alternating which goes first, so that a drift in the machine's load hits both alike --
    nat's only until they have taken NATIVE_BUDGET_S (at least NATIVE_MIN_SAMPLES); and the
    calls per sample.  nat_warm_s: how long the native call took after its first (None: it
    is called once more here to find out)."""
    warm = [_once(backend, gen)[0]]
    if nat is not None:
        warm.append(_once(backend, nat)[0] if nat_warm_s is None else nat_warm_s)
    inner = _inner_count(min(warm), quick)
    times = {"gen": [], "nat": []}
    for i in range(repeats):
        pair = [("gen", gen)]
        if nat is not None and (len(times["nat"]) < NATIVE_MIN_SAMPLES
                                or sum(times["nat"]) * inner < NATIVE_BUDGET_S):
            pair.append(("nat", nat))
        for key, f in (pair if i % 2 == 0 else pair[::-1]):
            times[key].append(_sample(backend, f, inner))
    return times["gen"], times["nat"] or None, inner


def _ratio(gen_s: list, nat_s: list | None) -> float | None:
    """generated / native of the fastest samples, where the samples can carry it: MIN_SAMPLES
    of each side, or fewer native ones (NATIVE_BUDGET_S) far slower than every generated one."""
    if nat_s is None or len(gen_s) < MIN_SAMPLES:
        return None
    if len(nat_s) < MIN_SAMPLES and max(gen_s) > SEPARATED * min(nat_s):
        return None
    return min(gen_s) / min(nat_s)


def _spread(samples) -> list | None:
    """[min, median, max] of samples in seconds, as milliseconds."""
    if not samples:
        return None
    return [min(samples) * 1e3, statistics.median(samples) * 1e3, max(samples) * 1e3]


def run_case(spec: str, backend, case: Case, repeats: int, quick: bool, seed: int) -> Row:
    rng = np.random.default_rng(seed)
    gen, nat, data = backend.setup(case, rng)
    _, gen_result = _once(backend, gen)         # compiles (jax) and warms up
    refusal = ""
    nat_warm_s = None
    if nat is None:
        nat_result, native = None, "none"
    else:
        try:
            _once(backend, nat)                 # warms up
            nat_warm_s, nat_result = _once(backend, nat)
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
    gen_s, nat_s, inner = _time(backend, gen, nat, repeats, quick, nat_warm_s)
    # the fastest sample of each: the least disturbed by the machine's other work
    ratio = _ratio(gen_s, nat_s)
    return Row(spec=spec, backend=case.backend, options=case.label, shape=list(case.shape),
               dtype=case.dtype, direction=case.direction, generated_ms=min(gen_s) * 1e3,
               native_ms=None if nat_s is None else min(nat_s) * 1e3,
               ratio=ratio, native=native, rel_err=err,
               reference=reference, ok=ok, repeats=repeats, inner=inner,
               note=refusal, generated_spread=_spread(gen_s), native_spread=_spread(nat_s),
               samples=len(gen_s), native_samples=len(nat_s or []))
