"""One printer per backend; ``BACKENDS`` maps a backend name to its printer module.

Each module defines ``Printer`` (a SymPy printer subclass with the backend's op table) and
``RUNTIME_FILES`` (templates rendered once per backend, besides one module per spec).
"""
from . import cupy, jax, numpy, torch

BACKENDS = {"numpy": numpy, "torch": torch, "jax": jax, "cupy": cupy}
