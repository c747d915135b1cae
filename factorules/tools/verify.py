"""`cli.py verify`: the cross-backend verification table (the main job).

For every spec, variant and shape class (tall, square, wide; real and complex) it measures,
per backend, the worst relative error of:

  fd        the JVP against central finite differences of the backend's own forward (float64)
  adjoint   the dot-product test <gA, dA> = sum <gY, dY> between the VJP and the JVP
  numpy     the backend's outputs, tangents and cotangents against the NumPy reference
  autodiff  the framework's AD through the generated function (torch.autograd / torch.func,
            jax.vjp / jax.jvp) against the backend's own explicit rules
  native    against the framework's native autodiff of torch.linalg / jax.numpy.linalg,
            where one exists ("refuses" where the native rule raises)

A cell passes when its error is below the tolerance of its check and dtype.

Progress goes to stderr (factorules.tools.progress): a line per spec, with its count of checks,
failures and seconds; ``-v`` prints every check (cell) before the table, with its worst error,
tolerance and the shape and dtype where that worst error was measured.
"""
from __future__ import annotations

import json
import sys
import time
import zlib
from dataclasses import dataclass, field

import numpy as np

from . import gauge, natives
from .adapters import adapter_class
from .progress import Progress
from ..audit import sample
from ..compiler.backends import BACKENDS
from ..compiler.paths import ROOT
from ..compiler.render import load_checked

SHAPES = {"tall": (6, 4), "square": (4, 4), "wide": (3, 5), "n=4": (4,)}
DTYPES = {"real": np.float64, "complex": np.complex128}
BATCH = (2,)
STEP = 1e-6
TOLERANCE = {"fd": 1e-6, "adjoint": 1e-12, "numpy": 1e-12, "autodiff": 1e-12, "native": 1e-10}
CHECKS = tuple(TOLERANCE)


def well_conditioned(rng, shape, dtype, batch=()):
    """A random matrix whose leading min(m, n) columns have singular values in [1, 2].

    Rules of factorizations divide by those singular values, so finite differences and
    comparisons measure the rule, not the conditioning of a random draw.
    """
    m, n = shape
    k = min(m, n)
    complex_ = np.issubdtype(dtype, np.complexfloating)

    def gauss(*s):
        x = rng.standard_normal(batch + s)
        return x + 1j * rng.standard_normal(batch + s) if complex_ else x

    u, _ = np.linalg.qr(gauss(m, k))
    v, _ = np.linalg.qr(gauss(k, k))
    s = rng.uniform(1.0, 2.0, batch + (k,))
    lead = (u * s[..., None, :]) @ np.conj(np.swapaxes(v, -1, -2))
    rest = gauss(m, n - k) if n > k else np.zeros(batch + (m, 0))
    return np.concatenate([lead, rest], axis=-1).astype(dtype)


def output_dtype(tensor, dtype) -> np.dtype:
    """The dtype of an output (a spec Tensor) for an input of ``dtype``: the input's; its
    real counterpart for a real or positive vector (eigenvalues of a complex Hermitian A);
    its complex counterpart for an output complex for real input too ('dtype: complex');
    int32 for pivots."""
    dtype = np.dtype(dtype)
    if tensor.is_index:  # LAPACK pivots
        return np.dtype(np.int32)
    if tensor.complex_valued:
        return np.result_type(dtype, np.complex64)
    if tensor.is_vector and tensor.structure in ("real", "positive"):
        return np.empty(0, dtype).real.dtype
    return dtype


def random_like(rng, x):
    out = rng.standard_normal(x.shape)
    if np.iscomplexobj(x):
        out = out + 1j * rng.standard_normal(x.shape)
    return out.astype(x.dtype)


def inner(a, b) -> float:
    """Re <a, b> = Re sum conj(a) b."""
    return float(np.sum(np.conj(np.asarray(a)) * np.asarray(b)).real)


def rel_err(x, ref) -> float:
    x, ref = np.asarray(x), np.asarray(ref)
    if ref.size == 0:
        return 0.0
    return float(np.max(np.abs(x - ref)) / max(1.0, float(np.max(np.abs(ref)))))


