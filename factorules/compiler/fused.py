"""A spec's VJP rules as fused C++: one function computes a whole pullback of one matrix.

For each variant and each set of cotangents the rules are given (all of them: the full VJP;
some None: a partial VJP), one ``extern "C"`` kernel per dtype runs the rule on every
matrix of a batch (OpenMP threads over the batch).  The spec's dimensions are template
parameters of the rule, fixed when the source is compiled (``-DFR_DIM_<name>=<size>``), so
that every loop has constant bounds; the case whose condition holds is chosen then
(``if constexpr``).  A kernel returns 1 when a case ran, 0 when none holds.

Arguments, in the order of ``Kernel.inputs`` and ``Kernel.outputs``: arrays of pointers to
the batch's C-contiguous arrays, each in its own dtype (``Kernel.dtype_of``): the input's
dtype, its real counterpart for a real field (singular values), complex for a complex one
(eig's eigenpairs).  The rule computes in the widest of them.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import sympy as sp

from . import render_model as model
from .checked import CheckedSpec
from .fields import Field, tensor_fields
from .paths import TEMPLATES
from .printers.cpp import SCALAR, Printer
from .product_folding import folded
from .program import Statement, build_program

HEADER = "fr_small.h"


@dataclass(frozen=True)
class Dtype:
    """A dtype the kernels are compiled for: C++ types of the input, of its real and complex
    counterparts."""

    suffix: str  # of the kernel's name
    input: str
    real: str
    complex: str

    @property
    def is_complex(self) -> bool:
        return self.input == self.complex


DTYPES = (Dtype("f32", "float", "float", "std::complex<float>"),
          Dtype("f64", "double", "double", "std::complex<double>"),
          Dtype("c64", "std::complex<float>", "float", "std::complex<float>"),
          Dtype("c128", "std::complex<double>", "double", "std::complex<double>"))
_STORAGE = {Field.REAL: "fr_R", Field.INPUT: "fr_I", Field.COMPLEX: "fr_C"}
_FIELD_NAMES = {Field.REAL: "real", Field.INPUT: "input", Field.COMPLEX: "complex"}
SOURCES = "_fused_sources"  # the folder of the sources in a backend's package


@dataclass(frozen=True)
class Array:
    """A kernel argument: a name of the rule and its field (which dtype its array has)."""

    name: str
    field: Field

    @property
    def storage(self) -> str:
        """The template parameter naming its element type (fr_I, fr_R or fr_C)."""
        return _STORAGE[self.field]


@dataclass(frozen=True)
class Access:
    """A case's load or store of an argument: its position among the kernel's inputs or
    outputs, and its shape under the case (dimension expressions, printed)."""

    array: Array
    position: int
    rows: str
    cols: str


@dataclass(frozen=True)
class CaseBody:
    """One case's rule: its condition (C++), the dimensions it settles, the arguments it
    loads, its statements and the results it stores."""

    condition: str
    dims: tuple[tuple[str, str], ...]
    loads: tuple[Access, ...]
    statements: tuple[tuple[str, str], ...]
    stores: tuple[Access, ...]


@dataclass(frozen=True)
class Kernel:
    """One pullback of one variant, given the cotangents that are not ``absent``."""

    name: str  # the C++ template's name; the kernels are fr_<name>_<dtype suffix>
    variant: str  # the variant's label
    absent: tuple[str, ...]  # cotangents that are None
    inputs: tuple[Array, ...]
    outputs: tuple[Array, ...]
    cases: tuple[CaseBody, ...]

    @staticmethod
    def dtype_of(array: Array, dtype: str) -> str:
        """NumPy's name of an argument's dtype when the kernel runs on ``dtype``."""
        single = dtype in ("float32", "complex64")
        if array.field == Field.REAL:
            return "float32" if single else "float64"
        if array.field == Field.COMPLEX:
            return "complex64" if single else "complex128"
        return dtype


def _shapes(statements) -> dict[str, tuple]:
    """{name: shape} of every matrix name the statements read or define."""
    shapes = {}
    for s in statements:
        for x in s.expr.atoms(sp.MatrixSymbol):
            shapes.setdefault(x.name, x.shape)
        shapes[s.name] = s.expr.shape
    return shapes


def _program(rule, permutations):
    statements = [Statement(s.name, folded(s.expr, permutations)) for s in rule.statements]
    return build_program(rule.program.params, statements, rule.program.results)


def _case_body(printer, checked: CheckedSpec, case, program, inputs, outputs) -> CaseBody:
    primitive = {d.name for d in checked.dims if d.source is not None}
    dims = tuple((name, printer._dim(value)) for name, value in case.dims
                 if name not in primitive)
    shapes = _shapes(program.statements)
    uses = program.uses()

    def access(array, position):
        rows, cols = shapes[array.name]
        return Access(array, position, printer._dim(rows), printer._dim(cols))
    loads = tuple(access(a, i) for i, a in enumerate(inputs) if a.name in uses)
    printed = tuple((s.name, printer.assign(s.name, s.expr)) for s in program.statements)
    stores = tuple(access(a, i) for i, a in enumerate(outputs))
    condition = f"{printer._dim(case.condition.lhs)} {case.condition.op} " \
                f"{printer._dim(case.condition.rhs)}"
    return CaseBody(condition, dims, loads, printed, stores)


def kernels(checked: CheckedSpec) -> tuple[Kernel, ...]:
    """Every variant's pullbacks: the full VJP and each partial VJP its cases all have."""
    spec = checked.spec
    out = []
    for index, cv in enumerate(checked.variants):
        fields = tensor_fields(spec.inputs, cv.variant.outputs)
        permutations = frozenset(t.name for t in cv.variant.outputs
                                 if t.structure == "permutation")
        absents = [()] + [p.absent for p in cv.cases[0].partial_vjps
                          if all(p.absent in {q.absent for q in c.partial_vjps}
                                 for c in cv.cases)]
        for absent in absents:
            rules = [case.vjp if not absent else next(
                p.vjp for p in case.partial_vjps if p.absent == absent) for case in cv.cases]
            programs = [_program(rule, permutations) for rule in rules]
            order = list(rules[0].program.params)
            used = set().union(*(p.uses() for p in programs))
            inputs = tuple(Array(n, fields.get(n, Field.INPUT)) for n in order if n in used)
            outputs = tuple(Array(n, fields.get(n, Field.INPUT))
                            for n in programs[0].results)
            bodies = tuple(
                _case_body(Printer(dtype_ref=spec.inputs[0].name, fields=fields), checked,
                           case, program, inputs, outputs)
                for case, program in zip(cv.cases, programs))
            suffix = "" if not absent else "_without_" + "_".join(absent)
            out.append(Kernel(f"{spec.name}_v{index}_vjp{suffix}", cv.variant.label, absent,
                              inputs, outputs, bodies))
    return tuple(out)


