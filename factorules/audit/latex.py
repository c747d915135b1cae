"""LaTeX for derivation pages: the spec language's matrix expressions in textbook notation.

``latex(expr)`` prints one expression, ``latex_equation(lhs, rhs)`` an equation ``lhs = rhs``.
The output is committed to docs and checked for drift, so it is deterministic: sums keep
their (canonical) argument order, with the first term that has no minus sign moved to the
front, and nothing depends on dict/set ordering or hashing.

Notation: ``X^{H}``/``X^{T}`` (adjoint/transpose), ``\\overline{X}`` (conj), ``T^{-1} B`` and
``B T^{-1}`` (solves; ``R^{-H}`` when T is an adjoint), ``X_{[r_0:r_1,\\, c_0:c_1]}`` (blocks,
bounds omitted as in Python slices), ``\\operatorname{tril}_{k}(X)`` and the like for the
structural operations, ``I``/``I_{n}``/``I_{r \\times c}`` (identities), ``0`` (zero
matrices), ``\\operatorname{embed}_{r \\times c}^{(r_0, c_0)}(X)`` (zero padding).
Names print as themselves with a trailing number as a subscript (``R1`` -> ``R_{1}``);
``_g_X``, the cotangent of an intermediate X, prints as ``\\bar{X}``.
"""
from __future__ import annotations

import re

import sympy as sp
from sympy import (Adjoint, HadamardProduct, Identity, MatAdd, MatMul,
                   MatrixSymbol, Transpose, ZeroMatrix)
from sympy.printing.latex import LatexPrinter as _SympyLatexPrinter

from ..compiler import ops

_COTANGENT_PREFIX = "_g_"
_TRAILING_DIGITS = re.compile(r"^(.*?[^0-9])([0-9]+)$")

# SymPy nodes whose printed form can take a superscript or subscript as it is (an operation
# of factorules.compiler.ops says so itself: ``latex_atomic``).
_ATOMIC = (MatrixSymbol, Identity, ZeroMatrix)


def _is_atomic(e) -> bool:
    return isinstance(e, _ATOMIC) or (isinstance(e, ops.StructuralOp) and e.latex_atomic)


def latex_name(name: str) -> str:
    """A matrix name in LaTeX: ``R1`` -> ``R_{1}``, ``_g_C`` -> ``\\bar{C}``."""
    if name.startswith(_COTANGENT_PREFIX) and len(name) > len(_COTANGENT_PREFIX):
        base, digits = _split_digits(name[len(_COTANGENT_PREFIX):])
        text = rf"\bar{{{_escape(base)}}}"
    else:
        base, digits = _split_digits(name)
        text = _escape(base)
    return f"{text}_{{{digits}}}" if digits else text


def _split_digits(name: str) -> tuple[str, str]:
    match = _TRAILING_DIGITS.match(name)
    return (match.group(1), match.group(2)) if match else (name, "")


def _escape(text: str) -> str:
    return text.replace("_", r"\_")


