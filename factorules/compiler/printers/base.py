"""What every backend printer shares: batch-aware printing of matrix expressions.

SymPy's stock array printers are not batch-aware (``.dot``, ``transpose`` over every axis,
no ``Adjoint`` in TorchPrinter).  ``BatchedMatrixPrinter`` is mixed in front of a stock
printer and prints every matrix operation on ``(..., rows, cols)`` stacks from the backend's
table ``OPS``: operation name -> format string.  SymPy's own nodes are printed here; each
operation of ``factorules.compiler.ops`` prints itself (``StructuralOp.code``: the table
entry it names, with its fields).  An operation the table lacks is an error, never a silent
fallback.  This module knows no backend.
"""
from __future__ import annotations

import sympy as sp
from sympy import HadamardProduct, MatAdd, MatMul, MatrixExpr

from ..chain_order import cheapest
from ..fields import Field, explicit_casts, field_of
from ..ops import Eye, StructuralOp, Tril, Triu, as_expr



def _infix(text: str) -> bool:
    """Whether printed code has a binary operator outside every bracket (``v * X``, not
    ``f(v * X)``, ``X[..., 0]`` or C++'s ``pad<m - 1, 0>(X)``)."""
    depth = 0
    for i, c in enumerate(text):
        template = c in "<>" and i > 0 and text[i - 1] != " "
        if c in "([{" or (c == "<" and template):
            depth += 1
        elif c in ")]}" or (c == ">" and template and depth > 0):
            depth -= 1
        elif depth == 0 and c == " " and text[i + 1:i + 3] in {"* ", "@ ", "+ ", "- ", "/ "}:
            return True
    return False


class PrinterError(Exception):
    """An expression this printer cannot render."""


def unit_lower_pair(terms):
    """(i, j, X) when terms[i] = tril(X, -1) and terms[j] is the identity of its shape:
    the unit lower trapezoid of X (Householder vectors V = tril(a, -1) + I)."""
    for i, t in enumerate(terms):
        if isinstance(t, Tril) and t.offset == -1:
            for j, u in enumerate(terms):
                if isinstance(u, (Eye, sp.Identity)) and u.shape == t.shape:
                    return i, j, t.arg
    return None


def _fresh(mats) -> bool:
    """Whether a term of these factors is computed into an array of its own that nothing
    else holds (a product, an elementwise product, a triangle), which a sum may write into;
    a name, a block or a transpose is a view of another array."""
    return len(mats) >= 2 or isinstance(mats[0], (HadamardProduct, MatAdd, Tril, Triu))


# Operations every backend prints as the same call of its runtime's helper (or the same
# arithmetic).
SHARED_OPS = {
    "copyltu": "_copyltu({x})",
    "sym": "_sym({x})",
    "skew": "_skew({x})",
    "diagonal_skew": "_diagonal_skew({x})",
    "skew_diag": "_skew_diag({v})",
    "pairwise_inv": "_pairwise_inv({x})",
    "solve_sylvester": "_solve_sylvester({a}, {b}, {c}{eigenbases})",
    "solve_tril_sylvester": "_solve_tril_sylvester({t}, {c}, adjoint={adjoint})",
    "solve_hessenberg_sylvester": "_solve_hessenberg_sylvester({h}, {c}, adjoint={adjoint})",
    "scale_rows": "{v} * {x}",
    "permute_rows": "_permute_rows({p}, {x}, {transpose})",
    "permute_cols": "_permute_cols({p}, {x}, {transpose})",
    "pad_rows": "_pad_rows({x}, {extra})",
    "pad_cols": "_pad_cols({x}, {extra})",
}


# Sums written into the fresh array of one of their terms (eager array libraries: NumPy,
# CuPy), through the runtime helpers of templates/_runtime_shared.py
IN_PLACE_SUM_OPS = {
    "unit_tril": "_unit_tril({x})",
    "accumulate": "_accumulate({x}, {y}{alpha})",
    "add_eye": "_add_eye({x}, {scale})",
}


