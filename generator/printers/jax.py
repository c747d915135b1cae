"""JAX backend: SymPy's JaxPrinter made batch-aware (``lax.linalg`` solves)."""
from sympy.printing.numpy import JaxPrinter

from .base import BatchedMatrixPrinter

RUNTIME_FILES = ("__init__.py.jinja", "_runtime.py.jinja")


class Printer(BatchedMatrixPrinter, JaxPrinter):
    ALIASES = {"jax": "_jax"}
    OPS = {
        "adjoint": "{x}.mT.conj()",
        "transpose": "{x}.mT",
        "conj": "{x}.conj()",
        "tril": "_jnp.tril({x}, {offset})",
        "triu": "_jnp.triu({x}, {offset})",
        "copyltu": "_copyltu({x})",
        "sym": "_sym({x})",
        "skew": "_skew({x})",
        "re": "_jnp.real({x})",
        "im": "_jnp.imag({x})",
        "diagonal": "_jnp.diagonal({x}, 0, -2, -1)[..., :, None]",
        "diag": "_diag({v})",
        "solve_triangular": "_solve_triangular({t}, {b}, upper={upper}, left={left}, unit={unit})",
        "solve": "_solve({a}, {b}, left={left})",
        "hstack": "_jnp.concatenate([{xs}], axis=-1)",
        "vstack": "_jnp.concatenate([{xs}], axis=-2)",
        "pad_rows": "_pad_rows({x}, {extra})",
        "pad_cols": "_pad_cols({x}, {extra})",
        "eye": "_jnp.eye({rows}, {cols}, dtype={ref}.dtype)",
    }
