"""Test cases derived from the specs in spec/: every spec x variant (its options dict) x shape
class x dtype x batch, shared by the rule ladder (test_rules.py), the framework harnesses
(test_torch_harness.py, test_jax_harness.py) and the CuPy checks (cupy_checks.py).  A check
runs on a pairwise covering sample of its cases (sampled(): every value of every factor, and
every pair of values of two factors, the backend among them, at least once; plus the
regression() cases), or on all of them under ``pytest --full`` (tests/ladder.py).

Nothing here names an operation; factorules.tools.natives holds the per-op tables: where the native
rule of torch.linalg / jax.numpy.linalg refuses to differentiate or is wrong.  A new spec/<name>.yaml is
picked up by every parametrized test as it is; it needs an entry there only if its native
rule refuses or is wrong for some variant or shape.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pytest

import ladder
from factorules.tools import gauge, natives
from factorules.audit import sample
from factorules.compiler.paths import ROOT
from factorules.compiler.render import load_checked
from factorules.tools.verify import output_dtype, random_like

SPECS = load_checked(sorted((ROOT / "spec").glob("*.yaml")))

# Shape classes by the number of primitive dimensions of a spec's input: values of those
# dimensions, in the order of its dims (m x n input: two; n x n input: one).
SHAPES = {
    2: {"tall": (6, 4), "square": (4, 4), "wide": (3, 5)},
    1: {"n=4": (4,), "n=1": (1,)},
}
# The smaller shapes of the framework harnesses and the CuPy checks.
SMALL_SHAPES = {
    2: {"tall": (5, 3), "square": (3, 3), "wide": (3, 5)},
    1: {"n=3": (3,), "n=1": (1,)},
}
ZERO_SHAPES = {
    2: {"5x0": (5, 0), "0x5": (0, 5), "0x0": (0, 0)},
    1: {"n=0": (0,)},
}
DTYPES = {"f32": np.float32, "f64": np.float64, "c64": np.complex64, "c128": np.complex128}
BATCHES = {"unbatched": (), "b2": (2,), "b2x3": (2, 3), "b0": (0,)}


# Where a framework's native rule refuses (factorules.tools.natives.NATIVE_REFUSES) or is wrong
# (factorules.tools.natives.NATIVE_WRONG): the one place that names operations.
NATIVE_REFUSES = natives.NATIVE_REFUSES


native_function = natives.native_function


def native_rule(framework, op, options, shape) -> str:
    """'absent', 'refuses', 'wrong' (factorules.tools.natives: it differentiates, and disagrees
    with finite differences) or 'rule': what ``framework``'s native autodiff of ``op`` does."""
    if native_function(framework, op) is None:
        return "absent"
    refuses = NATIVE_REFUSES.get(op, {}).get(framework)
    if refuses is not None and refuses(options, shape):
        return "refuses"
    return "wrong" if natives.native_wrong(op, framework, options, shape) else "rule"


def wide64(dtype):
    """The double-precision dtype of the same field (real or complex)."""
    return np.complex128 if np.issubdtype(dtype, np.complexfloating) else np.float64