def numpy_api_ops(module: str) -> dict[str, str]:
    """The operation table of a backend whose array module has NumPy's API (NumPy, CuPy,
    jax.numpy), that module imported in the generated code as ``module`` ("_np"); a printer
    adds or replaces the entries it prints otherwise (``adjoint`` among them)."""
    return {
        **SHARED_OPS,
        "transpose": f"{module}.swapaxes({{x}}, -1, -2)",
        "conj": f"{module}.conj({{x}})",
        "tril": f"{module}.tril({{x}}, {{offset}})",
        "triu": f"{module}.triu({{x}}, {{offset}})",
        "re": f"{module}.real({{x}})",
        "im": f"{module}.imag({{x}})",
        "diagonal": f"{module}.diagonal({{x}}, 0, -2, -1)[..., :, None]",
        "diagonal_of_product": f"({{a}} * {module}.swapaxes({{b}}, -1, -2)).sum(-1)[..., :, None]",
        "diag": "_diag({v})",
        "recip": "1 / {x}",
        "scale_cols": f"{{x}} * {module}.swapaxes({{v}}, -1, -2)",
        "solve_triangular": "_solve_triangular({t}, {b}, upper={upper}, left={left}, "
                            "unit={unit})",
        "solve": "_solve({a}, {b}, left={left})",
        "hstack": f"{module}.concatenate([{{xs}}], axis=-1)",
        "vstack": f"{module}.concatenate([{{xs}}], axis=-2)",
        "pad": "_pad({x}, {top}, {bottom}, {left}, {right})",
        "eye": f"{module}.eye({{rows}}, {{cols}}, dtype={{ref}}.dtype)",
        "flip_rows": f"{module}.flip({{x}}, -2)",
        "flip_cols": f"{module}.flip({{x}}, -1)",
    }


