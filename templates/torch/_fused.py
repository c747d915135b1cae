"""Fused pullbacks on the CPU: a whole VJP rule per matrix in one C++ kernel.

Hand-written, not generated: ``python cli.py generate`` copies this file, under its header, into
generated/torch/, and the kernels' sources (rendered from the specs by
factorules.compiler.fused, with the header they include) into generated/torch/_fused_sources/.

A kernel is compiled on its first use for one spec, one pullback, one dtype and the matrix
sizes it meets (the sizes are constants of the code: the compiler unrolls and vectorises
every loop), with the C++ compiler $CXX (default g++) and OpenMP, into a cache folder:
$FACTORULES_CACHE, else ~/.cache/factorules; later runs load it from there.  Where no
compiler works, a warning says so once and the rules run unfused.  FACTORULES_FUSED=0 turns
the fused path off.
"""
import ctypes as _ctypes
import hashlib as _hashlib
import os as _os
import shutil as _shutil
import subprocess as _subprocess
import tempfile as _tempfile
import threading as _threading
import warnings as _warnings
from pathlib import Path as _Path

SOURCES = _Path(__file__).with_name("_fused_sources")
HEADER = "fr_small.h"
FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-std=c++17", "-fopenmp", "-shared", "-fPIC",
         "-Wno-psabi")
# a batch of fewer matrices than this runs unfused (the call's fixed cost outweighs what it
# saves); matrices larger than this in any dimension too (blocked products win there)
MIN_BATCH = 64
MAX_SIZE = 16

_LOCK = _threading.Lock()
_KERNELS = {}  # (spec, kernel, suffix, sizes) -> the loaded function, or None: unavailable
_WARNED = []


def enabled() -> bool:
    """Whether the fused path may run (FACTORULES_FUSED=0 turns it off)."""
    return _os.environ.get("FACTORULES_FUSED", "1") != "0"


def cache_folder() -> _Path:
    root = _os.environ.get("FACTORULES_CACHE")
    return _Path(root) if root else _Path.home() / ".cache" / "factorules"


def _compiler():
    return _shutil.which(_os.environ.get("CXX", "g++"))


def _build(spec: str, symbol: str, sizes: tuple) -> _Path:
    """The shared library holding ``symbol`` compiled for ``sizes``, from the cache or built."""
    compiler = _compiler()
    if compiler is None:
        raise OSError(f"no C++ compiler ({_os.environ.get('CXX', 'g++')}) on PATH")
    source = SOURCES / f"{spec}.cpp"
    defines = [f"-DFR_KERNEL_{symbol}", *(f"-DFR_DIM_{name}={value}" for name, value in sizes)]
    digest = _hashlib.sha256()
    for part in (source.read_bytes(), (SOURCES / HEADER).read_bytes(),
                 " ".join((compiler, *FLAGS, *defines)).encode()):
        digest.update(part)
    folder = cache_folder() / "fused"
    library = folder / f"{symbol}-{digest.hexdigest()[:20]}.so"
    if library.exists():
        return library
    folder.mkdir(parents=True, exist_ok=True)
    handle, partial = _tempfile.mkstemp(suffix=".so", dir=folder)
    _os.close(handle)
    try:
        done = _subprocess.run([compiler, *FLAGS, *defines, f"-I{SOURCES}", str(source), "-o",
                                partial], capture_output=True, text=True)
        if done.returncode != 0:
            raise OSError(f"{compiler} failed on {source.name}: {done.stderr[-2000:]}")
        _os.replace(partial, library)  # whole, or not at all: another process may race
    finally:
        if _os.path.exists(partial):
            _os.unlink(partial)
    return library


def kernel(spec: str, name: str, suffix: str, sizes: dict):
    """The kernel fr_<name>_<suffix> of ``spec`` for these sizes ({dim: size}), or None where
    it cannot be built (warned once)."""
    key = (spec, name, suffix, tuple(sorted(sizes.items())))
    with _LOCK:
        if key not in _KERNELS:
            symbol = f"fr_{name}_{suffix}"
            try:
                function = getattr(_ctypes.CDLL(str(_build(spec, symbol, key[3]))), symbol)
            except OSError as error:
                if not _WARNED:
                    _WARNED.append(error)
                    _warnings.warn(f"factorules: the fused pullbacks are unavailable, the rules "
                                   f"run unfused ({error})", RuntimeWarning, stacklevel=3)
                function = None
            else:
                function.restype = _ctypes.c_int
                function.argtypes = (_ctypes.c_void_p, _ctypes.c_void_p, _ctypes.c_void_p,
                                     _ctypes.c_int64)
            _KERNELS[key] = function
        return _KERNELS[key]


def run(function, inputs, strides, outputs, count: int) -> bool:
    """Call a kernel on ``count`` matrices: ``inputs`` are the addresses of its arrays with
    ``strides`` (three per input, in entries: between matrices, rows, columns), ``outputs``
    those of C-contiguous arrays, in the kernel's order.  False when no case of its rule held."""
    given = (_ctypes.c_void_p * len(inputs))(*inputs)
    steps = (_ctypes.c_int64 * len(strides))(*strides)
    taken = (_ctypes.c_void_p * len(outputs))(*outputs)
    return function(given, steps, taken, count) == 1
