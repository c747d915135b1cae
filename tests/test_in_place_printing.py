"""Printing that saves memory in eager backends: sums written into a fresh term's array,
the unit lower trapezoid in one array, zero-padded blocks that tile a matrix stacked, and
temporaries released after their last read.  Each is the same value as the plain printing,
and none writes into an input."""
import numpy as np
import pytest
import sympy as sp

from factorules.compiler import ops
from factorules.compiler import render_model as model
from factorules.compiler.expr import Parser
from factorules.compiler.printers import MODULES as BACKENDS
from factorules.compiler.product_folding import stack_adjacent_embeds
from factorules.compiler.rule_body import released

m, n = sp.symbols("m n", integer=True, nonnegative=True)
NAMES = {"X": sp.MatrixSymbol("X", m, m), "Y": sp.MatrixSymbol("Y", m, n),
         "Z": sp.MatrixSymbol("Z", m, n), "a": sp.MatrixSymbol("a", m, n)}
DIMS = {"m": m, "n": n}

# a sum each, with what the NumPy printer writes it as (None: not in place)
SUMS = {
    "X @ Y + Z": "_accumulate(X @ Y, Z)",
    "X @ Y - Z": "_accumulate(X @ Y, Z, -1)",
    "Y - X @ Z": "_accumulate(-(X @ Z), Y)",
    "X @ Y + X @ Z - 2 * Y": None,  # written as X @ (Y + Z) - 2 Y first: the same check
    "eye(m) - X @ X": "_add_eye(-(X @ X), 1)",
    "tril(a, -1) + eye(m, n)": "_unit_tril(a)",
    "Y + Z": "Y + Z",  # no fresh term: a plain sum, nothing written into Y or Z
}


def parse(text):
    (assignment,) = Parser(NAMES, DIMS).program(f"W = {text}")
    return assignment.expr


def numpy_env(rng, dtype_y):
    from generated.numpy import _runtime as rt
    env = {k: getattr(rt, k) for k in dir(rt) if k.startswith("_") and k[1:2] != "_"}
    env.update(_np=np, m=4, n=3)
    env["X"] = rng.standard_normal((2, 4, 4))
    env["a"] = rng.standard_normal((2, 4, 3))
    env["Y"] = rng.standard_normal((2, 4, 3)).astype(dtype_y)
    env["Z"] = rng.standard_normal((4, 3)) + 1j * rng.standard_normal((4, 3))  # broadcasts
    return env


def reference(text, env):
    x, y, z, a = env["X"], env["Y"], env["Z"], env["a"]
    return {"X @ Y + Z": x @ y + z, "X @ Y - Z": x @ y - z, "Y - X @ Z": y - x @ z,
            "X @ Y + X @ Z - 2 * Y": x @ y + x @ z - 2 * y,
            "eye(m) - X @ X": np.eye(4) - x @ x, "tril(a, -1) + eye(m, n)": np.tril(a, -1)
            + np.eye(4, 3), "Y + Z": y + z}[text]


@pytest.mark.parametrize("dtype_y", [np.float64, np.complex128])
@pytest.mark.parametrize("text", list(SUMS))
def test_a_sum_written_in_place_is_the_sum_and_leaves_its_operands(text, dtype_y):
    code = BACKENDS["numpy"].Printer(dtype_ref="X").doprint(parse(text))
    if SUMS[text] is not None:
        assert code == SUMS[text]
    env = numpy_env(np.random.default_rng(3), dtype_y)
    before = {k: env[k].copy() for k in "XYZa"}
    got = eval(code, env)  # printed from a fixed test expression, not spec text
    np.testing.assert_allclose(got, reference(text, env), rtol=1e-13, atol=1e-13)
    for k in "XYZa":
        np.testing.assert_array_equal(env[k], before[k], err_msg=f"{text} wrote into {k}")


