"""The generated CuPy backend on a real GPU: its kernels against NumPy (exactly), and, for every
spec in spec/, op, op_jvp and op_vjp against the generated NumPy backend and PyTorch's
autograd (on CUDA when torch has it), gauge outputs aligned first (cuSOLVER's eigenvector
phases are its own), and the pullbacks' gauge check.  Skipped without a CUDA device;
scripts/gpu_check.sh runs it.
"""
import importlib

import pytest

import cupy_checks
import spec_cases


def _no_device_reason():
    """Why no CUDA device can be used, or None when one can."""
    try:
        import cupy
        count = cupy.cuda.runtime.getDeviceCount()
    except (ImportError, RuntimeError) as error:  # CUDARuntimeError is a RuntimeError
        return f"no CUDA device: {type(error).__name__}: {error}"
    return None if count > 0 else "no CUDA device: cupy.cuda.runtime.getDeviceCount() is 0"


NO_DEVICE = _no_device_reason()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(NO_DEVICE is not None, reason=str(NO_DEVICE))]


@pytest.fixture(scope="module")
def cupy():
    import cupy
    return cupy


MODULES = tuple(c.spec.name for c in spec_cases.SPECS) + ("_runtime",)


@pytest.fixture(scope="module")
def backend():
    return {name: importlib.import_module(f"generated.cupy.{name}") for name in MODULES}


@pytest.fixture(scope="module")
def numpy_backend():
    return {name: importlib.import_module(f"generated.numpy.{name}") for name in MODULES}


@pytest.fixture(scope="module")
def torch_device():
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def test_the_device_is_usable(cupy):
    x = cupy.arange(6, dtype=cupy.float64).reshape(2, 3)
    assert cupy.asnumpy(x @ x.T).tolist() == [[5.0, 14.0], [14.0, 50.0]]


@pytest.mark.parametrize("op, scalars, batch, shape, dtype", cupy_checks.kernel_cases(False))
def test_kernel_matches_numpy_exactly(cupy, backend, op, scalars, batch, shape, dtype):
    got = cupy_checks.check_structural_op(backend["_runtime"], cupy.asnumpy, op, scalars, batch,
                                          shape, dtype)
    assert isinstance(got, cupy.ndarray)


@pytest.mark.parametrize("op, scalars, batch, shape, dtype", cupy_checks.kernel_cases(True))
def test_kernel_on_zero_size_input(cupy, backend, op, scalars, batch, shape, dtype):
    got = cupy_checks.check_structural_op(backend["_runtime"], cupy.asnumpy, op, scalars, batch,
                                          shape, dtype)
    assert got.size == 0


@pytest.mark.parametrize("case", cupy_checks.rule_cases())
def test_jvp_vjp_match_the_numpy_backend(cupy, backend, numpy_backend, case):
    cupy_checks.check_against_numpy(backend[case.op], numpy_backend[case.op], cupy.ndarray,
                                    cupy.asnumpy, case)


@pytest.mark.parametrize("case", cupy_checks.torch_rule_cases())
def test_jvp_vjp_match_torch(cupy, backend, numpy_backend, torch_device, case):
    cupy_checks.check_against_torch(backend[case.op], numpy_backend[case.op], cupy.ndarray,
                                    cupy.asnumpy, case, torch_device)


@pytest.mark.parametrize("case", cupy_checks.gauge_cases())
def test_a_gauge_dependent_cotangent_raises(cupy, backend, case):
    cupy_checks.check_gauge(backend[case.op], cupy.ndarray, cupy.asnumpy, case)


@pytest.mark.parametrize("a_dtype, b_dtype, a_batch, b_batch, left, upper, unit",
                         cupy_checks.solve_cases(triangular=True))
def test_solve_triangular_matches_the_numpy_backend(cupy, backend, numpy_backend, a_dtype,
                                                    b_dtype, a_batch, b_batch, left, upper, unit):
    cupy_checks.check_solve_triangular(backend["_runtime"], numpy_backend["_runtime"],
                                       cupy.ndarray, cupy.asnumpy, a_dtype, b_dtype, a_batch,
                                       b_batch, left, upper, unit)


@pytest.mark.parametrize("a_dtype, b_dtype, a_batch, b_batch, left",
                         cupy_checks.solve_cases(triangular=False))
def test_solve_matches_the_numpy_backend(cupy, backend, numpy_backend, a_dtype, b_dtype, a_batch,
                                         b_batch, left):
    cupy_checks.check_solve(backend["_runtime"], numpy_backend["_runtime"], cupy.ndarray,
                            cupy.asnumpy, a_dtype, b_dtype, a_batch, b_batch, left)


def test_square_only_kernels_reject_rectangular_input(cupy, backend):
    with pytest.raises(ValueError, match="square"):
        backend["_runtime"]._copyltu(cupy.ones((2, 3, 4)))
