"""LaTeX printer for derivation pages: pinned output (it is committed to docs and checked for
drift), a rule for every operation of factorules.compiler.ops and
factorules.compiler.product_folding, and the same text in every process."""
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sympy as sp

from factorules.compiler import ops, product_folding
from factorules.compiler.expr import Parser
from factorules.audit.latex import LatexPrinter, latex, latex_equation, latex_name

ROOT = Path(__file__).resolve().parents[1]
m, n = sp.symbols("m n", integer=True, nonnegative=True)
DIMS = {"m": m, "n": n}


def qr_names(q_cols, r_rows):
    shapes = {"A": (m, n), "dA": (m, n), "Q": (m, q_cols), "R": (r_rows, n),
              "gQ": (m, q_cols), "gR": (r_rows, n)}
    return {name: sp.MatrixSymbol(name, *shape) for name, shape in shapes.items()}


def program_latex(names, text):
    return [latex_equation(a.name, a.expr) for a in Parser(names, DIMS).program(text)]


# spec/qr.yaml: reduced mode, m >= n (k = n, written n here) ---------------------------------
TALL_JVP = """
C = solve_triangular(R, dA, upper=True, left=False)
B = Q.H @ C
U = triu(B + B.H, 1) + diag(re(diagonal(B)))
dQ = C - Q @ U
dR = U @ R
"""
TALL_VJP = """
M = R @ gR.H - gQ.H @ Q
gA = solve_triangular(R.H, gQ + Q @ copyltu(M), upper=False, left=False)
"""
# reduced mode, m < n (k = m)
WIDE_JVP = """
R1 = R[:, :m]
C = solve_triangular(R1, dA[:, :m], upper=True, left=False)
B = Q.H @ C
U = triu(B + B.H, 1) + diag(re(diagonal(B)))
dQ = C - Q @ U
dR = hstack(U @ R1, dQ.H @ A[:, m:] + Q.H @ dA[:, m:])
"""
# complete mode, m > n
COMPLETE_JVP = """
Q1 = Q[:, :n]
R1 = R[:n, :]
C = solve_triangular(R1, dA, upper=True, left=False)
B = Q1.H @ C
U = triu(B + B.H, 1) + diag(re(diagonal(B)))
dQ1 = C - Q1 @ U
N = eye(n) - Q1[:n, :]
Z = solve(N.H, Q1[n:, :].H)
dQ2 = (eye(m, n) - Q1) @ solve(N.H, dQ1[:n, :].H @ Z + dQ1[n:, :].H) - dQ1 @ Z
dQ = hstack(dQ1, dQ2)
dR = vstack(U @ R1, zeros(m - n, n))
"""
COMPLETE_VJP = """
Q1 = Q[:, :n]
R1 = R[:n, :]
N = eye(n) - Q1[:n, :]
Z = solve(N.H, Q1[n:, :].H)
G = gQ[:, n:]
W = solve(N, (eye(m, n) - Q1).H @ G)
gQ1 = gQ[:, :n] - G @ Z.H + vstack(Z @ W.H, W.H)
M = R1 @ gR[:n, :].H - gQ1.H @ Q1
gA = solve_triangular(R1.H, gQ1 + Q1 @ copyltu(M), upper=False, left=False)
"""
TRIU_HERM = (r"U = \operatorname{triu}_{1}(B + B^{H}) + "
             r"\operatorname{diag}(\operatorname{Re}(\operatorname{diagonal}(B)))")