def test_backends_that_trace_or_keep_autograd_graphs_do_not_write_in_place():
    sums = {b: BACKENDS[b].Printer(dtype_ref="X").doprint(parse("X @ Y + Z")) for b in BACKENDS}
    assert sums["cupy"] == "_accumulate(X @ Y, Z)"
    assert "_accumulate" not in sums["jax"] and "_accumulate" not in sums["torch"]
    trapezoid = {b: BACKENDS[b].Printer(dtype_ref="a").doprint(parse("tril(a, -1) + eye(m, n)"))
                 for b in BACKENDS}
    assert trapezoid == {"numpy": "_unit_tril(a)", "cupy": "_unit_tril(a)",
                         "torch": "_unit_tril(a)", "jax": trapezoid["jax"]}
    assert "_unit_tril" not in trapezoid["jax"]


def test_torch_unit_tril_is_differentiable_and_leaves_its_input():
    import torch

    from generated.torch import _runtime as rt
    a = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    before = a.detach().clone()
    want = torch.tril(a, -1) + torch.eye(5, 3, dtype=a.dtype)
    assert torch.equal(rt._unit_tril(a), want) and torch.equal(a.detach(), before)
    assert torch.autograd.gradcheck(rt._unit_tril, (a,), check_forward_ad=True)


def test_two_embeds_that_tile_a_matrix_are_stacked():
    y, z = NAMES["Y"], sp.MatrixSymbol("T", n, n)
    rows = ops.Embed(y, m + n, n, 0, 0) + ops.Embed(z, m + n, n, m, 0)
    assert stack_adjacent_embeds(rows) == ops.VStack(y, z)
    cols = ops.Embed(y, m, 2 * n, 0, 0) - ops.Embed(NAMES["Z"], m, 2 * n, 0, n)
    assert stack_adjacent_embeds(cols) == ops.HStack(y, -NAMES["Z"])
    # blocks that leave a gap, or do not span the other dimension, stay padded
    gap = ops.Embed(y, m + n + 1, n, 0, 0) + ops.Embed(z, m + n + 1, n, m + 1, 0)
    assert stack_adjacent_embeds(gap) == gap
    k = sp.MatrixSymbol("K", n, 1)
    narrow = ops.Embed(y, m + n, n, 0, 0) + ops.Embed(k, m + n, n, m, 0)
    assert stack_adjacent_embeds(narrow) == narrow


def body(*statements, results=("gA",), checks=()):
    return model.RuleBody("spec/x.yaml:1", tuple(model.Assignment(t, c) for t, c in statements),
                          results, checks)


def test_temporaries_are_released_after_their_last_read_not_results_or_checked_values():
    rule = body(("V", "_unit_tril(a)"), ("W", "V @ G"), ("C", "W @ V"), ("K", "C + W"),
                ("gA", "K @ C"), ("gT", "K"), results=("gA", "gT"),
                checks=(model.DerivativeCheck("ties", ("C",), ("G",), "w", "_M", "check_ties"),))
    out = released(BACKENDS["numpy"].Printer(), rule)
    assert [a.released for a in out.assignments] == [(), (), ("V",), ("W",), (), ()]
    # K is read last by the last statement (the return frees it); C by a check
    assert [a.code for a in out.assignments] == [a.code for a in rule.assignments]
    assert released(BACKENDS["jax"].Printer(), rule) is rule


def test_a_released_name_that_a_closure_reads_elsewhere_still_compiles_under_dynamo():
    # a check's closure in another branch makes V a cell: set to None, not deleted
    import torch
    from factorules.compiler.printers import torch as torch_printer

    rule = released(torch_printer.Printer(), body(("V", "a + 1"), ("W", "V * 2"),
                                                  ("gA", "W + 1")))
    assert [a.released for a in rule.assignments] == [(), ("V",), ()]

    def f(a, flag):
        if flag:
            V = a + 1
            W = V * 2
            V = None  # as the template prints a release
            return W + 1
        V = a - 1
        return (lambda: V * 3)()

    compiled = torch.compile(f, fullgraph=True, backend="eager")
    a = torch.randn(3)
    assert torch.equal(compiled(a, True), f(a, True))


# -- products and sums printed without an n x n diagonal matrix or a layout copy -------------

LAYOUT_NAMES = {**NAMES, "v": sp.MatrixSymbol("v", m, 1)}


def parse_with_vector(text):
    (assignment,) = Parser(LAYOUT_NAMES, DIMS).program(f"W = {text}")
    return assignment.expr


