"""Run the CUDA kernels of generated/cupy/_kernels.cu on the CPU.

The kernel source is compiled as host C++ against tests/cuda_host_shim.h into a shared
library (g++ -DFACTORULES_HOST); a launch runs every thread of the grid in turn.  Arguments
are checked against the kernel's parameter list in the source, as strictly as a GPU needs
them: C-contiguous arrays of the parameter's element type, 64-bit integers for indices.
"""
from __future__ import annotations

import ctypes
import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHIM_DIR = Path(__file__).resolve().parent
SHIM = SHIM_DIR / "cuda_host_shim.h"
COMPILER = "g++"
FLAGS = ("-shared", "-fPIC", "-O1", "-std=c++17", "-Wall", "-Werror", "-DFACTORULES_HOST")

# Kernel parameter types -> NumPy dtypes; "fr_index" is the kernels' 64-bit index type.
ELEMENT_DTYPES = {"float": np.dtype(np.float32), "double": np.dtype(np.float64),
                  "complex<float>": np.dtype(np.complex64),
                  "complex<double>": np.dtype(np.complex128)}
INDEX_TYPE = "fr_index"
MAX_THREADS_PER_BLOCK = 1024

_KERNEL = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(([^)]*)\)')
_POINTER = re.compile(r"^(const\s+)?(.+?)\s*\*\s*(\w+)$")
_INDEX = re.compile(rf"^{INDEX_TYPE}\s+(\w+)$")


class Dim3(ctypes.Structure):
    """The shim's fr_dim3."""
    _fields_ = [("x", ctypes.c_uint), ("y", ctypes.c_uint), ("z", ctypes.c_uint)]


@dataclass(frozen=True)
class Param:
    """One kernel parameter: an array (dtype set) or a 64-bit index (dtype None)."""
    name: str
    dtype: np.dtype | None = None
    const: bool = False


def kernel_signatures(source: str) -> dict[str, tuple[Param, ...]]:
    """{kernel name: parameters} for every extern "C" __global__ function in ``source``."""
    signatures = {}
    for name, params in _KERNEL.findall(source):
        parsed = []
        for text in (" ".join(p.split()) for p in params.split(",")):
            pointer, index = _POINTER.match(text), _INDEX.match(text)
            if pointer and pointer.group(2) in ELEMENT_DTYPES:
                parsed.append(Param(pointer.group(3), ELEMENT_DTYPES[pointer.group(2)],
                                    bool(pointer.group(1))))
            elif index:
                parsed.append(Param(index.group(1)))
            else:
                raise ValueError(f"{name}: unsupported kernel parameter {text!r}")
        if [p.dtype is not None for p in parsed[:2]] != [True, True] or \
                any(p.dtype is not None for p in parsed[2:]):
            raise ValueError(f"{name}: expected (input array, output array, indices...)")
        signatures[name] = tuple(parsed)
    return signatures


def _dims(value, what):
    dims = tuple(value)
    if not 1 <= len(dims) <= 3 or not all(isinstance(d, (int, np.integer)) and d >= 1
                                          for d in dims):
        raise ValueError(f"{what} must be 1 to 3 positive integers, got {value!r}")
    return Dim3(*(int(d) for d in dims + (1,) * (3 - len(dims))))


