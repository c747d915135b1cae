"""Printers: every structural op prints batch-aware code in every backend, and anything a
backend has no rule for is an error rather than silently wrong code."""
import numpy as np
import pytest
import sympy as sp

from generator import ops
from generator.expr import Parser
from generator.printers import BACKENDS
from generator.printers.base import PrinterError

m, n = sp.symbols("m n", integer=True, nonnegative=True)
NAMES = {"X": sp.MatrixSymbol("X", m, m), "Y": sp.MatrixSymbol("Y", m, n),
         "v": sp.MatrixSymbol("v", m, 1)}
DIMS = {"m": m, "n": n}

EXPRESSIONS = [
    "X @ Y", "X.H", "X.T", "X.conj", "tril(X, -1)", "triu(X, 1)", "copyltu(X)", "sym(X)",
    "skew(X)", "re(X)", "im(X)", "diag(diagonal(X))", "diag(v)", "hadamard(X, X)",
    "solve_triangular(X, Y, upper=True)", "solve_triangular(X, Y.H, upper=False, left=False)",
    "solve(X, Y)", "solve(X, Y.H, left=False)", "hstack(X, Y)", "vstack(Y.H, Y.H)",
    "Y[:, 1:n]", "eye(m) - X", "X - 2 * X @ X / 3", "-(X + X.H)",
]


def parse(text):
    (assignment,) = Parser(NAMES, DIMS).program(f"Z = {text}")
    return assignment.expr


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("text", EXPRESSIONS)
def test_every_operation_prints_as_valid_python(backend, text):
    code = BACKENDS[backend].Printer(dtype_ref="X").doprint(parse(text))
    compile(code, "<printed>", "eval")  # syntax only; the numerics are tested end to end
    assert ".dot(" not in code and "transpose(" not in code.replace("_transpose", "")


def test_numpy_printer_output_evaluates_to_the_math_on_stacks():
    from generated.numpy import _runtime as rt
    rng = np.random.default_rng(0)
    env = {"X": rng.standard_normal((2, 3, 3)) + 1j * rng.standard_normal((2, 3, 3)),
           "Y": rng.standard_normal((2, 3, 4)), "v": rng.standard_normal((2, 3, 1)),
           "m": 3, "n": 4, "_np": np}
    env.update({k: getattr(rt, k) for k in dir(rt) if k.startswith("_") and k[1:2] != "_"})
    x, y = env["X"], env["Y"]
    h = np.conj(np.swapaxes(x, -1, -2))
    expected = {
        "X.H": h, "copyltu(X)": np.tril(x, -1) + np.conj(np.swapaxes(np.tril(x, -1), -1, -2))
        + np.real(np.diagonal(x, 0, -2, -1))[..., None] * np.eye(3),
        "solve_triangular(X, Y, upper=True)": np.linalg.solve(np.triu(x), y),
        "solve(X, Y.H, left=False)": np.swapaxes(np.linalg.solve(
            np.swapaxes(x, -1, -2), np.swapaxes(np.conj(np.swapaxes(y, -1, -2)), -1, -2)), -1, -2),
        "X - 2 * X @ X / 3": x - 2 * x @ x / 3, "-(X + X.H)": -(x + h),
        "Y[:, 1:n]": y[..., :, 1:4], "eye(m) - X": np.eye(3) - x,
    }
    for text, value in expected.items():
        code = BACKENDS["numpy"].Printer(dtype_ref="X").doprint(parse(text))
        got = eval(code, env)  # printed code from a fixed test expression, not spec text
        assert np.allclose(got, value, atol=1e-12), (text, code)


def test_missing_rule_is_an_error_not_a_fallback():
    class Incomplete(BACKENDS["torch"].Printer):
        OPS = {k: v for k, v in BACKENDS["torch"].Printer.OPS.items() if k != "copyltu"}

    with pytest.raises(PrinterError, match="no rule for 'copyltu'"):
        Incomplete().doprint(parse("copyltu(X)"))
    with pytest.raises(PrinterError, match="cannot print"):
        BACKENDS["numpy"].Printer().doprint(sp.Inverse(NAMES["X"]))
    with pytest.raises(PrinterError, match="only positive integer powers"):
        BACKENDS["numpy"].Printer().doprint(sp.MatPow(NAMES["X"], -1))
    with pytest.raises(PrinterError, match="zero matrix on its own"):
        BACKENDS["numpy"].Printer().doprint(sp.ZeroMatrix(m, m))


def test_shapes_are_checked_when_expressions_are_built():
    with pytest.raises(ops.ShapeError):
        ops.SolveTriangular(NAMES["Y"], NAMES["X"], upper=True)
    with pytest.raises(ops.ShapeError):
        ops.HStack(NAMES["X"], NAMES["Y"].T)
    assert ops.VStack(NAMES["Y"], sp.ZeroMatrix(n - m, n)).shape == (n, n)