@functools.lru_cache(maxsize=None)
def _template():
    import jinja2
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES / "fused")),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    return env.get_template("rules.cpp.jinja")


def source(checked: CheckedSpec) -> str:
    """The C++ source of a spec's fused pullbacks (it includes ``HEADER``)."""
    primitive = [d.name for d in checked.dims if d.source is not None]
    uses_complex = any(t.complex_valued for v in checked.spec.variants for t in v.outputs)
    return _template().render(spec=checked.spec.name, header=HEADER, dims=primitive,
                              kernels=kernels(checked), dtypes=DTYPES, scalar=SCALAR,
                              dim_macros=", ".join(f"FR_DIM_{d}" for d in primitive),
                              uses_complex=uses_complex)


def header_source() -> str:
    """The hand-written header every fused source includes."""
    return (TEMPLATES / "fused" / HEADER).read_text()


def models(checked: CheckedSpec, selection) -> tuple[model.FusedVariant, ...]:
    """The render model of a spec's fused pullbacks, per variant (``selection(cv)``: Python
    source of the test of the options that selects it)."""
    by_variant: dict[str, list[Kernel]] = {}
    for k in kernels(checked):
        by_variant.setdefault(k.variant, []).append(k)
    out = []
    for cv in checked.variants:
        given = ["g" + t.name for t in cv.differentiable_outputs]
        out.append(model.FusedVariant(selection(cv), tuple(
            model.FusedKernel(k.name, " and ".join(
                f"{g} is None" if g in k.absent else f"{g} is not None" for g in given) or "True",
                tuple(a.name for a in k.inputs), tuple(_FIELD_NAMES[a.field] for a in k.inputs))
            for k in by_variant.get(cv.variant.label, ()))))
    return tuple(out)


def files(specs, folder: str, header) -> dict[str, str]:
    """{path: text} of the sources under ``folder``: each spec's, and the header they include;
    ``header(source, sha256)``: the lines that head a generated file."""
    text = header_source()
    lines = header(f"templates/fused/{HEADER}", hashlib.sha256(text.encode()).hexdigest())
    out = {f"{folder}/{HEADER}": "".join(f"// {line}\n" for line in lines) + text}
    for c in specs:
        lines = "".join(f"// {line}\n" for line in header(c.spec.path, c.spec.sha256))
        out[f"{folder}/{c.spec.name}.cpp"] = lines + source(c)
    return out