@dataclass(frozen=True)
class Case:
    """One spec, one variant, one shape class, one dtype, one batch shape."""

    checked: object  # factorules.compiler.checked.CheckedSpec
    cv: object       # one of checked.variants
    shape_name: str
    shape: tuple     # values of the primitive dims
    dtype_name: str
    batch_name: str

    @property
    def op(self) -> str:
        return self.checked.spec.name

    @property
    def options(self) -> dict:
        return dict(self.cv.variant.when)

    @property
    def structure(self) -> str:
        return self.checked.spec.inputs[0].structure

    @property
    def dtype(self):
        return DTYPES[self.dtype_name]

    @property
    def batch(self) -> tuple:
        return BATCHES[self.batch_name]

    @property
    def returned(self) -> tuple:
        """The spec Tensors of the outputs the operation returns (hidden ones left out)."""
        return gauge.returned(self.cv)

    @property
    def outputs(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.returned)

    @property
    def differentiable(self) -> tuple[bool, ...]:
        """Per returned output: whether it carries a tangent (not one returned empty, nor a
        locally constant permutation or pivots)."""
        return tuple(t.returned == "value" and not t.constant for t in self.returned)

    def output_dtypes(self, dtype=None) -> tuple:
        """Per returned output, its dtype for an input of ``dtype`` (by default the case's),
        as factorules.tools.verify.output_dtype derives it from the spec (real eigenvalues of a
        complex A, complex eigenvalues of a real one)."""
        dtype = self.dtype if dtype is None else dtype
        return tuple(output_dtype(t, dtype) for t in self.returned)

    @property
    def gauge_check(self) -> bool:
        """Whether the pullbacks check the gauge (and take check_gauge)."""
        return gauge.has_gauge_cotangent(self.cv)

    def cotangents(self, rng, outputs, convention="torch"):
        """Random cotangents of the returned outputs (None for one returned empty), real
        for a real output, projected so that the loss does not depend on the gauge
        (``convention``: 'torch', or 'jax' for cotangents a JAX pullback takes)."""
        drawn = [random_like(rng, np.asarray(o)) if d else None
                 for o, d in zip(outputs, self.differentiable)]
        return gauge.invariant_cotangent(outputs, drawn, self.cv, convention)

    @property
    def id(self) -> str:
        return "-".join([self.op, self.cv.variant.label, self.shape_name, self.dtype_name,
                         self.batch_name])

    def input(self, rng, dtype=None):
        """A well-conditioned input drawn from the spec (in double precision, then cast to
        ``dtype``, by default the case's), of shape batch + the input's shape."""
        dtype = self.dtype if dtype is None else dtype
        (x,) = sample.inputs(self.checked, self.cv, self.shape, wide64(dtype), self.batch,
                             rng).values()
        return x.astype(dtype)

    def tangent(self, rng, x):
        """A random tangent at x, on the tangent space of the input's structure."""
        return sample.project(random_like(rng, x), self.structure)

    def native(self, framework) -> str:
        return native_rule(framework, self.op, self.options, self.shape)


def _primitive_count(checked) -> int:
    if len(checked.spec.inputs) != 1:
        raise NotImplementedError(f"{checked.spec.name}: the test cases handle specs with one "
                                  f"input; this one has {len(checked.spec.inputs)}")
    count = sum(d.source is not None for d in checked.dims)
    if count not in SHAPES:
        raise NotImplementedError(f"{checked.spec.name}: no shape classes for an input with "
                                  f"{count} primitive dimensions (tests/spec_cases.py)")
    return count


def cases(shapes=("regular",), dtypes=("f64", "c128"), batches=("b2",), small=False):
    """pytest params, one Case each, over every spec and variant.

    ``shapes``: 'regular' (tall/square/wide, or n=4/n=1) and/or 'zero' (zero-size), or
    'first' (the first regular class only); ``small`` takes the regular classes from
    SMALL_SHAPES.
    """
    out = []
    for checked in SPECS:
        if len(checked.spec.inputs) > 1:
            continue  # several inputs (householder_product, ormqr): tests/test_householder.py
        count = _primitive_count(checked)
        regular = (SMALL_SHAPES if small else SHAPES)[count]
        classes = {}
        for s in shapes:
            classes.update({"regular": regular, "zero": ZERO_SHAPES[count],
                            "first": dict([next(iter(regular.items()))])}[s])
        for cv, (name, shape), dt, b in itertools.product(checked.variants, classes.items(),
                                                          dtypes, batches):
            if not takes(checked, cv, shape):
                continue
            case = Case(checked, cv, name, shape, dt, b)
            out.append(pytest.param(case, id=case.id))
    return out


takes = sample.takes  # whether a variant's 'requires' hold at a shape class


# -- the sampled ladder (tests/ladder.py) --------------------------------------------------------

def factors(case: Case, *extra) -> tuple:
    """The factors of a case in the covering: spec and variant (one factor: a variant belongs
    to its spec), shape class, dtype, batch, and ``extra`` (a backend, ...)."""
    return (f"{case.op}/{case.cv.variant.label}", case.shape_name, case.dtype_name,
            case.batch_name, *extra)


