"""PyTorch backend: SymPy's TorchPrinter made batch-aware (``.mH``, ``@``, linalg solves).

Sums are printed for speed, with the same arithmetic:

* ``C + a * (X @ Y)`` becomes ``_addmm(C, X, Y, alpha=a)``, which lays the product out like
  ``C`` (a solve's result, an autograd cotangent: often column-major, while a product is
  row-major) where that costs GEMM nothing: an elementwise op over operands of different
  layouts is slow.  The sum stays a separate operation (see ``_addmm``: folding it into
  the GEMM costs accuracy).
* ``X @ Y`` becomes ``_mm(X, Y)``, computed as ``(Y^T X^T)^T`` when Y is column-major (as
  LAPACK's results are): same arithmetic, but two column-major operands reach BLAS as two
  row-major ones (MKL's GEMM with both operands transposed runs at about half speed on large
  real matrices), and a tangent such as ``dR = U @ R`` comes out laid out like its primal R,
  which spares torch's forward AD a copy.  A rule's result that is a product is laid out
  like the input (output) it is the cotangent (tangent) of: ``_mm_like(X, Y, A)``.
* ``triu(X + X^H, 1) + diag(re(diagonal(X)))`` becomes ``_triu_herm(X)``: the upper triangle
  of ``X + X^H`` with its (real, doubled) diagonal halved in place, as torch's own QR rules
  compute it; bit-for-bit the same result without building and adding a diagonal matrix.
* ``X + c * diag(v)`` becomes ``_plus_diag(X, c * v)``: ``c v`` added to the diagonal of a
  copy of X, without building the diagonal matrix and adding it (eigh's VJP core).
* ``tril(X, -1) + I`` becomes ``_unit_tril(X)``: the Householder vectors' V with its unit
  diagonal written in place, one tensor instead of three;
* ``tril(X, -1) + c * diag(re(diagonal(X)))`` becomes ``_tril_diag(X, c)``: the lower
  triangle with its diagonal made real and scaled in place (Cholesky's Phi), likewise.

Outputs made from the native call's results (a spec's ``primal`` / ``from_native``, e.g.
LQ's ``L = Rh^H``) are printed as tensors of their own (``doprint_output``): a view returned
as an output breaks torch's batched forward AD.
"""
from sympy import Adjoint, MatAdd, MatMul
from sympy.printing.pytorch import TorchPrinter

from ..ops import Diag, Diagonal, Re, Skew, Sym, Tril, Triu, split_product
from .base import SHARED_OPS, BatchedMatrixPrinter, unit_lower_pair


def _herm_upper_pair(terms):
    """(i, j, X) when terms[i] = triu(X + X^H, 1) and terms[j] = diag(re(diagonal(X)))."""
    for i, t in enumerate(terms):
        if not (isinstance(t, Triu) and t.offset == 1 and isinstance(t.arg, MatAdd)
                and len(t.arg.args) == 2):
            continue
        a, b = t.arg.args
        for x, y in ((a, b), (b, a)):
            if isinstance(y, Adjoint) and y.arg == x:
                for j, d in enumerate(terms):
                    if (isinstance(d, Diag) and isinstance(d.arg, Re)
                            and isinstance(d.arg.arg, Diagonal) and d.arg.arg.arg == x):
                        return i, j, x
    return None


def _tril_diag_pair(terms):
    """(i, j, X, c) when terms[i] = tril(X, -1) and terms[j] = c * diag(re(diagonal(X)))."""
    for i, t in enumerate(terms):
        if not (isinstance(t, Tril) and t.offset == -1):
            continue
        for j, d in enumerate(terms):
            coeff, mats = split_product(d)
            if (len(mats) == 1 and isinstance(mats[0], Diag) and isinstance(mats[0].arg, Re)
                    and isinstance(mats[0].arg.arg, Diagonal) and mats[0].arg.arg.arg == t.arg):
                return i, j, t.arg, coeff
    return None


def _diagonal_term(term):
    """(c, v) when the term of a sum is c diag(v)."""
    coeff, mats = split_product(term)
    if len(mats) == 1 and isinstance(mats[0], Diag):
        return coeff, mats[0].arg
    return None


