"""The fused C++ pullbacks (factorules.compiler.fused) compute what the NumPy rules compute.

Each spec's source is compiled for the host with g++ at the sizes of a shape (without
optimisation: the test is of the printed rules, not of the compiler), and every kernel (each
variant's full VJP and its partial VJPs, the checks of degenerate inputs off) runs on a batch
of sampled inputs in every dtype, against the generated NumPy module's ``_vjp_rule`` on the
same arrays.  One shape per spec, on either side of the cases' conditions in turn; every
shape, the zero-size ones included, under --full (tests/ladder.py)."""
from __future__ import annotations

import ctypes
import importlib
import inspect
import shutil
import subprocess

import numpy as np
import pytest

import ladder
from factorules.audit import sample
from factorules.compiler import fused
from generated.numpy import _runtime_shared as shared
from spec_cases import SMALL_SHAPES, SPECS, ZERO_SHAPES

CHECKED = {c.spec.name: c for c in SPECS}
DTYPES = ("float32", "float64", "complex64", "complex128")
BATCH = (11,)  # real dtypes: a bulk in the lanes of vectors (8 float, 4 double) and a rest
COMPILER = "g++"


def _configurations(full: bool):
    """pytest params (spec name, shape label, {dim: size}): a spec's 'shapes' entries where
    it has them (several inputs), else tests/spec_cases.py's small shape classes of its input
    (and the zero-size ones under --full).  By default one per spec, in turn the first and the
    last (tall and wide, where the cases' conditions split them; n=3 and n=1): each case of a
    rule is printed the same way, and its kernels compile for the case that holds alone."""
    out = []
    for turn, (name, checked) in enumerate(sorted(CHECKED.items())):
        primitive = [d.name for d in checked.dims if d.source is not None]
        if checked.spec.shapes:
            shapes = [(label, dict(values)) for label, values in checked.spec.shapes]
        else:
            classes = dict(SMALL_SHAPES[len(primitive)])
            if full:
                classes.update(ZERO_SHAPES[len(primitive)])
            shapes = [(label, dict(zip(primitive, values))) for label, values in classes.items()]
        if not full:
            shapes = [shapes[0] if turn % 2 == 0 else shapes[-1]]
        out.extend(pytest.param(name, label, sizes, id=f"{name}-{label}")
                   for label, sizes in shapes)
    return out


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    if shutil.which(COMPILER) is None:
        pytest.skip(f"{COMPILER} is not installed: the fused rules compile on the host with it")
    folder = tmp_path_factory.mktemp("fused")
    (folder / fused.HEADER).write_text(fused.header_source())

    def compile_(checked, sizes):
        tag = "_".join(f"{k}{v}" for k, v in sorted(sizes.items()))
        source = folder / f"{checked.spec.name}.cpp"
        if not source.exists():
            source.write_text(fused.source(checked))
        library = folder / f"{checked.spec.name}_{tag}.so"
        # -march=native: the host's vector instructions, as the shipped build takes them (the
        # lanes' transposing loads and stores use AVX where the host has it)
        subprocess.run([COMPILER, "-O0", "-march=native", "-std=c++17", "-fopenmp", "-shared",
                        "-fPIC",
                        "-Wall", "-Werror", "-Wno-unused-variable", "-Wno-psabi", "-DFR_ALL_KERNELS",
                        *(f"-DFR_DIM_{k}={v}" for k, v in sizes.items()),
                        str(source), "-o", str(library)], check=True, capture_output=True,
                       text=True)
        return ctypes.CDLL(str(library))
    return compile_


def _run(library, symbol, inputs, outputs, count) -> int:
    """Call a kernel: ``inputs`` arrays of shape (count, ...) of any strides (a vector's
    trailing axis of one entry), ``outputs`` C-contiguous."""
    kernel = getattr(library, symbol)
    kernel.restype = ctypes.c_int
    strides = [s // a.itemsize for a in inputs
               for s in a.reshape(count, *a.shape[-2:]).strides]
    pointers = [(ctypes.c_void_p * len(arrays))(*(a.ctypes.data for a in arrays))
                for arrays in (inputs, outputs)]
    return kernel(pointers[0], (ctypes.c_int64 * len(strides))(*strides), pointers[1],
                  ctypes.c_int64(count))


def _random(rng, shape, dtype):
    x = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


