"""Safe parser: equation text -> SymPy matrix expressions.

Spec text is data.  It is parsed with Python's ``ast`` module (``ast.parse`` only builds a
tree; nothing is evaluated) and every node is checked against a whitelist.  The grammar
(docs/spec-language.md has it in full):

    program    := { NAME "=" expr NEWLINE }            # comments start with '#'
    equation   := expr "=" expr
    expr       := expr ("+" | "-") expr | expr "@" expr
                | scalar "*" expr | expr "*" scalar | expr "/" scalar
                | "-" expr | "+" expr | postfix
    postfix    := atom { ".H" | ".T" | ".conj" | "[" slice "," slice "]" }
    atom       := NAME | NUMBER | FUNC "(" args ")" | "(" expr ")"
    slice      := [dim] ":" [dim]
    dim        := DIMNAME | INT | dim ("+" | "-") dim

Names must be declared (inputs, outputs, their tangents/cotangents, dims, earlier
assignments); functions are those of ``FUNCTIONS`` below.
"""
from __future__ import annotations

import ast
import math
import warnings
from dataclasses import dataclass

import sympy as sp
from sympy import Adjoint, HadamardProduct, Identity, MatAdd, MatMul, MatrixExpr, Transpose

from . import ops


class ExprError(ValueError):
    """A problem in equation text; ``line`` counts from 1 within the text."""

    def __init__(self, message: str, line: int = 1):
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Assignment:
    name: str
    expr: MatrixExpr
    line: int  # 1-based line within the program text


@dataclass(frozen=True)
class Equation:
    lhs: MatrixExpr
    rhs: MatrixExpr
    text: str


class _IdentityOfContext:
    """``I`` before its size is known: resolved against the other operand."""


_I = _IdentityOfContext()

# The spec language's functions: those of its operations (each says how it is called in its
# ``call``), and two that build SymPy's own nodes.
FUNCTIONS: dict[str, ops.Call] = {
    **{name: op.call for name, op in ops.STRUCTURAL_OPS.items()},
    "hadamard": ops.Call(2),
    "zeros": ops.Call(0, ("rows", "cols"), required_args=1),
}
_OPERATORS = {
    ast.Pow: "**", ast.Mod: "%", ast.FloorDiv: "//", ast.BitAnd: "&", ast.BitOr: "|",
    ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>", ast.Invert: "~", ast.Not: "not",
}
_ATTRIBUTES = {"H": Adjoint, "T": Transpose,
               **{op.attribute: op for op in ops.OPERATIONS if op.attribute}}


def _describe(node: ast.AST) -> str:
    kinds = {
        ast.Lambda: "a lambda", ast.Attribute: "attribute access", ast.Call: "this call",
        ast.Compare: "a comparison", ast.BoolOp: "a boolean operator", ast.IfExp: "a conditional",
        ast.ListComp: "a comprehension", ast.GeneratorExp: "a generator", ast.Dict: "a dict",
        ast.List: "a list", ast.Tuple: "a tuple", ast.Subscript: "indexing",
        ast.Import: "an import", ast.ImportFrom: "an import", ast.FunctionDef: "a function definition",
        ast.Await: "await", ast.Starred: "unpacking", ast.JoinedStr: "an f-string",
    }
    return kinds.get(type(node), f"'{type(node).__name__}'")


def _negated(x):
    """-x, keeping a product's grouping (``-(V @ (T @ W))`` must not become the chain
    ``-V @ T @ W``, which is multiplied left to right)."""
    if isinstance(x, MatMul):
        return MatMul(sp.S.NegativeOne, x)
    return -x


