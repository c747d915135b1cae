"""``jvp: derive``: a case's JVP program written from its defining equation and the outputs'
structures, by the catalogue of splits (factorules/compiler/catalogue.py).

The defining equation ``INPUT = F1 @ F2`` (or ``F1 @ diag(v) @ F3``, with permutations at
either end) is read as a product of the outputs; each factor's structure gives the space its
frame tangent lies in; the catalogue entry for that pair of spaces separates them.  The
program the derivation writes is spec text, parsed and checked like a written one, so that
everything downstream (VJP by transposition, printers, audit, mutation testing, derivation
pages) treats it alike; ``cli.py derive`` prints it.

The text of the spec is parsed here with ``ast`` (never evaluated), as
factorules.compiler.expr parses every equation.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, replace

from . import catalogue
from .spec import ALWAYS, Spec, SpecError, Tensor, Text

KEYWORD = "derive"  # the 'jvp' text that asks for a derived program


class DeriveFailure(ValueError):
    """No catalogue entry separates the equation: the message says what is missing."""


@dataclass(frozen=True)
class Factor:
    """One factor of the defining product: an output, adjointed or not, or diag(vector)."""

    tensor: Tensor
    adjointed: bool = False
    diagonal_of: bool = False  # diag(v) of the vector output v
    # a leading block, (axis, bound): U[:, :k] is (1, 'k'); a derivation reads it only where
    # the case makes it the whole output
    block: tuple[int, str] | None = None

    @property
    def name(self) -> str:
        return self.tensor.name

    @property
    def text(self) -> str:
        if self.block is not None:
            axis, bound = self.block
            return f"{self.name}[{':, :' if axis else ':'}{bound}{'' if axis else ', :'}]"
        if self.diagonal_of:
            return f"diag({self.name})"
        if self.adjointed:
            return f"{self.name}.{'T' if self.permutation else 'H'}"
        return self.name

    @property
    def adjoint_text(self) -> str:
        """The factor's adjoint as spec text (L.H of L, L of L.H)."""
        return self.name if self.adjointed else f"{self.text}.H"

    def orthonormal_on(self, side: str) -> bool:
        """Orthonormal columns (a left inverse F^H) or rows (a right one), as it stands."""
        structure = self.tensor.structure
        if structure == "unitary":
            return True
        columns = (structure == "orthonormal_columns") != self.adjointed
        return structure in ("orthonormal_columns", "orthonormal_rows") and (
            columns if side == "left" else not columns)

    @property
    def permutation(self) -> bool:
        return self.tensor.structure == "permutation"

    @property
    def space(self) -> str | None:
        return catalogue.factor_space(self.tensor.structure, self.tensor.diagonal,
                                      self.adjointed)

    @property
    def upper(self) -> bool:
        return (self.tensor.structure == "upper_triangular") != self.adjointed

    @property
    def unit(self) -> bool:
        return self.tensor.diagonal == "unit"


@dataclass(frozen=True)
class Sizes:
    """The case's dimensions: names made canonical (k = min(m, n) is n where m >= n) and
    ordered by the case's condition."""

    canonical: dict  # dimension name -> canonical name
    larger: tuple | None  # (a, b): a > b (a >= b is taken as a > b: the rectangular rule)

    def of(self, factor: Factor) -> tuple[str, str]:
        shape = (factor.tensor.shape[0],) * 2 if factor.diagonal_of else factor.tensor.shape
        rows, cols = (self.canonical[d] for d in shape)
        return (cols, rows) if factor.adjointed else (rows, cols)

    def compare(self, a: str, b: str) -> str:
        if a == b:
            return "="
        if self.larger == (a, b):
            return ">"
        if self.larger == (b, a):
            return "<"
        raise DeriveFailure(f"the case's condition does not order {a} and {b}; give a case "
                            f"per order ('when: \"{a} >= {b}\"')")


_DIFFERENCE = re.compile(r"^\s*(\w+)\s*-\s*(\w+)\s*$")


def _check_offsets(factors: list[Factor], sizes: Sizes) -> None:
    """A triangular factor bounded by another diagonal than the main one (RQ's tall R, about
    diagonal k - m) is no entry of the catalogue; an offset that is zero in the case is none."""
    for f in factors:
        offset = f.tensor.offset
        if offset is None:
            continue
        m = _DIFFERENCE.match(offset)
        if not (m and sizes.canonical.get(m.group(1)) == sizes.canonical.get(m.group(2))):
            raise DeriveFailure(f"{f.text} is triangular about diagonal {offset}, not the main "
                                f"one, in this case (no catalogue entry)")


