"""The CUDA kernels of generated/cupy/_kernels.cu, checked without a GPU.

NVRTC compiles the source to PTX (no driver needed) with the options the runtime passes to
cupy.RawModule; the same source compiled as host C++ (tests/cuda_host_shim.h) runs every
kernel on the CPU through the runtime's own launchers, against an exact NumPy reference.
"""
import os
import re
from pathlib import Path

import numpy as np
import pytest

import cuda_host
import cupy_checks
from fake_cupy import FakeCupy
from generated.cupy import _runtime  # compiles nothing at import

ARCHITECTURES = ("compute_75", "compute_90")


def nvrtc_include_options():
    """The include directories cupy.RawModule adds: CuPy's headers and its bundled CCCL."""
    import cupy
    include = Path(os.path.dirname(cupy.__file__)) / "_core" / "include"
    dirs = [include / "cupy" / "_cccl" / lib for lib in ("cub", "thrust", "libcudacxx")]
    dirs.append(include)
    missing = [str(d) for d in dirs if not d.is_dir()]
    assert not missing, f"CuPy's headers are missing: {missing}"
    return [f"-I{d}" for d in dirs]


@pytest.fixture(scope="module", params=ARCHITECTURES)
def nvrtc_result(request):
    """(PTX, compile log) of the kernel source for one virtual architecture."""
    from cupy.cuda import nvrtc
    options = [*nvrtc_include_options(), *_runtime.KERNEL_OPTIONS, "-ftz=true",
               f"--gpu-architecture={request.param}"]
    program = nvrtc.createProgram(_runtime.KERNEL_SOURCE, "_kernels.cu", [], [])
    try:
        try:
            nvrtc.compileProgram(program, options)
        except nvrtc.NVRTCError as error:
            pytest.fail(f"NVRTC failed ({error}) with {options}:\n"
                        f"{nvrtc.getProgramLog(program)}")
        ptx = nvrtc.getPTX(program)
        return (ptx.decode() if isinstance(ptx, bytes) else ptx), nvrtc.getProgramLog(program)
    finally:
        nvrtc.destroyProgram(program)


def test_runtime_reads_the_generated_kernel_source():
    path = Path(_runtime.__file__).with_name("_kernels.cu")
    assert _runtime.KERNEL_SOURCE == path.read_text()


def test_nvrtc_ptx_has_an_entry_for_every_kernel_name(nvrtc_result):
    ptx, _ = nvrtc_result
    entries = re.findall(r"\.entry\s+(\w+)\s*\(", ptx)
    assert len(_runtime.KERNEL_NAMES) == 32
    assert sorted(entries) == sorted(_runtime.KERNEL_NAMES)


def test_nvrtc_compiles_without_warnings(nvrtc_result):
    _, log = nvrtc_result
    assert "warning" not in log.lower() and "error" not in log.lower(), log


def test_every_kernel_takes_two_arrays_and_its_indices():
    signatures = cuda_host.kernel_signatures(_runtime.KERNEL_SOURCE)
    assert sorted(signatures) == sorted(_runtime.KERNEL_NAMES)
    for name, params in signatures.items():
        indices = [p.name for p in params[2:]]
        expected = ["count", "rows", "cols"] + (["offset"] if name.split("_")[1] in
                                                ("tril", "triu") else [])
        assert indices == expected, name
        assert params[0].const and not params[1].const, name
        assert params[0].dtype == params[1].dtype, name


# -- the kernels on the CPU ------------------------------------------------------------------

@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return FakeCupy(lambda: tmp_path_factory.mktemp("cuda-host"))


@pytest.fixture(scope="module")
def runtime(fake):
    """generated/cupy/_runtime.py running on the fake CuPy."""
    return fake.load_backend()["_runtime"]


@pytest.fixture
def launches(fake):
    """The kernel launches made during one test."""
    fake.launches.clear()
    return fake.launches


@pytest.mark.parametrize("op, scalars, batch, shape, dtype", cupy_checks.kernel_cases(False))
def test_kernel_matches_numpy_exactly(runtime, launches, op, scalars, batch, shape, dtype):
    got = cupy_checks.check_structural_op(runtime, lambda x: x.get(), op, scalars, batch, shape,
                                          dtype)
    name, grid, block = cupy_checks.expected_launch(op, dtype, got.size)
    out_rows, out_cols = got.shape[-2:]
    assert launches == [(name, grid, block, (got.size, out_rows, out_cols, *scalars))]


@pytest.mark.parametrize("op, scalars, batch, shape, dtype", cupy_checks.kernel_cases(True))
def test_zero_size_input_launches_nothing(runtime, launches, op, scalars, batch, shape, dtype):
    got = cupy_checks.check_structural_op(runtime, lambda x: x.get(), op, scalars, batch, shape,
                                          dtype)
    assert got.size == 0
    assert launches == []


@pytest.mark.parametrize("op", ["copyltu", "sym", "skew"])
def test_square_only_kernels_reject_rectangular_input(runtime, launches, op):
    x = runtime._cp.asarray(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="square"):
        getattr(runtime, f"_{op}")(x)
    assert launches == []


@pytest.fixture(scope="module")
def host_kernels(tmp_path_factory):
    return cuda_host.compile_kernels(_runtime.KERNEL_SOURCE,
                                     lambda: tmp_path_factory.mktemp("cuda-host"))


@pytest.mark.parametrize("name", ["fr_triu_c128", "fr_copyltu_f32", "fr_diag_c64"])
def test_exported_thread_globals_give_the_same_result_as_the_driver(host_kernels, name):
    rng = np.random.default_rng(1)
    dtype = host_kernels.signatures[name][0].dtype
    rows = cols = 7
    source_cols = 1 if "diag" in name else cols
    x = cupy_checks.random_array(rng, (3, rows, source_cols), dtype)
    extra = (np.int64(1),) if "triu" in name else ()
    count = 3 * rows * cols
    outputs = []
    for launch in (host_kernels.launch, host_kernels.launch_from_python):
        y = np.full((3, rows, cols), np.nan, dtype)
        launch(name, (5,), (32,), (x, y, np.int64(count), np.int64(rows), np.int64(cols),
                                    *extra))
        outputs.append(y)
    assert not np.isnan(outputs[0]).any()
    assert np.array_equal(outputs[0], outputs[1])


def test_host_launch_checks_arguments_as_strictly_as_a_gpu(host_kernels):
    x, y = np.ones((4, 4)), np.empty((4, 4))
    good = (x, y, np.int64(16), np.int64(4), np.int64(4))
    host_kernels.launch("fr_sym_f64", (1,), (16,), good)
    assert np.array_equal(y, x)
    with pytest.raises(TypeError, match="int64"):
        host_kernels.launch("fr_sym_f64", (1,), (16,), (x, y, 16, np.int64(4), np.int64(4)))
    with pytest.raises(TypeError, match="float64"):
        host_kernels.launch("fr_sym_f64", (1,), (16,), (x.astype(np.float32), *good[1:]))
    with pytest.raises(ValueError, match="C-contiguous"):
        host_kernels.launch("fr_sym_f64", (1,), (16,), (x.T[::1, ::2], *good[1:]))
    with pytest.raises(TypeError, match="takes 5 arguments"):
        host_kernels.launch("fr_sym_f64", (1,), (16,), good + (np.int64(0),))
    with pytest.raises(ValueError, match="threads per block"):
        host_kernels.launch("fr_sym_f64", (1,), (2048,), good)
