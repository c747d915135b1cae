"""C++ backend of the fused rules: one matrix's whole rule as C++ values of fixed size.

A rule's statements print as ``const auto name = <expression>;`` over ``fr::Mat`` values of
templates/fused/fr_small.h, whose sizes are compile-time constants (the dimensions are
template parameters of the rule's function): a product is ``fr::mm``, every structural
operation the header's function of the same name, ``*`` of two matrices their Hadamard
product.  Numbers of the spec print as floating-point literals (C++'s ``1 / 2`` is 0).
"""
from sympy.printing.cxx import CXX11CodePrinter

from .base import SHARED_OPS, BatchedMatrixPrinter

# The working scalar type of the rule's function (template parameter of the printed code).
SCALAR = "fr_W"


class Printer(BatchedMatrixPrinter, CXX11CodePrinter):
    OPS = {
        **{key: f"fr::{key}({{x}})" for key in ("copyltu", "sym", "skew", "pairwise_inv",
                                                 "flip_rows", "flip_cols")},
        "mm": "fr::mm({a}, {b})",
        "adjoint": "fr::adjoint({x})",
        "transpose": "fr::transpose({x})",
        "conj": "fr::conj({x})",
        "re": "fr::re({x})",
        "im": "fr::im({x})",
        "recip": "fr::recip({x})",
        "tril": "fr::tril({x}, {offset})",
        "triu": "fr::triu({x}, {offset})",
        "diagonal": "fr::diagonal({x})",
        "diag": "fr::diag({v})",
        # the compiler drops what vanishes for a real scalar type
        "diagonal_skew": "fr::diagonal(fr::skew({x}))",
        "skew_diag": "fr::skew(fr::diag({v}))",
        "scale_rows": "fr::scale_rows({v}, {x})",
        "scale_cols": "fr::scale_cols({x}, {v})",
        "permute_rows": "fr::permute_rows({p}, {x}, {transpose})",
        "permute_cols": "fr::permute_cols({p}, {x}, {transpose})",
        "solve_triangular": "fr::solve_triangular<{upper}, {left}, {unit}>({t}, {b})",
        "solve": "fr::solve<{left}>({a}, {b})",
        "solve_sylvester": "fr::solve_sylvester({a}, {b}, {c})",
        "solve_tril_sylvester": "fr::solve_tril_sylvester<{adjoint}>({t}, {c})",
        "solve_hessenberg_sylvester": "fr::solve_hessenberg_sylvester<{adjoint}>({h}, {c})",
        "hstack": "fr::hstack({xs})",
        "vstack": "fr::vstack({xs})",
        "pad": "fr::pad<{top}, {bottom}, {left}, {right}>({x})",
        "pad_rows": "fr::pad<0, {extra}, 0, 0>({x})",
        "pad_cols": "fr::pad<0, 0, 0, {extra}>({x})",
        "eye": f"fr::eye<{SCALAR}, {{rows}}, {{cols}}>()",
    }
    assert set(SHARED_OPS) <= set(OPS), "every shared operation has its C++ entry"

    def __init__(self, **kwargs):
        # sizes are compile-time constants: min/max of them print as constant expressions
        super().__init__(min_max_sizes=True, **kwargs)

    def _op(self, name: str, **fields) -> str:
        """The table entry with C++'s spelling of the flags (true/false)."""
        spelled = {k: ("true" if v else "false") if isinstance(v, bool) else v
                   for k, v in fields.items()}
        return super()._op(name, **spelled)

    def _scalar(self, c) -> str:
        text = super()._scalar(c)
        if text.startswith("("):  # a rational (p / q): in floating point
            p, q = text[1:-1].split(" / ")
            return f"({p}.0 / {q}.0)"
        return text

    def _print_Block(self, e):
        r0, r1, c0, c1 = (self._dim(b) for b in e.bounds)
        return f"fr::block<{r0}, {r1}, {c0}, {c1}>({self._print(e.arg)})"

    def _print_ZeroMatrix(self, e):
        return f"fr::Mat<{SCALAR}, {self._dim(e.rows)}, {self._dim(e.cols)}>{{}}"

    def _print_Min(self, e):
        return f"std::min<fr::index>({', '.join(self._dim(a) for a in e.args)})"

    def _print_Max(self, e):
        return f"std::max<fr::index>({', '.join(self._dim(a) for a in e.args)})"
