"""A NumPy-backed stand-in for the parts of CuPy that the generated CuPy backend uses.

It lets the generated host code (generated/cupy/*.py) run on a machine without a GPU:

* arrays are ``DeviceArray`` objects which, like ``cupy.ndarray``, refuse implicit conversion
  to NumPy and refuse NumPy arrays as operands (``.get()`` copies to the host);
* ``RawModule(code=...).get_function(name)`` returns a kernel that runs on the CPU through
  tests/cuda_host.py, from the same CUDA source, with every launch logged;
* ``linalg.qr``, ``linalg.cholesky``, ``linalg.eigh``, ``linalg.eig``, ``linalg.svd``,
  ``linalg.solve`` and ``cupyx.scipy.linalg``'s ``solve_triangular`` and ``lu_factor`` run
  NumPy/SciPy after the argument checks and dtype rules of the CuPy functions they stand for;
* ``empty`` fills with NaN, so an element a kernel fails to write shows up in a comparison.

``FakeCupy.installed()`` puts the fake into ``sys.modules`` (and takes it out again);
``FakeCupy.load_backend()`` imports generated/cupy under a private package name with it.
"""
from __future__ import annotations

import contextlib
import importlib.util
import itertools
import sys
import types
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import scipy.linalg
from numpy.lib.mixins import NDArrayOperatorsMixin

import cuda_host

ROOT = Path(__file__).resolve().parents[1]
BACKEND_DIR = ROOT / "generated" / "cupy"
MODULE_NAMES = ("cupy", "cupy.linalg", "cupyx", "cupyx.scipy", "cupyx.scipy.linalg")
_MISSING = object()
_package_ids = itertools.count()


class DeviceArray(NDArrayOperatorsMixin):
    """An array "on the device": a NumPy array that only the fake module's functions take."""

    __slots__ = ("_data",)
    __hash__ = None

    def __init__(self, data: np.ndarray):
        if not isinstance(data, np.ndarray):
            raise TypeError(f"DeviceArray wraps a numpy.ndarray, got {type(data)}")
        self._data = data

    # -- attributes ----------------------------------------------------------------------
    shape = property(lambda self: self._data.shape)
    dtype = property(lambda self: self._data.dtype)
    size = property(lambda self: self._data.size)
    ndim = property(lambda self: self._data.ndim)
    itemsize = property(lambda self: self._data.itemsize)
    strides = property(lambda self: self._data.strides)
    flags = property(lambda self: self._data.flags)
    T = property(lambda self: DeviceArray(self._data.T))
    mT = property(lambda self: DeviceArray(self._data.mT))
    real = property(lambda self: DeviceArray(self._data.real))
    imag = property(lambda self: DeviceArray(np.asarray(self._data.imag)))

    def __len__(self):
        return len(self._data)

    def __repr__(self):
        return f"DeviceArray({self._data!r})"

    def __getitem__(self, key):
        return DeviceArray(np.asarray(self._data[_index(key)]))

    def __setitem__(self, key, value):
        self._data[_index(key)] = _operand(value, "__setitem__")

    def __bool__(self):
        return bool(self._data)

    # -- methods -------------------------------------------------------------------------
    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        return DeviceArray(self._data.astype(dtype, order=order, copy=copy))

    def conj(self):
        return DeviceArray(np.conj(self._data))

    def copy(self, order="C"):
        return DeviceArray(self._data.copy(order=order))

    def reshape(self, *shape, order="C"):
        return DeviceArray(self._data.reshape(*shape, order=order))

    def transpose(self, *axes):
        return DeviceArray(self._data.transpose(*axes))

    def squeeze(self, axis=None):
        return DeviceArray(self._data.squeeze(axis))

    def swapaxes(self, axis1, axis2):
        return DeviceArray(self._data.swapaxes(axis1, axis2))

    def get(self):
        """A NumPy copy on the host (cupy.ndarray.get)."""
        return self._data.copy()

    def max(self, axis=None, keepdims=False):
        return DeviceArray(np.asarray(self._data.max(axis=axis, keepdims=keepdims)))

    def sum(self, axis=None, dtype=None, keepdims=False):
        return DeviceArray(np.asarray(self._data.sum(axis=axis, dtype=dtype, keepdims=keepdims)))

    def any(self, axis=None, keepdims=False):
        return DeviceArray(np.asarray(self._data.any(axis=axis, keepdims=keepdims)))

    def __int__(self):
        # like cupy.ndarray: a one-element array converts to a Python int (a device sync)
        if self._data.size != 1:
            raise TypeError("only length-1 arrays can be converted to Python scalars")
        return int(self._data.reshape(()))

    def __float__(self):
        # like cupy.ndarray: a one-element array converts to a Python scalar (a device sync)
        if self._data.size != 1:
            raise TypeError("only length-1 arrays can be converted to Python scalars")
        return float(self._data.reshape(()))

    # -- NumPy protocols -----------------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        if method != "__call__":
            return NotImplemented
        operands = (_operand(x, ufunc.__name__) for x in inputs)
        if out is not None:  # written in place (x += y, cupy.add(x, y, out=x)): device arrays
            ufunc(*operands, out=tuple(_device(o, ufunc.__name__) for o in out), **kwargs)
            return out[0] if len(out) == 1 else out
        return _wrap(ufunc(*operands, **kwargs))


