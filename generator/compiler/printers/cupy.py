"""CuPy backend: SymPy's CuPyPrinter made batch-aware; structural steps are CUDA kernels.

Every triangle/Hermitian/real-part/diagonal step prints as a call to a launcher in the
generated ``_runtime.py``, which runs a kernel from the generated ``_kernels.cu``.
"""
from sympy.printing.numpy import CuPyPrinter

from .base import BatchedMatrixPrinter

RUNTIME_FILES = ("__init__.py.jinja", "_runtime.py", "_array_module.py", "_kernels.cu.jinja")

# Structural operations that run as generated kernels, and the kernel each one uses.
KERNEL_OPS = ("tril", "triu", "copyltu", "sym", "skew", "re", "im", "diag")


class Printer(BatchedMatrixPrinter, CuPyPrinter):
    ALIASES = {"cupy": "_cp", "cupyx": "_cupyx"}
    OPS = {
        "adjoint": "_cp.conj(_cp.swapaxes({x}, -1, -2))",
        "transpose": "_cp.swapaxes({x}, -1, -2)",
        "conj": "_cp.conj({x})",
        "tril": "_tril({x}, {offset})",
        "triu": "_triu({x}, {offset})",
        "copyltu": "_copyltu({x})",
        "sym": "_sym({x})",
        "skew": "_skew({x})",
        "re": "_re({x})",
        "im": "_im({x})",
        "diagonal": "_cp.diagonal({x}, 0, -2, -1)[..., :, None]",
        "diag": "_diag({v})",
        "pairwise_inv": "_pairwise_inv({x})",
        "recip": "1 / {x}",
        "scale_cols": "{x} * _cp.swapaxes({v}, -1, -2)",
        "scale_rows": "{v} * {x}",
        "permute_rows": "_permute_rows({p}, {x}, {transpose})",
        "permute_cols": "_permute_cols({p}, {x}, {transpose})",
        "solve_triangular": "_solve_triangular({t}, {b}, upper={upper}, left={left}, unit={unit})",
        "solve": "_solve({a}, {b}, left={left})",
        "hstack": "_cp.concatenate([{xs}], axis=-1)",
        "vstack": "_cp.concatenate([{xs}], axis=-2)",
        "pad_rows": "_pad_rows({x}, {extra})",
        "pad_cols": "_pad_cols({x}, {extra})",
        "pad": "_pad({x}, {top}, {bottom}, {left}, {right})",
        "eye": "_cp.eye({rows}, {cols}, dtype={ref}.dtype)",
    }
