"""Degenerate inputs: forward passes behave like the framework's own operation (factors of a
singular matrix, non-finite input, integer input), and a derivative that does not exist is never
a finite number.
"""
from __future__ import annotations

import importlib
import warnings

import jax
import numpy as np
import pytest
import scipy.linalg
import torch

from factorules.tools.adapters import as_tuple
from fake_cupy import FakeCupy

jax.config.update("jax_enable_x64", True)

BACKENDS = ("numpy", "torch", "jax", "cupy")


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return FakeCupy(lambda: tmp_path_factory.mktemp("cuda-host"))


@pytest.fixture(scope="module")
def cupy_modules(fake):
    return fake.load_backend()


class _Backend:
    """One backend's generated functions, with conversions from and to NumPy (CuPy: the
    generated package on the CPU, through tests/fake_cupy.py)."""

    def __init__(self, name, fake, cupy_modules):
        self.name, self._fake = name, fake
        if name == "cupy":
            self._modules = cupy_modules
        else:
            self._package = importlib.import_module(f"generated.{name}")

    def op(self, op):
        if self.name == "cupy":
            return getattr(self._modules[op], op)
        return getattr(self._package, op)

    def to(self, x):
        return {"numpy": np.asarray, "torch": torch.as_tensor, "jax": jax.numpy.asarray,
                "cupy": self._fake.cupy.asarray}[self.name](x)

    def back(self, x):
        if self.name == "torch":
            return x.detach().numpy()
        if self.name == "cupy":
            return x.get()
        return np.asarray(x)


@pytest.fixture
def backend(request, fake, cupy_modules):
    b = _Backend(request.param, fake, cupy_modules)
    if request.param == "cupy":
        with fake.installed():
            yield b
    else:
        yield b


def _singular_batch(complex_=False):
    """Three 4x4 matrices; the middle one exactly singular (its last row the sum of two)."""
    rng = np.random.default_rng(7)
    a = rng.standard_normal((3, 4, 4))
    if complex_:
        a = a + 1j * rng.standard_normal((3, 4, 4))
    a[1, 3] = a[1, 0] + a[1, 1]
    return a


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_lu_of_a_singular_matrix_returns_its_factors_per_batch_element(backend, complex_):
    """torch.linalg.lu_factor raises on a singular matrix; LAPACK's factors exist, and
    numpy (SciPy), JAX and torch.linalg.lu return them: so do ours, for each matrix of a batch
    (the nonsingular ones as if alone)."""
    a = _singular_batch(complex_)
    with warnings.catch_warnings():  # SciPy's LinAlgWarning: singular matrix
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        p, l_, u = (backend.back(y) for y in as_tuple(backend.op("lu")(backend.to(a))))
        lu, pivots = (backend.back(y) for y in as_tuple(backend.op("lu_factor")(backend.to(a))))
    for i in range(3):
        np.testing.assert_allclose(p[i] @ l_[i] @ u[i], a[i], rtol=1e-12, atol=1e-12)
        if i != 1:  # (the singular one meets pivoting ties, which libraries break differently)
            want_lu, want_piv = scipy.linalg.lu_factor(a[i])
            np.testing.assert_allclose(lu[i], want_lu, rtol=1e-12, atol=1e-12)
            assert list(pivots[i]) == list(want_piv + 1)
    assert abs(u[1, 3, 3]) < 1e-12 * abs(a[1]).max()
