"""One printer per backend; ``BACKENDS`` maps a backend name to its printer module.

Each module defines ``Printer`` (a SymPy printer subclass with the backend's op table) and
``RUNTIME_FILES`` (files generated once per backend, besides one module per spec: a .jinja
template under templates/<backend>/ rendered, a hand-written runtime source there copied).
"""
from . import cupy, jax, numpy, torch

BACKENDS = {"numpy": numpy, "torch": torch, "jax": jax, "cupy": cupy}
