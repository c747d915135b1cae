"""Printers: every structural op prints batch-aware code in every backend, and anything a
backend has no rule for is an error rather than silently wrong code."""
import numpy as np
import pytest
import sympy as sp

from factorules.compiler import ops
from factorules.compiler.expr import Parser
from factorules.compiler.printers import MODULES as BACKENDS
from factorules.compiler.printers.base import PrinterError

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
    "triu(Y, n - m)", "tril(Y, m - n - 1)", "flip_rows(Y)", "flip_cols(X.H) @ Y",
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
        # a diagonal offset that is a dimension expression: n - m = 1
        "triu(Y, n - m)": np.triu(y, 1), "tril(Y, m - n - 1)": np.tril(y, -2),
        "flip_rows(Y)": y[..., ::-1, :], "flip_cols(X.H) @ Y": h[..., :, ::-1] @ y,
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


# -- embed: the zero padding derived rules produce (a block's cotangent) ---------------------
K = sp.MatrixSymbol("K", m - 3, n - 4)
EMBEDS = {  # name -> (expression, (m, n) -> its rows, cols, row0, col0 as ints)
    "fixed": (ops.Embed(K, m, n, 1, 2), lambda m, n: (m, n, 1, 2)),
    "symbolic": (ops.Embed(NAMES["Y"], m + 2, 2 * n + 1, 1, n),
                 lambda m, n: (m + 2, 2 * n + 1, 1, n)),
}
EMBED_SIZES = [  # (m, n, batch): zero-size operands and batches included
    (7, 9, (2,)), (3, 9, (2,)), (7, 4, (3, 1)), (3, 4, ()), (6, 5, (0,)), (5, 6, ()),
]


def _embed_reference(x, rows, cols, r0, c0):
    out = np.zeros(x.shape[:-2] + (rows, cols), x.dtype)
    out[..., r0:r0 + x.shape[-2], c0:c0 + x.shape[-1]] = x
    return out


def _runtime_env(backend, tmp_path_factory):
    """(namespace for printed code, host array -> backend array, backend array -> host)."""
    if backend == "numpy":
        from generated.numpy import _runtime as rt
        env, to, back = {"_np": np}, (lambda a: a), np.asarray
    elif backend == "torch":
        import torch
        from generated.torch import _runtime as rt
        env, to, back = {"_torch": torch}, torch.from_numpy, (lambda t: t.numpy())
    elif backend == "jax":
        import jax
        import jax.numpy as jnp
        from generated.jax import _runtime as rt
        env, to, back = {"_jax": jax, "_jnp": jnp}, jnp.asarray, np.asarray
    else:
        from fake_cupy import FakeCupy
        fake = FakeCupy(lambda: tmp_path_factory.mktemp("cuda-host"))
        rt = fake.load_backend()["_runtime"]
        env, to, back = {"_cp": fake.cupy}, fake.cupy.asarray, (lambda a: a.get())
    env.update({k: getattr(rt, k) for k in dir(rt) if k.startswith("_") and k[1:2] != "_"})
    return env, to, back


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_embed_prints_as_zero_padding_that_evaluates_on_stacks(backend, tmp_path_factory):
    env, to, back = _runtime_env(backend, tmp_path_factory)
    rng = np.random.default_rng(1)
    for name, (expr, placement) in EMBEDS.items():
        (operand,) = expr.arg.free_symbols
        code = BACKENDS[backend].Printer(dtype_ref=operand.name).doprint(expr)
        for size_m, size_n, batch in EMBED_SIZES:
            dims = {m: size_m, n: size_n}
            shape = tuple(int(d.subs(dims)) for d in expr.arg.shape)
            for dtype in (np.float64, np.complex128):
                x = rng.standard_normal(batch + shape).astype(dtype)
                if dtype == np.complex128:
                    x = x + 1j * rng.standard_normal(batch + shape)
                scope = {**env, operand.name: to(x), "m": size_m, "n": size_n}
                got = back(eval(code, scope))  # printed from a fixed test expression
                want = _embed_reference(x, *placement(size_m, size_n))
                case = (name, code, size_m, size_n, batch, dtype)
                assert got.shape == want.shape, case
                np.testing.assert_array_equal(got, want.astype(got.dtype), err_msg=str(case))


def test_embed_printed_code_per_backend():
    expr = EMBEDS["symbolic"][0]
    printed = {b: BACKENDS[b].Printer(dtype_ref="Y").doprint(expr) for b in BACKENDS}
    assert printed == {"numpy": "_pad(Y, 1, 1, n, 1)", "jax": "_pad(Y, 1, 1, n, 1)",
                       "cupy": "_pad(Y, 1, 1, n, 1)",
                       "torch": "_torch.nn.functional.pad(Y, (n, 1, 1, 1))"}
    product = ops.Embed(sp.MatMul(NAMES["X"], NAMES["Y"]), m + 1, n, 1, 0)
    assert BACKENDS["numpy"].Printer().doprint(product) == "_pad(X @ Y, 1, 0, 0, 0)"


def test_embed_torch_pad_is_differentiable_to_second_order_and_under_vmap():
    import torch
    env, _, _ = _runtime_env("torch", None)
    code = BACKENDS["torch"].Printer(dtype_ref="K").doprint(EMBEDS["fixed"][0])

    def f(k):
        return eval(code, {**env, "K": k, "m": k.shape[-2] + 3, "n": k.shape[-1] + 4})

    for dtype in (torch.float64, torch.complex128):
        k = torch.randn(2, 2, 3, dtype=dtype, requires_grad=True)
        assert torch.autograd.gradcheck(f, (k,), check_forward_ad=True)
        assert torch.autograd.gradgradcheck(f, (k,))
    batch = torch.randn(4, 2, 2, 3, dtype=torch.float64)
    assert torch.equal(torch.vmap(f)(batch), f(batch))


