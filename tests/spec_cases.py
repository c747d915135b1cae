"""Test cases derived from the specs in spec/: every spec x variant (its options dict) x shape
class x dtype x batch, shared by the rule ladder (test_rules.py), the framework harnesses
(test_torch_harness.py, test_jax_harness.py) and the CuPy checks (cupy_checks.py).

Nothing here names an operation except NATIVE_REFUSES, the one per-op table: where the native
rule of torch.linalg / jax.numpy.linalg refuses to differentiate.  A new spec/<name>.yaml is
picked up by every parametrized test as it is; it needs an entry there only if its native
rule refuses some variant or shape.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pytest

from generator import sample
from generator.render import ROOT, load_checked
from generator.verify import random_like

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


# Where a framework's native rule refuses to differentiate: op -> {framework: refuses(options,
# values of the primitive dims)}.  Whether a native rule exists at all is not tabulated: it is
# torch.linalg.<op> / jax.numpy.linalg.<op> if there is one (native_function, as in
# generator.verify), and it is expected to differentiate every variant and shape not listed.
NATIVE_REFUSES = {
    # torch.linalg.qr has no derivative for mode='r' nor for mode='complete' when m > n
    "qr": {"torch": lambda o, s: o["mode"] == "r" or (o["mode"] == "complete" and s[0] > s[1])},
}


def native_function(framework, op):
    """torch.linalg.<op> or jax.numpy.linalg.<op>, or None when there is none."""
    if framework == "torch":
        import torch
        return getattr(torch.linalg, op, None)
    if framework == "jax":
        import jax.numpy
        return getattr(jax.numpy.linalg, op, None)
    raise ValueError(f"no native functions for {framework!r}")


def native_rule(framework, op, options, shape) -> str:
    """'absent', 'refuses' or 'rule': what ``framework``'s native autodiff of ``op`` does."""
    if native_function(framework, op) is None:
        return "absent"
    refuses = NATIVE_REFUSES.get(op, {}).get(framework)
    return "refuses" if refuses is not None and refuses(options, shape) else "rule"


def wide64(dtype):
    """The double-precision dtype of the same field (real or complex)."""
    return np.complex128 if np.issubdtype(dtype, np.complexfloating) else np.float64


@dataclass(frozen=True)
class Case:
    """One spec, one variant, one shape class, one dtype, one batch shape."""

    checked: object  # generator.check.CheckedSpec
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
    def outputs(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.cv.variant.outputs)

    @property
    def differentiable(self) -> tuple[bool, ...]:
        """Per output: whether it carries a tangent (not one a variant returns empty)."""
        return tuple(t.returned != "empty" for t in self.cv.variant.outputs)

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
        count = _primitive_count(checked)
        regular = (SMALL_SHAPES if small else SHAPES)[count]
        classes = {}
        for s in shapes:
            classes.update({"regular": regular, "zero": ZERO_SHAPES[count],
                            "first": dict([next(iter(regular.items()))])}[s])
        for cv, (name, shape), dt, b in itertools.product(checked.variants, classes.items(),
                                                          dtypes, batches):
            case = Case(checked, cv, name, shape, dt, b)
            out.append(pytest.param(case, id=case.id))
    return out
