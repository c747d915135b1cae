"""The generated CuPy backend's host code on the CPU: generated/cupy/{qr,_runtime}.py imported
with a NumPy-backed fake CuPy (tests/fake_cupy.py) whose kernels run the real CUDA source on
the host, compared with the generated NumPy backend and with PyTorch's autograd.
"""
import importlib
import sys

import numpy as np
import pytest

import cupy_checks
from fake_cupy import DeviceArray, FakeCupy

numpy_qr = importlib.import_module("generated.numpy.qr")
numpy_runtime = importlib.import_module("generated.numpy._runtime")


def to_host(x):
    return x.get()


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return FakeCupy(lambda: tmp_path_factory.mktemp("cuda-host"))


@pytest.fixture(scope="module")
def backend(fake):
    """{submodule: module} of generated/cupy, imported against the fake."""
    return fake.load_backend()


@pytest.fixture
def on_cpu(fake, backend):
    """The fake installed for one test (the runtime imports cupyx lazily), and its launches."""
    fake.launches.clear()
    with fake.installed():
        yield backend


def test_loading_the_backend_leaks_nothing_into_sys_modules(fake):
    before = {name: sys.modules.get(name) for name in ("cupy", "cupyx", "cupy.linalg")}
    modules = fake.load_backend()
    assert {name: sys.modules.get(name) for name in before} == before
    assert not [name for name in sys.modules if name.startswith("_factorules_cupy_on_cpu")]
    assert modules["qr"]._cp is fake.cupy and modules["_runtime"]._cp is fake.cupy
    real_runtime = importlib.import_module("generated.cupy._runtime")
    assert real_runtime._cp is not fake.cupy and real_runtime._cp.__name__ == "cupy"


def test_kernels_come_from_one_module_with_the_runtime_source_and_options(fake, on_cpu):
    runtime = on_cpu["_runtime"]
    runtime._triu(runtime._cp.asarray(np.ones((3, 3))), 0)
    runtime._re(runtime._cp.asarray(np.ones((2, 2), np.complex64)))
    assert fake.raw_modules == [(runtime.KERNEL_SOURCE, runtime.KERNEL_OPTIONS)]
    assert [launch.name for launch in fake.launches] == ["fr_triu_f64", "fr_re_c64"]


@pytest.mark.parametrize("mode, batch, shape, dtype", cupy_checks.qr_cases())
def test_qr_jvp_vjp_match_the_numpy_backend(fake, on_cpu, mode, batch, shape, dtype):
    cupy_checks.check_qr_against_numpy(on_cpu["qr"], numpy_qr, DeviceArray, to_host, mode,
                                       batch, shape, dtype)
    # Every structural step ran as a kernel, and none was launched on an empty array.
    assert bool(fake.launches) == (min(shape) > 0)


@pytest.mark.parametrize("mode, batch, shape, dtype", [
    case for case in cupy_checks.qr_cases()
    if cupy_checks.torch_supports(case.values[0], case.values[2])])
def test_qr_jvp_vjp_match_torch(on_cpu, mode, batch, shape, dtype):
    cupy_checks.check_qr_against_torch(on_cpu["qr"], numpy_qr, DeviceArray, to_host, mode,
                                       batch, shape, dtype, torch_device="cpu")


@pytest.mark.parametrize("a_dtype, b_dtype, a_batch, b_batch, left, upper, unit",
                         cupy_checks.solve_cases(triangular=True))
def test_solve_triangular_matches_the_numpy_backend(on_cpu, a_dtype, b_dtype, a_batch, b_batch,
                                                    left, upper, unit):
    cupy_checks.check_solve_triangular(on_cpu["_runtime"], numpy_runtime, DeviceArray, to_host,
                                       a_dtype, b_dtype, a_batch, b_batch, left, upper, unit)


@pytest.mark.parametrize("a_dtype, b_dtype, a_batch, b_batch, left",
                         cupy_checks.solve_cases(triangular=False))
def test_solve_matches_the_numpy_backend(on_cpu, a_dtype, b_dtype, a_batch, b_batch, left):
    cupy_checks.check_solve(on_cpu["_runtime"], numpy_runtime, DeviceArray, to_host, a_dtype,
                            b_dtype, a_batch, b_batch, left)


def test_inputs_are_checked(on_cpu):
    qr = on_cpu["qr"]
    with pytest.raises(ValueError, match="ndim >= 2"):
        qr.qr(np.ones(3))
    with pytest.raises(TypeError, match="float32, float64, complex64 or complex128"):
        qr.qr(np.ones((3, 3), np.int64))
    with pytest.raises(ValueError, match="mode"):
        qr.qr(np.ones((3, 3)), mode="economic")
    with pytest.raises(TypeError, match="dtype"):
        qr.qr_jvp(np.ones((3, 3)), np.ones((3, 3), np.float32))