def test_embed_checks_its_placement():
    y = NAMES["Y"]
    for args in ((K, m, n, 4, 0), (K, m, n, 0, 5), (K, m, n, -1, 0), (K, m, n, 0, -1),
                 (y, m, n, 1, 0), (y, m - 1, n, 0, 0), (y, m, n, 0, n + 1)):
        with pytest.raises(ops.ShapeError, match="embed"):
            ops.Embed(*args)
    embedded = ops.Embed(K, m, n, 1, 2)
    assert embedded.shape == (m, n) and embedded.arg == K
    assert (embedded.row0, embedded.col0) == (1, 2)
    assert ops.Embed(y, n, n, 0, 0).shape == (n, n)  # fits when n >= m: not provably wrong
    assert ops.Embed(sp.ZeroMatrix(m - 3, n), m, n, 2, 0) == sp.ZeroMatrix(m, n)


def test_a_band_with_a_symbolic_offset_evaluates_prints_and_transposes():
    """tril/triu take a dimension expression as diagonal offset (full-mode RQ's upper
    trapezoid triu(R, n - m)): the audit's evaluator binds it, torch and C++ print it, LaTeX
    shows it, and the band is its own transpose whatever its offset."""
    from factorules.audit import numeric as num
    band = parse("triu(Y, n - m)")
    assert isinstance(band, ops.Triu) and band.offset == n - m
    y = np.random.default_rng(1).standard_normal((3, 5))
    ev = num.Evaluator({m: 3, n: 5}, num.Field("float"))
    got = np.array(ev(band, {"Y": y}), dtype=float)
    assert np.array_equal(got, np.triu(y, 2))
    assert BACKENDS["torch"].Printer(dtype_ref="Y").doprint(band) == "Y.triu(-m + n)"
    from factorules.compiler.printers import cpp
    assert cpp.Printer(dtype_ref="Y").doprint(band) == "fr::triu(Y, -m + n)"
    from factorules.audit.latex import latex
    assert latex(band) == r"\operatorname{triu}_{- m + n}(Y)", latex(band)
    g = sp.MatrixSymbol("G", m, n)
    assert list(band.cotangents(g, True)) == [(NAMES["Y"], ops.Triu(g, n - m))]


# zero blocks anywhere in a stack, printed as padding: (text, its value from Y of m x n)
ZERO_BLOCK_STACKS = {
    "hstack(zeros(m, n), Y)": lambda y, m, n: np.concatenate([np.zeros_like(y), y], -1),
    "vstack(zeros(1, n), Y, zeros(2, n))": lambda y, m, n: np.concatenate(
        [np.zeros_like(y[..., :1, :]), y, np.zeros_like(y[..., :2, :])], -2),
    "hstack(Y, zeros(m, 1), Y, Y)": lambda y, m, n: np.concatenate(
        [y, np.zeros_like(y[..., :1]), y, y], -1),
}


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_a_zero_block_anywhere_in_a_stack_is_padding_of_a_neighbour(backend,
                                                                     tmp_path_factory):
    """zeros(r, c) as any block of a stack with a block that is not zeros (full-mode RQ's
    R = [0 | R2]) prints as padding (no zero array of its own, no 0 * X that turns NaN into
    NaN) and evaluates to the stack."""
    env, to, back = _runtime_env(backend, tmp_path_factory)
    y = np.random.default_rng(2).standard_normal((2, 3, 4))
    y[0, 0, 0] = np.nan  # stays where it is: padding multiplies nothing
    for text, value in ZERO_BLOCK_STACKS.items():
        code = BACKENDS[backend].Printer(dtype_ref="Y").doprint(parse(text))
        assert "zeros" not in code and "0 *" not in code, code
        got = back(eval(code, {**env, "Y": to(y), "m": 3, "n": 4}))  # fixed test text
        want = value(y, 3, 4).astype(got.dtype)  # JAX without x64: float32
        np.testing.assert_array_equal(got, want, err_msg=f"{text}: {code}")
    assert BACKENDS["numpy"].Printer(dtype_ref="Y").doprint(
        parse("hstack(zeros(m, n), Y)")) == "_pad(Y, 0, 0, n, 0)"


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_reversals_print_evaluate_and_are_their_own_transposes(backend, tmp_path_factory):
    """flip_rows(X) = J X and flip_cols(X) = X J (RQ as QR of flip_cols(A.H)): printed by
    every backend, evaluated by the audit, each its own transpose (J = J^T = J^-1)."""
    from factorules.audit import numeric as num
    env, to, back = _runtime_env(backend, tmp_path_factory)
    y = np.random.default_rng(3).standard_normal((2, 3, 4))
    ev = num.Evaluator({m: 3, n: 4}, num.Field("float"))
    g = sp.MatrixSymbol("G", m, n)
    for text, flipped, axis in (("flip_rows(Y)", ops.FlipRows, -2),
                                ("flip_cols(Y)", ops.FlipCols, -1)):
        e = parse(text)
        assert isinstance(e, flipped)
        code = BACKENDS[backend].Printer(dtype_ref="Y").doprint(e)
        got = back(eval(code, {**env, "Y": to(y)}))  # printed from a fixed test text
        np.testing.assert_array_equal(got, np.flip(y, axis).astype(got.dtype))
        assert np.array_equal(np.array(ev(e, {"Y": y[0]}), dtype=float), np.flip(y[0], axis))
        assert list(e.cotangents(g, True)) == [(NAMES["Y"], flipped(g))]
