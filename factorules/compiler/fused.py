"""A spec's VJP rules as fused C++: one function computes a whole pullback of one matrix.

For each variant and each set of cotangents the rules are given (all of them: the full VJP;
some None: a partial VJP), one ``extern "C"`` kernel per dtype runs the rule on every
matrix of a batch (OpenMP threads over the batch).  The spec's dimensions are template
parameters of the rule, fixed when the source is compiled (``-DFR_DIM_<name>=<size>``), so
that every loop has constant bounds; the case whose condition holds is chosen then
(``if constexpr``).  A kernel returns 1 when a case ran, 0 when none holds.

Arguments: ``in``, the addresses of the inputs' arrays in the order of ``Kernel.inputs``, each
in its own dtype (``Kernel.dtype_of``: the input's dtype, its real counterpart for a real
field (singular values), complex for a complex one (eig's eigenpairs)); ``strides``, three per
input, in entries: between matrices, rows and columns (a vector is a column); ``out``, the
C-contiguous arrays of ``Kernel.outputs`` and, with checks, their report (count, checks, 2),
real; ``count``, the matrices.  The rule computes in the widest of the dtypes.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import sympy as sp

from . import ops, render_model as model
from .check_dims import matrix_symbol
from .checked import CheckedSpec
from .derivative_checks import check_messages, derivative_checks
from .fields import Field, tensor_fields
from .paths import TEMPLATES
from .printers.cpp import SCALAR, Printer
from .product_folding import folded
from .program import Statement, build_program, live

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


class FusedError(ValueError):
    """A spec whose rules the fused kernels cannot compute."""


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
    verdicts: tuple[str, ...]  # a statement per check, reporting its value and limit


@dataclass(frozen=True)
class Kernel:
    """One pullback of one variant, given the cotangents that are not ``absent``."""

    name: str  # the C++ template's name; the kernels are fr_<name>_<dtype suffix>
    variant: str  # the variant's label
    absent: tuple[str, ...]  # cotangents that are None
    inputs: tuple[Array, ...]
    outputs: tuple[Array, ...]  # the rule's results (then the checks' report, if any)
    cases: tuple[CaseBody, ...]
    checks: tuple["KernelCheck", ...]  # reported in a last output, (count, checks, 2) real

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


@dataclass(frozen=True)
class KernelCheck:
    """A check of degenerate inputs a kernel reports (value and limit per matrix, in its last
    output): the runtime raises the generated module's error where it fails."""

    kind: str  # 'pivots', 'zeros', 'ties' or 'vanish' (templates/_runtime_shared.py)
    message: str  # the name of the module's constant holding its text
    option: str  # the option that turns it off


class _SylvesterInBases(ops.StructuralOp):
    """solve_sylvester(A, B, C) where the variant has A's and B's eigendecompositions (their
    outputs' 'eigenbasis'), given as operands (so that the kernel loads them): the C++
    solve in those bases, products and an elementwise division, instead of the r c x r c
    system.  Printing only (the rules, the audit and the derivatives know solve_sylvester)."""

    def __new__(cls, rhs, la, qa, lb, qb):
        return super().__new__(cls, rhs, la, qa, lb, qb)

    @property
    def shape(self):
        return self.args[0].shape

    def code(self, printer):
        c, la, qa, lb, qb = (printer._print(x) for x in self.args)
        return f"fr::solve_sylvester_in_bases({c}, {la}, {qa}, {lb}, {qb})"


def _in_bases(expr, bases: dict, shapes: dict):
    """``expr`` with each solve_sylvester whose A and B both have an eigenbasis solved in
    them (_SylvesterInBases); ``shapes``: {name: (rows, cols)} of the basis names."""
    def symbol(name):
        return sp.MatrixSymbol(name, *shapes[name])

    def replace(e):
        if isinstance(e, ops.SolveSylvester) and all(
                isinstance(x, sp.MatrixSymbol) and x.name in bases for x in (e.a, e.b)):
            (la, qa), (lb, qb) = bases[e.a.name], bases[e.b.name]
            return _SylvesterInBases(replace(e.rhs), symbol(la), symbol(qa), symbol(lb),
                                     symbol(qb))
        if isinstance(e, sp.MatrixExpr) and not isinstance(e, sp.MatrixSymbol) and e.args:
            return e.func(*(replace(a) for a in e.args))
        return e
    return replace(expr) if bases else expr


