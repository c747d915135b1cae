"""Dimensions and case conditions: the dimension table of a spec ('dims'), each case's
condition on the sizes, the dimensions' values under it, and the matrix symbol of an input
or output with given dimension values (``matrix_symbol``).

The primitive dimensions are the input's rows and columns; a dimension symbol is a
non-negative integer, which is what lets zero-size matrices through every rule.  Dimension
definitions and conditions are read as Python ``ast`` trees of a few allowed forms, never
evaluated.
"""
from __future__ import annotations

import ast
import keyword

import sympy as sp

from . import expr as expr_mod
from . import ops
from .checked import Condition, DimDef
from .spec import ALWAYS, Case, Spec, SpecError, Tensor

_DIM_FUNCS = {"min": sp.Min, "max": sp.Max}
_COMPARE = {ast.GtE: ">=", ast.Gt: ">", ast.LtE: "<=", ast.Lt: "<", ast.Eq: "=="}


def _dim_expr(node, known: dict[str, sp.Expr], inputs: dict[str, Tensor], fail):
    def operand(sub):
        value, source = _dim_expr(sub, known, inputs, fail)
        if source is not None:
            fail(f"{ast.unparse(sub)} must be a dimension's whole definition; name it and "
                 f"use the name")
        return value

    if isinstance(node, ast.Name):
        if node.id not in known:
            fail(f"unknown dimension '{node.id}'")
        return known[node.id], None
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return sp.Integer(node.value), None
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        a, b = operand(node.left), operand(node.right)
        return (a + b if isinstance(node.op, ast.Add) else a - b), None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        func = node.func.id
        if func in ("rows", "cols") and len(node.args) == 1 and isinstance(node.args[0], ast.Name):
            name = node.args[0].id
            if name not in inputs:
                fail(f"{func}({name}): '{name}' is not an input")
            return None, (name, -2 if func == "rows" else -1)
        if func in _DIM_FUNCS and len(node.args) == 2:
            args = [operand(a) for a in node.args]
            return _DIM_FUNCS[func](*args), None
    fail(f"'{ast.unparse(node)}' is not a dimension definition "
         f"(use rows(X), cols(X), min(a, b), max(a, b), +, -)")


def structure_offset(t: Tensor, dims: dict[str, sp.Expr]) -> sp.Expr:
    """The diagonal that bounds a triangular output's structure (its 'offset'), with the
    dimensions' values ``dims`` (name -> expression: the variant's, or a case's); 0 for none.
    Raises ExprError where the offset is not a dimension expression."""
    if t.offset is None:
        return sp.Integer(0)
    return expr_mod.Parser({}, dims).dimension(t.offset)


def parse_python_expression(text: str, fail, message: str) -> ast.AST:
    """A dimension, case condition or signature call as an ``ast`` tree, never evaluated."""
    try:
        return ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        fail(message)


def _dim_value(node, known, inputs, fail):
    try:
        return _dim_expr(node, known, inputs, fail)
    except RecursionError:
        fail("nested too deeply")


def dimension_table(spec: Spec) -> tuple[DimDef, ...]:
    line = spec.line_of.get("dims", 1)

    def fail(msg):
        raise SpecError(spec.path, line, f"dims: {msg}")

    inputs = {t.name: t for t in spec.inputs}
    known: dict[str, sp.Expr] = {}
    out = []
    for name, text in spec.dims:
        line = spec.line_of.get(f"dims.{name}", spec.line_of.get("dims", 1))
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_") \
                or name == "I":
            fail(f"'{name}' is not a valid dimension name")
        if name in inputs:
            fail(f"'{name}' names both a dimension and an input")
        node = parse_python_expression(text, fail, f"cannot parse '{text}'")
        value, source = _dim_value(node, known, inputs, fail)
        if source is not None:
            value = sp.Symbol(name, integer=True, nonnegative=True)
        known[name] = value
        out.append(DimDef(name, source, value))
    for t in spec.inputs:
        for d in t.shape:
            if d not in known:
                raise SpecError(spec.path, t.line, f"input {t.name}: unknown dimension '{d}'")
    for d in out:
        if d.source is not None:
            name, axis = d.source
            if inputs[name].is_vector and axis == -1:
                raise SpecError(spec.path, inputs[name].line,
                                f"input {name} is a vector: its size is rows({name})")
            given = inputs[name].shape[0 if inputs[name].is_vector else axis]
            if given != d.name:
                func = "rows" if axis == -2 else "cols"
                raise SpecError(spec.path, inputs[name].line,
                                f"input {name}: its {func} are '{given}', but dims says "
                                f"{d.name} = {func}({name})")
    return tuple(out)


def case_condition(spec: Spec, case: Case, dims: dict[str, sp.Expr]) -> Condition:
    def fail(msg):
        raise SpecError(spec.path, case.line, f"case condition '{case.when}': {msg}")

    if case.when.strip() == ALWAYS:
        zero = sp.Integer(0)
        return Condition(zero, "==", zero, ALWAYS)
    node = parse_python_expression(case.when, fail, "cannot parse it")
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1
            and type(node.ops[0]) in _COMPARE):
        fail("expected one comparison such as 'm >= n'")
    lhs, _ = _dim_value(node.left, dims, {}, fail)
    rhs, _ = _dim_value(node.comparators[0], dims, {}, fail)
    return Condition(lhs, _COMPARE[type(node.ops[0])], rhs, case.when.strip())


def _under(cond: Condition, value: sp.Expr) -> sp.Expr:
    """Resolve min/max of the condition's two sides, knowing the condition holds."""
    if cond.op in (">=", ">", "=="):
        big, small = cond.lhs, cond.rhs
    else:
        big, small = cond.rhs, cond.lhs
    return value.replace(
        lambda e: isinstance(e, (sp.Min, sp.Max)) and set(e.args) == {big, small},
        lambda e: small if isinstance(e, sp.Min) else big)


def case_dims(dims: tuple[DimDef, ...], cond: Condition) -> dict[str, sp.Expr]:
    values = {d.name: _under(cond, d.expr) for d in dims}
    if cond.op == "==" and isinstance(cond.rhs, sp.Symbol):  # e.g. m == n: write n as m
        values = {k: ops.as_expr(v).subs(cond.rhs, cond.lhs) for k, v in values.items()}
    elif cond.op == "==" and isinstance(cond.lhs, sp.Symbol) and cond.rhs.is_Integer:
        values = {k: ops.as_expr(v).subs(cond.lhs, cond.rhs) for k, v in values.items()}
    return values


def matrix_symbol(t: Tensor, dims: dict[str, sp.Expr], name: str | None = None) -> sp.MatrixSymbol:
    """A matrix, or a vector as a column (the backends hold it as a (..., n) array)."""
    rows, cols = (dims[d] for d in t.shape) if not t.is_vector else (dims[t.shape[0]], 1)
    return sp.MatrixSymbol(name or t.name, rows, cols)