def test_a_solve_of_a_diagonal_takes_in_the_product_beside_it():
    from factorules.compiler.product_folding import ScaleRows, fold_diagonal_products
    x, y, v = NAMES["X"], NAMES["Y"], LAYOUT_NAMES["v"]
    # X^-1 diag(v) Y: one solve of the scaled Y, no product with the solve's result
    assert fold_diagonal_products(parse_with_vector("solve(X, diag(v)) @ Y")) == ops.Solve(
        x, ScaleRows(y, v))
    # a solve of another right side keeps its product
    kept = parse_with_vector("solve(X, X) @ Y")
    assert fold_diagonal_products(kept) == kept


def test_a_diagonal_statement_is_written_into_the_products_that_read_it():
    from factorules.compiler.product_folding import fold_diagonal_products, inline_diagonals
    from factorules.compiler.program import Statement
    d = sp.MatrixSymbol("D", m, m)
    statements = [Statement("D", ops.Diag(LAYOUT_NAMES["v"])),
                  Statement("gA", NAMES["X"] * d * NAMES["Y"])]
    inlined = inline_diagonals(statements, ("gA",))
    assert [s.name for s in inlined] == ["gA"]
    assert "Diag" not in sp.srepr(fold_diagonal_products(inlined[0].expr))
    # a result keeps its statement
    assert [s.name for s in inline_diagonals(statements, ("D", "gA"))] == ["D", "gA"]


def test_torch_prints_a_sum_with_a_diagonal_as_plus_diag_unless_addmm_takes_it():
    printer = BACKENDS["torch"].Printer(dtype_ref="X")
    assert printer.doprint(parse_with_vector("hadamard(X, X) + diag(v)")) == \
        "_plus_diag(X * X, v)"
    assert printer.doprint(parse_with_vector("X - 2 * diag(v)")) == "_plus_diag(X, -2 * v)"
    assert printer.doprint(parse_with_vector("X @ X + diag(v)")).startswith("_addmm(")


def test_torch_plus_diag_is_the_sum_and_differentiable():
    import torch

    from generated.torch import _runtime as rt
    x = torch.randn(3, 4, 4, dtype=torch.float64, requires_grad=True)
    v = torch.randn(3, 4, 1, dtype=torch.float64, requires_grad=True)
    assert torch.equal(rt._plus_diag(x, v), x + torch.diag_embed(v.squeeze(-1)))
    assert torch.autograd.gradcheck(rt._plus_diag, (x, v), check_forward_ad=True)
    assert torch.autograd.gradgradcheck(rt._plus_diag, (x, v))
    # a complex v on a real x promotes, and a v that broadcasts over x's batch: the plain sum
    vc = torch.randn(3, 4, 1, dtype=torch.complex128)
    assert torch.equal(rt._plus_diag(x, vc), x + torch.diag_embed(vc.squeeze(-1)))
    assert torch.equal(rt._plus_diag(x, v[0]), x + torch.diag_embed(v[0].squeeze(-1)))
    # a complex x and a real v (eigh's Hermitian core)
    xc = torch.randn(2, 3, 3, dtype=torch.complex128)
    assert torch.equal(rt._plus_diag(xc, v[:2, :3]), xc + torch.diag_embed(v[:2, :3, 0]))


@pytest.mark.parametrize("op", ["svdvals", "eigh", "svd"])
@pytest.mark.parametrize("column_major", [False, True])
def test_torch_cotangent_is_laid_out_like_its_input(op, column_major):
    """A rule's product result comes out in its input's layout (_mm_like), so autograd does
    not copy it into that layout (AccumulateGrad's layout contract)."""
    import torch

    import generated.torch as fr
    torch.manual_seed(0)
    a = torch.randn(6, 6, dtype=torch.float64)
    a = (a + a.mT) if op == "eigh" else a
    a = (a.mT.contiguous().mT if column_major else a.contiguous()).requires_grad_()
    out = getattr(fr, op)(a)
    loss = sum((t * torch.randn_like(t)).sum() for t in (out if isinstance(out, tuple)
                                                         else (out,)))
    (g,) = torch.autograd.grad(loss, a)
    assert g.stride() == a.stride()


