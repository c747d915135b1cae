"""The generated CuPy backend's host code on the CPU: generated/cupy/{<every spec>,_runtime}.py
imported with a NumPy-backed fake CuPy (tests/fake_cupy.py) whose kernels run the real CUDA
source on the host, compared with the generated NumPy backend and with PyTorch's autograd.
"""
import importlib
import sys

import numpy as np
import pytest

import cupy_checks
import spec_cases
from fake_cupy import DeviceArray, FakeCupy

numpy_modules = {c.spec.name: importlib.import_module(f"generated.numpy.{c.spec.name}")
                 for c in spec_cases.SPECS}
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


@pytest.mark.parametrize("case", cupy_checks.rule_cases())
def test_jvp_vjp_match_the_numpy_backend(fake, on_cpu, case):
    cupy_checks.check_against_numpy(on_cpu[case.op], numpy_modules[case.op], DeviceArray,
                                    to_host, case)
    # No kernel was launched on an empty array (the outputs of a zero-size input need not
    # be empty, a full SVD's U of a 5x0 matrix; a rule need not have a structural step).
    assert all(launch.indices[0] > 0 for launch in fake.launches), fake.launches


@pytest.mark.parametrize("case", cupy_checks.torch_rule_cases())
def test_jvp_vjp_match_torch(on_cpu, case):
    cupy_checks.check_against_torch(on_cpu[case.op], numpy_modules[case.op], DeviceArray,
                                    to_host, case, torch_device="cpu")


@pytest.mark.parametrize("case", cupy_checks.gauge_cases())
def test_a_gauge_dependent_cotangent_raises(on_cpu, case):
    cupy_checks.check_gauge(on_cpu[case.op], DeviceArray, to_host, case)


def test_every_spec_has_a_cupy_module(backend):
    assert {c.spec.name for c in spec_cases.SPECS} <= set(backend)


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


@pytest.mark.parametrize("checked", [c for c in spec_cases.SPECS if len(c.spec.inputs) == 1],
                         ids=lambda c: c.spec.name)
def test_inputs_are_checked(on_cpu, checked):
    """(Several inputs: tests/test_householder.py.)"""
    name = checked.spec.name
    module = on_cpu[name]
    op, op_jvp = getattr(module, name), getattr(module, f"{name}_jvp")
    with pytest.raises(ValueError, match=f"{name}: A must be a matrix .*ndim >= 2"):
        op(np.ones(3))
    with pytest.raises(TypeError, match="float32, float64, complex64 or complex128"):
        op(np.eye(3, dtype=np.float16))
    # integers are promoted to float64, as numpy.linalg and cupy.linalg promote them
    promoted, expected = op(np.eye(3, dtype=np.int64)), op(np.eye(3))
    for y, z in zip(*(r if isinstance(r, tuple) else (r,) for r in (promoted, expected))):
        assert y.dtype == z.dtype and np.array_equal(y.get(), z.get())
    for option in checked.spec.options:
        with pytest.raises(ValueError, match=f"{name}: {option.name} must be one of"):
            op(np.eye(3), **{option.name: "no such value"})
    with pytest.raises(TypeError, match="dtype"):
        op_jvp(np.eye(3), np.eye(3, dtype=np.float32))
