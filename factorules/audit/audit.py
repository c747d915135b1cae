"""The audit: every rule of every spec checked against its mathematics in high precision.

For each variant, each shape class (tall, square, wide) and each field (real, complex) the
audit draws one random factorization and checks, in mpmath at ``DPS`` digits:

* ``sample``        the drawn primal satisfies every defining equation and structure;
* ``linearization`` the spec's JVP satisfies the symbolic differential of every defining
                    equation and of the outputs' structure (one residual per equation);
* ``transposition`` the VJP derived by transposing the JVP (factorules.compiler.derive) equals the
                    spec's VJP on random cotangents;
* ``adjointness``   <gY, JVP(dX)> = <VJP(gY), dX> (the dot-product test);
* ``fd``            the JVP equals central finite differences of the forward map, which is
                    solved from the defining equations themselves (Newton) -- independent of
                    every rule and of every backend.

Primal samples are drawn outputs-first: each output from its declared structure (orthonormal
by Gram-Schmidt, triangular with a diagonal well away from zero, ...), then the defining
equations of the form ``OUTPUT[block] = ...`` and ``INPUT = ...`` are applied in that order.
Nothing here knows a particular factorization.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import mpmath
import numpy as np
from sympy import MatAdd, MatrixSymbol

from ..compiler import derive
from . import numeric as num
from . import sample
from ..compiler.check_dims import matrix_symbol, structure_offset
from ..compiler.checked import CheckedCase, CheckedSpec, CheckedVariant

DPS = 50
FD_STEP = "1e-15"
FD_EXTRA_DIGITS = 15
TOLERANCE = {  # relative residuals; a wrong rule gives O(1e-1)
    "sample": 1e-40,
    "linearization": 1e-40,
    "transposition": 1e-40,
    "adjointness": 1e-40,
    "fd": 1e-20,          # central differences at step 1e-15: truncation ~1e-30
    "specialisation": 1e-40,
}
CHECKS = ("sample", "linearization", "transposition", "adjointness", "specialisation", "fd")
FIELDS = ("real", "complex")


class AuditError(Exception):
    """A check that could not be carried out (reported as a failure)."""


@dataclass(frozen=True)
class Result:
    spec: str
    variant: str
    case: str
    shape: str
    field: str
    check: str
    equation: str
    residual: float | None  # None: not applicable (see note)
    passed: bool
    note: str = ""

    @property
    def where(self) -> str:
        eq = f" '{self.equation}'" if self.equation else ""
        return (f"{self.spec} {self.variant} when {self.case} ({self.shape}, {self.field}): "
                f"{self.check}{eq}")


# -- shapes ---------------------------------------------------------------------------------
def shape_classes(checked: CheckedSpec) -> list[tuple[str, dict[str, int]]]:
    """Values of the primitive dimensions: tall/square/wide for two, square for one."""
    prims = [d.name for d in checked.dims if d.source is not None]
    if checked.spec.shapes:  # the spec's own (several inputs): those with no zero size
        return [(label, dict(values)) for label, values in checked.spec.shapes
                if all(v > 0 for _, v in values)]
    if len(prims) == 1:
        return [("square 4x4", {prims[0]: 4})]
    first, rest = prims[0], prims[1:]
    return [("tall 5x3", {first: 5, **{r: 3 for r in rest}}),
            ("square 4x4", {first: 4, **{r: 4 for r in rest}}),
            ("wide 3x5", {first: 3, **{r: 5 for r in rest}})]


@dataclass
class Setup:
    """One drawn configuration: what every check of one case at one shape and field uses."""

    checked: CheckedSpec
    variant: CheckedVariant
    case: CheckedCase
    shape: str
    field: str
    dims: dict
    mp: num.Evaluator
    fl: num.Evaluator
    primal: dict
    tangents: dict           # d<input> -> mp array
    cotangents: dict         # g<output> -> mp array (differentiable outputs)
    residuals: list          # derive.Residual: defining equations and structure
    linearized: list         # their differentials (all tangents)
    fd: dict = field(default_factory=dict)   # d<output> -> mp array, or {} on failure
    fd_error: str = ""
    sample_results: list = field(default_factory=list)


def _residuals(cv: CheckedVariant, case: CheckedCase) -> list[derive.Residual]:
    out = [derive.Residual(eq.text, eq.lhs - eq.rhs) for eq in case.defining]
    cdims = dict(case.dims)
    for t in cv.variant.outputs:
        if t.is_index:
            continue
        sym = matrix_symbol(t, cdims)
        offset = structure_offset(t, cdims)
        for r in derive.structure_equations(sym, t.structure, t.diagonal, offset):
            if not any(r.expr == known.expr for known in out):  # already a defining equation
                out.append(r)
    return out


def _relative(value, scale) -> float:
    v = float(value)
    s = float(scale)
    return v / s if s > 0 else v


def _terms(e):
    return e.args if isinstance(e, MatAdd) else (e,)


def _residual_norm(ev: num.Evaluator, e, env) -> float:
    """||e|| relative to the size of its additive terms."""
    value = num.norm(ev(e, env))
    scale = max([num.norm(ev(t, env)) for t in _terms(e)] + [1e-300])
    return _relative(value, max(scale, 1.0))


def prepare(checked: CheckedSpec, cv: CheckedVariant, case: CheckedCase, shape: str,
            prims: dict[str, int], field_name: str, finite_differences: bool = True) -> Setup:
    spec = checked.spec
    seed = zlib.crc32(f"{spec.name}|{cv.variant.label}|{shape}|{field_name}".encode())
    rng = np.random.default_rng(seed)
    complex_field = field_name == "complex"
    dims = sample.primitive_dims(checked, prims)
    mp_field, fl_field = num.Field("mp", DPS), num.Field("float")
    mp_ev, fl_ev = num.Evaluator(dims, mp_field), num.Evaluator(dims, fl_field)
    cdims = dict(case.dims)

    def size(t):
        return mp_ev.shape(matrix_symbol(t, cdims))

    residuals = _residuals(cv, case)
    # permutations and pivots are locally constant: they have no tangent
    tangent_map = {t.name: matrix_symbol(t, cdims, "d" + t.name)
                   for t in (*spec.inputs, *cv.variant.outputs) if not t.constant}
    linearized = [derive.linearize_residual(r, tangent_map) for r in residuals]
    setup = Setup(checked, cv, case, shape, field_name, dims, mp_ev, fl_ev, {}, {}, {},
                  residuals, linearized)
    with mpmath.workdps(DPS):
        try:
            primal = sample.factorization(checked, cv, case, mp_ev, complex_field, rng)
        except sample.SampleError as err:
            raise AuditError(str(err)) from None
        setup.primal = primal
        for r in residuals:
            res = _residual_norm(mp_ev, r.expr, primal)
            setup.sample_results.append((r.text, res))
        for t in spec.inputs:
            setup.tangents["d" + t.name] = sample.tangent(rng, *size(t), t.structure,
                                                          complex_field, mp_field)
        for t in cv.differentiable_outputs:
            setup.cotangents["g" + t.name] = mp_field.array(
                sample.gaussian(rng, size(t), complex_field))
        try:
            setup.fd = _finite_differences(setup, complex_field) if finite_differences else {}
        except (AuditError, num.EvalError) as err:
            setup.fd_error = str(err)
    return setup


# -- the forward map, solved from the defining equations --------------------------------------
def _to_float(x):
    return np.asarray(x.tolist(), dtype=np.complex128).reshape(x.shape)


def _flatten(values, complex_field):
    parts = []
    for v in values:
        flat = v.reshape(v.shape[:-2] + (-1,))
        parts.append(num.real(flat))
        if complex_field:
            parts.append(num.imag(flat))
    return np.concatenate(parts, axis=-1) if parts else np.zeros(0)


def _finite_differences(s: Setup, complex_field: bool) -> dict:
    """Central differences (X(A + h dA) - X(A - h dA)) / 2h of every output."""
    spec, cv = s.checked.spec, s.variant
    outputs = [t for t in cv.variant.outputs if not t.constant]  # unknowns; P stays fixed
    sizes = {t.name: s.primal[t.name].shape for t in outputs}
    # Jacobian of the residuals with respect to the outputs (real parameters), in float64:
    # a chord iteration only needs an approximate inverse; the residual itself is mp.
    directions = []
    for t in outputs:
        n = int(np.prod(sizes[t.name]))
        for unit in ((1.0, 1j) if complex_field else (1.0,)):
            for i in range(n):
                directions.append((t.name, i, unit))
    count = len(directions)
    env = {k: _to_float(v) for k, v in s.primal.items()}
    for t in outputs:
        batch = np.zeros((count,) + sizes[t.name], dtype=np.complex128)
        for p, (name, i, unit) in enumerate(directions):
            if name == t.name:
                batch[(p,) + np.unravel_index(i, sizes[t.name])] = unit
        env["d" + t.name] = batch
    for t in spec.inputs:
        env["d" + t.name] = np.zeros((1,) + s.primal[t.name].shape, dtype=np.complex128)
    gauge = cv.gauge_tangents
    conditions = [r.expr for r in s.linearized] + list(gauge)
    columns = [np.broadcast_to(s.fl(e, env), (count,) + s.fl(e, env).shape[-2:])
               for e in conditions]
    jac = np.real(_flatten(columns, complex_field)).T  # rows: residual entries
    rank = np.linalg.matrix_rank(jac)
    if rank < count:
        raise AuditError(f"the defining equations do not determine the outputs (rank "
                         f"{rank} < {count} unknowns): a gauge freedom is left")
    pinv = np.linalg.pinv(jac)
    h = mpmath.mpf(FD_STEP)
    # Newton runs FD_EXTRA_DIGITS beyond DPS and converges that far, so that the differences
    # (and the pages that print them) do not depend on the float64 Jacobian's rounding.
    converged = mpmath.mpf(10) ** (-(DPS + FD_EXTRA_DIGITS - 6))

    def solve(sign):
        point = dict(s.primal)
        for t in spec.inputs:
            point[t.name] = s.primal[t.name] + sign * h * s.tangents["d" + t.name]
        for _ in range(12):
            values = [s.mp(r.expr, point) for r in s.residuals]
            if gauge:
                # the gauge conditions the JVP meets, applied to the step from the sample:
                # they pick the point of the gauge orbit the derivative refers to
                steps = {"d" + t.name: point[t.name] - s.primal[t.name] for t in outputs}
                values += [s.mp(e, {**point, **steps}) for e in gauge]
            res = _flatten(values, complex_field)
            worst = max((abs(v) for v in res), default=0)
            if worst < converged:
                return point
            step = pinv @ np.array([float(v) for v in res])
            for p, (name, i, unit) in enumerate(directions):
                idx = np.unravel_index(i, sizes[name])
                if step[p] != 0:
                    point[name] = point[name].copy() if point[name] is s.primal[name] \
                        else point[name]
                    delta = mpmath.mpf(float(step[p]))
                    point[name][idx] = point[name][idx] - (delta if unit == 1.0
                                                           else mpmath.mpc(0, delta))
        raise AuditError(f"Newton on the defining equations did not converge (residual "
                         f"{float(worst):.1e})")

    with mpmath.workdps(DPS + FD_EXTRA_DIGITS):
        plus, minus = solve(1), solve(-1)
        return {"d" + t.name: (plus[t.name] - minus[t.name]) / (2 * h)
                for t in cv.differentiable_outputs}


# -- running rules --------------------------------------------------------------------------
def run_statements(ev: num.Evaluator, statements, env: dict) -> dict:
    env = dict(env)
    for st in statements:
        env[st.name] = ev(st.expr, env)
    return env


def derived_vjp(checked: CheckedSpec, cv: CheckedVariant, case: CheckedCase):
    spec = checked.spec
    cdims = dict(case.dims)
    tangent_inputs = {"d" + t.name: matrix_symbol(t, cdims, "d" + t.name)
                      for t in spec.inputs}
    cotangents = {"d" + t.name: matrix_symbol(t, cdims, "g" + t.name)
                  for t in cv.differentiable_outputs}
    return derive.transpose_program([(s.name, s.expr) for s in case.jvp.statements],
                                    tangent_inputs, cotangents,
                                    {"d" + t.name: "g" + t.name for t in spec.inputs})


def run_checks(s: Setup, case: CheckedCase | None = None) -> list[Result]:
    """Every check of one drawn configuration, on ``case``'s rules (default: the setup's)."""
    case = case or s.case
    spec, cv = s.checked.spec, s.variant
    base = dict(spec=spec.name, variant=cv.variant.label, case=s.case.condition.text,
                shape=s.shape, field=s.field)
    out = []

    def add(check, equation, residual, note=""):
        passed = residual is not None and residual <= TOLERANCE[check]
        out.append(Result(**base, check=check, equation=equation,
                          residual=None if residual is None else float(residual),
                          passed=passed if residual is not None else not note.startswith("!"),
                          note=note.lstrip("!")))

    for text, res in s.sample_results:
        add("sample", text, res)
    with mpmath.workdps(DPS):
        env = dict(s.primal, **s.tangents)
        try:
            jvp_env = run_statements(s.mp, case.jvp.statements, env)
        except num.EvalError as err:
            add("linearization", "", None, f"!the JVP cannot be evaluated: {err}")
            return out
        outs = {"d" + t.name for t in cv.differentiable_outputs}
        jvp_values = {k: jvp_env[k] for k in outs}
        # linearization: every differential residual, with the JVP's tangents
        for r, lin in zip(s.residuals, s.linearized):
            needed = {x.name for x in lin.expr.atoms(MatrixSymbol)} - set(jvp_env)
            if needed:
                add("linearization", r.text, None,
                    f"not checked: the JVP does not compute {', '.join(sorted(needed))}")
                continue
            add("linearization", r.text, _residual_norm(s.mp, lin.expr, jvp_env))
        for condition, source in zip(cv.gauge_tangents, cv.variant.gauge.tangent
                                     if cv.variant.gauge else ()):
            text = f"gauge: {source.text.strip()} = 0"
            needed = {x.name for x in condition.atoms(MatrixSymbol)} - set(jvp_env)
            if needed:
                add("linearization", text, None,
                    f"not checked: the JVP does not compute {', '.join(sorted(needed))}")
            else:
                add("linearization", text, _residual_norm(s.mp, condition, jvp_env))
        # fd
        if s.fd:
            for name, ref in s.fd.items():
                err = num.norm(jvp_values[name] - ref)
                add("fd", name, _relative(err, max(num.norm(ref), mpmath.mpf(1))))
        else:
            add("fd", "", None, f"!{s.fd_error}")
        # adjointness and transposition
        venv = dict(s.primal, **s.cotangents)
        try:
            vjp_env = run_statements(s.mp, case.vjp.statements, venv)
            grads = {"g" + t.name: vjp_env["g" + t.name] for t in spec.inputs}
        except num.EvalError as err:
            add("adjointness", "", None, f"!the VJP cannot be evaluated: {err}")
            return out
        lhs = mpmath.fsum(num.inner(s.cotangents["g" + n[1:]], v) for n, v in jvp_values.items())
        rhs = mpmath.fsum(num.inner(grads["g" + t.name], s.tangents["d" + t.name])
                          for t in spec.inputs)
        scale = max(abs(lhs), abs(rhs), mpmath.mpf(1e-30))
        add("adjointness", "", abs(lhs - rhs) / scale)
        if case.vjp.derived:
            add("transposition", "", None, "the spec gives no VJP: the derived one is used")
        else:
            try:
                steps = derived_vjp(s.checked, cv, case)
                denv = run_statements(s.mp, steps, venv)
                for t in spec.inputs:
                    g = "g" + t.name
                    err = num.norm(denv[g] - grads[g])
                    add("transposition", g, _relative(err, max(num.norm(grads[g]),
                                                               mpmath.mpf(1e-30))))
            except (derive.DeriveError, num.EvalError) as err:
                add("transposition", "", None, f"!the JVP cannot be transposed: {err}")
        check_partial_vjps(s, case, venv, add)
    return out


def check_partial_vjps(s: Setup, case: CheckedCase, venv: dict, add) -> None:
    """specialisation: each VJP given some cotangents (the others None at run time) is the
    VJP with the others zero, and reads none of them."""
    spec = s.checked.spec
    if not case.partial_vjps:
        add("specialisation", "", None, "no cotangent's terms are worth leaving out")
    for partial in case.partial_vjps:
        without = "without " + ", ".join(partial.absent)
        given = {k: v for k, v in venv.items() if k not in partial.absent}
        zeroed = dict(venv, **{g: s.cotangents[g] * 0 for g in partial.absent})
        try:
            full = run_statements(s.mp, case.vjp.statements, zeroed)
            part = run_statements(s.mp, partial.vjp.statements, given)
        except num.EvalError as err:
            add("specialisation", without, None, f"!the VJP {without} cannot be evaluated "
                                                 f"without them: {err}")
            continue
        for t in spec.inputs:
            g = "g" + t.name
            err = num.norm(part[g] - full[g])
            add("specialisation", f"{g} {without}",
                _relative(err, max(num.norm(full[g]), mpmath.mpf(1e-30))))


# -- whole specs ----------------------------------------------------------------------------
def configurations(checked: CheckedSpec):
    """(variant, case, shape name, primitive dims, field) for every drawn configuration."""
    for cv in checked.variants:
        for shape, prims in shape_classes(checked):
            dims = sample.primitive_dims(checked, prims)
            if not sample.allowed(cv, dims):  # not an input of this variant (ormqr's sides)
                continue
            case = next((c for c in cv.cases if sample.holds(c, dims)), None)
            for field_name in FIELDS:
                yield cv, case, shape, prims, field_name


def prepare_all(checked: CheckedSpec) -> tuple[list[Setup], list[Result]]:
    setups, failures = [], []
    for cv, case, shape, prims, field_name in configurations(checked):
        base = dict(spec=checked.spec.name, variant=cv.variant.label, shape=shape,
                    field=field_name)
        if case is None:
            failures.append(Result(**base, case="-", check="sample", equation="",
                                   residual=None, passed=False,
                                   note="no case of this variant covers this shape"))
            continue
        try:
            setups.append(prepare(checked, cv, case, shape, prims, field_name))
        except (AuditError, num.EvalError) as err:
            failures.append(Result(**base, case=case.condition.text, check="sample",
                                   equation="", residual=None, passed=False, note=str(err)))
    return setups, failures


def audit_spec(checked: CheckedSpec) -> list[Result]:
    setups, results = prepare_all(checked)
    for s in setups:
        results.extend(run_checks(s))
    return results


# -- the command ----------------------------------------------------------------------------