def regression(case: Case, backend=None) -> bool:
    """Cases a past bug or a framework's known quirk needed, run whatever the sample draws:
    a Hermitian input in a complex dtype on torch (torch's complex gradient of cholesky is not
    Hermitian, spec/cholesky.yaml's notes; torch 2.13's batched forward AD asserts on
    (x + x.mH) / 2, tests/test_torch_harness.project), and JAX's svd in a complex dtype (its
    native rule splits a phase otherwise: factorules.tools.gauge.project_tangent)."""
    complex_ = case.dtype_name in ("c64", "c128")
    if backend in (None, "torch") and case.structure == "hermitian" and complex_:
        return True
    return backend == "jax" and case.op == "svd" and complex_


def sampled(params, backends=None, native=False, must=lambda case, backend: False,
            groups=(), seed=ladder.SEED, full=None):
    """pytest params of ``cases(...)``, sampled by a pairwise covering (all of them under
    --full: tests/ladder.py).

    ``backends``: the backend becomes a factor of the covering, and each param is
    (backend, case), with the id '<backend>-<case id>' of a stacked parametrize.  ``native``:
    what the backend's native rule does (native_rule: absent, refuses, wrong, rule) is a factor
    too, so that every outcome of factorules.tools.natives' tables is met for every spec and variant
    and every shape class.  ``must(case, backend)``: a case a past bug needed (always run).
    ``groups``: tuples of factor positions (0 spec and variant, 1 shape class, 2 dtype,
    3 batch, 4 backend, 5 native outcome) covered in every combination, beyond pairs.
    ``seed``: two checks of the same cases can draw different samples (together they cover
    more of the product).  ``full``: True or False whatever --full says."""
    cases_ = [p.values[0] for p in params]
    if backends is None:
        rows = [(c, None) for c in cases_]
    else:
        rows = [(c, b) for c in cases_ for b in backends]

    def row_factors(row):
        case, backend = row
        extra = () if backend is None else (backend,)
        if native:
            extra += (case.native(backend),)
        return factors(case, *extra)

    chosen = ladder.sample(rows, row_factors, groups, must=lambda row: must(*row), seed=seed,
                           full=full)
    if backends is None:
        return [pytest.param(c, id=c.id) for c, _ in chosen]
    return [pytest.param(b, c, id=f"{b}-{c.id}") for c, b in chosen]


def in_turn(params, shapes=False, start=0, full=None):
    """pytest params of ``cases(...)`` over several dtypes (and, with ``shapes``, several
    shape classes), sampled: for each spec variant and batch (and shape class, without
    ``shapes``) one case, its dtype (and its shape class) the next in turn, so that
    consecutive variants, and consecutive specs, take different ones: each meets every spec of
    as many variants or more, and the sample is as long as one dtype's (one shape class's).
    ``start``: where the turns begin (two checks of the same cases can draw different
    samples).  All of them under --full (tests/ladder.py)."""
    if ladder.FULL if full is None else full:
        return params
    groups: dict = {}
    for p in params:
        c = p.values[0]
        key = (c.op, c.cv.variant.label, c.batch_name) + (() if shapes else (c.shape_name,))
        groups.setdefault(key, {}).setdefault(c.shape_name, {})[c.dtype_name] = c
    chosen = []
    for turn, by_shape in enumerate(groups.values(), start):
        by_dtype = list(by_shape.values())[turn % len(by_shape)]
        chosen.append(list(by_dtype.values())[turn % len(by_dtype)])
    return [pytest.param(c, id=c.id) for c in chosen]


def alternate(params, half: int, full=None):
    """Every other param of ``params`` (``half`` 0: the first, third, ...; 1: the second,
    fourth, ...), so that two checks of one ladder split its variants between them; all of
    them under --full (tests/ladder.py)."""
    if ladder.FULL if full is None else full:
        return list(params)
    return list(params)[half::2]


def one_per_spec(params, full=None):
    """One param per spec: its variants in turn across the specs (the first spec's first, the
    next spec's second, ...), for a check of what every variant of a spec shares (the
    generated wrapper around the rules); all of them under --full (tests/ladder.py)."""
    if ladder.FULL if full is None else full:
        return list(params)
    by_spec: dict = {}
    for p in params:
        by_spec.setdefault(p.values[0].op, []).append(p)
    return [cases_[turn % len(cases_)] for turn, cases_ in enumerate(by_spec.values())]