_CONDITION = re.compile(r"^\s*(\w+)\s*(==|>=|<=|>|<)\s*(\w+)\s*$")
_MIN = re.compile(r"^\s*min\(\s*(\w+)\s*,\s*(\w+)\s*\)\s*$")


def case_sizes(dims: tuple[tuple[str, str], ...], when: str) -> Sizes:
    canonical = {name: name for name, _ in dims}
    larger = None
    if when != ALWAYS:
        m = _CONDITION.match(when)
        if not m:
            raise DeriveFailure(f"cannot read the case's condition '{when}'")
        a, op, b = m.groups()
        if op == "==":
            canonical = {k: (a if v == b else v) for k, v in canonical.items()}
        else:
            larger = (a, b) if op in (">", ">=") else (b, a)
    for name, definition in dims:
        m = _MIN.match(definition)
        if m:
            a, b = (canonical.get(x, x) for x in m.groups())
            if a == b:
                canonical[name] = a
            elif larger in ((a, b), (b, a)):
                canonical[name] = larger[1]
            else:
                raise DeriveFailure(f"{name} = {definition.strip()} needs a case condition "
                                    f"that orders {a} and {b}")
    return Sizes(canonical, larger)


# -- reading the defining equation ---------------------------------------------------------------
def _factors(node: ast.AST, outputs: dict) -> list[Factor]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
        return _factors(node.left, outputs) + _factors(node.right, outputs)
    if isinstance(node, ast.Name) and node.id in outputs:
        return [Factor(outputs[node.id])]
    if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id in outputs and (node.attr == "H" or (
                node.attr == "T" and outputs[node.value.id].structure == "permutation"))):
        return [Factor(outputs[node.value.id], adjointed=True)]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "diag"
            and len(node.args) == 1 and not node.keywords and isinstance(node.args[0], ast.Name)
            and node.args[0].id in outputs and outputs[node.args[0].id].is_vector):
        return [Factor(outputs[node.args[0].id], diagonal_of=True)]
    block = _leading_block(node, outputs)
    if block is not None:
        return [block]
    raise DeriveFailure(f"'{_short(ast.unparse(node))}' is not an output, its adjoint, a leading block of one or "
                        f"diag(vector)")


def _short(text: str, limit: int = 60) -> str:
    """Spec text quoted in a message, cut to ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _leading_block(node: ast.AST, outputs: dict) -> Factor | None:
    """X[:, :b] or X[:b, :] of a matrix output X."""
    if not (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)
            and node.value.id in outputs and isinstance(node.slice, ast.Tuple)
            and len(node.slice.elts) == 2):
        return None
    bounds = []
    for part in node.slice.elts:
        if not (isinstance(part, ast.Slice) and part.lower is None and part.step is None):
            return None
        bounds.append(part.upper)
    axes = [i for i, b in enumerate(bounds) if b is not None]
    if len(axes) != 1 or not isinstance(bounds[axes[0]], ast.Name):
        return None
    return Factor(outputs[node.value.id], block=(axes[0], bounds[axes[0]].id))


def _whole_blocks(factors: list[Factor], sizes: Sizes) -> list[Factor]:
    """Leading blocks that are the whole output in this case, as the output; another block
    leaves the rest of its output to a completion, which the catalogue has no entry for."""
    out = []
    for f in factors:
        if f.block is not None:
            axis, bound = f.block
            if sizes.canonical.get(bound) != sizes.canonical[f.tensor.shape[axis]]:
                raise DeriveFailure(f"{f.text} is a block of {f.name}: the rest of {f.name} is "
                                    f"an orthonormal completion (no catalogue entry)")
            f = replace(f, block=None)
        out.append(f)
    return out


def product_equation(defining: tuple[Text, ...], input_name: str,
                     outputs: dict) -> tuple[Text, list[Factor]]:
    """The defining equation ``INPUT = product of outputs`` and its factors."""
    for eq in defining:
        lhs, sep, rhs = eq.text.partition("=")
        if not sep or rhs.startswith("="):
            continue
        try:
            left, right = ast.parse(lhs.strip(), mode="eval"), ast.parse(rhs.strip(), mode="eval")
        except SyntaxError:
            continue
        if isinstance(left.body, ast.Name) and left.body.id == input_name:
            try:
                return eq, _factors(right.body, outputs)
            except DeriveFailure as err:
                raise DeriveFailure(f"cannot separate '{_short(eq.text)}': {err}") from None
    raise DeriveFailure(f"no defining equation of the form '{input_name} = <product of the "
                        f"outputs>'")


# -- writing the program -------------------------------------------------------------------------
class _Program:
    """Statements of spec text, with temporaries named apart from the spec's own names."""

    def __init__(self, taken):
        self.taken = set(taken)
        self.lines = []

    def name(self, preferred: str) -> str:
        name, i = preferred, 1
        while name in self.taken:
            i += 1
            name = f"{preferred}{i}"
        self.taken.add(name)
        return name

    def let(self, preferred: str, expr: str) -> str:
        name = self.name(preferred)
        self.lines.append(f"{name} = {expr}")
        return name

    def result(self, name: str, expr: str) -> None:
        self.lines.append(f"{name} = {expr}")

    def comment(self, text: str) -> None:
        self.lines.append(f"# {text}")


