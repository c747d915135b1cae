"""NumPy reference backend: SymPy's NumPyPrinter made batch-aware."""
from sympy.printing.numpy import NumPyPrinter

from .base import IN_PLACE_SUM_OPS, BatchedMatrixPrinter, numpy_api_ops


class Printer(BatchedMatrixPrinter, NumPyPrinter):
    ALIASES = {"numpy": "_np", "scipy": "_scipy"}
    RELEASES_NAMES = True
    BLOCKS_ROWS = True
    OPS = {**numpy_api_ops("_np"), **IN_PLACE_SUM_OPS, "adjoint": "_adjoint({x})"}