@dataclass
class Cell:
    errors: list = field(default_factory=list)
    notes: set = field(default_factory=set)
    raised: list = field(default_factory=list)  # why a case never reached this check
    where: list = field(default_factory=list)  # the shape and dtype of each of errors

    def add(self, value):
        self.errors.append(value)

    @property
    def worst(self):
        return max(self.errors) if self.errors else None

    @property
    def worst_at(self):
        """The shape and dtype of the worst error ('tall 6x4 complex128'), None without
        one."""
        if not self.errors:
            return None
        return self.where[self.errors.index(self.worst)]

    def status(self, check: str) -> str:
        worst = self.worst
        return ("FAIL" if self.raised else
                "refuses" if self.notes and worst is None else
                "n/a" if worst is None else
                "pass" if worst <= TOLERANCE[check] else "FAIL")


# -- the checks -----------------------------------------------------------------------------
def check_case(backend, reference, op, opts, xs, rng, table, key, shape_name="",
               structures=("general",), cv=None):
    """One input (a tuple of arrays: an operation's inputs) through one backend;
    ``structures`` are the inputs' (tangents and native gradients are projected onto their
    tangent spaces, e.g. Hermitian matrices); ``cv`` the variant: its gauge outputs
    (eigenvectors) are aligned with the reference's (factorules.tools.gauge) before a comparison,
    and random cotangents are made invariant."""
    dxs = tuple(sample.project(random_like(rng, x), s) for x, s in zip(xs, structures))

    def one(v):  # an operation with one input takes the array itself
        return v[0] if len(v) == 1 else tuple(v)

    def several(g):
        return (g,) if len(xs) == 1 else tuple(g)

    outs, tans = backend.jvp(op, one(xs), one(dxs), opts)
    cots = [None if t is None else random_like(rng, t) for t in tans]
    if cv is not None:
        cots = gauge.invariant_cotangent(outs, cots, cv)
    grads = several(backend.vjp(op, one(xs), cots, opts))

    plus = backend.forward(op, one([x + STEP * d for x, d in zip(xs, dxs)]), opts)
    minus = backend.forward(op, one([x - STEP * d for x, d in zip(xs, dxs)]), opts)
    diffs = [(p - q) / (2 * STEP) for p, q in zip(plus, minus)]
    fd_tans = tans
    if cv is not None:  # the derivative of the outputs in the gauge of those at x, and
        # along the gauge neither (the JVP's gauge need not be the alignment's: eigh_generalized
        # fixes im(diagonal(V^H B dV)), the alignment im(diagonal(V^H dV)))
        plus, minus = gauge.align(plus, outs, cv), gauge.align(minus, outs, cv)
        diffs = gauge.project_tangent(outs, [(p - q) / (2 * STEP) for p, q in zip(plus, minus)],
                                      cv)
        fd_tans = gauge.project_tangent(outs, list(tans), cv)
    fd = max((rel_err(t, d) for t, d in zip(fd_tans, diffs) if t is not None), default=0.0)
    table[key + ("fd",)].add(fd)

    lhs = sum(inner(g, d) for g, d in zip(grads, dxs))
    rhs = sum(inner(g, t) for g, t in zip(cots, tans) if t is not None)
    table[key + ("adjoint",)].add(abs(lhs - rhs) / max(1.0, abs(lhs)))

    ref_outs, ref_tans = reference.jvp(op, one(xs), one(dxs), opts)
    here = outs, tans, cots
    if cv is not None:  # this backend's outputs, tangents, cotangents in the reference gauge
        factors = gauge.phases(outs, ref_outs, cv)
        here = tuple(gauge.rotate(v, factors, cv) for v in here)
    ref_grads = several(reference.vjp(op, one(xs), here[2], opts))
    err = max([rel_err(o, r) for o, r in zip(here[0], ref_outs)]
              + [rel_err(t, r) for t, r in zip(here[1], ref_tans) if t is not None]
              + [rel_err(g, r) for g, r in zip(grads, ref_grads)])
    table[key + ("numpy",)].add(err)

    for check, fn in (("autodiff", backend.autodiff), ("native", backend.native)):
        if check == "native" and natives.native_wrong(op, backend.name, opts, xs[0].shape):
            # a native rule known to be wrong here (factorules.tools.natives) is no reference
            table[key + (check,)].notes.add(f"{shape_name} (wrong)")
            continue
        got = fn(op, one(xs), one(dxs), cots, opts)
        if got is None:
            continue
        if isinstance(got, str):
            table[key + (check,)].notes.add(shape_name)
            continue
        g_tans, g_grads = got
        g_grads = [sample.project(g, s) for g, s in zip(several(g_grads), structures)]
        if cv is not None:  # a native rule may pick another derivative along the gauge
            g_tans = gauge.project_tangent(outs, list(g_tans), cv)
            own = gauge.project_tangent(outs, list(tans), cv)
        else:
            own = tans
        # output by output, where ours has a tangent (a framework may give zeros for P)
        err = max([rel_err(a, b) for a, b in zip(g_tans, own)
                   if b is not None and b.size] + [rel_err(g, r) for g, r in zip(g_grads, grads)])
        table[key + (check,)].add(err)