def _program(rule, checks, permutations, bases=None, shapes=None):
    """The rule's program with each check's vector and values as results of their own
    (``_kvec<i>``, ``_kval<i>_<j>``), sharing its statements; solves in the eigenbases
    ``bases`` ({name: (values, vectors)}, of ``shapes``) where the variant has them."""
    statements = [Statement(s.name, _in_bases(folded(s.expr, permutations), bases or {},
                                               shapes or {}))
                  for s in rule.statements]
    named_as = {s.expr: sp.MatrixSymbol(s.name, *s.expr.shape) for s in statements}
    extra = []
    for i, c in enumerate(checks):
        if c.vector is not None:
            extra.append(Statement(f"_kvec{i}", folded(c.vector, permutations)))
        extra.extend(Statement(f"_kval{i}_{j}", folded(v, permutations).xreplace(named_as))
                     for j, v in enumerate(c.values))
    results = (*rule.program.results, *(s.name for s in extra))
    return build_program(rule.program.params, [*statements, *extra], results,
                         shared_by={s.name for s in statements})


def _largest(names) -> str:
    """C++: the largest |entry| over the matrices ``names`` (0 for none), each read once for
    all the checks (``_largest_of``)."""
    text = f"fr::real_t<{SCALAR}>(0)"
    for name in names:
        text = f"fr::maximum({text}, _kmax_{name})"
    return text


def _largest_of(checks) -> list[str]:
    """C++: the largest |entry| of each matrix the checks' limits scale with, once."""
    names = dict.fromkeys(name for c in checks if c.kind != "pivots"
                          for name in (c.against[1:] if c.kind == "zeros" else c.against))
    return [f"const auto _kmax_{name} = fr::largest_abs({name});" for name in names]


def _verdict(i: int, check, count: int, report: str, statements, pivot_limit: str,
             zero_when_real: bool = False) -> list[str]:
    """C++ lines that report check ``i`` of ``count``'s value and limit; ``statements``: the
    printed (name, code) of what only its values read, computed in the block (for ties and
    zeros only where a value ties or a pivot is zero: otherwise its value is 0)."""
    values = [f"_kval{i}_{j}" for j in range(len(check.values))]
    if check.kind == "tied":  # any tie fails: the number of tied pairs, limit 0
        value, limit = f"fr::tie_count(_kvec{i})", f"fr::real_t<{SCALAR}>(0)"
    elif check.kind == "pivots":
        value = f"fr::real_t<{SCALAR}>(std::numeric_limits<fr::scalar_t<{SCALAR}>>::infinity())"
        for v in values:
            value = f"fr::minimum<{SCALAR}>({value}, fr::smallest_abs({v}))"
        limit = pivot_limit
    else:
        value = f"fr::real_t<{SCALAR}>(0)"
        for v in values:
            term = {"ties": f"fr::tie_residual(_kvec{i}, {v})",
                    "zeros": f"fr::zero_residual(_kvec{i}, {pivot_limit}, {v})",
                    "vanish": f"fr::largest_abs({v})"}[check.kind]
            value = f"fr::maximum({value}, {term})"
        derivatives = check.against[1:] if check.kind == "zeros" else check.against
        limit = f"fr::square_root(fr::epsilon<{SCALAR}>()) * {_largest(derivatives)}"
    computed = [f"  const auto {name} = {code};" for name, code in statements]
    condition = {"ties": f"fr::any_tie(_kvec{i})", "tied": f"fr::any_tie(_kvec{i})",
                 "zeros": f"fr::any_zero(_kvec{i}, {pivot_limit})"
                 }.get(check.kind)
    if condition is None:
        body = [*computed, f"  const fr::real_t<{SCALAR}> value = {value};"]
    else:
        body = [f"  fr::real_t<{SCALAR}> value = 0;", f"  if ({condition}) {{",
                *("  " + line for line in computed), f"    value = {value};", "  }"]
    verdict = ["{", *body, f"  fr::report({report}, b, {i}, {count}, value, {limit});", "}"]
    if zero_when_real:  # imaginary parts of values in the input's field: of real input, zero
        zero = f"fr::real_t<{SCALAR}>(0)"
        return ["if constexpr (fr::is_complex<fr_I>::value) {", *("  " + v for v in verdict),
                "} else {",
                f"  fr::report({report}, b, {i}, {count}, {zero}, {limit});", "}"]
    return verdict


