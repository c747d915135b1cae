"""Blocks and stacks: ``X[r0:r1, c0:c1]``, ``embed``, ``hstack``, ``vstack``, ``eye`` and the
reversals ``flip_rows``, ``flip_cols``.

Bounds and sizes are symbolic (SymPy expressions of the dims, or ``Size`` atoms that
common-subexpression elimination leaves alone).  Taking a block and embedding one are each
other's adjoints; a stack's transpose hands each block its part of the cotangent.
"""
from __future__ import annotations

import numpy as np
import sympy as sp
from sympy import MatrixExpr, ZeroMatrix

from .algebra import unless_zero, zeros_like
from .base import (Call, DeriveError, LinearMap, OneOperand, ShapeError, StructuralOp, bound,
                   dims_equal, fmt_shape, size_arg)


def embed(x: MatrixExpr, rows, cols, row0, col0) -> MatrixExpr:
    """``x`` placed at (row0, col0) in a rows x cols zero matrix."""
    if isinstance(x, ZeroMatrix):
        return ZeroMatrix(rows, cols)
    if dims_equal(row0, 0) and dims_equal(col0, 0) and dims_equal(x.rows, rows) \
            and dims_equal(x.cols, cols):
        return x
    return Embed(x, rows, cols, row0, col0)


class Block(OneOperand):
    """X[r0:r1, c0:c1] with symbolic bounds (the spec language's subscript, parsed by
    ``factorules.compiler.expr``)."""

    latex_atomic = True

    def __new__(cls, arg, r0, r1, c0, c1):
        given = [size_arg(b) for b in (r0, r1, c0, c1)]
        bounds = [bound(b) for b in given]
        if all(dims_equal(b, full) for b, full in zip(bounds, (0, arg.rows, 0, arg.cols))):
            return arg  # the whole matrix (e.g. U[:, :n] of an n x n U when m == n)
        return super().__new__(cls, arg, *given)

    bounds = property(lambda self: tuple(bound(b) for b in self.args[1:]))

    def slices(self, dim) -> tuple[str, str]:
        """Python-style 'lo:hi' for rows and columns, bounds printed by ``dim``; a start at 0
        and a stop at the full size are left out."""
        r0, r1, c0, c1 = self.bounds

        def piece(lo, hi, size):
            lo_text = "" if dims_equal(lo, 0) else dim(lo)
            hi_text = "" if dims_equal(hi, size) else dim(hi)
            return f"{lo_text}:{hi_text}"

        return piece(r0, r1, self.arg.rows), piece(c0, c1, self.arg.cols)

    @property
    def shape(self):
        r0, r1, c0, c1 = self.bounds
        return (r1 - r0, c1 - c0)

    def linearize(self, d):
        return unless_zero(lambda x: Block(x, *self.bounds), d(self.arg), self.shape)

    def cotangents(self, g, is_linear):
        r0, _, c0, _ = self.bounds
        yield self.arg, embed(g, self.arg.rows, self.arg.cols, r0, c0)

    def evaluate(self, value_of, evaluator):
        r0, r1, c0, c1 = (evaluator.dim(b) for b in self.bounds)
        return value_of(self.arg)[..., r0:r1, c0:c1]

    def latex(self, printer):
        rows, cols = self.slices(printer._dim)
        base = printer._atom(self.arg)
        if "_" in base or "^" in base:  # a subscript on a subscripted name needs a group
            base = f"{{{base}}}"
        return rf"{base}_{{[{rows},\, {cols}]}}"

    def code(self, printer):  # Python's slicing, the same in every backend
        rows, cols = self.slices(printer._dim)
        return f"{printer._arg(self.arg)}[..., {rows}, {cols}]"


