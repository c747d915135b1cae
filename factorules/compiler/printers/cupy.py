"""CuPy backend: SymPy's CuPyPrinter made batch-aware; structural steps are CUDA kernels.

Every triangle/Hermitian/real-part/diagonal step prints as a call to a launcher in the
generated ``_runtime.py``, which runs a kernel from the generated ``_kernels.cu``.
"""
from sympy.printing.numpy import CuPyPrinter

from .base import IN_PLACE_SUM_OPS, BatchedMatrixPrinter, numpy_api_ops

# Structural operations that run as generated kernels, and the kernel each one uses.
KERNEL_OPS = ("tril", "triu", "copyltu", "sym", "skew", "re", "im", "diag")


class Printer(BatchedMatrixPrinter, CuPyPrinter):
    ALIASES = {"cupy": "_cp", "cupyx": "_cupyx"}
    RELEASES_NAMES = True
    OPS = {
        **numpy_api_ops("_cp"),
        **IN_PLACE_SUM_OPS,
        "adjoint": "_cp.conj(_cp.swapaxes({x}, -1, -2))",
        # kernel launchers of the runtime (KERNEL_OPS) where NumPy's API has a function
        "tril": "_tril({x}, {offset})",
        "triu": "_triu({x}, {offset})",
        "re": "_re({x})",
        "im": "_im({x})",
    }