def _operand(x, where):
    """The host data of a device operand; Python and NumPy scalars pass, NumPy arrays do not."""
    if isinstance(x, DeviceArray):
        return x._data
    if isinstance(x, (bool, int, float, complex, np.generic)):
        return x
    raise TypeError(f"{where}: unsupported type {type(x)} (a device array or a scalar)")


def _index(key):
    """The host form of an index: basic indexing (ints, slices, None, ...) and integer device
    arrays, as CuPy takes them; host arrays and lists are refused."""
    keys = key if isinstance(key, tuple) else (key,)
    for k in keys:
        if isinstance(k, (np.ndarray, list)):
            raise TypeError("the fake indexes by ints, slices, None, ... and device arrays")
        if isinstance(k, DeviceArray) and k.dtype.kind not in "iu":
            raise TypeError("the fake indexes by integer device arrays only")
    unwrapped = tuple(k._data if isinstance(k, DeviceArray) else k for k in keys)
    return unwrapped if isinstance(key, tuple) else unwrapped[0]


def _wrap(x):
    """A ufunc's result on device operands: a device array, 0-d ones too (NumPy gives a
    scalar where CuPy gives a 0-d cupy.ndarray)."""
    if isinstance(x, tuple):
        return tuple(_wrap(y) for y in x)
    return DeviceArray(np.asarray(x)) if isinstance(x, (np.ndarray, np.generic)) else x


def _device(x, where):
    """The host data of an argument CuPy requires to be a cupy.ndarray."""
    if not isinstance(x, DeviceArray):
        raise TypeError(f"{where}: expected a device array, got {type(x)}")
    return x._data