PINNED = {
    "tall_jvp": (qr_names(n, n), TALL_JVP, [
        r"C = dA R^{-1}",
        r"B = Q^{H} C",
        TRIU_HERM,
        r"dQ = C - Q U",
        r"dR = U R",
    ]),
    "tall_vjp": (qr_names(n, n), TALL_VJP, [
        r"M = R gR^{H} - gQ^{H} Q",
        r"gA = \left(gQ + Q \operatorname{copyltu}(M)\right) R^{-H}",
    ]),
    "wide_jvp": (qr_names(m, m), WIDE_JVP, [
        r"R_{1} = R_{[:,\, :m]}",
        r"C = dA_{[:,\, :m]} R_{1}^{-1}",
        r"B = Q^{H} C",
        TRIU_HERM,
        r"dQ = C - Q U",
        r"dR = \begin{bmatrix} U R_{1} & dQ^{H} A_{[:,\, m:]} + Q^{H} dA_{[:,\, m:]} "
        r"\end{bmatrix}",
    ]),
    "complete_jvp": (qr_names(m, m), COMPLETE_JVP, [
        r"Q_{1} = Q_{[:,\, :n]}",
        r"R_{1} = R_{[:n,\, :]}",
        r"C = dA R_{1}^{-1}",
        r"B = Q_{1}^{H} C",
        TRIU_HERM,
        r"dQ_{1} = C - Q_{1} U",
        r"N = I_{n} - {Q_{1}}_{[:n,\, :]}",
        r"Z = N^{-H} {Q_{1}}_{[n:,\, :]}^{H}",
        r"dQ_{2} = \left(I_{m \times n} - Q_{1}\right) N^{-H} "
        r"\left({dQ_{1}}_{[:n,\, :]}^{H} Z + {dQ_{1}}_{[n:,\, :]}^{H}\right) - dQ_{1} Z",
        r"dQ = \begin{bmatrix} dQ_{1} & dQ_{2} \end{bmatrix}",
        r"dR = \begin{bmatrix} U R_{1} \\ 0 \end{bmatrix}",
    ]),
    "complete_vjp": (qr_names(m, m), COMPLETE_VJP, [
        r"Q_{1} = Q_{[:,\, :n]}",
        r"R_{1} = R_{[:n,\, :]}",
        r"N = I_{n} - {Q_{1}}_{[:n,\, :]}",
        r"Z = N^{-H} {Q_{1}}_{[n:,\, :]}^{H}",
        r"G = gQ_{[:,\, n:]}",
        r"W = N^{-1} \left(I_{m \times n} - Q_{1}\right)^{H} G",
        r"gQ_{1} = gQ_{[:,\, :n]} - G Z^{H} + \begin{bmatrix} Z W^{H} \\ W^{H} \end{bmatrix}",
        r"M = R_{1} gR_{[:n,\, :]}^{H} - gQ_{1}^{H} Q_{1}",
        r"gA = \left(gQ_{1} + Q_{1} \operatorname{copyltu}(M)\right) R_{1}^{-H}",
    ]),
}


@pytest.mark.parametrize("case", list(PINNED))
def test_qr_rules_print_as_pinned(case):
    names, text, expected = PINNED[case]
    assert program_latex(names, text) == expected


X, Y = sp.MatrixSymbol("X", m, m), sp.MatrixSymbol("Y", m, n)
NAMES = {"X": X, "Y": Y, "v": sp.MatrixSymbol("v", m, 1), "T": sp.MatrixSymbol("T", m, m),
         "_g_C": sp.MatrixSymbol("_g_C", m, m), "_g_dQ": sp.MatrixSymbol("_g_dQ", m, m),
         "gA": sp.MatrixSymbol("gA", m, m), "Q11": sp.MatrixSymbol("Q11", m, m)}
EXPRESSIONS = {
    "tril(X)": r"\operatorname{tril}(X)",
    "tril(X, -1)": r"\operatorname{tril}_{-1}(X)",
    "triu(X, 1)": r"\operatorname{triu}_{1}(X)",
    "copyltu(X)": r"\operatorname{copyltu}(X)",
    "sym(X) - skew(X)": r"\operatorname{sym}(X) - \operatorname{skew}(X)",
    "re(X) + im(X)": r"\operatorname{Re}(X) + \operatorname{Im}(X)",
    "X.conj": r"\overline{X}",
    "(X + T).conj": r"\overline{X + T}",
    "diag(diagonal(X))": r"\operatorname{diag}(\operatorname{diagonal}(X))",
    "diag(v)": r"\operatorname{diag}(v)",
    "X.T": r"X^{T}",
    "(X @ T).H": r"\left(X T\right)^{H}",
    "X.H.H": r"\left(X^{H}\right)^{H}",
    "tril(X, -1).H": r"\operatorname{tril}_{-1}(X)^{H}",
    "solve_triangular(T, Y, upper=True)": r"T^{-1} Y",
    "solve_triangular(T, Y.H, upper=True, left=False)": r"Y^{H} T^{-1}",
    "solve_triangular(T + X, Y, upper=True)": r"\left(T + X\right)^{-1} Y",
    "solve_triangular(T.T, X + T, upper=False)": r"T^{-T} \left(X + T\right)",
    "solve_triangular(T, 2 * X @ T, upper=True)": r"T^{-1} \left(2 X T\right)",
    "solve(X, Y)": r"X^{-1} Y",
    "solve(X.H, -Y.H, left=False)": r"\left(- Y^{H}\right) X^{-H}",
    "X @ solve(T, X) @ X": r"X T^{-1} X X",
    "Y[1:m, 2:n]": r"Y_{[1:,\, 2:]}",
    "Y[0:m - 1, :]": r"Y_{[:m - 1,\, :]}",
    "(X + T)[1:, :]": r"\left(X + T\right)_{[1:,\, :]}",
    "Q11[:, 1:]": r"{Q_{11}}_{[:,\, 1:]}",
    "hstack(X, Y)": r"\begin{bmatrix} X & Y \end{bmatrix}",
    "vstack(Y, eye(n))": r"\begin{bmatrix} Y \\ I_{n} \end{bmatrix}",
    "eye(m) - X": r"I_{m} - X",
    "eye(m, n) + Y": r"I_{m \times n} + Y",
    "X - I": r"X - I",
    "-(X + T)": r"- T - X",
    "X / 2 - 3 * X @ T": r"\frac{1}{2} X - 3 X T",
    "hadamard(X, X @ T)": r"X \circ \left(X T\right)",
    "_g_C + _g_dQ + gA + Q11": r"\bar{C} + \bar{dQ} + gA + Q_{11}",
}


