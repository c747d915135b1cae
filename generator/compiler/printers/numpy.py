"""NumPy reference backend: SymPy's NumPyPrinter made batch-aware."""
from sympy.printing.numpy import NumPyPrinter

from .base import BatchedMatrixPrinter

RUNTIME_FILES = ("__init__.py.jinja", "_runtime.py", "_array_module.py", "sparse_qr.py")


class Printer(BatchedMatrixPrinter, NumPyPrinter):
    ALIASES = {"numpy": "_np", "scipy": "_scipy"}
    OPS = {
        "adjoint": "_adjoint({x})",
        "transpose": "_np.swapaxes({x}, -1, -2)",
        "conj": "_np.conj({x})",
        "tril": "_np.tril({x}, {offset})",
        "triu": "_np.triu({x}, {offset})",
        "copyltu": "_copyltu({x})",
        "sym": "_sym({x})",
        "skew": "_skew({x})",
        "re": "_np.real({x})",
        "im": "_np.imag({x})",
        "diagonal": "_np.diagonal({x}, 0, -2, -1)[..., :, None]",
        "diag": "_diag({v})",
        "pairwise_inv": "_pairwise_inv({x})",
        "recip": "1 / {x}",
        "scale_cols": "{x} * _np.swapaxes({v}, -1, -2)",
        "scale_rows": "{v} * {x}",
        "permute_rows": "_permute_rows({p}, {x}, {transpose})",
        "permute_cols": "_permute_cols({p}, {x}, {transpose})",
        "solve_triangular": "_solve_triangular({t}, {b}, upper={upper}, left={left}, unit={unit})",
        "solve": "_solve({a}, {b}, left={left})",
        "hstack": "_np.concatenate([{xs}], axis=-1)",
        "vstack": "_np.concatenate([{xs}], axis=-2)",
        "pad_rows": "_pad_rows({x}, {extra})",
        "pad_cols": "_pad_cols({x}, {extra})",
        "pad": "_pad({x}, {top}, {bottom}, {left}, {right})",
        "eye": "_np.eye({rows}, {cols}, dtype={ref}.dtype)",
    }