def test_a_diagonal_at_the_end_of_a_left_nested_chain_scales_the_chains_product():
    """diag(tau) @ V.H @ V parses as (diag(tau) @ V.H) @ V: the scaling is of the n x n
    product, not of the m x n factor beside it (ormqr's and geqrf's T)."""
    from factorules.compiler.product_folding import ScaleRows, fold_diagonal_products
    v = LAYOUT_NAMES["v"]
    y = NAMES["Y"]
    folded = fold_diagonal_products(parse_with_vector("diag(v) @ Y @ Y.H"))
    assert isinstance(folded, ScaleRows) and folded.vector == v
    assert isinstance(folded.arg, sp.MatMul) and folded.arg.args[0] == y
    assert BACKENDS["numpy"].Printer(dtype_ref="Y").doprint(folded) == "v * (Y @ _adjoint(Y))"


def test_a_diagonal_of_a_product_is_printed_from_its_factors_and_not_shared():
    """diagonal(X Y) is sum_k X_ik Y_ki (O(n^2)), also where X Y is a statement beside it
    (eig's dL = diagonal(Y V) beside X = Y V): the program does not share the product, so
    that the diagonal never reads the n x n product (JAX's transposition of the JVP then
    multiplies nothing for a cotangent of the eigenvalues alone)."""
    from factorules.compiler.printers.torch import Printer
    from factorules.compiler.program import Statement, build_program

    x, y = NAMES["X"], sp.MatrixSymbol("V", m, m)
    statements = [Statement("P", x * y), Statement("d", ops.Diagonal(x * y))]
    program = build_program(("X", "V"), statements, ("P", "d"))
    assert [s.name for s in program.statements] == ["P", "d"]
    assert program.statements[1].expr == ops.Diagonal(x * y)
    printed = Printer(diagonal_of_products=True).doprint(program.statements[1].expr)
    assert printed == "(X * V.mT).sum(-1).unsqueeze(-1)", printed  # (its value: test_rules)


def test_jax_eigvals_pullback_multiplies_no_matrix_as_native_jaxs():
    """JAX differentiates eigvals through eig (its hidden eigenvectors' cotangent a symbolic
    zero): the pullback solves with V's LU factors and scales, with no n x n product, as
    jax.numpy.linalg.eigvals' own pullback."""
    import jax

    from generated import jax as fr

    def products(f):
        a = jax.numpy.asarray(np.random.default_rng(0).standard_normal((6, 6)))
        out, pullback = jax.vjp(f, a)
        count = [0]

        def walk(j):
            for eqn in j.eqns:
                if eqn.primitive.name == "custom_linear_solve":
                    continue  # its solves (its matvec jaxprs are not run)
                if eqn.primitive.name == "dot_general" and eqn.outvars[0].aval.ndim >= 2:
                    count[0] += 1
                for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                    walk(sub)
        walk(jax.make_jaxpr(pullback)(out).jaxpr)
        return count[0]

    assert products(lambda a: fr.eigvals(a, check_ties=False)) == \
        products(jax.numpy.linalg.eigvals) == 0