class Embed(OneOperand):
    """embed(X, r, c, r0, c0): the r x c matrix that is X at [r0:r0+rows(X), c0:c0+cols(X)]
    and zero elsewhere; the adjoint of taking that block.

    Not spec-language syntax: derived rules produce it (a block's cotangent).
    """

    latex_atomic = True

    def __new__(cls, arg, rows, cols, row0, col0):
        given = [size_arg(b) for b in (rows, cols, row0, col0)]
        rows, cols, row0, col0 = (bound(b) for b in given)
        # Reject what provably does not fit; what depends on the case condition passes.
        for lo, size, inner, axis in ((row0, rows, arg.rows, "rows"),
                                      (col0, cols, arg.cols, "columns")):
            lo_s = sp.simplify(lo)
            over = sp.simplify(lo + inner - size)
            if lo_s.is_negative or over.is_positive:
                raise ShapeError(f"embed: a {fmt_shape(arg)} block at {axis} {lo}:{lo + inner} "
                                 f"does not fit in {size} {axis}")
        if isinstance(arg, ZeroMatrix):
            return ZeroMatrix(rows, cols)
        return super().__new__(cls, arg, *given)

    row0 = property(lambda self: bound(self.args[3]))
    col0 = property(lambda self: bound(self.args[4]))

    @property
    def shape(self):
        return (bound(self.args[1]), bound(self.args[2]))

    def linearize(self, d):
        return embed(d(self.arg), self.rows, self.cols, self.row0, self.col0)

    def cotangents(self, g, is_linear):
        yield self.arg, Block(g, self.row0, self.row0 + self.arg.rows,
                              self.col0, self.col0 + self.arg.cols)

    def evaluate(self, value_of, evaluator):
        x = value_of(self.arg)
        rows, cols = evaluator.shape(self)
        r0, c0 = evaluator.dim(self.row0), evaluator.dim(self.col0)
        out = evaluator.field.zeros(x.shape[:-2] + (rows, cols))
        out[..., r0:r0 + x.shape[-2], c0:c0 + x.shape[-1]] = x
        return out

    def latex(self, printer):
        size = printer._size(self.rows, self.cols)
        at = f"({printer._dim(self.row0)}, {printer._dim(self.col0)})"
        return printer._function("embed", self.arg, size, at)

    def code(self, printer):
        def pad(lo, size, inner):
            return printer._dim(sp.simplify(lo)), printer._dim(sp.simplify(size - lo - inner))

        top, bottom = pad(self.row0, self.rows, self.arg.rows)
        left, right = pad(self.col0, self.cols, self.arg.cols)
        return printer._op("pad", x=printer._operand("pad", self.arg), top=top, bottom=bottom,
                           left=left, right=right)


class _Stack(StructuralOp):
    """Blocks next to each other along ``axis`` ('cols': side by side, 'rows': one above the
    other); they share the other dimension."""

    call = Call("*")
    latex_atomic = True
    axis = ""
    _shared = staticmethod(lambda b: b)  # the dimension the blocks share
    _latex_separator = ""

    def __new__(cls, *blocks):
        if len(blocks) < 2:
            raise ShapeError(f"{cls.spec_name}: needs at least two blocks")
        for b in blocks[1:]:
            if not dims_equal(cls._shared(b), cls._shared(blocks[0])):
                shapes = ", ".join(fmt_shape(x) for x in blocks)
                raise ShapeError(f"{cls.spec_name}: blocks do not line up ({shapes})")
        return super().__new__(cls, *blocks)

    def _part(self, g, at, block) -> tuple[MatrixExpr, sp.Expr]:
        """(the part of ``g`` over ``block``, which starts at ``at``; where the next starts)."""
        raise NotImplementedError

    def linearize(self, d):
        parts = [d(a) for a in self.args]
        if all(isinstance(p, ZeroMatrix) for p in parts):
            return zeros_like(self)
        return type(self)(*parts)

    def cotangents(self, g, is_linear):
        at = 0
        for part in self.args:
            piece, at = self._part(g, at, part)
            if is_linear(part):
                yield part, piece
            elif not isinstance(part, ZeroMatrix):
                raise DeriveError(f"the block {part} of {self} does not depend on the tangents")

    def evaluate(self, value_of, evaluator):
        parts = [value_of(a) for a in self.args]
        batch = np.broadcast_shapes(*(p.shape[:-2] for p in parts))
        parts = [np.broadcast_to(p, batch + p.shape[-2:]) for p in parts]
        return np.concatenate(parts, axis=-1 if self.axis == "cols" else -2)

    def latex(self, printer):
        return r"\begin{bmatrix} " + self._latex_separator.join(
            printer._print(b) for b in self.args) + r" \end{bmatrix}"

    def _size(self, block):
        """A block's extent along the stacking axis."""
        return block.rows if self.axis == "rows" else block.cols

    def padded(self) -> list[MatrixExpr]:
        """The blocks with each zero block written as padding of a neighbour (an Embed of
        the block before it, or of the first block for leading zeros): the same stack with
        no zero array (full-mode RQ's hstack(zeros(m, n - m), R2))."""
        pieces, lead = [], 0  # pieces: [block, zeros before it, zeros after it]
        for b in self.args:
            if not isinstance(b, ZeroMatrix):
                pieces.append([b, lead if not pieces else 0, 0])
            elif pieces:
                pieces[-1][2] += self._size(b)
            else:
                lead += self._size(b)
        if not pieces:
            raise ShapeError(f"{self.spec_name}: every block is zero")
        out = []
        for b, before, after in pieces:
            extent = self._size(b) + before + after
            if self.axis == "rows":
                out.append(embed(b, extent, b.cols, before, 0))
            else:
                out.append(embed(b, b.rows, extent, 0, before))
        return out

    def code(self, printer):
        blocks = list(self.args)
        if isinstance(blocks[-1], ZeroMatrix) and len(blocks) == 2:  # zero padding
            return printer._op(f"pad_{self.axis}", x=printer._print(blocks[0]),
                               extra=printer._dim(self._size(blocks[-1])))
        if any(isinstance(b, ZeroMatrix) for b in blocks):
            pieces = self.padded()
            if len(pieces) == 1:
                return printer._print(pieces[0])
            blocks = pieces
        return printer._op(self.spec_name, xs=", ".join(printer._print(b) for b in blocks))