def _empty_data(shape, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind in "fc":
        return np.full(shape, np.nan, dtype)
    return np.empty(shape, dtype)


class Launch(NamedTuple):
    """One kernel launch as the generated runtime made it."""
    name: str
    grid: tuple
    block: tuple
    indices: tuple


class FakeCupy:
    """One fake ``cupy``/``cupyx`` module set, with its kernel launch and module logs."""

    def __init__(self, make_build_dir):
        self._make_build_dir = make_build_dir
        self.launches: list[Launch] = []
        self.raw_modules: list[tuple[str, tuple]] = []  # (code, options) of each RawModule
        self.modules = self._build_modules()

    # -- sys.modules -------------------------------------------------------------------------
    @contextlib.contextmanager
    def installed(self):
        """Make ``import cupy`` / ``import cupyx...`` give the fake, and restore afterwards."""
        saved = {name: sys.modules.get(name, _MISSING) for name in MODULE_NAMES}
        sys.modules.update(self.modules)
        try:
            yield self
        finally:
            for name, module in saved.items():
                if module is _MISSING:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = module

    def load_backend(self, package_dir: Path = BACKEND_DIR) -> dict[str, types.ModuleType]:
        """Import the generated CuPy package under a private name: {submodule name: module}.

        Nothing stays in ``sys.modules``: neither the fake nor the private package.
        """
        name = f"_factorules_cupy_on_cpu_{next(_package_ids)}"
        spec = importlib.util.spec_from_file_location(
            name, package_dir / "__init__.py", submodule_search_locations=[str(package_dir)])
        package = importlib.util.module_from_spec(spec)
        with self.installed():
            sys.modules[name] = package
            try:
                spec.loader.exec_module(package)
                prefix = name + "."
                return {key[len(prefix):]: module for key, module in sys.modules.items()
                        if key.startswith(prefix)}
            finally:
                for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
                    del sys.modules[key]

    # -- the modules ---------------------------------------------------------------------
    def _build_modules(self):
        cupy = types.ModuleType("cupy", "NumPy-backed stand-in for CuPy (tests/fake_cupy.py).")
        linalg = types.ModuleType("cupy.linalg")
        cupyx = types.ModuleType("cupyx")
        cupyx_scipy = types.ModuleType("cupyx.scipy")
        cupyx_linalg = types.ModuleType("cupyx.scipy.linalg")
        fake = self

        class RawModule:
            """cupy.RawModule: kernels compiled for the host from the same source."""

            def __init__(self, code=None, path=None, options=(), backend="nvrtc", **kwargs):
                if code is None or path is not None:
                    raise NotImplementedError("the fake RawModule takes code=... only")
                if not isinstance(options, tuple) or not all(isinstance(o, str) for o in options):
                    raise TypeError(f"options must be a tuple of str, got {options!r}")
                self.code, self.options = code, options
                self._kernels = None
                fake.raw_modules.append((code, options))

            def get_function(self, name):
                if self._kernels is None:
                    self._kernels = cuda_host.compile_kernels(self.code, fake._make_build_dir)
                if name not in self._kernels.signatures:
                    raise KeyError(f"no kernel named {name!r} in the module")
                return RawFunction(self._kernels, name)

        class RawFunction:
            """A kernel: ``kernel(grid, block, args)`` as cupy.RawKernel/Function calls it."""

            def __init__(self, kernels, name):
                self._kernels, self.name = kernels, name

            def __call__(self, grid, block, args, *, shared_mem=0, stream=None):
                host_args = tuple(_device(a, self.name) if isinstance(a, (DeviceArray, np.ndarray))
                                  else a for a in args)
                fake.launches.append(Launch(self.name, tuple(grid), tuple(block),
                                            tuple(a for a in args if isinstance(a, np.generic))))
                self._kernels.launch(self.name, grid, block, host_args)

        def asarray(a, dtype=None, order=None):
            if isinstance(a, DeviceArray):
                return a if dtype is None or np.dtype(dtype) == a.dtype else a.astype(dtype)
            return DeviceArray(np.array(a, dtype=dtype, copy=True))

        def ascontiguousarray(a, dtype=None):
            data = _device(a, "ascontiguousarray")
            if data.flags.c_contiguous and (dtype is None or np.dtype(dtype) == data.dtype):
                return a
            return DeviceArray(np.ascontiguousarray(data, dtype=dtype).copy())

        def empty(shape, dtype=float, order="C"):
            return DeviceArray(_empty_data(shape, dtype))

        def zeros(shape, dtype=float, order="C"):
            return DeviceArray(np.zeros(shape, dtype))

        def zeros_like(a, dtype=None):
            data = _device(a, "zeros_like")
            return DeviceArray(np.zeros(data.shape, dtype or data.dtype))

        def eye(N, M=None, k=0, dtype=float):
            return DeviceArray(np.eye(N, M, k, dtype=dtype))

        def arange(*args, dtype=None):
            return DeviceArray(np.arange(*args, dtype=dtype))

        def rint(a):
            return DeviceArray(np.asarray(np.rint(_device(a, "rint"))))

        def take_along_axis(a, indices, axis):
            return DeviceArray(np.take_along_axis(_device(a, "take_along_axis"),
                                                  _device(indices, "take_along_axis"), axis))

        def stack(arrays, axis=0):
            return DeviceArray(np.stack([_device(a, "stack") for a in arrays], axis))

        def concatenate(arrays, axis=0):
            return DeviceArray(np.concatenate([_device(a, "concatenate") for a in arrays], axis))

        def pad(array, pad_width, mode="constant", **kwargs):
            if mode != "constant":
                raise NotImplementedError("the fake pads with mode='constant' only")
            return DeviceArray(np.pad(_device(array, "pad"), pad_width, mode, **kwargs))

        def swapaxes(a, axis1, axis2):
            return DeviceArray(np.swapaxes(_device(a, "swapaxes"), axis1, axis2))

        def conj(a):
            return DeviceArray(np.conj(_device(a, "conj")))

        def flip(a, axis=None):
            return DeviceArray(np.flip(_device(a, "flip"), axis))

        def diagonal(a, offset=0, axis1=0, axis2=1):
            return DeviceArray(np.diagonal(_device(a, "diagonal"), offset, axis1, axis2))

        def broadcast_to(a, shape):
            return DeviceArray(np.broadcast_to(_device(a, "broadcast_to"), shape))

        def result_type(*arrays_and_dtypes):
            return np.result_type(*(x.dtype if isinstance(x, DeviceArray) else x
                                    for x in arrays_and_dtypes))

        def asnumpy(a):
            return _device(a, "asnumpy").copy()

        def abs_(a):
            return DeviceArray(np.asarray(np.abs(_device(a, "abs"))))

        def real(a):
            return DeviceArray(np.asarray(np.real(_device(a, "real"))).copy())

        def imag(a):
            return DeviceArray(np.asarray(np.imag(_device(a, "imag"))).copy())

        def cumsum(a, axis=None):
            return DeviceArray(np.cumsum(_device(a, "cumsum"), axis=axis))

        def full(shape, fill_value, dtype=None):
            return DeviceArray(np.full(shape, fill_value, dtype))

        def argmax(a, axis=None):
            return DeviceArray(np.asarray(np.argmax(_device(a, "argmax"), axis=axis)))

        def sort(a, axis=-1):
            return DeviceArray(np.sort(_device(a, "sort"), axis=axis))

        def ufunc(name):
            def call(*args, out=None):
                operands = (_operand(a, name) for a in args)
                if out is not None:  # cupy.add(x, y, out=x): into a device array
                    getattr(np, name)(*operands, out=_device(out, name))
                    return out
                return _wrap(np.asarray(getattr(np, name)(*operands)))
            return call

        def tril(a, k=0):
            return DeviceArray(np.tril(_device(a, "tril"), k))

        def triu(a, k=0):
            return DeviceArray(np.triu(_device(a, "triu"), k))

        def einsum(subscripts, *operands):
            return DeviceArray(np.asarray(np.einsum(subscripts, *(_device(x, "einsum")
                                                                  for x in operands))))

        def iscomplexobj(a):
            return np.iscomplexobj(_device(a, "iscomplexobj"))

        def where(condition, x, y):
            return DeviceArray(np.asarray(np.where(_device(condition, "where"),
                                                   _operand(x, "where"), _operand(y, "where"))))

        def qr(a, mode="reduced"):
            data = _device(a, "linalg.qr")
            if mode not in ("reduced", "complete", "r", "raw"):
                raise ValueError(f"Unrecognized mode {mode!r}")
            if mode == "raw" and data.ndim != 2:
                # spec/geqrf.yaml calls raw mode one matrix at a time (batched: false)
                raise ValueError("raw mode only supports 2-D input")
            return _wrap(np.linalg.qr(data, mode=mode))

        def cholesky(a):
            # The checks of cupy.linalg.cholesky (stacked since CuPy 9); like LAPACK's potrf
            # it reads the lower triangle.
            data = _device(a, "linalg.cholesky")
            if data.ndim < 2:
                raise np.linalg.LinAlgError(f"{data.ndim}-dimensional array given. Array must "
                                            f"be at least two-dimensional")
            if data.shape[-1] != data.shape[-2]:
                raise np.linalg.LinAlgError("Last 2 dimensions of the array must be square")
            return DeviceArray(np.linalg.cholesky(data))

        def eigh(a, UPLO="L"):
            # The checks of cupy.linalg.eigh (stacked since CuPy 9): eigenvalues real, in the
            # real dtype of A's precision, eigenvectors in A's dtype.
            data = _device(a, "linalg.eigh")
            if UPLO not in ("L", "U"):
                raise ValueError("UPLO argument must be 'L' or 'U'")
            if data.ndim < 2:
                raise np.linalg.LinAlgError(f"{data.ndim}-dimensional array given. Array must "
                                            f"be at least two-dimensional")
            if data.shape[-1] != data.shape[-2]:
                raise np.linalg.LinAlgError("Last 2 dimensions of the array must be square")
            return _wrap(tuple(np.linalg.eigh(data, UPLO=UPLO)))

        def eig(a):
            # cupy.linalg.eig (CuPy 14, cuSOLVER geev); NumPy's result, which is real when
            # every eigenvalue is (the generated code casts to complex itself)
            data = _device(a, "linalg.eig")
            if data.ndim < 2:
                raise np.linalg.LinAlgError(f"{data.ndim}-dimensional array given. Array must "
                                            f"be at least two-dimensional")
            if data.shape[-1] != data.shape[-2]:
                raise np.linalg.LinAlgError("Last 2 dimensions of the array must be square")
            return _wrap(tuple(np.linalg.eig(data)))

        def svd(a, full_matrices=True, compute_uv=True):
            data = _device(a, "linalg.svd")
            if data.ndim < 2:
                raise np.linalg.LinAlgError(f"{data.ndim}-dimensional array given. Array must "
                                            f"be at least two-dimensional")
            return _wrap(tuple(np.linalg.svd(data, full_matrices=full_matrices,
                                             compute_uv=True)) if compute_uv
                         else np.linalg.svd(data, compute_uv=False))

        def solve(a, b):
            a, b = _device(a, "linalg.solve"), _device(b, "linalg.solve")
            if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
                raise ValueError("a must be a square matrix or a stack of square matrices")
            if b.ndim == 0:
                raise ValueError("b must have at least one dimension")
            if b.ndim == 1 and a.shape[-1] != b.size:
                raise ValueError("a must have (..., M, M) shape and b must have (M,) shape")
            if b.ndim > 1 and a.shape[:-1] != b.shape[:-1]:  # CuPy does not broadcast here
                raise ValueError("a must have (..., M, M) shape and b must have (..., M, K) "
                                 "shape for multidimensional b")
            return DeviceArray(np.linalg.solve(a, b))

        def solve_triangular(a, b, trans=0, lower=False, unit_diagonal=False,
                             overwrite_b=False, check_finite=False):
            a = _device(a, "solve_triangular")
            b = _device(b, "solve_triangular")
            # The shape checks of cupyx.scipy.linalg.solve_triangular (batched since CuPy 13).
            if a.ndim == 2:
                if a.shape[0] != a.shape[1]:
                    raise ValueError("expected square matrix")
                if len(a) != len(b):
                    raise ValueError("incompatible dimensions")
            elif a.ndim > 2:
                if a.shape[-1] != a.shape[-2]:
                    raise ValueError("expected a batch of square matrices")
                if a.shape[:-2] != b.shape[:a.ndim - 2]:
                    raise ValueError("incompatible batch count")
                if b.ndim < a.ndim - 1 or a.shape[-2] != b.shape[a.ndim - 2]:
                    raise ValueError("incompatible dimensions")
            else:
                raise ValueError("expected one square matrix or a batch of square matrices")
            if b.ndim != a.ndim:
                raise NotImplementedError("the fake solves matrix right-hand sides only")
            # CuPy computes in A's precision (at least float32) and casts B to it.
            dtype = a.dtype if a.dtype.char in "fd" else np.promote_types(a.dtype.char, "f")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
                a, b = a.astype(dtype), b.astype(dtype)
            x = scipy.linalg.solve_triangular(a, b, trans=trans, lower=lower,
                                              unit_diagonal=unit_diagonal, check_finite=False)
            return DeviceArray(x.astype(dtype, copy=False))

        def lu_factor(a, overwrite_a=False, check_finite=True):
            # cupyx.scipy.linalg.lu_factor (cuSOLVER getrf): one (M, N) matrix, pivots
            # numbered from 0 as in SciPy
            data = _device(a, "lu_factor")
            if data.ndim != 2:
                raise ValueError(f"expected a matrix, got a {data.ndim}-dimensional array")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
                lu, piv = scipy.linalg.lu_factor(data, check_finite=False)
            return DeviceArray(lu), DeviceArray(piv.astype(np.int32))

        for name, value in dict(
                ndarray=DeviceArray, stack=stack, arange=arange, rint=rint, take_along_axis=take_along_axis,
                RawModule=RawModule, asarray=asarray, array=asarray,
                ascontiguousarray=ascontiguousarray, empty=empty, zeros=zeros,
                zeros_like=zeros_like, eye=eye, concatenate=concatenate, pad=pad,
                swapaxes=swapaxes, conj=conj, conjugate=conj, flip=flip, diagonal=diagonal,
                broadcast_to=broadcast_to, result_type=result_type, asnumpy=asnumpy,
                abs=abs_, absolute=abs_, real=real, imag=imag, cumsum=cumsum,
                iscomplexobj=iscomplexobj, where=where,
                dtype=np.dtype, float32=np.float32, float64=np.float64, complex64=np.complex64,
                complex128=np.complex128, linalg=linalg, full=full, argmax=argmax, sort=sort,
                sqrt=ufunc("sqrt"), maximum=ufunc("maximum"), minimum=ufunc("minimum"),
                matmul=ufunc("matmul"), add=ufunc("add"), subtract=ufunc("subtract"),
                tril=tril, triu=triu,
                einsum=einsum).items():
            setattr(cupy, name, value)
        linalg.qr, linalg.solve, linalg.cholesky = qr, solve, cholesky
        linalg.eigh, linalg.eig, linalg.svd = eigh, eig, svd
        cupyx.scipy, cupyx_scipy.linalg = cupyx_scipy, cupyx_linalg
        cupyx_linalg.solve_triangular, cupyx_linalg.lu_factor = solve_triangular, lu_factor

        def missing(module_name):
            def __getattr__(attr):
                raise AttributeError(f"the fake {module_name} has no {attr!r}: "
                                     f"add it to tests/fake_cupy.py")
            return __getattr__

        for module in (cupy, linalg, cupyx, cupyx_scipy, cupyx_linalg):
            module.__getattr__ = missing(module.__name__)
        return dict(zip(MODULE_NAMES, (cupy, linalg, cupyx, cupyx_scipy, cupyx_linalg)))

    @property
    def cupy(self):
        return self.modules["cupy"]
