"""Rules evaluated a block of rows at a time (spec 'row_blocks', factorules/compiler/row_blocks.py).

The NumPy rules of geqrf and ormqr split their m-row values at the top rows that hold their
structure and loop over blocks of the rows below.  The tests here: the split itself on
programs (what splits and what does not), and the generated rules with many uneven blocks
against the same rules with one block (the cross-backend tests compare the one-block rules
with torch's and JAX's, which are not blocked).
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import sympy as sp

from factorules.compiler import ops, row_blocks
from factorules.compiler.program import Statement
from generated import numpy as gn
from generated.numpy import _runtime

m, n = sp.symbols("m n", positive=True, integer=True)
a = sp.MatrixSymbol("a", m, n)
b = sp.MatrixSymbol("b", n, n)


def _split(*statements, results=("X",)):
    return row_blocks.split([Statement(*s) for s in statements], results, {m}, [n])


def test_a_unit_lower_trapezoid_is_its_input_below_the_top():
    found = _split(("X", ops.Eye(m, n) + ops.Tril(a, -1)))
    by_name = {s.name: s.expr for s in found.statements}
    assert by_name["X_rows"] == sp.MatrixSymbol("a_rows", row_blocks.ROWS, n)
    assert by_name["X_top"] == ops.Eye(n, n) + ops.Tril(ops.Block(a, 0, n, 0, n), -1)
    assert found.joined == (("X", "X_rows", sp.MatrixSymbol("X_top", n, n), m),)
    assert found.below == m - n


def test_a_product_over_the_rows_is_the_tops_plus_a_sum_over_blocks():
    found = _split(("G", ops.adjoint(a) * a), ("X", a * sp.MatAdd(b, ops.Eye(n, n))))
    by_name = {s.name: s.expr for s in found.statements}
    rows = sp.MatrixSymbol("a_rows", row_blocks.ROWS, n)
    assert by_name["_sum0"] == ops.adjoint(rows) * rows
    assert by_name["G"] == ops.adjoint(ops.Block(a, 0, n, 0, n)) * ops.Block(a, 0, n, 0, n) \
        + sp.MatrixSymbol("_sum0", n, n)
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
    """Blocks of 3 rows (the last one shorter)."""
    def use():
        monkeypatch.setattr(_runtime, "ROW_BLOCKS", 10 ** 6)
        monkeypatch.setattr(_runtime, "ROW_BLOCK_MIN", 3)
        assert _runtime._row_blocks(13) == [(0, 3), (3, 6), (6, 9), (9, 12), (12, 13)]
    return use


def _draw(rng, shape, dtype):
    x = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


def _both(compute, many_blocks):
    one = compute()
    many_blocks()
    return one, compute()


@pytest.mark.parametrize("dtype,batch", [(np.float64, ()), (np.complex128, (2,)),
                                         (np.float32, (3,))])
def test_geqrf_rules_in_blocks_are_the_rules_in_one(dtype, batch, many_blocks):
    rng = np.random.default_rng(0)
    A = _draw(rng, (*batch, 17, 4), dtype)
    dA, ga = _draw(rng, A.shape, dtype), _draw(rng, A.shape, dtype)
    gtau = _draw(rng, (*batch, 4), dtype)

    def compute():
        outputs, tangents = gn.geqrf_jvp(A, dA)
        _, pullback = gn.geqrf_vjp(A)
        return (*tangents, *pullback(ga, gtau))

    one, many = _both(compute, many_blocks)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    for x, y in zip(one, many):
        np.testing.assert_allclose(y, x, rtol=tol, atol=tol * np.abs(x).max())


@pytest.mark.parametrize("left,transpose", itertools.product([True, False], repeat=2))
def test_ormqr_rules_in_blocks_are_the_rules_in_one(left, transpose, many_blocks):
    rng = np.random.default_rng(1)
    a, tau = gn.geqrf(_draw(rng, (2, 19, 5), np.complex128))
    C = _draw(rng, (2, 19, 3) if left else (2, 3, 19), np.complex128)
    da, dtau, dC = (_draw(rng, x.shape, np.complex128) for x in (a, tau, C))

    def compute():
        _, tangents = gn.ormqr_jvp((a, tau, C), (da, dtau, dC), left=left, transpose=transpose)
        y, pullback = gn.ormqr_vjp((a, tau, C), left=left, transpose=transpose)
        return (*tangents, *pullback(_draw(np.random.default_rng(2), y.shape, y.dtype)))

    one, many = _both(compute, many_blocks)
    for x, y in zip(one, many):
        np.testing.assert_allclose(y, x, rtol=1e-12, atol=1e-12 * np.abs(x).max())


def test_the_tall_rules_loop_over_row_blocks():
    """The m > n cases of geqrf and ormqr's left cases (Q applied to C's m rows) print
    loops (a spec without 'row_blocks', qr, prints none)."""
    import importlib
    import inspect

    geqrf, ormqr, qr = (importlib.import_module(f"generated.numpy.{name}")
                        for name in ("geqrf", "ormqr", "qr"))
    for module in (geqrf, ormqr):
        for rule in (module._jvp_rule, module._vjp_rule):
            assert "_row_blocks(" in inspect.getsource(rule), (module.__name__, rule.__name__)
    assert "_row_blocks(" not in inspect.getsource(qr)


def test_row_blocks_cover_the_rows_once():
    assert _runtime._row_blocks(0) == [(0, 0)]
    for rows in (1, 1023, 1024, 5000, 200000):
        blocks = _runtime._row_blocks(rows)
        assert blocks[0][0] == 0 and blocks[-1][1] == rows
        assert all(x[1] == y[0] and x[0] < x[1] for x, y in zip(blocks, blocks[1:]))
        assert len(blocks) <= _runtime.ROW_BLOCKS