def _solve(f: Factor, x: str, left: bool = True, block: str | None = None) -> str:
    """F^-1 x (left) or x F^-1 of a triangular factor, or of its square ``block`` (text)."""
    flags = [f"upper={f.upper}"] + ([] if left else ["left=False"]) + (["unit=True"] if f.unit
                                                                      else [])
    return f"solve_triangular({block or f.text}, {x}, {', '.join(flags)})"


def _fill(template: str, **values) -> str:
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


def _meaning(space: str) -> str:
    return catalogue.SPACES[space].meaning.split(":")[0]


def _check_orthonormal_side(f: Factor, side: str) -> None:
    if not f.orthonormal_on(side):
        raise DeriveFailure(f"{f.text} on the {side} has orthonormal "
                            f"{'rows' if side == 'left' else 'columns'}, so its adjoint is no "
                            f"{side} inverse (no catalogue entry)")


def _orthonormal_times_triangular(p: _Program, f1: Factor, f2: Factor, e: str, a: str,
                                  sizes: Sizes) -> None:
    """A = F1 F2, one factor with orthonormal columns (left) or rows (right), the other
    triangular: the triangular inverse first, then the orthonormal factor's adjoint; the
    orthonormal factor's tangent is solved from the linearized equation.  A trapezoidal
    triangular factor's rest is an explicit function of the input, R2 = Q^H A2 (L2 = A2 Q^H),
    the orthonormal factor being square then: its tangent is the product rule's."""
    split = catalogue.split_for(f1.space, f2.space)
    if split is None:
        raise DeriveFailure(f"no catalogue split of {_meaning(f1.space)} + {_meaning(f2.space)}")
    o, t = (f1, f2) if f1.space == "skew" else (f2, f1)
    _check_orthonormal_side(o, "left" if o is f1 else "right")
    assert split.first_of == ("right" if t is f2 else "left"), split.name
    rows, cols = sizes.of(t)
    if sizes.compare(rows, cols) == (">" if t is f2 else "<"):
        raise DeriveFailure(f"{t.text} is triangular with more {'rows' if t is f2 else 'columns'} "
                            f"than {'columns' if t is f2 else 'rows'}: its zero "
                            f"{'rows' if t is f2 else 'columns'} leave part of {o.text} free "
                            f"(an orthonormal completion, which the catalogue has no entry for)")
    p.comment(f"frame {'F1^H dA F2^-1' if t is f2 else 'F1^-1 dA F2^H'}; split '{split.name}': "
              f"{_meaning(f1.space)} + {_meaning(f2.space)} (catalogue)")
    if t is f2:  # A = O T
        wide = sizes.compare(rows, cols) == "<"
        if wide and not e.isidentifier():
            e = p.let("E", e)
        t1 = f"{t.text}[:, :{rows}]" if wide else t.text
        cr = p.let("C", _solve(t, f"{e}[:, :{rows}]" if wide else e, left=False, block=t1))
        c = p.let("B", f"{o.adjoint_text} @ {cr}")
        y = p.let("Y", _fill(split.first, C=c))
        d_o = f"d{o.name}"
        p.result(d_o, f"{cr} - {o.text} @ {y}")
        dt = f"{y} @ {t1}"
        if wide:
            rest = f"{_block(a)}[:, {rows}:]"
            dt = f"hstack({dt}, {d_o}.H @ {rest} + {o.adjoint_text} @ {e}[:, {rows}:])"
        p.result(f"d{t.name}", dt)
    else:  # A = T O
        tall = sizes.compare(rows, cols) == ">"
        if tall and not e.isidentifier():
            e = p.let("E", e)
        t1 = f"{t.text}[:{cols}, :]" if tall else t.text
        cl = p.let("C", _solve(t, f"{e}[:{cols}, :]" if tall else e, block=t1))
        c = p.let("B", f"{cl} @ {o.adjoint_text}")
        x = p.let("X", _fill(split.first, C=c))
        d_o = f"d{o.name}"
        p.result(d_o, f"{cl} - {x} @ {o.text}")
        dt = f"{t1} @ {x}"
        if tall:
            rest = f"{_block(a)}[{cols}:, :]"
            dt = f"vstack({dt}, {e}[{cols}:, :] @ {o.adjoint_text} + {rest} @ {d_o}.H)"
        p.result(f"d{t.name}", dt)