def _case_body(printer, checked: CheckedSpec, case, program, checks, inputs,
               outputs) -> CaseBody:
    primitive = {d.name for d in checked.dims if d.source is not None}
    dims = tuple((name, printer._dim(value)) for name, value in case.dims
                 if name not in primitive)
    shapes = _shapes(program.statements)
    values = dict(case.dims)
    for t in checked.spec.inputs:  # an input only a check reads (its norm: the pivots')
        shapes.setdefault(t.name, tuple(values[d] for d in t.shape))
    uses = program.uses() | {a for c in checks for a in c.against}

    def pivot_limit(check) -> str:
        """max(m, n) eps ||A||_F: of A, or of an output of A's norm (the spec's pivots.norm,
        A's shape giving max(m, n): A itself is not read); '' for checks against nothing."""
        if not check.against:
            return ""
        if not check.size_of:
            return f"fr::pivot_limit({check.against[0]})"
        rows, cols = (printer._dim(d) for d in shapes[check.size_of])
        return f"fr::pivot_limit({check.against[0]}, std::max<fr::index>({rows}, {cols}))"

    def access(array, position):
        rows, cols = shapes[array.name]
        return Access(array, position, printer._dim(rows), printer._dim(cols))
    loads = tuple(access(a, i) for i, a in enumerate(inputs) if a.name in uses)
    code = {s.name: printer.assign(s.name, s.expr) for s in program.statements}
    # what the rule and the checks' vectors read first; what only a check's values read, in
    # its own block (live: in order)
    vectors = [f"_kvec{i}" for i, c in enumerate(checks) if c.vector is not None]
    ruled = [s.name for s in live(program.statements, [*(a.name for a in outputs), *vectors])]
    results = [a for a in outputs if a.name in shapes]
    stores = tuple(access(a, i) for i, a in enumerate(results))
    report = f"static_cast<fr_R*>(out[{len(results)}])"
    verdicts = (*_largest_of(checks), *(line for i, c in enumerate(checks) for line in _verdict(
        i, c, len(checks), report,
        [(s.name, code[s.name]) for s in live(program.statements, [
            f"_kval{i}_{j}" for j in range(len(c.values))]) if s.name not in ruled],
        pivot_limit(c), bool(c.complex_of))))
    condition = f"{printer._dim(case.condition.lhs)} {case.condition.op} " \
                f"{printer._dim(case.condition.rhs)}"
    return CaseBody(condition, dims, loads, tuple((name, code[name]) for name in ruled), stores,
                    verdicts)


def _case_checks(checked: CheckedSpec, cv, case, absent) -> tuple:
    """The case's VJP checks (render_model.DerivativeCheck), given the cotangents not
    ``absent``."""
    messages = {m.source: m.name for m in check_messages(checked)}
    parsed = case.checks if not absent else next(
        p.checks for p in case.partial_vjps if p.absent == absent)
    return derivative_checks(checked.spec, cv.variant, parsed, messages)[1]


def _basis_shapes(cv, case, bases) -> dict:
    """{name: (rows, cols)} of the eigenbases' names under the case's sizes (values as
    columns)."""
    cdims = dict(case.dims)
    names = {n for pair in bases.values() for n in pair}
    return {t.name: matrix_symbol(t, cdims).shape for t in cv.variant.outputs
            if t.name in names}


@functools.lru_cache(maxsize=64)
def kernels(checked: CheckedSpec) -> tuple[Kernel, ...]:
    """Every variant's pullbacks: the full VJP and each partial VJP its cases all have (kept:
    the torch module's model and the C++ source both ask)."""
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
            checks = [_case_checks(checked, cv, case, absent) for case in cv.cases]
            reported = {tuple(KernelCheck(c.kind, c.message, c.option) for c in cs)
                        for cs in checks}
            if len(reported) != 1:
                raise FusedError(f"{spec.name} ({cv.variant.label}): its cases check "
                                 f"different things; one kernel reports one list of checks")
            bases = {t.name: t.eigenbasis for t in cv.variant.outputs if t.eigenbasis}
            programs = [_program(rule, cs, permutations, bases, _basis_shapes(cv, case, bases))
                        for rule, cs, case in zip(rules, checks, cv.cases)]
            order = list(rules[0].program.params)
            used = set().union(*(p.uses() for p in programs),
                               *({a for c in cs for a in c.against} for cs in checks))
            inputs = tuple(Array(n, fields.get(n, Field.INPUT)) for n in order if n in used)
            outputs = tuple(Array(n, fields.get(n, Field.INPUT))
                            for n in rules[0].program.results)
            bodies = tuple(
                _case_body(Printer(dtype_ref=spec.inputs[0].name, fields=fields), checked,
                           case, program, cs, inputs, outputs)
                for case, program, cs in zip(cv.cases, programs, checks))
            suffix = "" if not absent else "_without_" + "_".join(absent)
            out.append(Kernel(f"{spec.name}_v{index}_vjp{suffix}", cv.variant.label, absent,
                              inputs, outputs, bodies, next(iter(reported))))
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
                tuple(a.name for a in k.inputs), tuple(_FIELD_NAMES[a.field] for a in k.inputs),
                tuple((c.kind, c.message, c.option) for c in k.checks))
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
