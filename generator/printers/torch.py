"""PyTorch backend: SymPy's TorchPrinter made batch-aware (``.mH``, ``@``, linalg solves)."""
from sympy.printing.pytorch import TorchPrinter

from .base import BatchedMatrixPrinter

RUNTIME_FILES = ("__init__.py.jinja", "_runtime.py.jinja")


class Printer(BatchedMatrixPrinter, TorchPrinter):
    ALIASES = {"torch": "_torch"}
    OPS = {
        "adjoint": "{x}.mH",
        "transpose": "{x}.mT",
        "conj": "{x}.conj()",
        "tril": "{x}.tril({offset})",
        "triu": "{x}.triu({offset})",
        "copyltu": "_copyltu({x})",
        "sym": "_sym({x})",
        "skew": "_skew({x})",
        "re": "_re({x})",
        "im": "_im({x})",
        "diagonal": "{x}.diagonal(dim1=-2, dim2=-1).unsqueeze(-1)",
        "diag": "_torch.diag_embed({v}.squeeze(-1))",
        "solve_triangular": "_torch.linalg.solve_triangular({t}, {b}, upper={upper}, "
                            "left={left}, unitriangular={unit})",
        "solve": "_torch.linalg.solve({a}, {b}, left={left})",
        "hstack": "_torch.cat([{xs}], dim=-1)",
        "vstack": "_torch.cat([{xs}], dim=-2)",
        "pad_rows": "_pad_rows({x}, {extra})",
        "pad_cols": "_pad_cols({x}, {extra})",
        "eye": "_torch.eye({rows}, {cols}, dtype={ref}.dtype, device={ref}.device)",
    }
