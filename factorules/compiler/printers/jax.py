"""JAX backend: SymPy's JaxPrinter made batch-aware (``lax.linalg`` solves).

``diag(diagonal(X))`` and ``diag(re(diagonal(X)))`` of a square X print as a masked select,
``_diag_part(X)``: ``jnp.diagonal`` lowers to a gather (and its transpose to a scatter),
which XLA cannot fuse with the elementwise operations around it; a select with an ``eye``
mask fuses into them.

Under JAX's strict dtype promotion nothing is promoted implicitly: a real operand of a sum or
product with a complex one is cast to the input's dtype (``X.astype(A.dtype)``, a no-op for
real input) or to complex (``_complex_of(X)``), as factorules.compiler.fields finds; and
under jax_numpy_rank_promotion="raise" nothing is broadcast to more axes implicitly: an
identity is ``_eye(m, n, A)``, with A's number of axes.

Every matrix product is ``_mm(X, Y)``: ``jnp.matmul`` at ``lax.Precision.HIGHEST``, as
jax's own linalg rules ask, so that float32 rules keep full float32 accuracy on GPUs and TPUs
(whose default precision takes TF32 or bfloat16 passes).

A negated product ``-(X @ Y)`` prints as ``_neg_mm(X, Y)``, which (shapes being static under
tracing) negates the smallest of X, Y and X @ Y: in ``C - Q @ U`` that is the small U, where
XLA fuses the negation into U's producer, and JAX's transpose of the rule then negates a
small cotangent instead of the large cotangent of C.
"""
from sympy.printing.numpy import JaxPrinter

from ..ops import Diagonal, Re, dims_equal
from .base import BatchedMatrixPrinter, numpy_api_ops


class Printer(BatchedMatrixPrinter, JaxPrinter):
    ALIASES = {"jax": "_jax"}
    EXPLICIT_CASTS = True  # what jax_numpy_dtype_promotion="strict" asks for
    OPS = {
        **numpy_api_ops("_jnp"),
        "adjoint": "{x}.mT.conj()",
        "transpose": "{x}.mT",
        "conj": "{x}.conj()",
        "diag_part": "_diag_part({x})",
        "mm": "_mm({a}, {b})",
        "neg_mm": "_neg_mm({a}, {b})",
        "eye": "_eye({rows}, {cols}, {ref})",
        "cast_input": "{x}.astype({ref}.dtype)",
        "cast_complex": "_complex_of({x})",
    }

    def _print_Diag(self, e):
        v = e.arg
        real = isinstance(v, Re)
        inner = v.arg if real else v
        if isinstance(inner, Diagonal) and dims_equal(inner.arg.rows, inner.arg.cols):
            x = inner.arg
            return self._op("diag_part", x=self._op("re", x=self._print(x)) if real
                            else self._print(x))
        return super()._print_StructuralOp(e)

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
