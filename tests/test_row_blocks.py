"""Rules evaluated a block of rows at a time (spec 'row_blocks', factorules/compiler/row_blocks.py).

The NumPy and torch rules of geqrf, ormqr and qr split a tall input's m-row values at the top
rows that hold their structure and loop over blocks of the rows below (where the rows below
are many: _row_blocked).  The tests here: the split itself on programs (what splits and what
does not), and the generated rules forced into many uneven blocks against the same rules
without blocks (which the cross-backend tests compare with JAX's), under vmap, double
backward and torch.compile too.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import sympy as sp

from factorules.compiler import ops, row_blocks
from factorules.compiler.program import Statement
import torch

from generated import numpy as gn
from generated import torch as gt
from generated.numpy import _runtime_shared as numpy_shared
from generated.torch import _runtime_shared as torch_shared

m, n = sp.symbols("m n", positive=True, integer=True)
a = sp.MatrixSymbol("a", m, n)
b = sp.MatrixSymbol("b", n, n)


def _split(*statements, results=("X",)):
    return row_blocks.split([Statement(*s) for s in statements], results, {m}, [n])


def test_a_unit_lower_trapezoid_is_its_input_below_the_top():
    found = _split(("X", ops.Eye(m, n) + ops.Tril(a, -1)))
    by_name = {s.name: s.expr for s in found.statements}
    assert by_name["X_rows"] == sp.MatrixSymbol("a_rows", row_blocks.ROWS, n)
    top = sp.MatrixSymbol("a_top", n, n)  # a[:n], read before the rule
    assert by_name["X_top"] == ops.Eye(n, n) + ops.Tril(top, -1)
    assert found.params == (("a_top", "a_rows", a),)
    assert found.joined == (("X", "X_rows", sp.MatrixSymbol("X_top", n, n), m),)
    assert found.below == m - n


def test_a_product_over_the_rows_is_the_tops_plus_a_sum_over_blocks():
    found = _split(("G", ops.adjoint(a) * a), ("X", a * sp.MatAdd(b, ops.Eye(n, n))))
    by_name = {s.name: s.expr for s in found.statements}
    rows = sp.MatrixSymbol("a_rows", row_blocks.ROWS, n)
    assert by_name["_sum0"] == ops.adjoint(rows) * rows
    top = sp.MatrixSymbol("a_top", n, n)
    assert by_name["G"] == ops.adjoint(top) * top + sp.MatrixSymbol("_sum0", n, n)
    phases = row_blocks.plan(found.statements, ["X_rows"])
    # X's rows need no sum: one loop adds up G's and writes them; G comes after it
    assert [(p.sums, p.outputs, [s.name for s in p.before]) for p in phases] == [
        (("_sum0",), ("X_rows",), ["X_top"]), ((), (), ["G"])]


@pytest.mark.parametrize("expr", [
    a * ops.adjoint(a),                      # an m x m product
    ops.Triu(a, -1),                         # its band reaches below the top
    ops.Embed(b, m, n, 1, 0),                # a small block below the top's rows
])
def test_what_reaches_below_the_top_does_not_split(expr):
    assert _split(("X", expr)) is None


def test_a_sum_read_by_a_later_phase_starts_a_loop_of_its_own():
    found = _split(("G", ops.adjoint(a) * a), ("X", a * sp.MatrixSymbol("G", n, n)))
    phases = row_blocks.plan(found.statements, ["X_rows"])
    assert [(p.sums, p.outputs) for p in phases] == [(("_sum0",), ()), ((), ("X_rows",))]


@pytest.fixture
def many_blocks(monkeypatch):
    """The rules in blocks of 3 rows (the last one shorter), in both backends that block
    rows (at the tests' sizes they take the rules as one block otherwise)."""
    def use():
        for shared in (numpy_shared, torch_shared):
            assert not shared._row_blocked(13, 4)
            monkeypatch.setattr(shared, "ROW_BLOCKED_RATIO", 0)
            monkeypatch.setattr(shared, "ROW_BLOCKS", 10 ** 6)
            monkeypatch.setattr(shared, "ROW_BLOCK_MIN", 3)
            assert shared._row_blocked(13, 4)
            assert shared._row_blocks(13) == [(0, 3), (3, 6), (6, 9), (9, 12), (12, 13)]
    return use


def _draw(rng, shape, dtype):
    x = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


def _both(compute, many_blocks):
    """compute() with the rules as one block (no loop), then in many blocks."""
    one = compute()
    many_blocks()
    return one, compute()


def _torch_jvp_vjp(op, primals, tangents, cotangents, **options):
    """op's tangents (forward AD) and its inputs' cotangents (autograd), as NumPy arrays."""
    import torch.autograd.forward_ad as fwAD

    primals = [torch.from_numpy(x) for x in primals]
    with fwAD.dual_level():
        duals = [fwAD.make_dual(x, torch.from_numpy(t)) for x, t in zip(primals, tangents)]
        outs = op(*duals, **options)
        outs = outs if isinstance(outs, tuple) else (outs,)
        tangent_outs = [fwAD.unpack_dual(y).tangent for y in outs]
    leaves = [x.clone().requires_grad_() for x in primals]
    outs = op(*leaves, **options)
    outs = outs if isinstance(outs, tuple) else (outs,)
    grads = torch.autograd.grad(outs, leaves, [torch.from_numpy(g) for g in cotangents])
    return [t.numpy() for t in (*tangent_outs, *grads)]


def _close(one, many, tol):
    assert len(one) == len(many)
    for x, y in zip(one, many):
        if x is None or np.size(x) == 0:  # mode="r"'s Q (and its tangent) is empty
            assert y is None or np.size(y) == 0
            continue
        np.testing.assert_allclose(y, x, rtol=tol, atol=tol * np.abs(x).max())


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("dtype,batch", [(np.float64, ()), (np.complex128, (2,)),
                                         (np.float32, (3,))])
def test_geqrf_rules_in_blocks_are_the_rules_without(backend, dtype, batch, many_blocks):
    rng = np.random.default_rng(0)
    A = _draw(rng, (*batch, 17, 4), dtype)
    dA, ga = _draw(rng, A.shape, dtype), _draw(rng, A.shape, dtype)
    gtau = _draw(rng, (*batch, 4), dtype)

    def compute():
        if backend == "torch":
            return _torch_jvp_vjp(gt.geqrf, [A], [dA], [ga, gtau])
        _, tangents = gn.geqrf_jvp(A, dA)
        _, pullback = gn.geqrf_vjp(A)
        return (*tangents, *pullback(ga, gtau))

    one, many = _both(compute, many_blocks)
    _close(one, many, 1e-4 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("left,transpose", itertools.product([True, False], repeat=2))
def test_ormqr_rules_in_blocks_are_the_rules_without(backend, left, transpose, many_blocks):
    rng = np.random.default_rng(1)
    a, tau = gn.geqrf(_draw(rng, (2, 19, 5), np.complex128))
    C = _draw(rng, (2, 19, 3) if left else (2, 3, 19), np.complex128)
    da, dtau, dC = (_draw(rng, x.shape, np.complex128) for x in (a, tau, C))
    gY = _draw(rng, C.shape, np.complex128)

    def compute():
        if backend == "torch":
            return _torch_jvp_vjp(gt.ormqr, [a, tau, C], [da, dtau, dC], [gY], left=left,
                                  transpose=transpose)
        _, tangents = gn.ormqr_jvp((a, tau, C), (da, dtau, dC), left=left, transpose=transpose)
        _, pullback = gn.ormqr_vjp((a, tau, C), left=left, transpose=transpose)
        return (*tangents, *pullback(gY))

    one, many = _both(compute, many_blocks)
    _close(one, many, 1e-12)


def test_the_tall_rules_loop_over_row_blocks():
    """The tall cases of geqrf, qr and ormqr's left cases (Q applied to C's m rows) print
    loops (a spec without 'row_blocks', lq, prints none)."""
    import importlib
    import inspect

    for backend in ("numpy", "torch"):
        geqrf, ormqr, qr, lq = (importlib.import_module(f"generated.{backend}.{name}")
                                for name in ("geqrf", "ormqr", "qr", "lq"))
        for module in (geqrf, ormqr, qr):
            for rule in (module._jvp_rule, module._vjp_rule):
                assert "_row_blocks(" in inspect.getsource(rule), (module.__name__, rule)
        assert "_row_blocks(" not in inspect.getsource(lq)


def test_row_blocks_cover_the_rows_once():
    assert numpy_shared._row_blocks(0) == [(0, 0)]
    for rows in (1, 1023, 1024, 5000, 200000):
        blocks = numpy_shared._row_blocks(rows)
        assert blocks[0][0] == 0 and blocks[-1][1] == rows
        assert all(x[1] == y[0] and x[0] < x[1] for x, y in zip(blocks, blocks[1:]))
        assert len(blocks) <= numpy_shared.ROW_BLOCKS


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("mode", ["reduced", "r", "complete"])
def test_qr_rules_in_blocks_are_the_rules_without(backend, mode, many_blocks):
    rng = np.random.default_rng(3)
    A = _draw(rng, (2, 16, 5), np.complex128)
    dA = _draw(rng, A.shape, np.complex128)
    shapes = {"reduced": [(2, 16, 5), (2, 5, 5)], "r": [(2, 5, 5)],
              "complete": [(2, 16, 16), (2, 16, 5)]}[mode]
    cotangents = [_draw(rng, s, np.complex128) for s in shapes]

    def compute():
        if backend == "torch":
            def qr(x):  # mode="r": R alone (torch's Q is an empty tensor)
                Q, R = gt.qr(x, mode=mode)
                return (R,) if mode == "r" else (Q, R)
            return _torch_jvp_vjp(qr, [A], [dA], cotangents)
        _, tangents = gn.qr_jvp(A, dA, mode=mode)
        _, pullback = gn.qr_vjp(A, mode=mode)
        return (*tangents, *pullback(*cotangents))

    one, many = _both(compute, many_blocks)
    _close(one, many, 1e-12)


def _tall_loss(x):
    """A real loss through qr, geqrf and ormqr of a tall x (all three blocked)."""
    Q, R = gt.qr(x)
    a, tau = gt.geqrf(x)
    y = gt.ormqr(a, tau, x[..., :, :2])
    w = torch.linspace(0.5, 1.5, y.shape[-2] * y.shape[-1], dtype=x.dtype).reshape(y.shape[-2:])
    return (Q * Q.flip(-2)).sum() + (R ** 2).sum() + (y * w).sum()


def test_blocked_rules_under_vmap_and_double_backward(many_blocks):
    """torch.func.vmap of the gradient, and the gradient of the gradient, through the rules in
    blocks equal those through the rules without (their in-place writes of a block's rows
    into the results are differentiated and batched)."""
    x = torch.from_numpy(_draw(np.random.default_rng(4), (3, 13, 4), np.float64))

    def grads():
        batched = torch.func.vmap(torch.func.grad(_tall_loss))(x)
        leaf = x[0].clone().requires_grad_()
        (g,) = torch.autograd.grad(_tall_loss(leaf), leaf, create_graph=True)
        (gg,) = torch.autograd.grad((g ** 2).sum(), leaf)
        return [batched.numpy(), gg.numpy()]

    one, many = _both(grads, many_blocks)
    _close(one, many, 1e-10)


def test_blocked_rules_compile_to_one_graph(many_blocks):
    """torch.compile (fullgraph) of the loss and its gradient through the rules in blocks:
    one graph, equal to eager."""
    many_blocks()
    x = torch.from_numpy(_draw(np.random.default_rng(5), (13, 4), np.float64))

    def value_and_grad(x):
        loss = _tall_loss(x)
        return loss.detach(), torch.autograd.grad(loss, x)[0]

    eager = value_and_grad(x.clone().requires_grad_())
    torch._dynamo.reset()
    with torch._dynamo.config.patch(trace_autograd_ops=True):
        compiled = torch.compile(value_and_grad, backend="aot_eager", fullgraph=True)(
            x.clone().requires_grad_())
    torch._dynamo.reset()
    for e, c in zip(eager, compiled):
        torch.testing.assert_close(c, e, rtol=1e-12, atol=1e-12)