def shapes(checked, cv) -> list[tuple[str, tuple]]:
    """(name, values of the primitive dimensions) of a variant: tall/square/wide for an
    m x n input, square for n x n, the spec's own 'shapes' (those without a zero that the
    variant takes) for several inputs; of either, those where the variant's 'requires' hold."""
    if checked.spec.shapes:
        prims = [d.name for d in checked.dims if d.source is not None]
        out = []
        for label, values in checked.spec.shapes:
            values = dict(values)
            if 0 in values.values() or \
                    not sample.allowed(cv, sample.primitive_dims(checked, values)):
                continue
            out.append((label, tuple(values[p] for p in prims)))
        return out
    prims = [d for d in checked.dims if d.source is not None]
    names = ["n=4"] if len(prims) == 1 else ["tall", "square", "wide"]
    # the classes the variant takes: its 'requires' hold there (a tall-only op has no wide)
    return [(n, SHAPES[n]) for n in names if sample.takes(checked, cv, SHAPES[n])]


def shape_text(checked, name: str, shape: tuple, xs) -> str:
    """How the footer and -v name a shape a run used: the name and the input's size
    ('tall 6x4', 'n=4 4x4'), or, for a spec's own 'shapes', the name and its dimensions as
    the spec gives them ('tall m=6,n=4,k=3')."""
    if checked.spec.shapes:
        values = dict(next(v for label, v in checked.spec.shapes if label == name))
        return f"{name} " + ",".join(f"{k}={v}" for k, v in values.items())
    return f"{name} " + "x".join(map(str, xs[0].shape[len(BATCH):]))


def variant_options(checked, variant) -> dict:
    return dict(variant.when)