class HostKernels:
    """The kernels of one source, compiled for the host and loaded with ctypes."""

    def __init__(self, library: Path, source: str):
        self.library = library
        self.signatures = kernel_signatures(source)
        self._lib = ctypes.CDLL(str(library))
        self._lib.fr_host_launch.argtypes = [ctypes.c_void_p, Dim3, Dim3, ctypes.c_void_p,
                                             ctypes.c_void_p, ctypes.c_int,
                                             ctypes.POINTER(ctypes.c_longlong)]
        self._lib.fr_host_launch.restype = ctypes.c_int

    def _checked(self, name, grid, block, args):
        """(grid, block, input pointer, output pointer, indices) after checking every argument."""
        if name not in self.signatures:
            raise KeyError(f"no kernel named {name!r} in the source")
        params = self.signatures[name]
        grid, block = _dims(grid, "grid"), _dims(block, "block")
        if block.x * block.y * block.z > MAX_THREADS_PER_BLOCK:
            raise ValueError(f"{name}: more than {MAX_THREADS_PER_BLOCK} threads per block")
        if len(args) != len(params):
            raise TypeError(f"{name}: takes {len(params)} arguments, got {len(args)}")
        pointers, indices = [], []
        for param, arg in zip(params, args):
            if param.dtype is None:
                if type(arg) is not np.int64:
                    raise TypeError(f"{name}: {param.name} must be numpy.int64 (the kernel "
                                    f"reads 64 bits), got {type(arg).__name__}")
                indices.append(int(arg))
                continue
            if not isinstance(arg, np.ndarray):
                raise TypeError(f"{name}: {param.name} must be an array, got {type(arg)}")
            if arg.dtype != param.dtype:
                raise TypeError(f"{name}: {param.name} must be {param.dtype}, got {arg.dtype}")
            if not arg.flags.c_contiguous:
                raise ValueError(f"{name}: {param.name} must be C-contiguous")
            if not param.const and not arg.flags.writeable:
                raise ValueError(f"{name}: {param.name} is written but not writeable")
            pointers.append(arg.ctypes.data)
        if np.shares_memory(args[0], args[1]):
            raise ValueError(f"{name}: input and output overlap")
        return grid, block, pointers[0], pointers[1], indices

    def launch(self, name, grid, block, args):
        """Run kernel ``name`` over grid x block with CuPy-style ``args`` (arrays on the host)."""
        grid, block, x, y, indices = self._checked(name, grid, block, args)
        kernel = ctypes.cast(getattr(self._lib, name), ctypes.c_void_p)
        values = (ctypes.c_longlong * len(indices))(*indices)
        if self._lib.fr_host_launch(kernel, grid, block, x, y, len(indices), values) != 0:
            raise ValueError(f"{name}: the host driver does not take {len(indices)} indices")

    def launch_from_python(self, name, grid, block, args):
        """As ``launch``, but looping here and setting the shim's exported index globals."""
        grid, block, x, y, indices = self._checked(name, grid, block, args)
        kernel = getattr(self._lib, name)
        kernel.argtypes = [ctypes.c_void_p, ctypes.c_void_p] + [ctypes.c_longlong] * len(indices)
        kernel.restype = None
        globals_ = {n: Dim3.in_dll(self._lib, n)
                    for n in ("threadIdx", "blockIdx", "blockDim", "gridDim")}
        for target, value in (("gridDim", grid), ("blockDim", block)):
            globals_[target].x, globals_[target].y, globals_[target].z = value.x, value.y, value.z
        for bz in range(grid.z):
            for by in range(grid.y):
                for bx in range(grid.x):
                    for tz in range(block.z):
                        for ty in range(block.y):
                            for tx in range(block.x):
                                b, t = globals_["blockIdx"], globals_["threadIdx"]
                                b.x, b.y, b.z = bx, by, bz
                                t.x, t.y, t.z = tx, ty, tz
                                kernel(x, y, *indices)


_libraries: dict[str, Path] = {}


def compile_kernels(source: str, make_build_dir) -> HostKernels:
    """Compile ``source`` for the host once per process; ``make_build_dir()`` gives a directory."""
    compiler = shutil.which(COMPILER)
    if compiler is None:
        raise FileNotFoundError(f"no host C++ compiler ({COMPILER}) on PATH")
    key = hashlib.sha256("\0".join((source, SHIM.read_text(), *FLAGS)).encode()).hexdigest()
    if key not in _libraries:
        build_dir = Path(make_build_dir())
        kernels = build_dir / "kernels.cu"
        library = build_dir / f"kernels-{key[:16]}.so"
        kernels.write_text(source)
        result = subprocess.run([compiler, *FLAGS, f"-I{SHIM_DIR}", "-x", "c++", str(kernels),
                                 "-o", str(library)], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"host compilation of the kernels failed:\n{result.stderr}")
        _libraries[key] = library
    return HostKernels(_libraries[key], source)