class Printer(BatchedMatrixPrinter, TorchPrinter):
    ALIASES = {"torch": "_torch"}
    RELEASES_NAMES = True
    BLOCKS_ROWS = True

    _physical = False

    def doprint_output(self, expr) -> str:
        """An output made from the native call's results, as a tensor of its own: one that
        is a view (a transpose, a lazy conjugate) breaks torch's batched forward AD, so
        adjoints are conj_physical and a remaining view is copied."""
        self._physical = True
        try:
            return self._op("materialized", x=self.doprint(expr))
        finally:
            self._physical = False

    def rows_of(self, name: str, start: str, stop: str, length: str) -> str:
        """narrow, not a slice: a slice that turns out whole at run time (an m x n input's
        top k rows when k == m) is an alias, which legacy vmap (gradcheck's batched
        gradients) has no batching rule for."""
        return f"{name}.narrow(-2, {start}, {length})"

    def assign_result(self, name: str, expr, like: str) -> str:
        """A result that is a product is computed in the layout of ``like``
        (``_mm_like``): autograd copies a cotangent into its input's layout, and forward AD
        a tangent into its primal's, an m x n transposing copy after the product."""
        text = self.assign(name, expr)
        if isinstance(expr, (Sym, Skew)) and isinstance(expr.arg, MatMul):
            # (x +- x^H) / 2 is laid out like x (eigh's sym(Q S Q^H))
            inner = self.assign_result(name, expr.arg, like)
            return self._op(expr.spec_name, x=inner)
        if not isinstance(expr, MatMul):
            return text
        coeff, mats = self._split(expr)
        if len(mats) < 2:
            return text
        a, b = self._last_product(mats)
        body = self._op("mm_like", a=a, b=b, like=like)
        if coeff == 1:
            return body
        return f"-{body}" if coeff == -1 else f"{self._scalar(coeff)} * {body}"

    def _print_Adjoint(self, e):
        if self._physical:
            return f"_torch.conj_physical({self._arg(e.arg)}.mT)"
        return super()._print_Adjoint(e)

    OPS = {
        **SHARED_OPS,
        "adjoint": "{x}.mH",
        "transpose": "{x}.mT",
        "conj": "{x}.conj()",
        "tril": "{x}.tril({offset})",
        "triu": "{x}.triu({offset})",
        "re": "_re({x})",
        "im": "_im({x})",
        "diagonal": "{x}.diagonal(dim1=-2, dim2=-1).unsqueeze(-1)",
        "diagonal_of_product": "({a} * {b}.mT).sum(-1).unsqueeze(-1)",
        "diag": "_torch.diag_embed({v}.squeeze(-1))",
        "recip": "{x}.reciprocal()",
        "scale_cols": "{x} * {v}.mT",
        "solve_triangular": "_torch.linalg.solve_triangular({t}, {b}, upper={upper}, "
                            "left={left}, unitriangular={unit})",
        # torch's solve does not promote (a real tangent and eig's complex V): _same_dtype
        "solve": "_torch.linalg.solve(*_same_dtype({a}, {b}), left={left})",
        "hstack": "_torch.cat([{xs}], dim=-1)",
        "vstack": "_torch.cat([{xs}], dim=-2)",
        "pad": "_torch.nn.functional.pad({x}, ({left}, {right}, {top}, {bottom}))",
        "eye": "_torch.eye({rows}, {cols}, dtype={ref}.dtype, device={ref}.device)",
        "flip_rows": "{x}.flip(-2)",
        "flip_cols": "{x}.flip(-1)",
        "triu_herm": "_triu_herm({x})",
        "tril_diag": "_tril_diag({x}, {scale})",
        "unit_tril": "_unit_tril({x})",
        "materialized": "_materialized({x})",
        "addmm": "_addmm({c}, {a}, {b}{alpha})",
        "mm": "_mm({a}, {b})",
        "mm_like": "_mm_like({a}, {b}, {like})",
        "plus_diag": "_plus_diag({x}, {v})",
    }

    def _print_MatAdd(self, e):
        # Parts of the sum: ("expr", coefficient, matrix factors) or ("text", False, text).
        terms = list(e.args)
        parts = []
        pair = _herm_upper_pair(terms)
        if pair is not None:
            i, j, x = pair
            parts.append(("text", False, self._op("triu_herm", x=self._print(x))))
            terms = [t for k, t in enumerate(terms) if k not in (i, j)]
        pair = unit_lower_pair(terms)
        if pair is not None:
            i, j, x = pair
            parts.append(("text", False, self._op("unit_tril", x=self._print(x))))
            terms = [t for k, t in enumerate(terms) if k not in (i, j)]
        pair = _tril_diag_pair(terms)
        if pair is not None:
            i, j, x, coeff = pair
            parts.append(("text", False, self._op("tril_diag", x=self._print(x),
                                                  scale=self._scalar(coeff))))
            terms = [t for k, t in enumerate(terms) if k not in (i, j)]
        diagonal = next((t for t in terms if _diagonal_term(t) is not None), None)
        lone_product = not parts and len(terms) == 2 and any(
            len(self._split(t)[1]) >= 2 for t in terms)  # _addmm adds it: no extra pass
        if diagonal is not None and len(terms) + len(parts) > 1 and not lone_product:
            # x + c diag(v): c v added to the diagonal of a copy of x (no diagonal matrix
            # built and added: one pass over x instead of three)
            coeff, v = _diagonal_term(diagonal)
            rest = [t for t in terms if t is not diagonal]
            x = self._print(rest[0]) if not parts and len(rest) == 1 else self._sum(
                parts + [("expr", *self._split(t)) for t in rest])
            return self._op("plus_diag", x=x, v=self._product(coeff, [v]))
        parts += [("expr", *self._split(t)) for t in terms]
        return self._sum(parts)

    def _sum(self, parts) -> str:
        products = [i for i, p in enumerate(parts) if p[0] == "expr" and len(p[2]) >= 2]
        if len(parts) >= 2 and products:
            # One product becomes _addmm(rest, ...); prefer one that leaves a positive term
            # first among the rest, so the rest needs no negation of its own.
            def rest_of(i):
                return [p for k, p in enumerate(parts) if k != i]

            def positive_lead(rest):
                return rest[0][0] == "text" or not rest[0][1].is_negative

            pick = next((i for i in reversed(products) if positive_lead(rest_of(i))),
                        products[-1])
            _, coeff, mats = parts[pick]
            alpha = "" if coeff == 1 else f", alpha={self._scalar(coeff)}"
            a, b = self._last_product(mats)
            return self._op("addmm", c=self._sum(rest_of(pick)), a=a, b=b, alpha=alpha)
        out = []
        for kind, coeff, body in parts:
            if kind == "text":
                negative, text = False, body
            else:
                negative = coeff.is_negative
                text = self._product(-coeff if negative else coeff, body)
            if not out:
                out.append(f"-{self._paren(text)}" if negative else text)
            else:
                out.append(("- " if negative else "+ ") + text)
        return " ".join(out)
