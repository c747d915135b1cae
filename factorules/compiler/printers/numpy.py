"""NumPy reference backend: SymPy's NumPyPrinter made batch-aware."""
from sympy.printing.numpy import NumPyPrinter

from .base import BatchedMatrixPrinter, numpy_api_ops


class Printer(BatchedMatrixPrinter, NumPyPrinter):
    ALIASES = {"numpy": "_np", "scipy": "_scipy"}
    OPS = {**numpy_api_ops("_np"), "adjoint": "_adjoint({x})"}