class BatchedMatrixPrinter:
    """Mixin: put it before a SymPy printer class.  Subclasses set ``OPS`` and ``ALIASES``."""

    OPS: dict[str, str] = {}
    ALIASES: dict[str, str] = {}  # python module -> alias used in the generated code
    # True: an operand of a smaller field than its sum's or product's is cast to that field
    # in the printed code (factorules.compiler.fields), for an array library that does not
    # promote implicitly; False: the library promotes as NumPy does
    EXPLICIT_CASTS = False
    # True: a rule deletes each temporary after the statement that reads it last, so that
    # an eager array library frees it then (factorules.compiler.rule_body.released); False:
    # a tracing library (JAX) plans its buffers itself
    RELEASES_NAMES = False
    # rules of a spec's 'row_blocks' evaluated a block of rows at a time (their m-row values
    # never whole): the runtime has _row_blocks, _sum_rows, _put_rows and _joined_rows
    BLOCKS_ROWS = False

    def __init__(self, dtype_ref: str = "A", settings=None, min_max_sizes: bool = False,
                 sizes: dict | None = None, diagonal_of_products: bool = False,
                 fields: dict[str, Field] | None = None,
                 eigenbases: dict[str, tuple[str, str]] | None = None):
        super().__init__(settings or {})
        self.dtype_ref = dtype_ref
        # {name: (values, vectors)}: the eigendecompositions of Hermitian names the rules
        # read (an output's 'eigenbasis'), which a Sylvester solve with them is handed
        self.eigenbases = dict(eigenbases or {})
        # the field of each name the printed expressions read (fields.tensor_fields), and
        # of each statement printed so far (``assign``)
        self.fields = dict(fields or {})
        # representative values of the dimensions ({symbol: int}, from the spec's 'shapes'):
        # with them, a chain of three or more factors is multiplied in the cheapest order
        # (a derived ormqr rule must not form C gY^H, m x m); without, left to right
        self.sizes = sizes
        # rules are printed per case, whose condition settles min/max sizes; a gauge check
        # runs before a case is chosen and may print them as Python's min/max
        self.min_max_sizes = min_max_sizes
        # diagonal(X @ Y) as sum_k X_ik Y_ki, without the product (O(n^2), the product
        # O(n^3)): the rules and the run-time checks
        self.diagonal_of_products = diagonal_of_products

    def doprint(self, expr, assign_to=None):
        if self.EXPLICIT_CASTS:
            expr = explicit_casts(expr, self.fields)
        return super().doprint(expr, assign_to)

    def assign(self, name: str, expr) -> str:
        """The statement ``name = expr``'s right-hand side, printed; later expressions
        read ``name`` in the field of ``expr``."""
        text = self.doprint(expr)
        self.fields[name] = field_of(expr, self.fields)
        return text

    def assign_result(self, name: str, expr, like: str) -> str:
        """A rule's result ``name = expr``, printed; ``like``: the input its cotangent is
        for, or the output its tangent is for (a backend that lays the result out like it
        prints it so)."""
        return self.assign(name, expr)

    def rows_of(self, name: str, start: str, stop: str, length: str) -> str:
        """Rows start:stop (length of them) of the stack ``name``, from their texts."""
        return f"{name}[..., {'' if start == '0' else start}:{stop}, :]"

    def doprint_output(self, expr) -> str:
        """An output computed from the native call's outputs ('from_native'), outside the
        framework's differentiable function; backends that need it print it differently."""
        return self.doprint(expr)

    # -- helpers -------------------------------------------------------------------------
    def _operand(self, name: str, e) -> str:
        """An operand: parenthesised only where the backend writes the op as a postfix."""
        if self.OPS.get(name, "").startswith("{x}"):
            return self._arg(e)
        return self._print(e)

    def _op(self, name: str, **fields) -> str:
        """The table entry ``name`` filled in with ``fields``."""
        if name not in self.OPS:
            raise PrinterError(f"{type(self).__name__} has no rule for '{name}'")
        return self.OPS[name].format(ref=self.dtype_ref, **fields)

    @staticmethod
    def cannot_print(message: str) -> PrinterError:
        """The error to raise for an expression that cannot be printed."""
        return PrinterError(message)

    def _arg(self, e) -> str:
        """Print an operand of '@', '*' or a postfix: parenthesised unless atomic (an
        operation a table prints infix, a row scaling's ``v * X``, is not: as the right
        operand of '@' it would bind the wrong way)."""
        text = self._print(e)
        if isinstance(e, (MatAdd, MatMul, HadamardProduct)) or text.startswith("-") or \
                _infix(text):
            return f"({text})"
        return text

    def _dim(self, e) -> str:
        e = as_expr(e)
        if e.has(sp.Min, sp.Max) and not self.min_max_sizes:
            raise PrinterError(f"dimension {e} still has min/max after the case condition")
        return self._print(e) if e.has(sp.Min, sp.Max) else str(e)

    def _scalar(self, c) -> str:
        c = as_expr(c)
        if c.is_Integer:
            return str(int(c))
        if c.is_Rational:
            return f"({c.p} / {c.q})"
        if c.is_Float:
            return repr(float(c))
        raise PrinterError(f"scalar {c} is not a number")

    # -- SymPy node types --------------------------------------------------------------------
    _SCALAR_NODES = ("Symbol", "Integer", "Rational", "Float", "Half", "One", "NegativeOne",
                     "Zero", "Add", "Mul", "Min", "Max")

    def _print(self, expr, **kwargs):
        """Only the node types this mixin prints are allowed; the stock printers' other rules
        (matrix_power, inv, .dot, ...) are not batch-aware and must never be reached."""
        if isinstance(expr, sp.Basic):
            name = type(expr).__name__
            own = f"_print_{name}" in BatchedMatrixPrinter.__dict__ \
                or isinstance(expr, StructuralOp)
            if not own and not (name in self._SCALAR_NODES and not isinstance(expr, MatrixExpr)):
                raise PrinterError(f"{type(self).__name__} cannot print {name}: {expr}")
        return super()._print(expr, **kwargs)

    def _print_MatPow(self, e):
        exp = as_expr(e.exp)
        if not (exp.is_Integer and exp >= 1):
            raise PrinterError(f"matrix power {exp} (only positive integer powers are printed)")
        return self._matmul([e.base] * int(exp))

    def _print_MatrixSymbol(self, e):
        return str(e.name)

    def _print_Symbol(self, e):
        return str(e.name)

    @staticmethod
    def _split(e):
        """(coefficient, factors) of a product, multiplied left to right: a product nested
        on the left is flattened (``A @ B @ C`` parses as ``(A @ B) @ C``), one nested
        further right stays one factor, so that the spec's grouping is kept (ormqr's
        ``V @ (T @ (V.H @ C))`` must not form the m x m ``V T V^H``)."""
        if not isinstance(e, MatMul):
            return sp.Integer(1), [e]
        coeff, mats = sp.Integer(1), []
        for a in e.args:
            inner = [x for x in a.args if isinstance(x, MatrixExpr)] \
                if isinstance(a, MatMul) else []
            if isinstance(a, MatMul) and (not mats or len(inner) < 2):
                c, m = BatchedMatrixPrinter._split(a)
                coeff, mats = coeff * c, mats + m
            elif isinstance(a, MatMul):  # a group: its scalar factors move out of it
                for x in a.args:
                    if not isinstance(x, MatrixExpr):
                        coeff *= x
                mats.append(MatMul(*inner))
            elif isinstance(a, MatrixExpr):
                mats.append(a)
            else:
                coeff *= a
        return coeff, mats

    def _chain_order(self, mats):
        """mats as a tree of two-factor products, cheapest first (matrix-chain order under
        ``self.sizes``), or None to multiply left to right."""
        if not self.sizes or len(mats) < 3:
            return None
        found = cheapest(mats, self.sizes)
        return None if found is None else found[1]

    def _last_product(self, mats) -> tuple[str, str]:
        """(a, b) of the last multiplication of a chain of two or more factors (a fused
        multiply-add takes it as its product): the cheapest order's top split."""
        tree = self._chain_order(mats)
        if tree is not None:
            return self._print(tree.args[0]), self._print(tree.args[1])
        if len(mats) == 2:
            return self._print(mats[0]), self._print(mats[1])
        return self._product(1, mats[:-1]), self._print(mats[-1])

    def _matmul(self, mats) -> str:
        """The product of two or more factors, left to right: through the table's ``mm``
        (a runtime helper: torch's GEMM orientation, JAX's precision) where it has one,
        Python's ``@`` otherwise."""
        if "mm" not in self.OPS:
            return " @ ".join(self._arg(a) for a in mats)
        body = self._print(mats[0])
        for m in mats[1:]:
            body = self._op("mm", a=body, b=self._print(m))
        return body

    def _product(self, coeff, mats) -> str:
        tree = self._chain_order(mats)
        if tree is not None:
            mats = [tree.args[0], tree.args[1]]
        body = self._matmul(mats) if len(mats) > 1 else self._arg(mats[0])
        if coeff == 1:
            return body
        if len(mats) > 1 and "mm" not in self.OPS:
            body = f"({body})"
        if coeff == -1:
            return f"-{body}"
        return f"{self._scalar(coeff)} * {body}"

    def _print_MatMul(self, e):
        return self._product(*self._split(e))

    def _print_MatAdd(self, e):
        terms = list(e.args)
        lead = []  # printed terms that make a fresh array of the sum's shape
        pair = unit_lower_pair(terms) if "unit_tril" in self.OPS else None
        if pair is not None:
            i, j, x = pair
            lead.append(self._op("unit_tril", x=self._print(x)))
            terms = [t for k, t in enumerate(terms) if k not in (i, j)]
        if "accumulate" not in self.OPS:
            return self._signed_sum(lead, terms)
        # a backend that writes sums into fresh arrays: I + (the rest) adds to the rest's
        # diagonal; the first fresh term holds the sum, each other term is added into it
        eyes = [t for t in terms if isinstance(self._split(t)[1][0], (Eye, sp.Identity))
                and len(self._split(t)[1]) == 1]
        rest = [t for t in terms if t not in eyes]
        fresh = [t for t in rest if _fresh(self._split(t)[1])]
        if not (lead or fresh):
            return self._signed_sum(lead, terms)
        if not lead:
            lead.append(self._print(fresh[0]))
            rest.remove(fresh[0])
        body = lead[0]
        for t in rest:
            coeff, mats = self._split(t)
            alpha = "" if coeff == 1 else f", {self._scalar(coeff)}"
            body = self._op("accumulate", x=body, y=self._product(1, mats), alpha=alpha)
        for t in eyes:
            body = self._op("add_eye", x=body, scale=self._scalar(self._split(t)[0]))
        return body

    def _signed_sum(self, lead, terms) -> str:
        """``lead`` (printed terms) plus ``terms`` with their signs, in order."""
        out = list(lead)
        for t in terms:
            coeff, mats = self._split(t)
            negative = coeff.is_negative
            text = self._product(-coeff if negative else coeff, mats)
            if not out:
                out.append(f"-{self._paren(text)}" if negative else text)
            else:
                out.append(("- " if negative else "+ ") + text)
        return " ".join(out)

    @staticmethod
    def _paren(text: str) -> str:
        return text if text.replace(".", "").replace("_", "").isalnum() else f"({text})"

    def _print_HadamardProduct(self, e):
        return " * ".join(self._arg(a) for a in e.args)

    def _print_Adjoint(self, e):
        return self._op("adjoint", x=self._operand("adjoint", e.arg))

    def _print_Transpose(self, e):
        return self._op("transpose", x=self._operand("transpose", e.arg))

    def _print_StructuralOp(self, e):
        return e.code(self)

    def _print_Identity(self, e):
        return self._op("eye", rows=self._dim(e.rows), cols=self._dim(e.cols))

    def _print_ZeroMatrix(self, e):
        raise PrinterError("a zero matrix on its own; it can only pad a vstack/hstack")

    def _print_Min(self, e):  # dimensions are Python ints
        return f"min({', '.join(self._print(a) for a in e.args)})"

    def _print_Max(self, e):
        return f"max({', '.join(self._print(a) for a in e.args)})"

    def _print_Integer(self, e):
        return str(int(e))

    def emptyPrinter(self, e):  # noqa: N802 (SymPy's name)
        raise PrinterError(f"{type(self).__name__} cannot print {type(e).__name__}: {e}")