def _block(x: str) -> str:
    """Spec text that a block subscript can follow."""
    return x if x.isidentifier() else f"({x})"


def _orthonormal_times_hermitian(p: _Program, f1: Factor, f2: Factor, e: str,
                                 sizes: Sizes) -> None:
    """A = O P or P O, O with orthonormal columns (rows), P Hermitian positive definite
    (polar): O's adjoint takes dA to the frame, a Sylvester equation separates Om from dP,
    and O's tangent outside its range is solved from the linearized equation."""
    split = catalogue.SYLVESTER_SPLITS[0]
    o, h = (f1, f2) if f1.space == "skew" else (f2, f1)
    _check_orthonormal_side(o, "left" if o is f1 else "right")
    rows, cols = sizes.of(o)
    if sizes.compare(rows, cols) == ("<" if o is f1 else ">"):
        raise DeriveFailure(f"{o.text} has more {'columns' if o is f1 else 'rows'} than "
                            f"{'rows' if o is f1 else 'columns'} (no catalogue entry)")
    p.comment(f"frame {'O^H dA' if o is f1 else 'dA O^H'} = Om P + dP; split '{split.name}': "
              f"skew-Hermitian Om by a Sylvester equation, Hermitian dP (catalogue)")
    c = p.let("X", f"{o.adjoint_text} @ {e}" if o is f1 else f"{e} @ {o.adjoint_text}")
    om = p.let("Om", _fill(split.frame, C=c, P=h.text))
    p.result(f"d{h.name}", _fill(split.left if o is f1 else split.right, C=c, Om=om, P=h.text))
    d_o = f"{o.text} @ {om}" if o is f1 else f"{om} @ {o.text}"
    if sizes.compare(rows, cols) != "=":  # the part of dO outside O's range (row space)
        d_o += (f" + solve({h.text}, {e} - {o.text} @ {c}, left=False)" if o is f1
                else f" + solve({h.text}, {e} - {c} @ {o.text})")
    p.result(f"d{o.name}", d_o)


def _triangular_times_triangular(p: _Program, f1: Factor, f2: Factor, e: str,
                                 sizes: Sizes) -> None:
    """A = F1 F2, both triangular (LU): the left inverse, then the right one; each factor's
    tangent is its factor times its frame tangent, a trapezoidal factor's rest solved from
    the linearized equation."""
    split = catalogue.split_for(f1.space, f2.space)
    if split is None or split.second is None:
        raise DeriveFailure(f"no catalogue split of {_meaning(f1.space)} + {_meaning(f2.space)}")
    r1, c1 = sizes.of(f1)
    r2, c2 = sizes.of(f2)
    tall, wide = sizes.compare(r1, c1) == ">", sizes.compare(r2, c2) == "<"
    p.comment(f"frame F1^-1 dA F2^-1; split '{split.name}': {_meaning(f1.space)} + "
              f"{_meaning(f2.space)} (catalogue)")
    if tall and not e.isidentifier():  # sliced
        e = p.let("B", e)
    first = split.first if split.first_of == "left" else split.second
    second = split.second if split.first_of == "left" else split.first
    if tall:
        inner = _solve(f1, f"{e}[:{c1}, :]", block=f"{f1.text}[:{c1}, :]")
        c = p.let("X", _solve(f2, inner, left=False))
        d2 = f"d{f2.name}"
        p.result(d2, f"{_fill(second, C=c)} @ {f2.text}")
        rest = _solve(f2, f"{e}[{c1}:, :] - {f1.text}[{c1}:, :] @ {d2}", left=False)
        p.result(f"d{f1.name}", f"vstack({f1.text}[:{c1}, :] @ {_fill(first, C=c)}, {rest})")
    elif wide:
        cl = p.let("C", _solve(f1, e))
        c = p.let("X", _solve(f2, f"{cl}[:, :{r2}]", left=False, block=f"{f2.text}[:, :{r2}]"))
        p.result(f"d{f1.name}", f"{f1.text} @ {_fill(first, C=c)}")
        p.result(f"d{f2.name}", f"hstack({_fill(second, C=c)} @ {f2.text}[:, :{r2}], "
                                f"{cl}[:, {r2}:] - {_fill(first, C=c)} @ {f2.text}[:, {r2}:])")
    else:
        c = p.let("X", _solve(f2, _solve(f1, e), left=False))
        p.result(f"d{f1.name}", f"{f1.text} @ {_fill(first, C=c)}")
        p.result(f"d{f2.name}", f"{_fill(second, C=c)} @ {f2.text}")


