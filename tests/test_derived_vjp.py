"""A case that gives no VJP: the generator transposes its JVP, and every backend runs that.

spec/qr.yaml without the hand-written VJP of complete mode on tall matrices (the Householder
completion, whose transpose needs block slices of the cotangent, zero padding and solves)
is generated into a temporary folder; each backend's derived pullback must equal the
committed backend's hand-written one.
"""
from __future__ import annotations

import importlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from fake_cupy import FakeCupy
from generated_packages import load_package
from factorules.compiler import pipeline
from factorules.compiler.check import check_spec
from factorules.compiler.spec_loader import load_spec

ROOT = Path(__file__).resolve().parent.parent
@pytest.fixture(scope="module")
def derived_tree(tmp_path_factory):
    text = (ROOT / "spec" / "qr.yaml").read_text()
    start = text.index("        vjp: |\n          # Transpose of the completion")
    end = text.index('      - when: "m == n"')
    root = tmp_path_factory.mktemp("derived")
    (root / "spec").mkdir()
    (root / "spec" / "qr.yaml").write_text(text[:start] + text[end:])
    # qr(pivoting=True) is qr_pivoted (qr.yaml's 'delegate'): the tree needs that spec too
    shutil.copy2(ROOT / "spec" / "qr_pivoted.yaml", root / "spec" / "qr_pivoted.yaml")
    case = check_spec(load_spec(root / "spec" / "qr.yaml")).variants[1].cases[0]
    assert case.vjp.derived
    files = pipeline.render(root / "spec")
    pipeline.write(files, root)
    return root, files


def test_the_derived_rule_stacks_the_blocks_its_transposed_slices_fill(derived_tree):
    # the transpose of Q1[:n, :] and Q1[n:, :] is a sum of two zero-padded blocks that tile
    # Q1's cotangent: printed as one concatenation, not two padded arrays summed
    _, files = derived_tree
    numpy_source = files["generated/numpy/qr.py"]
    assert "_np.concatenate([Z @ _c0, _c0], axis=-2)" in numpy_source
    assert "_torch.cat([_mm(Z, _c0), _c0], dim=-2)" in files["generated/torch/qr.py"]
    assert "_pad(" not in numpy_source


def _inputs(dtype):
    rng = np.random.default_rng(7)
    a = rng.standard_normal((2, 6, 4))
    gq = rng.standard_normal((2, 6, 6))
    gr = rng.standard_normal((2, 6, 4))
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(a.shape)
        gq = gq + 1j * rng.standard_normal(gq.shape)
        gr = gr + 1j * rng.standard_normal(gr.shape)
    return a.astype(dtype), gq.astype(dtype), gr.astype(dtype)


def _close(x, y):
    x, y = np.asarray(x), np.asarray(y)
    assert np.linalg.norm(x - y) <= 1e-12 * np.linalg.norm(y)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_numpy_torch_jax_pullbacks_equal_the_hand_written_ones(derived_tree, dtype):
    root, _ = derived_tree
    a, gq, gr = _inputs(dtype)
    reference = importlib.import_module("generated.numpy.qr")
    _, pullback = reference.qr_vjp(a, mode="complete")
    expected = pullback(gq, gr)

    derived = load_package(root / "generated" / "numpy")["qr"]
    _, pullback = derived.qr_vjp(a, mode="complete")
    _close(pullback(gq, gr), expected)

    import torch
    derived = load_package(root / "generated" / "torch")["qr"]
    _, pullback = derived.qr_vjp(torch.from_numpy(a), mode="complete")
    _close(pullback(torch.from_numpy(gq), torch.from_numpy(gr)).numpy(), expected)
    # and through autograd: backward of the generated autograd.Function uses the same rule
    at = torch.from_numpy(a).requires_grad_()
    q, r = derived.qr(at, mode="complete")
    torch.autograd.backward((q, r), (torch.from_numpy(gq), torch.from_numpy(gr)))
    _close(at.grad.numpy(), expected)

    import jax
    jax.config.update("jax_enable_x64", True)
    derived = load_package(root / "generated" / "jax")["qr"]
    _, pullback = derived.qr_vjp(jax.numpy.asarray(a), mode="complete")
    # JAX's convention is the conjugate of PyTorch's for complex cotangents
    got = pullback(jax.numpy.asarray(gq.conj()), jax.numpy.asarray(gr.conj()))
    _close(np.conj(np.asarray(got)), expected)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_cupy_pullback_on_the_cpu_equals_the_hand_written_one(derived_tree, dtype,
                                                               tmp_path_factory):
    root, _ = derived_tree
    a, gq, gr = _inputs(dtype)
    reference = importlib.import_module("generated.numpy.qr")
    _, pullback = reference.qr_vjp(a, mode="complete")
    expected = pullback(gq, gr)
    fake = FakeCupy(lambda: tmp_path_factory.mktemp("cuda-host"))
    modules = fake.load_backend(root / "generated" / "cupy")
    with fake.installed():
        cp = modules["qr"]._cp
        _, pullback = modules["qr"].qr_vjp(cp.asarray(a), mode="complete")
        got = pullback(cp.asarray(gq), cp.asarray(gr)).get()
    _close(got, expected)