@pytest.mark.parametrize("name,label,sizes", _configurations(ladder.FULL))
def test_every_fused_pullback_equals_the_numpy_rule(build, name, label, sizes):
    checked = CHECKED[name]
    module = importlib.import_module(f"generated.numpy.{name}")
    library = build(checked, sizes)
    primitive = [d for d in checked.dims if d.source is not None]
    shape = tuple(sizes[d.name] for d in primitive)
    variants = {cv.variant.label: cv for cv in checked.variants}
    ran = 0
    for kernel in fused.kernels(checked):
        cv = variants[kernel.variant]
        if not sample.allowed(cv, sample.primitive_dims(checked, sizes)):
            continue
        options = dict(cv.variant.when)
        # the options follow the inputs in _primal's and _vjp_rule's parameters; those that
        # select no variant (the checks of degenerate inputs) are off
        names = list(inspect.signature(module._primal).parameters)[len(checked.spec.inputs):]
        flags = [options.get(name, False) for name in names]
        for dtype in DTYPES:
            rng = np.random.default_rng(0)
            drawn = sample.inputs(checked, cv, shape, np.dtype(dtype), BATCH, rng)
            # the rules read vectors as columns (..., k, 1)
            inputs = [drawn[t.name][..., None] if t.is_vector else drawn[t.name]
                      for t in checked.spec.inputs]
            outputs = module._primal(*inputs, *flags)
            values = dict(zip([t.name for t in checked.spec.inputs], inputs))
            values.update(zip([t.name for t in cv.variant.outputs], outputs))
            # a cotangent for every output the rule takes one of (None: zero), random where
            # the kernel reads it
            read = {a.name for a in kernel.inputs}
            cotangents = []
            for t in cv.variant.outputs:
                name = "g" + t.name
                value = _random(rng, values[t.name].shape, values[t.name].dtype) \
                    if name in read else None
                values[name] = value
                cotangents.append(value)
            want = module._vjp_rule(*inputs, *outputs, *cotangents, *flags)
            # the operands in both layouts the kernels meet (strides of any kind are theirs
            # to follow): column-major as LAPACK leaves its factors, every other one
            # row-major as users and autograd hand them
            args = [np.swapaxes(np.ascontiguousarray(
                np.swapaxes(values[a.name], -1, -2), kernel.dtype_of(a, dtype)), -1, -2)
                if i % 2 == 0 else np.ascontiguousarray(values[a.name], kernel.dtype_of(a, dtype))
                for i, a in enumerate(kernel.inputs)]
            got = [np.zeros(w.shape, kernel.dtype_of(a, dtype))
                   for a, w in zip(kernel.outputs, want)]
            count = int(np.prod(BATCH))
            report = np.full((count, len(kernel.checks), 2), np.nan,
                             np.finfo(np.dtype(dtype)).dtype)
            assert _run(library, f"fr_{kernel.name}_{fused.DTYPES[DTYPES.index(dtype)].suffix}",
                        args, [*got, report], count) == 1, (kernel.name, label)
            tolerance = 1e-3 if dtype in ("float32", "complex64") else 1e-10
            # the checks, measured as the runtime's _violation measures them (all of them on)
            on = [options.get(name, True) for name in names]
            measured = [] if not kernel.checks else list(
                module._vjp_checks(*inputs, *outputs, *cotangents, *on))
            # all switched on, a check is left out (None) only where its values are zero: a
            # gauge check of imaginary parts of a real input's values, which the kernel
            # reports as 0
            assert [(c.kind, c.option) if c else ("vanish", "check_gauge") for c in measured] \
                == [(c.kind, c.option) for c in kernel.checks], kernel.name
            for i, check in enumerate(measured):
                if check is None:
                    assert not np.iscomplexobj(inputs[0]) and (report[:, i, 0] == 0).all(), \
                        (kernel.name, dtype)
                    continue
                _, value, limit = shared._violation(check)
                value, limit = (np.broadcast_to(np.asarray(x, np.float64), (count,)).ravel()
                                for x in (value, limit))
                assert np.allclose(report[:, i, 1], limit, rtol=tolerance, atol=0), \
                    (kernel.name, check.kind, dtype)
                # a value that vanishes in exact arithmetic (the commutator of a 1 x 1 T and
                # gT, schur's gauge check at n = 1) is rounding on both sides: of the order of
                # eps times the entries, which a gauge or ties limit is sqrt(eps) times
                noise = 8 * np.sqrt(np.finfo(np.dtype(dtype)).eps) * limit.max() \
                    if check.kind != "pivots" else 0
                assert np.allclose(report[:, i, 0], value, rtol=tolerance,
                                   atol=max(tolerance * limit.max(), noise)), \
                    (kernel.name, check.kind, dtype)
            for g, w in zip(got, want):
                if not np.iscomplexobj(g):  # a real input's cotangent: the real part
                    w = np.real(w)
                scale = max(np.abs(w).max(initial=0), 1.0)
                assert np.abs(g - w).max(initial=0) <= tolerance * scale, \
                    (kernel.name, dtype, label)
            ran += 1
    assert ran > 0