def _hermitian(p: _Program, f1: Factor, f2: Factor, e: str, sizes: Sizes) -> None:
    """A = F F^H (Cholesky): C = F^-1 dA F^-H is X + X^H, X the frame tangent of F."""
    own = f2 if f1.adjointed else f1  # the factor written unadjointed
    split = catalogue.hermitian_split_for(own.space)
    if split is None:
        raise DeriveFailure(f"no catalogue split of a Hermitian C into X + X^H with X "
                            f"{_meaning(own.space)}")
    p.comment(f"frame F^-1 dA F^-H = X + X^H; split '{split.name}': X "
              f"{_meaning(own.space)} (catalogue)")
    c = p.let("X", _solve(f2, _solve(f1, e), left=False))
    x = _fill(split.formula, C=c)
    d = f"d{own.name}"
    p.result(d, f"{own.text} @ ({x})" if own is f1 else f"({x}) @ {own.text}")


def _spectral(p: _Program, f1: Factor, middle: Factor, f3: Factor, e: str,
              sizes: Sizes) -> None:
    """A = F1 diag(v) F3, F1 and F3 orthonormal (F3 = F1^H: eigh)."""
    same = f3.name == f1.name and f3.adjointed != f1.adjointed
    if f1.space != "skew" or f3.space != "skew":
        raise DeriveFailure("a diagonal factor between two factors that are not orthonormal "
                            "(no catalogue entry)")
    _check_orthonormal_side(f1, "left")
    _check_orthonormal_side(f3, "right")
    if middle.tensor.structure not in ("real", "positive"):
        raise DeriveFailure(f"diag({middle.name}) of values not declared real or positive "
                            f"(no catalogue entry)")
    split = catalogue.spectral_split_for(same)
    v, n = middle.name, middle.tensor.shape[0]
    p.comment(f"frame F1^H dA F3^H; spectral split '{split.name}' (catalogue), gauge "
              f"{split.gauge}")
    c = p.let("C", f"{f1.adjoint_text} @ {e} @ {f3.adjoint_text}")
    p.result(f"d{v}", _fill(split.values, C=c, v=v, n=n))
    values = dict(C=c, v=v, n=n, F=p.let("F", _fill(split.gaps, v=v, n=n)))
    if split.phases is not None:
        values["D"] = p.let("D", _fill(split.phases, **values))
    r1, c1 = sizes.of(f1)
    if same:
        if sizes.compare(r1, c1) != "=":
            raise DeriveFailure(f"{f1.name} is not square (no catalogue entry)")
        p.result(f"d{f1.name}", f"{f1.text} @ {_fill(split.left, **values)}")
        return
    r3, c3 = sizes.of(f3)
    if sizes.compare(r1, c1) == "<" or sizes.compare(r3, c3) == ">":
        raise DeriveFailure("an orthonormal factor with more columns than rows on the left, "
                            "or rows on the right (no catalogue entry)")
    d1 = f"{f1.text} @ ({_fill(split.left, **values)})"
    if sizes.compare(r1, c1) == ">":  # the part of dF1 outside F1's range
        d1 += f" + ({e} @ {f3.adjoint_text} - {f1.text} @ {c}) @ diag(recip({v}))"
    d3 = f"{_fill(split.right, **values)} @ {f3.text}"
    if sizes.compare(r3, c3) == "<":
        d3 += f" + diag(recip({v})) @ ({f1.adjoint_text} @ {e} - {c} @ {f3.text})"
    p.result(f"d{f1.name}", d1)
    p.result(f"d{f3.name}", d3)