def test_svd_terms_of_imaginary_diagonals_vanish_for_real_input():
    """diagonal(skew(X)) and skew(diag(v)) are i im(X_jj) and diag(i im(v)): printed through
    the runtime, which makes zeros for real input from the shape alone, so that JAX's
    pullback of a real svd (its JVP transposed) carries no term of them -- no more
    diagonal scatters than jax.numpy.linalg.svd's own -- and torch's is a broadcast view;
    for complex input they are the imaginary diagonals."""
    import jax
    import torch

    from factorules.compiler.printers.jax import Printer as JaxPrinter
    from factorules.compiler.printers.torch import Printer as TorchPrinter
    from generated import jax as fr
    from generated.numpy import _runtime_shared as shared
    from generated.torch import _runtime as torch_runtime

    x, v = NAMES["X"], sp.MatrixSymbol("v", m, 1)
    for printer in (JaxPrinter(), TorchPrinter()):
        assert printer.doprint(ops.Diagonal(ops.Skew(x))) == "_diagonal_skew(X)"
        assert printer.doprint(ops.Skew(ops.Diag(v))) == "_skew_diag(v)"

    def scatters(f):
        a = jax.numpy.asarray(np.random.default_rng(0).standard_normal((5, 3, 3)))
        out, pullback = jax.vjp(f, a)
        count = [0]

        def walk(j):
            for eqn in j.eqns:
                count[0] += eqn.primitive.name.startswith("scatter")
                for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                    walk(sub)
        walk(jax.make_jaxpr(pullback)(out).jaxpr)
        return count[0]

    off = dict(check_gauge=False, check_ties=False, check_singular=False)
    assert scatters(lambda a: tuple(fr.svd(a, full_matrices=False, **off))) <= \
        scatters(lambda a: tuple(jax.numpy.linalg.svd(a, full_matrices=False)))

    rng = np.random.default_rng(1)
    for a in (rng.standard_normal((2, 4, 4)),
              rng.standard_normal((2, 4, 4)) + 1j * rng.standard_normal((2, 4, 4))):
        d = np.diagonal(a, 0, -2, -1)[..., None].copy()
        want_d = 1j * d.imag
        want_s = 1j * d.imag * np.eye(4)
        for runtime, array in ((shared, np.asarray), (torch_runtime, torch.as_tensor)):
            assert np.array_equal(np.asarray(runtime._diagonal_skew(array(a))), want_d)
            assert np.array_equal(np.asarray(runtime._skew_diag(array(d))), want_s)
    assert torch_runtime._skew_diag(torch.ones(2, 4, 1)).stride()[-1] == 0  # a view


def test_a_diagonal_of_products_with_numeric_coefficients_is_printed_from_the_factors():
    """diagonal(-X V) (eig's pullback: V^H gV negated) and diagonal(2 X V - X W) are sums of
    elementwise products with their signs and coefficients: no n x n product formed."""
    from factorules.compiler.printers.torch import Printer

    x, v, w = NAMES["X"], sp.MatrixSymbol("V", m, m), sp.MatrixSymbol("W", m, m)
    printer = Printer(diagonal_of_products=True)
    assert printer.doprint(ops.Diagonal(-(x * v))) == "-(X * V.mT).sum(-1).unsqueeze(-1)"
    assert printer.doprint(ops.Diagonal(2 * x * v - x * w)) == \
        "-(X * W.mT).sum(-1).unsqueeze(-1) + 2 * (X * V.mT).sum(-1).unsqueeze(-1)"
    assert printer.doprint(ops.Diagonal(-x * v / 2 - x * w)) == \
        "-(X * W.mT).sum(-1).unsqueeze(-1) - (1 / 2) * (X * V.mT).sum(-1).unsqueeze(-1)"
    # (the values of the rules printed so: test_rules)


def test_a_diagonal_between_two_factors_scales_the_smaller_one_at_the_case_sizes():
    """U diag(w) B (svdvals' U diag(gS) Vh): the diagonal scales the factor with fewer
    entries at the case's representative sizes (the n x n one of a tall case), and the one
    before it where no sizes are given."""
    from factorules.compiler.product_folding import ScaleCols, ScaleRows, fold_diagonal_products
    u, b, w = NAMES["Y"], sp.MatrixSymbol("B", n, n), sp.MatrixSymbol("w", n, 1)
    (assignment,) = Parser({"U": u, "B": b, "w": w}, DIMS).program("W = U @ diag(w) @ B")
    product = assignment.expr
    assert fold_diagonal_products(product) == sp.MatMul(ScaleCols(u, w), b)
    tall = ((m, 1024), (n, 256))
    assert fold_diagonal_products(product, tall) == sp.MatMul(u, ScaleRows(b, w))
    wide = ((m, 16), (n, 256))
    assert fold_diagonal_products(product, wide) == sp.MatMul(ScaleCols(u, w), b)
    # printed: the scaling of the right factor is one operand of '@'
    assert BACKENDS["numpy"].Printer(dtype_ref="U").doprint(
        fold_diagonal_products(product, tall)) == "Y @ (w * B)"