def run(names=(), progress=True):
    """Measure every cell; returns (rows, notes about backends that could not run).

    ``progress``: report on stderr (factorules.tools.progress) each case as it starts (on a
    terminal) and each spec, with its counts of checks and failures, when it is done."""
    paths = sorted((ROOT / "spec").glob("*.yaml"))
    if names:
        unknown = set(names) - {p.stem for p in paths}
        if unknown:
            raise SystemExit(f"unknown spec(s): {', '.join(sorted(unknown))}")
        paths = [p for p in paths if p.stem in names]
    specs = load_checked(paths)
    backends, skipped = [], {}
    for entry in BACKENDS:
        adapter = adapter_class(entry)
        reason = adapter.unavailable()
        if reason:
            skipped[entry.name] = reason
        else:
            backends.append(adapter())
    reference = backends[0]  # the registry's first backend, NumPy

    table = {}
    used = {}  # (spec, variant): the shapes measured, as shape_text names them
    progress = Progress("verify", len(specs)) if progress else None
    for checked in specs:
        start = time.perf_counter()
        jobs = [(v, shape, dt) for v in checked.variants for shape in shapes(checked, v)
                for dt in DTYPES]
        for cv, (shape_name, shape), dtype_name in jobs:
            opts = variant_options(checked, cv.variant)
            if progress is not None:
                progress.running(f"{checked.spec.name} {cv.variant.label} {shape_name} "
                                 f"{dtype_name}")
            measured = used.setdefault((checked.spec.name, cv.variant.label), [])
            for b in backends:
                rng = np.random.default_rng(zlib.crc32(f"{shape_name}/{dtype_name}".encode()))
                drawn = sample.inputs(checked, cv, shape, DTYPES[dtype_name], BATCH, rng)
                xs = tuple(drawn[t.name] for t in checked.spec.inputs)
                text = shape_text(checked, shape_name, shape, xs)
                if text not in measured:
                    measured.append(text)
                key = (checked.spec.name, cv.variant.label, b.name)
                for check in CHECKS:
                    table.setdefault(key + (check,), Cell())
                before = {c: (len(table[key + (c,)].errors), len(table[key + (c,)].notes))
                          for c in CHECKS}
                try:
                    check_case(b, reference, checked.spec.name, opts, xs, rng, table, key,
                               shape_name, tuple(t.structure for t in checked.spec.inputs), cv)
                except Exception as err:  # noqa: BLE001 (a generated function that raises fails)
                    # the checks this case did not reach fail, with the exception as the reason
                    why = f"{shape_name} {dtype_name}: {type(err).__name__}: {err}".splitlines()[0]
                    for c in CHECKS:
                        cell = table[key + (c,)]
                        if (len(cell.errors), len(cell.notes)) == before[c]:
                            cell.raised.append(why)
                where = f"{text} {np.dtype(DTYPES[dtype_name]).name}"
                for c in CHECKS:  # where each new error was measured
                    cell = table[key + (c,)]
                    cell.where += [where] * (len(cell.errors) - len(cell.where))
        if progress is not None:
            mine = [(k[-1], cell) for k, cell in table.items() if k[0] == checked.spec.name]
            failed = sum(cell.status(check) == "FAIL" for check, cell in mine)
            progress.finished(f"{checked.spec.name}: {len(mine)} checks, {failed} failed "
                              f"({time.perf_counter() - start:.1f} s)")
    if progress is not None:
        progress.done()

    rows = []
    for (spec, variant, backend, check), cell in table.items():
        rows.append({
            "spec": spec, "variant": variant, "backend": backend, "check": check,
            "max_rel_err": cell.worst, "tolerance": TOLERANCE[check],
            "worst_at": cell.worst_at, "shapes": used[(spec, variant)],
            "native_refuses": sorted(cell.notes), "raised": cell.raised,
            "status": cell.status(check),
        })
    return rows, skipped


def shapes_line(rows) -> str:
    """The shapes the rows were measured on, each spec's in the order its variants measured
    them (one a variant adds goes before the next of that variant's already listed); specs
    that used the same shapes share an entry: 'shapes: cholesky, eigh: n=4 4x4; qr: tall
    6x4, ...'."""
    per_spec: dict[str, list] = {}
    for r in rows:
        mine = per_spec.setdefault(r["spec"], [])
        for j, s in enumerate(r["shapes"]):
            if s not in mine:
                after = next((t for t in r["shapes"][j + 1:] if t in mine), None)
                mine.insert(len(mine) if after is None else mine.index(after), s)
    groups: dict[tuple, list] = {}
    for spec, used in per_spec.items():
        groups.setdefault(tuple(used), []).append(spec)
    return "shapes: " + "; ".join(f"{', '.join(specs)}: {', '.join(used)}"
                                  for used, specs in groups.items())


def check_line(r) -> str:
    """One check (cell) of the table, for -v: status, where, worst error against the
    tolerance, and the shape and dtype of the worst error."""
    where = f"{r['spec']} {r['variant']} {r['backend']} {r['check']}"
    if r["raised"]:
        what = f"raised in {len(r['raised'])} case(s), first {r['raised'][0]}"
    elif r["status"] == "refuses":
        what = f"native rule refuses {', '.join(r['native_refuses'])}"
    elif r["max_rel_err"] is None:
        what = "no such check"
    else:
        what = (f"{r['max_rel_err']:.2e} {'<=' if r['status'] == 'pass' else '>'} "
                f"{r['tolerance']:g} (worst at {r['worst_at']})")
        if r["native_refuses"]:
            what += f"; native refuses {', '.join(r['native_refuses'])}"
    return f"{r['status'].upper():<7} {where}: {what}"