def derive_text(spec: Spec, variant, when: str) -> str:
    """The derived JVP program of one case, as spec text."""
    if len(spec.inputs) != 1:
        raise DeriveFailure("derivation reads one input")
    a = spec.inputs[0]
    outputs = {t.name: t for t in variant.outputs}
    eq, factors = product_equation(variant.defining, a.name, outputs)
    try:
        return _derived(spec, variant, a, eq, factors, case_sizes(spec.dims, when))
    except DeriveFailure as err:
        raise DeriveFailure(f"cannot separate '{_short(eq.text)}': {err}") from None


def _derived(spec: Spec, variant, a: Tensor, eq: Text, factors: list[Factor],
             sizes: Sizes) -> str:
    factors = _whole_blocks(factors, sizes)
    _check_offsets(factors, sizes)
    e, x = f"d{a.name}", a.name  # the input's tangent and the input, in the product's frame
    # permutations are locally constant: A = P B Pi^T is B = P^T A Pi, dB = P^T dA Pi
    while factors and factors[0].permutation:
        inverse = f"{factors[0].name}{'' if factors[0].adjointed else '.T'}"
        e, x = f"{inverse} @ {e}", f"{inverse} @ {x}"
        factors = factors[1:]
    while factors and factors[-1].permutation:
        inverse = f"{factors[-1].name}{'' if factors[-1].adjointed else '.T'}"
        e, x = f"{e} @ {inverse}", f"{x} @ {inverse}"
        factors = factors[:-1]
    if a.structure == "hermitian":
        e = f"sym({e})"
    taken = ({n for n, _ in spec.dims} | {t.name for t in (*spec.inputs, *variant.outputs)}
             | {"d" + t.name for t in (*spec.inputs, *variant.outputs)})
    p = _Program(taken)
    p.comment(f"derived from '{eq.text.strip()}' (jvp: derive, docs/derivation-by-catalogue.md)")
    if any(f.tensor.structure == "permutation" for f in factors):
        raise DeriveFailure("a permutation not at the left of the product")
    if len(factors) == 2 and factors[0].name == factors[1].name:
        if factors[0].adjointed == factors[1].adjointed:
            raise DeriveFailure("a factor times itself without an adjoint")
        _hermitian(p, *factors, e, sizes)
    elif len(factors) == 2:
        spaces = [f.space for f in factors]
        if None in spaces:
            bad = factors[spaces.index(None)]
            raise DeriveFailure(f"{bad.text} is {bad.tensor.structure or 'general'}: no frame "
                                f"tangent space in the catalogue")
        if sorted(spaces) == ["hermitian", "skew"]:
            _orthonormal_times_hermitian(p, *factors, e, sizes)
        elif "hermitian" in spaces:
            raise DeriveFailure("a Hermitian factor beside a factor that is not orthonormal "
                                "(no catalogue entry)")
        elif "skew" in spaces and spaces != ["skew", "skew"]:
            _orthonormal_times_triangular(p, *factors, e, x, sizes)
        elif "skew" not in spaces:
            _triangular_times_triangular(p, *factors, e, sizes)
        else:
            raise DeriveFailure("a product of two orthonormal factors (no catalogue entry)")
    elif len(factors) == 3 and factors[1].diagonal_of:
        _spectral(p, factors[0], factors[1], factors[2], e, sizes)
    else:
        raise DeriveFailure(f"a product of {len(factors)} factors of this form (the catalogue "
                            f"has two-factor splits and a diagonal between two orthonormal "
                            f"factors)")
    derived = {line.split(" = ")[0] for line in p.lines if not line.startswith("#")}
    missing = [t.name for t in variant.outputs
               if not t.constant and t.returned != "hidden" and "d" + t.name not in derived]
    if missing:
        raise DeriveFailure(f"the defining product gives no tangent of {', '.join(missing)}")
    return "\n".join(p.lines) + "\n"


def derive_spec(spec: Spec) -> Spec:
    """The spec with each ``jvp: derive`` case's program written out."""
    variants = []
    for v in spec.variants:
        cases = []
        for c in v.cases:
            if c.derived:
                try:
                    text = derive_text(spec, v, c.when)
                except DeriveFailure as err:
                    raise SpecError(spec.path, c.jvp.line, f"jvp: derive: {err}") from None
                c = replace(c, jvp=Text(text, c.jvp.line))
            cases.append(c)
        variants.append(replace(v, cases=tuple(cases)))
    return replace(spec, variants=tuple(variants))