class Parser:
    """Parses one text block against a namespace of declared names.

    names: declared matrix names -> MatrixExpr; dims: dimension names -> SymPy expressions.
    """

    def __init__(self, names: dict[str, MatrixExpr], dims: dict[str, sp.Expr]):
        self.names = dict(names)
        self.dims = dict(dims)

    # -- entry points --------------------------------------------------------------------
    def program(self, text: str) -> list[Assignment]:
        tree = self._parse(text, "exec")
        out: list[Assignment] = []
        assigned: set[str] = set()
        for stmt in tree.body:
            if not isinstance(stmt, ast.Assign):
                raise ExprError(f"expected 'NAME = expression', found {_describe(stmt)}",
                                stmt.lineno)
            if len(stmt.targets) != 1 or not isinstance(stmt.targets[0], ast.Name):
                raise ExprError("the left side of an assignment must be a single name",
                                stmt.lineno)
            name = stmt.targets[0].id
            if name in self.dims:
                raise ExprError(f"'{name}' is a dimension and cannot be assigned", stmt.lineno)
            if name in self.names and name not in assigned:
                raise ExprError(f"'{name}' is already declared and cannot be assigned",
                                stmt.lineno)
            if name in assigned:
                raise ExprError(f"'{name}' is assigned twice", stmt.lineno)
            if name.startswith("_"):
                raise ExprError(f"names starting with '_' are reserved: '{name}'", stmt.lineno)
            if name == "I":
                raise ExprError("'I' is the identity matrix and cannot be assigned", stmt.lineno)
            value = self._matrix(self._top(stmt.value), stmt.value)
            self.names[name] = sp.MatrixSymbol(name, *value.shape)
            assigned.add(name)
            out.append(Assignment(name, value, stmt.lineno))
        return out

    def expression(self, text: str) -> MatrixExpr:
        """One matrix expression (e.g. a signature call's argument 'A.H')."""
        node = self._parse(text.strip(), "eval").body
        return self._matrix(self._top(node), node)

    def dimension(self, text: str) -> sp.Expr:
        """One dimension expression (an output's structure 'offset': 'n - m')."""
        return self._dim(self._parse(text.strip(), "eval").body)

    def equation(self, text: str) -> Equation:
        # the '=' outside brackets (those inside are keyword arguments)
        depth, splits = 0, []
        for i, c in enumerate(text):
            depth += (c in "([{") - (c in ")]}")
            if c == "=" and depth == 0 and text[i - 1:i] not in ("=", "<", ">", "!") \
                    and text[i + 1:i + 2] != "=":
                splits.append(i)
        if len(splits) != 1:
            raise ExprError(f"an equation has exactly one '=' outside brackets: {text!r}")
        left, right = text[:splits[0]], text[splits[0] + 1:]
        lhs = self._top(self._parse(left.strip(), "eval").body)
        rhs = self._top(self._parse(right.strip(), "eval").body)
        try:
            lhs, rhs = _resolve_identity(lhs, rhs), _resolve_identity(rhs, lhs)
            if isinstance(lhs, _IdentityOfContext):
                raise ExprError("cannot tell the size of I in this equation")
            for side in (lhs, rhs):
                if not isinstance(side, MatrixExpr):
                    raise ExprError(f"both sides of an equation must be matrices: "
                                    f"{text.strip()!r}")
            ops.require_same_shape("=", lhs, rhs)
        except ops.ShapeError as err:
            raise ExprError(f"{err} in {text.strip()!r}") from None
        return Equation(lhs, rhs, text.strip())

    # -- internals -----------------------------------------------------------------------
    @staticmethod
    def _parse(text: str, mode: str) -> ast.AST:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. SyntaxWarning for "\d" in a string
                return ast.parse(text, mode=mode)
        except SyntaxError as err:
            raise ExprError(f"syntax error: {err.msg}", err.lineno or 1) from None
        except (ValueError, RecursionError, MemoryError):
            raise ExprError("cannot parse this text") from None

    def _top(self, node: ast.AST):
        """One whole expression."""
        try:
            return self._expr(node)
        except RecursionError:
            raise ExprError("expression nested too deeply", node.lineno) from None

    def _no_bare_identity(self, value, node):
        if isinstance(value, _IdentityOfContext):
            raise ExprError("cannot tell the size of I here; write eye(rows, cols)", node.lineno)
        return value

    def _matrix(self, value, node):
        if isinstance(value, _IdentityOfContext):
            raise ExprError("cannot tell the size of I here; write eye(rows, cols)", node.lineno)
        if not isinstance(value, MatrixExpr):
            raise ExprError("expected a matrix, found a scalar", node.lineno)
        return value

    def _expr(self, node: ast.AST):
        try:
            return self._expr_unchecked(node)
        except ops.ShapeError as err:
            raise ExprError(str(err), getattr(node, "lineno", 1)) from None

    def _expr_unchecked(self, node: ast.AST):
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise ExprError(f"constant {node.value!r} is not a number", node.lineno)
            if not math.isfinite(node.value):
                raise ExprError(f"constant {ast.unparse(node)} is not a finite number",
                                node.lineno)
            return sp.Rational(str(node.value))
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return _negated(self._no_bare_identity(self._expr(node.operand), node))
            if isinstance(node.op, ast.UAdd):
                return self._expr(node.operand)
            raise ExprError(f"operator {_operator(node.op)} is not allowed", node.lineno)
        if isinstance(node, ast.BinOp):
            return self._binop(node)
        if isinstance(node, ast.Attribute):
            if node.attr not in _ATTRIBUTES:
                *others, last = (f".{a}" for a in _ATTRIBUTES)
                raise ExprError(f"attribute access '.{node.attr}' is not allowed "
                                f"(only {', '.join(others)} and {last})", node.lineno)
            base = self._matrix(self._expr(node.value), node)
            return _ATTRIBUTES[node.attr](base)
        if isinstance(node, ast.Subscript):
            return self._block(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise ExprError(f"{_describe(node)} is not allowed in an equation",
                        getattr(node, "lineno", 1))

    def _name(self, node: ast.Name):
        if node.id == "I":
            return _I
        if node.id in self.names:
            return self.names[node.id]
        if node.id in self.dims:
            raise ExprError(f"dimension '{node.id}' used as a matrix", node.lineno)
        raise ExprError(f"undeclared name '{node.id}'", node.lineno)

    def _binop(self, node: ast.BinOp):
        left, right = self._expr(node.left), self._expr(node.right)
        op = node.op
        if isinstance(op, (ast.Add, ast.Sub)):
            left, right = _resolve_identity(left, right), _resolve_identity(right, left)
            left, right = self._matrix(left, node), self._matrix(right, node)
            ops.require_same_shape("+" if isinstance(op, ast.Add) else "-", left, right)
            return MatAdd(left, right if isinstance(op, ast.Add) else _negated(right))
        if isinstance(op, ast.MatMult):
            if isinstance(left, _IdentityOfContext):
                return self._matrix(right, node)
            if isinstance(right, _IdentityOfContext):
                return self._matrix(left, node)
            left, right = self._matrix(left, node), self._matrix(right, node)
            if not ops.dims_equal(left.cols, right.rows):
                raise ops.ShapeError(f"@: {ops.fmt_shape(left)} times {ops.fmt_shape(right)} "
                                     f"(inner dimensions {left.cols} and {right.rows} differ)")
            return MatMul(left, right)
        if isinstance(op, (ast.Mult, ast.Div)):
            left, right = self._no_bare_identity(left, node), self._no_bare_identity(right, node)
        if isinstance(op, ast.Mult):
            if isinstance(left, MatrixExpr) and isinstance(right, MatrixExpr):
                raise ExprError("'*' of two matrices: use '@' for the matrix product or "
                                "hadamard(X, Y) for the elementwise one", node.lineno)
            return MatMul(left, right) if (isinstance(left, MatrixExpr)
                                           or isinstance(right, MatrixExpr)) else left * right
        if isinstance(op, ast.Div):
            if isinstance(right, MatrixExpr):
                raise ExprError("division by a matrix: use solve(A, B)", node.lineno)
            if right == 0:
                raise ExprError("division by zero", node.lineno)
            return MatMul(1 / right, left) if isinstance(left, MatrixExpr) else left / right
        raise ExprError(f"operator {_operator(op)} is not allowed", node.lineno)

    def _dim(self, node: ast.AST) -> sp.Expr:
        if isinstance(node, ast.Name):
            if node.id not in self.dims:
                raise ExprError(f"'{node.id}' is not a dimension", node.lineno)
            return self.dims[node.id]
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return sp.Integer(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -self._dim(node.operand)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            a, b = self._dim(node.left), self._dim(node.right)
            return a + b if isinstance(node.op, ast.Add) else a - b
        raise ExprError(f"{_describe(node)} is not a dimension expression",
                        getattr(node, "lineno", 1))

    def _slice(self, node: ast.AST, size, axis: str) -> tuple[sp.Expr, sp.Expr]:
        if not isinstance(node, ast.Slice) or node.step is not None:
            raise ExprError("block indices are slices 'start:stop' (no steps, no single "
                            "indices)", getattr(node, "lineno", 1))
        lo = self._dim(node.lower) if node.lower is not None else sp.Integer(0)
        hi = self._dim(node.upper) if node.upper is not None else size
        # Bounds are positions, not Python's negative indices; reject what provably falls
        # outside 0 <= lo <= hi <= size (what depends on the case condition passes).
        if lo.is_negative or (lo - hi).is_positive or (hi - size).is_positive:
            raise ExprError(f"block {lo}:{hi} does not fit in {size} {axis}", node.lineno)
        return lo, hi

    def _block(self, node: ast.Subscript):
        base = self._matrix(self._expr(node.value), node)
        index = node.slice
        if not isinstance(index, ast.Tuple) or len(index.elts) != 2:
            raise ExprError("a block is X[rows, cols] with two slices", node.lineno)
        r0, r1 = self._slice(index.elts[0], base.rows, "rows")
        c0, c1 = self._slice(index.elts[1], base.cols, "columns")
        return ops.Block(base, r0, r1, c0, c1)

    def _flag(self, node: ast.AST, name: str, func: str) -> bool:
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            return node.value
        raise ExprError(f"{func}: {name}= takes True or False", node.lineno)

    def _call(self, node: ast.Call):
        if not isinstance(node.func, ast.Name):
            raise ExprError(f"{_describe(node.func)} cannot be called; only the spec "
                            f"language's functions can", node.lineno)
        func = node.func.id
        if func not in FUNCTIONS:
            known = ", ".join(sorted(FUNCTIONS))
            raise ExprError(f"unknown function '{func}' (known: {known})", node.lineno)
        call = FUNCTIONS[func]
        n_mat, extra = call.operands, call.args
        args = list(node.args)
        if any(isinstance(a, ast.Starred) for a in args):
            raise ExprError("unpacking is not allowed in an equation", node.lineno)
        kw = {}
        for k in node.keywords:
            if k.arg is None:
                raise ExprError("unpacking is not allowed in an equation", node.lineno)
            if k.arg not in call.keywords:
                raise ExprError(f"{func}: unknown keyword '{k.arg}'", node.lineno)
            kw[k.arg] = self._flag(k.value, k.arg, func)
        for k in call.required_keywords:
            if k not in kw:
                raise ExprError(f"{func}: keyword {k}= is required", node.lineno)
        if n_mat == "*":
            mats, dims = [self._matrix(self._expr(a), a) for a in args], []
        else:
            if not (n_mat + call.required_args <= len(args) <= n_mat + len(extra)):
                raise ExprError(f"{func}: expected {n_mat} matrix argument(s)"
                                + (f" and optional {', '.join(extra)}" if extra else ""),
                                node.lineno)
            mats = [self._matrix(self._expr(a), a) for a in args[:n_mat]]
            dims = [self._dim(a) for a in args[n_mat:]]
        if func == "zeros":
            return sp.ZeroMatrix(dims[0], dims[1] if len(dims) > 1 else dims[0])
        if func == "hadamard":
            ops.require_same_shape("hadamard", *mats)
            return HadamardProduct(*mats)
        try:
            return ops.STRUCTURAL_OPS[func].from_call(mats, dims, kw)
        except ops.CallError as err:
            raise ExprError(str(err), node.lineno) from None


def _operator(op: ast.AST) -> str:
    return f"'{_OPERATORS[type(op)]}'" if type(op) in _OPERATORS else type(op).__name__


def _resolve_identity(value, other):
    if isinstance(value, _IdentityOfContext) and isinstance(other, MatrixExpr):
        ops.require_square("I", other)
        return Identity(other.rows)
    return value