def format_table(rows, skipped) -> str:
    backends = [b.name for b in BACKENDS if b.name not in skipped]
    by_key = {(r["spec"], r["variant"], r["check"], r["backend"]): r for r in rows}
    lines = []
    w = max([4] + [len(r["spec"]) for r in rows])
    v = max([14] + [len(r["variant"]) for r in rows])
    header = (f"{'spec':<{w}} {'variant':<{v}} {'check':<9} "
              + " ".join(f"{b:>10}" for b in backends))
    lines += [header, "-" * len(header)]
    keys = sorted({(r["spec"], r["variant"], r["check"]) for r in rows},
                  key=lambda k: (k[0], k[1], CHECKS.index(k[2])))
    for spec, variant, check in keys:
        cells = []
        for b in backends:
            r = by_key.get((spec, variant, check, b))
            if r is None or r["status"] == "n/a":
                cells.append("-")
            elif r["status"] == "refuses":
                cells.append("refuses")
            elif r["max_rel_err"] is None:
                cells.append("raised")
            else:
                mark = "" if r["status"] == "pass" else " FAIL"
                mark += "*" if r["native_refuses"] else ""
                cells.append(f"{r['max_rel_err']:.1e}{mark}")
        lines.append(f"{spec:<{w}} {variant:<{v}} {check:<9} "
                     + " ".join(f"{c:>10}" for c in cells))
    lines.append("")
    lines.append(f"max relative error over the shapes below, batch {BATCH}, float64 and "
                 "complex128; tolerances: "
                 + ", ".join(f"{c} {t:g}" for c, t in TOLERANCE.items()))
    lines.append(shapes_line(rows))
    lines.append("'-': no such check (numpy has no autodiff; the framework has no function of "
                 "that name, as for LQ); 'refuses': the native rule raises; 'raised': the "
                 "generated function raised before the check (a failure)")
    refusals = sorted({(r["variant"], r["backend"], s) for r in rows if r["status"] != "refuses"
                       for s in r["native_refuses"]})
    if refusals:
        lines.append("*: the native rule refuses some shapes (or is wrong there: "
                     "factorules.tools.natives), measured on the others: " + "; ".join(
            f"{b} {v} {s}" for v, b, s in refusals))
    for b, why in skipped.items():
        note = adapter_class(b).not_run_note
        lines.append(f"{b}: not run here ({why})" + (f"; {note}" if note else ""))
    return "\n".join(lines)


def main(args) -> int:
    from ..compiler import pipeline

    start = time.perf_counter()
    if not args.no_generate:
        files = pipeline.render()
        pipeline.write(files)
        print(f"generated {len(files)} files from spec/", file=sys.stderr)
    rows, skipped = run(args.names, progress=True)
    failed = [r for r in rows if r["status"] == "FAIL"]
    if args.json:
        print(json.dumps({"rows": rows, "skipped": skipped}, indent=2))
    else:
        if args.verbose:
            for r in sorted(rows, key=lambda r: (r["spec"], r["variant"],
                                                 CHECKS.index(r["check"]))):
                print(check_line(r))
            print()
        print(format_table(rows, skipped))
        print(f"{len(rows) - len(failed)} checks passed, {len(failed)} failed "
              f"in {time.perf_counter() - start:.0f} s")
    for r in failed:
        what = (f"{r['max_rel_err']:.2e} > {r['tolerance']:g} (at {r['worst_at']})"
                if not r["raised"] else
                f"raised in {len(r['raised'])} case(s), first {r['raised'][0]}")
        print(f"FAIL {r['spec']} {r['variant']} {r['backend']} {r['check']}: {what}",
              file=sys.stderr)
    return 1 if failed else 0