class HStack(_Stack):
    """hstack(X, Y, ...): blocks side by side (same number of rows)."""

    spec_name = "hstack"
    axis = "cols"
    _shared = staticmethod(lambda b: b.rows)
    _latex_separator = " & "

    @property
    def shape(self):
        return (self.args[0].rows, sp.Add(*(b.cols for b in self.args)))

    def _part(self, g, at, block):
        return Block(g, 0, self.rows, at, at + block.cols), at + block.cols


class VStack(_Stack):
    """vstack(X, Y, ...): blocks one above the other (same number of columns)."""

    spec_name = "vstack"
    axis = "rows"
    _shared = staticmethod(lambda b: b.cols)
    _latex_separator = r" \\ "

    @property
    def shape(self):
        return (sp.Add(*(b.rows for b in self.args)), self.args[0].cols)

    def _part(self, g, at, block):
        return Block(g, at, at + block.rows, 0, self.cols), at + block.rows


class Eye(StructuralOp):
    """eye(r, c): the r x c matrix with ones on its main diagonal (eye(n): n x n)."""

    spec_name = "eye"
    call = Call(0, ("rows", "cols"), required_args=1)
    latex_atomic = True

    @classmethod
    def from_call(cls, operands, args, flags):
        rows = args[0]
        return cls(rows, args[1] if len(args) > 1 else rows)

    def __new__(cls, rows, cols):
        return super().__new__(cls, *(size_arg(b) for b in (rows, cols)))

    @property
    def shape(self):
        return (bound(self.args[0]), bound(self.args[1]))

    def linearize(self, d):
        return zeros_like(self)

    def evaluate(self, value_of, evaluator):
        return evaluator.field.eye(*evaluator.shape(self))

    def latex(self, printer):
        if dims_equal(self.rows, self.cols):
            return f"I_{{{printer._dim(self.rows)}}}"
        return f"I_{{{printer._size(self.rows, self.cols)}}}"

    def code(self, printer):
        return printer._op("eye", rows=printer._dim(self.rows), cols=printer._dim(self.cols))


class FlipRows(LinearMap):
    """flip_rows(X) = J X: X's rows in reverse order (J the exchange matrix, ones on the
    anti-diagonal).  RQ is QR of a reversed adjoint: A^H J = (Q^H J)(J R^H J)."""

    spec_name = "flip_rows"
    call = Call(1)

    def cotangents(self, g, is_linear):
        yield self.arg, FlipRows(g)  # J is symmetric and orthogonal: its own transpose

    def evaluate(self, value_of, evaluator):
        return value_of(self.arg)[..., ::-1, :]


class FlipCols(LinearMap):
    """flip_cols(X) = X J: X's columns in reverse order."""

    spec_name = "flip_cols"
    call = Call(1)

    def cotangents(self, g, is_linear):
        yield self.arg, FlipCols(g)

    def evaluate(self, value_of, evaluator):
        return value_of(self.arg)[..., :, ::-1]