class LatexPrinter(_SympyLatexPrinter):
    """SymPy's LaTeX printer for the spec language: SymPy's matrix nodes here, each operation
    of ``factorules.compiler.ops`` by its own ``latex`` (through the notation helpers below)."""

    printmethod = "_factorules_latex"

    # -- helpers ---------------------------------------------------------------------------
    _split = staticmethod(ops.split_product)  # nested products print flat

    @staticmethod
    def _paren(text: str) -> str:
        return rf"\left({text}\right)"

    def _atom(self, e) -> str:
        """An operand of a postfix (superscript, subscript): parenthesised unless atomic."""
        text = self._print(e)
        if _is_atomic(e) and not text.startswith("-"):
            return text
        return self._paren(text)

    def _factor(self, e) -> str:
        """A factor of a matrix product (which is associative: products need no brackets)."""
        text = self._print(e)
        if (isinstance(e, (MatAdd, HadamardProduct)) or text.startswith("-")
                or (isinstance(e, MatMul) and self._split(e)[0] != 1)):
            return self._paren(text)
        return text

    def _scalar(self, c) -> str:
        text = self._print(c)
        return self._paren(text) if isinstance(c, sp.Add) else text

    def _dim(self, d) -> str:
        return self._print(ops.as_expr(d))

    def _product(self, coeff, mats) -> str:
        if coeff == 1 and len(mats) == 1:
            return self._print(mats[0])
        body = " ".join(self._factor(m) for m in mats)
        if coeff == 1:
            return body
        if coeff == -1:
            return f"- {body}"
        if coeff.could_extract_minus_sign():
            return f"- {self._scalar(-coeff)} {body}"
        return f"{self._scalar(coeff)} {body}"

    def _inverse(self, m) -> str:
        """m^{-1}; ``R^{-H}`` / ``R^{-T}`` for the inverse of an adjoint / a transpose."""
        for kind, mark in ((Adjoint, "H"), (Transpose, "T")):
            if isinstance(m, kind):
                return f"{self._atom(m.arg)}^{{-{mark}}}"
        return f"{self._atom(m)}^{{-1}}"

    # -- names and SymPy's matrix nodes ----------------------------------------------------
    def _print_MatrixSymbol(self, e):
        return latex_name(str(e.name))

    def _print_Identity(self, e):
        return "I"

    def _print_ZeroMatrix(self, e):
        return "0"

    def _print_Adjoint(self, e):
        return f"{self._atom(e.arg)}^{{H}}"

    def _print_Transpose(self, e):
        return f"{self._atom(e.arg)}^{{T}}"

    def _print_Inverse(self, e):
        return self._inverse(e.arg)

    def _print_MatPow(self, e):
        exp = ops.as_expr(e.exp)
        if exp == -1:
            return self._inverse(e.base)
        return f"{self._atom(e.base)}^{{{self._print(exp)}}}"

    def _print_MatMul(self, e):
        return self._product(*self._split(e))

    def _print_MatAdd(self, e):
        terms = []
        stack = list(reversed(e.args))
        while stack:  # nested sums print flat, in order
            t = stack.pop()
            if isinstance(t, MatAdd):
                stack.extend(reversed(t.args))
            else:
                terms.append(t)
        split = [self._split(t) for t in terms]
        lead = next((i for i, (c, _) in enumerate(split) if not c.could_extract_minus_sign()),
                    0)
        split.insert(0, split.pop(lead))
        out = []
        for i, (coeff, mats) in enumerate(split):
            negative = coeff.could_extract_minus_sign()
            text = self._product(-coeff if negative else coeff, mats)
            if i == 0:
                out.append(f"- {text}" if negative else text)
            else:
                out.append(f"- {text}" if negative else f"+ {text}")
        return " ".join(out)

    def _print_HadamardProduct(self, e):
        def part(a):
            text = self._print(a)
            if isinstance(a, (MatAdd, MatMul, HadamardProduct)) or text.startswith("-") \
                    or (isinstance(a, ops.StructuralOp) and a.latex_product):
                return self._paren(text)
            return text

        return r" \circ ".join(part(a) for a in e.args)

    # -- factorules.compiler.ops: each operation prints itself with these helpers ------------
    def _print_StructuralOp(self, e):
        return e.latex(self)

    def _function(self, name: str, arg, sub: str = "", sup: str = "") -> str:
        """``\\operatorname{name}_{sub}^{sup}(arg)``."""
        text = rf"\operatorname{{{name}}}"
        if sub:
            text += f"_{{{sub}}}"
        if sup:
            text += f"^{{{sup}}}"
        return f"{text}({self._print(arg)})"

    def _solve(self, m, rhs, left: bool) -> str:
        """``m^{-1} rhs`` (``left``) or ``rhs m^{-1}``."""
        inv = self._inverse(m)
        b = self._factor(rhs)
        return f"{inv} {b}" if left else f"{b} {inv}"

    def _size(self, rows, cols) -> str:
        """``r \\times c``, a sum in brackets: ``(m + 1) \\times n``."""
        def dim(d):
            text = self._dim(d)
            return f"({text})" if isinstance(ops.as_expr(d), sp.Add) else text

        return rf"{dim(rows)} \times {dim(cols)}"


def latex(expr) -> str:
    """LaTeX for one matrix (or dimension) expression."""
    return LatexPrinter().doprint(expr)


def latex_equation(lhs, rhs) -> str:
    """``lhs = rhs`` in LaTeX; a side may be a name (str) or an expression."""
    def side(x):
        return latex_name(x) if isinstance(x, str) else latex(x)

    return f"{side(lhs)} = {side(rhs)}"
