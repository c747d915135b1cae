"""JAX backend: SymPy's JaxPrinter made batch-aware (``lax.linalg`` solves).

``diag(diagonal(X))`` and ``diag(re(diagonal(X)))`` of a square X print as a masked select,
``_diag_part(X)``: ``jnp.diagonal`` lowers to a gather (and its transpose to a scatter),
which XLA cannot fuse with the elementwise operations around it; a select with an ``eye``
mask fuses into them.

A negated product ``-(X @ Y)`` prints as ``_neg_mm(X, Y)``, which (shapes being static under
tracing) negates the smallest of X, Y and X @ Y: in ``C - Q @ U`` that is the small U, where
XLA fuses the negation into U's producer, and JAX's transpose of the rule then negates a
small cotangent instead of the large cotangent of C.
"""
from sympy.printing.numpy import JaxPrinter

from ..ops import Diagonal, Re, dims_equal
from .base import BatchedMatrixPrinter

RUNTIME_FILES = ("__init__.py.jinja", "_runtime.py", "_array_module.py")


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
        "pairwise_inv": "_pairwise_inv({x})",
        "recip": "1 / {x}",
        "scale_cols": "{x} * _jnp.swapaxes({v}, -1, -2)",
        "scale_rows": "{v} * {x}",
        "permute_rows": "_permute_rows({p}, {x}, {transpose})",
        "permute_cols": "_permute_cols({p}, {x}, {transpose})",
        "diag_part": "_diag_part({x})",
        "neg_mm": "_neg_mm({a}, {b})",
        "solve_triangular": "_solve_triangular({t}, {b}, upper={upper}, left={left}, unit={unit})",
        "solve": "_solve({a}, {b}, left={left})",
        "hstack": "_jnp.concatenate([{xs}], axis=-1)",
        "vstack": "_jnp.concatenate([{xs}], axis=-2)",
        "pad_rows": "_pad_rows({x}, {extra})",
        "pad_cols": "_pad_cols({x}, {extra})",
        "pad": "_pad({x}, {top}, {bottom}, {left}, {right})",
        "eye": "_jnp.eye({rows}, {cols}, dtype={ref}.dtype)",
    }

    def _print_Diag(self, e):
        v = e.arg
        real = isinstance(v, Re)
        inner = v.arg if real else v
        if isinstance(inner, Diagonal) and dims_equal(inner.arg.rows, inner.arg.cols):
            x = inner.arg
            return self._op("diag_part", x=self._op("re", x=self._print(x)) if real
                            else self._print(x))
        return super()._print_Diag(e)

    def _neg_product(self, coeff, mats):
        """-(X @ ... @ Y) as _neg_mm(X @ ..., Y); None for other products."""
        if coeff != -1 or len(mats) < 2:
            return None
        a, b = self._last_product(mats)
        return self._op("neg_mm", a=a, b=b)

    def _print_MatMul(self, e):
        return self._neg_product(*self._split(e)) or super()._print_MatMul(e)

    def _print_MatAdd(self, e):
        out = []
        for t in e.args:
            coeff, mats = self._split(t)
            fused = self._neg_product(coeff, mats)
            negative = coeff.is_negative and fused is None
            text = fused or self._product(-coeff if negative else coeff, mats)
            if not out:
                out.append(f"-{self._paren(text)}" if negative else text)
            else:
                out.append(("- " if negative else "+ ") + text)
        return " ".join(out)