@pytest.mark.parametrize("text", list(EXPRESSIONS))
def test_expressions_print_as_pinned(text):
    (assignment,) = Parser(NAMES, DIMS).program(f"Z = {text}")
    assert latex(assignment.expr) == EXPRESSIONS[text]


def test_ops_built_directly():
    k = sp.MatrixSymbol("K", m - 3, n - 4)
    assert latex(ops.Embed(k, m, n, 1, 2)) == r"\operatorname{embed}_{m \times n}^{(1, 2)}(K)"
    assert latex(ops.Embed(Y, m + 1, 2 * n, 1, n)) \
        == r"\operatorname{embed}_{(m + 1) \times 2 n}^{(1, n)}(Y)"
    assert latex(ops.Eye(n, n)) == r"I_{n}"
    assert latex(ops.Eye(m, n)) == r"I_{m \times n}"
    assert latex(sp.Identity(m)) == "I"
    assert latex(sp.ZeroMatrix(m, n)) == "0"
    assert latex(ops.HStack(X, Y, Y)) == r"\begin{bmatrix} X & Y & Y \end{bmatrix}"
    assert ops.Block(X, 0, m, 0, m) == X  # a block covering the matrix is the matrix
    assert latex(ops.Block(X, 0, m, 1, m)) == r"X_{[:,\, 1:]}"
    assert latex(sp.Inverse(X)) == r"X^{-1}"
    assert latex_equation("_g_R1", sp.Adjoint(X)) == r"\bar{R}_{1} = X^{H}"
    assert latex_equation(X, ops.Sym(X)) == r"X = \operatorname{sym}(X)"


@pytest.mark.parametrize("name, text", [
    ("A", "A"), ("dA", "dA"), ("gA", "gA"), ("R1", "R_{1}"), ("Q11", "Q_{11}"),
    ("dQ1", "dQ_{1}"), ("_g_C", r"\bar{C}"), ("_g_dQ", r"\bar{dQ}"), ("_g_Q1", r"\bar{Q}_{1}"),
    ("d_A", r"d\_A"),
])
def test_names(name, text):
    assert latex_name(name) == text
    assert latex(sp.MatrixSymbol(name, m, m)) == text


def test_every_operation_has_a_rule():
    """Each operation of factorules.compiler.ops and product_folding prints itself (its own
    ``latex``); SymPy's matrix nodes have their rules in the printer."""
    classes = [c for module in (ops, product_folding)
               for _, c in inspect.getmembers(module, inspect.isclass)
               if issubclass(c, sp.MatrixExpr) and c.__module__.startswith(module.__name__)
               and not c.__name__.startswith("_")]
    bases = (ops.StructuralOp, ops.OneOperand, ops.LinearMap)
    operations = [c for c in classes if c not in bases]
    assert len(operations) >= 23
    for cls in operations:
        assert issubclass(cls, ops.StructuralOp), cls.__name__
        assert cls.latex is not ops.StructuralOp.latex, cls.__name__
    for cls in [sp.Adjoint, sp.Transpose, sp.Identity, sp.ZeroMatrix, sp.MatrixSymbol,
                sp.MatAdd, sp.MatMul]:
        assert f"_print_{cls.__name__}" in LatexPrinter.__dict__, cls.__name__


def test_output_does_not_depend_on_the_process():
    """Same text under other hash seeds (no set/dict ordering leaks into the output)."""
    script = ("import sys; sys.path.insert(0, 'tests'); import test_latex as t; "
              "print('\\n'.join(l for c in t.PINNED.values() for l in t.program_latex(*c[:2])))")
    here = "\n".join(line for c in PINNED.values() for line in program_latex(*c[:2]))
    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True,
                             capture_output=True, text=True).stdout
        assert out.rstrip("\n") == here


def test_eye_of_a_sum_brackets_its_size():
    assert latex(ops.Eye(m + 1, n)) == r"I_{(m + 1) \times n}"
