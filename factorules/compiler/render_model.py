"""The render model: what the templates render, as frozen dataclasses.

``factorules.compiler.render`` builds one ``Module`` per spec and backend from the checked spec:
every expression is already printed by the backend's printer and every piece of code a
template places (a native call, an option's value, a condition) is already Python source.  The
shared templates (``templates/rules.py.jinja``, ``templates/plain_module.py.jinja``) loop over
these objects and test their fields, nothing more; a property here is a view of the fields
(names joined in a signature, flags as a Python list).
"""
from __future__ import annotations

import json
from dataclasses import dataclass


def py_literal(value) -> str:
    """An option value (or a list of them) as Python source: "text", True, False."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(py_literal(v) for v in value) + "]"
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    raise TypeError(f"not an option value: {value!r}")


# -- the operation's signature ----------------------------------------------------------------
@dataclass(frozen=True)
class Input:
    """An input of the operation: a matrix, or a vector the rules hold as a column."""

    name: str  # its name in the spec and in the generated signatures ('A')
    is_vector: bool  # a vector: checked with one axis, given a column axis for the rules
    first: bool  # the first input, whose dtype and batch shape the others must have

    @property
    def tangent(self) -> str:
        """The name of its tangent in the JVP's signature ('dA')."""
        return "d" + self.name


@dataclass(frozen=True)
class Option:
    """A keyword option of the operation (the spec's 'options')."""

    name: str  # the keyword
    values: str  # Python source of the list of values it takes: ["reduced", "complete"]
    default: str  # Python source of its default: "reduced", False
    selects: bool  # it chooses the variant (not a switch passed to the rules: check_gauge)

    @property
    def report(self) -> str:
        """A replacement field that shows its value in an error message: mode={mode!r}."""
        return f"{self.name}={{{self.name}!r}}"


@dataclass(frozen=True)
class Alias:
    """An old spelling of an option (the spec's 'aliases'), still accepted with a warning."""

    keyword: str  # the old keyword
    option: str  # the option it sets
    pairs: str  # Python source of the (old value, option value) pairs, a tuple of tuples
    default: str  # Python source of the option's default


@dataclass(frozen=True)
class Dim:
    """A size the rules read, computed at the top of a generated function."""

    name: str  # its name in the spec and in the generated code ('m', 'k')
    value: str  # Python source of its value: an input's axis 'A.shape[-2]' or 'min(m, n)'


@dataclass(frozen=True)
class ShapeEquality:
    """Two input axes the spec names by one dimension, which must agree at run time."""

    first: str  # Python source of the first axis' size: 'A.shape[-1]'
    other: str  # Python source of the other's: 'B.shape[-2]'
    message: str  # Python source of the message the ValueError reports when they differ


@dataclass(frozen=True)
class Output:
    """An output of the operation, as the spec's first variant lists it (every variant lists
    the same names in the same order)."""

    name: str  # its name in the spec and in the generated code ('Q')
    shown: bool  # returned to users: not 'returned: hidden' (computed for the rules alone)
    field: str  # its field in the result's named tuple (shown outputs)
    is_vector: bool  # a vector: the rules hold it as a column, users get it without that axis
    complex_valued: bool  # complex even for real input ('dtype: complex')

    @property
    def cotangent(self) -> str:
        """The name of its cotangent in the VJP's signature ('gQ')."""
        return "g" + self.name


@dataclass(frozen=True)
class Delegate:
    """The spec's 'delegate': a keyword that hands the whole operation to another spec's."""

    option: str  # the keyword (True: delegate, False: compute here)
    op: str  # the operation delegated to, a module of the same package
    text: str  # the call as the spec writes it, quoted in comments
    kwargs: str  # Python source of the keywords it passes, each after ', '


@dataclass(frozen=True)
class FrameworkCall:
    """The spec's 'framework': the operation differentiated as another spec's (torch, JAX)."""

    op: str  # the operation called, a module of the same package
    call: str  # Python source of the call
    result: str  # the field of its result that is this operation's


# -- the rules --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Assignment:
    """One statement of a rule's straight-line program."""

    target: str  # the name it assigns
    code: str  # the expression, printed by the backend's printer
    released: tuple[str, ...] = ()  # the temporaries it reads last, set to None after it
    loop = False  # a RowLoop is one

    @property
    def targets(self) -> tuple[str, ...]:
        return (self.target,)


@dataclass(frozen=True)
class RowLoop:
    """One pass over the rows of a rule's large dimension below its top, a block of rows
    at a time (``factorules.compiler.row_blocks``): the inputs' rows of the block, the
    statements on them, the sums it adds the block's part to and the rows of the results
    it writes."""

    start: str  # the first row below the top, printed (n)
    rows: str  # the rows below the top, printed (m - n)
    inputs: tuple[Assignment, ...]  # each m-row input's rows of the block (a_rows = a[...])
    statements: tuple[Assignment, ...]  # the block's statements, in order
    sums: tuple[Assignment, ...]  # a sum's name and the block's part of it
    outputs: tuple[Assignment, ...]  # a result's name and the code writing the block's rows
    released: tuple[str, ...] = ()  # the temporaries it reads last, set to None after it
    loop = True

    @property
    def targets(self) -> tuple[str, ...]:
        """The names it leaves set: its sums and results (None before the first block)."""
        return tuple(a.target for a in (*self.sums, *self.outputs))

    @property
    def code(self) -> str:
        """Everything it reads, as text (what ``rule_body.released`` scans)."""
        return "\n".join(a.code for a in (*self.statements, *self.sums, *self.outputs))


@dataclass(frozen=True)
class DerivativeCheck:
    """One run-time test of whether the derivative a rule computes exists: the spec's
    'pivots', 'ties', or the gauge's 'cotangent' (the runtime's ``_violation`` says how each
    kind is measured)."""

    kind: str  # 'pivots', 'zeros' (pivots with conditions), 'ties', 'tied' (ties with no
    # conditions: every tie fails) or 'vanish'
    values: tuple[str, ...]  # the printed expressions tested (sizes may be min/max)
    against: tuple[str, ...]  # what they are measured against: the first input (pivots: its
    # norm), or the tangents or cotangents the expressions read (their largest entry), or
    # both (zeros: the first input, then those)
    vector: str  # the printed vector whose ties ('ties', 'tied') or zeros ('zeros') matter;
    # 'None' for the other kinds
    message: str  # the name of the module's constant holding the spec's message (CheckMessage)
    option: str  # the option that turns the check off ('check_singular', 'check_gauge')
    function: str = ""  # the rule's nested function computing the values ('_kv0'), or ''
    # when the values are expressions of the rule's statements, printed in place
    statements: tuple[Assignment, ...] = ()  # what the function computes before them: the
    # statements only this check reads
    size_of: str = ""  # pivots, zeros whose against[0] is the spec's 'pivots.norm' (an output
    # of the first input's norm): the first input, whose max(rows, cols) scales the limit
    complex_of: str = ""  # vanish checks whose every value is the imaginary part of a value
    # in the input's field (zero for real input): the first input, whose dtype says whether the
    # check runs (complex) or is left out (real); '' for the others


@dataclass(frozen=True)
class CheckMessage:
    """A spec's words for a condition a check tests, a module-level constant that every rule
    and case testing it names."""

    name: str  # the constant: '_TIES_MESSAGE' (numbered when a kind has several texts)
    source: str  # Python source of the text


@dataclass(frozen=True)
class RuleBody:
    """A case's JVP or VJP: the code under its condition."""

    source: str  # the comment that heads it: spec file:line and the citations its text names
    assignments: tuple[Assignment | RowLoop, ...]  # its program, in order
    results: tuple[str, ...]  # the names it returns, in order (tangents or cotangents)
    # checks of ties and of the gauge on values the program computes with the rule's own
    # (common subexpressions shared): what traced code marks its results with
    checks: tuple[DerivativeCheck, ...] = ()
    pivots: bool = False  # the case checks pivots too (the first of _jvp/_vjp_checks)
    # the same rule a block of rows at a time (factorules.compiler.row_blocks), taken first
    # where ``blocked_when`` holds (a tall input)
    blocked: RuleBody | None = None
    blocked_when: str = ""

    @property
    def check_functions(self) -> tuple[DerivativeCheck, ...]:
        """The checks whose values a function of their own computes."""
        return tuple(c for c in self.checks if c.function)


@dataclass(frozen=True)
class PartialVjp:
    """A case's VJP when some cotangents are None (zero): the rule without their terms."""

    condition: str  # Python source testing which cotangents are None ('gU is None and ...')
    absent: tuple[str, ...]  # those that are None (the rule has no terms of them)
    vjp: RuleBody  # the rule specialised to the others
    vjp_checks: tuple[DerivativeCheck, ...]  # what its derivative needs (for _vjp_checks)


@dataclass(frozen=True)
class Case:
    """One case of a variant: rules that hold under a condition on the sizes."""

    condition: str  # Python source of the condition on the sizes ('m >= n')
    unconditional: bool  # the case holds always (the spec gives no 'when'): no test
    jvp: RuleBody  # tangents of the differentiable outputs from those of the inputs
    vjp: RuleBody  # cotangents of the inputs from those of the differentiable outputs
    jvp_checks: tuple[DerivativeCheck, ...]  # what the JVP's derivative needs
    vjp_checks: tuple[DerivativeCheck, ...]  # what the VJP's derivative needs
    # the VJP given some cotangents (the others None), tested before the full rule
    partial_vjps: tuple[PartialVjp, ...] = ()
    # (cotangent, output) of each differentiable output: the full rule reads a None
    # cotangent that no partial rule takes as zeros of the output's shape
    zero_filled: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Requirement:
    """A size the variant requires (the spec's 'requires'), checked before anything runs."""

    condition: str  # Python source of the condition on the sizes
    message: str  # Python source of the f-string the ValueError reports when it fails


@dataclass(frozen=True)
class VariantOutput:
    """An output as one variant returns and differentiates it."""

    name: str  # its name ('Q')
    shown: bool  # returned to users: not 'returned: hidden'
    empty: bool  # returned as an empty array ('returned: empty'); computed for the rules
    is_vector: bool  # a vector (as the spec's outputs have it): users get it without the column
    differentiable: bool  # carries tangents and cotangents: returned as a value, not constant
    from_native: str  # Python source of its value from the native variant's outputs (its name
    # when the spec's 'from_native' does not give it)


@dataclass(frozen=True)
class Variant:
    """A variant: what one choice of the options computes, and its rules."""

    condition: str  # Python source of the test of the options that selects it ('True': always)
    outputs: tuple[VariantOutput, ...]  # in the spec's order
    cases: tuple[Case, ...]  # tested in order; the first that holds gives the rules
    requirements: tuple[Requirement, ...]  # the spec's 'requires'
    native_options: tuple[str, ...]  # Python source of each option's value (in the spec's
    # order) for the variant the framework differentiates; an option that selects no variant
    # is passed on as it is
    converts_native: bool  # its outputs are computed from the native variant's ('from_native')
    # the place of the one output it returns, alone, where it omits the others ('omitted');
    # None: it returns the result type
    alone: int | None = None


@dataclass(frozen=True)
class RuleVariants:
    """Variants whose rules are the same (Module.rule_variants)."""

    condition: str  # Python source of the test that selects one of them
    cases: tuple[Case, ...]  # their cases, tested in order


# -- the primal -------------------------------------------------------------------------------
@dataclass(frozen=True)
class BuiltPermutation:
    """A permutation output built after the native call from its pivots or column numbers."""

    position: int  # its place among the variant's outputs
    result: int  # the place of the pivots (or column numbers) among the call's results
    builder: str  # the runtime helper: '_pivots_permutation' or '_indices_permutation'


@dataclass(frozen=True)
class Primal:
    """How one variant computes its outputs with one signature entry.

    ``form`` says which fields apply: 'direct' (the native call's results are the outputs),
    'rebuilt' (the call's results one by one: pivots shifted, column numbers converted,
    permutations built), 'returned' (the spec's expressions of the call's named results,
    'primal.returns') or 'computed' (the spec's expressions of the inputs, no native call).
    """

    condition: str  # Python source of the variant's test of the options
    form: str  # 'direct', 'rebuilt', 'returned' or 'computed'
    call: str | None = None  # Python source of the native call (None: 'computed')
    statements: tuple[Assignment, ...] = ()  # 'computed': the outputs and the temporaries
    # they share, computed from the inputs in order
    computed: tuple[str, ...] = ()  # 'computed': the outputs' names, in order
    # 'computed': the statements a block of rows at a time, taken where ``blocked_when`` holds
    blocked_statements: tuple = ()
    blocked_when: str = ""
    returns: tuple[str, ...] = ()  # 'returned': the names the call's results are bound to
    return_columns: str | None = None  # 'returned': Python source of which of them are
    # vectors (the list _columns takes); None when none is
    shifted_returns: tuple[str, ...] = ()  # 'returned': pivots the call numbers from 0
    computes_sizes: bool = False  # 'returned': the expressions read sizes, computed first
    complex_flags: str = ""  # 'direct': Python source of which of the variant's outputs are
    # complex for real input ([True, True]); '' when none is
    expressions: tuple[str, ...] = ()  # 'returned': each output's expression of the results
    result_columns: str = ""  # 'rebuilt': Python source of which of the call's results are
    # vectors (the list _columns takes)
    shifted: tuple[int, ...] = ()  # 'rebuilt': places of pivots the call numbers from 0
    indices: tuple[int, ...] = ()  # 'rebuilt': places of column numbers (a permutation)
    permutations: tuple[BuiltPermutation, ...] = ()  # 'rebuilt': built after the call


@dataclass(frozen=True)
class PrimalFunction:
    """The primal of one signature entry: every variant's outputs with its call."""

    name: str  # the generated function: '_primal', or '_primal_until_1_8' for an older entry
    call: str  # an older entry's call as the spec writes it ('computed' for none), for the
    # docstring; '' for the current entry
    library: str | None  # an older entry: the module whose __version__ chooses it ('_torch')
    condition: str  # an older entry: Python source of the version test that chooses it
    variants: tuple[Primal, ...]  # in the spec's order of variants


# -- a generated module -----------------------------------------------------------------------
@dataclass(frozen=True)
class FusedKernel:
    """A fused pullback of a variant (factorules.compiler.fused): when it runs, on what."""

    name: str  # its name in the spec's C++ source (the kernels are fr_<name>_<dtype suffix>)
    condition: str  # Python source: its cotangents are given, the others None
    inputs: tuple[str, ...]  # the names it reads, in its order
    fields: tuple[str, ...]  # the field of each: 'real', 'input' or 'complex'
    checks: tuple[tuple[str, str, str], ...]  # what it reports: (kind, message's constant,
    # option) of each check of degenerate inputs, in order


@dataclass(frozen=True)
class FusedVariant:
    """A variant's fused pullbacks."""

    condition: str  # Python source of the test of the options that selects the variant
    kernels: tuple[FusedKernel, ...]


@dataclass(frozen=True)
class Module:
    """One spec as one backend renders it: the generated module generated/<backend>/<name>.py."""

    header: tuple[str, ...]  # the comment lines that head the file (source and sha256)
    name: str  # the operation's name: the module's, the public function's
    result_type: str  # the named tuple it returns: 'QRResult'
    class_stem: str  # the operation's name as class names begin: 'QR' (_QRFunction)
    module_summary: str  # the module docstring's text after the quotes, wrapped
    summary: str  # the public functions' docstring text after the quotes, wrapped
    references: tuple[str, ...]  # each reference, '[key] citation', wrapped, indented
    inputs: tuple[Input, ...]  # in the spec's order, the first first
    options: tuple[Option, ...]  # in the spec's order
    aliases: tuple[Alias, ...]  # old spellings of options
    dims: tuple[Dim, ...]  # every size, each after those it reads
    shape_equalities: tuple[ShapeEquality, ...]  # input axes that must agree
    outputs: tuple[Output, ...]  # in the spec's order, the hidden ones last
    returns_text: str  # what the public function returns, for its docstring
    variants: tuple[Variant, ...]  # in the spec's order
    primal: PrimalFunction  # the primal with the current signature entry (or the target's)
    older_primals: tuple[PrimalFunction, ...]  # the entries for older library versions
    framework: FrameworkCall | None  # the spec's 'framework'
    delegate: Delegate | None  # the spec's 'delegate'
    host: bool  # the primal runs NumPy/SciPy code on host copies (torch: a vmap rule of its own)
    check_messages: tuple[CheckMessage, ...] = ()  # the texts the checks' errors quote
    fused: tuple[FusedVariant, ...] = ()  # the fused pullbacks (a backend that runs them)
    fused_dims: tuple[str, ...] = ()  # the sizes a fused kernel is compiled for (the inputs')

    @property
    def first_input(self) -> Input:
        """The input whose dtype and batch shape the others must have."""
        return self.inputs[0]

    @property
    def rule_variants(self) -> tuple[RuleVariants, ...]:
        """The variants by their rules: those whose cases are the same (eigh's UPLO="L" and
        "U") under one test, so that the rules and checks are written once."""
        groups: dict[tuple[Case, ...], list[str]] = {}
        for v in self.variants:
            groups.setdefault(v.cases, []).append(v.condition)
        return tuple(RuleVariants(" or ".join(conditions), cases)
                     for cases, conditions in groups.items())

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(x.name for x in self.inputs)

    @property
    def input_tangents(self) -> tuple[str, ...]:
        return tuple(x.tangent for x in self.inputs)

    @property
    def one_input(self) -> bool:
        """One input: the JVP and VJP take and give it alone, not in tuples."""
        return len(self.inputs) == 1

    @property
    def has_vector_input(self) -> bool:
        return any(x.is_vector for x in self.inputs)

    @property
    def input_vector_flags(self) -> str:
        """Python source of which inputs are vectors: [False, True]."""
        return py_literal([x.is_vector for x in self.inputs])

    @property
    def option_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.options)

    @property
    def options_report(self) -> str:
        """Replacement fields that show the value of every option that chooses the variant:
        mode={mode!r}, ... (the switches, check_gauge and the like, choose no rule)."""
        return ", ".join(o.report for o in self.options if o.selects) or "the options"

    @property
    def parameter_count(self) -> int:
        """The primal's positional parameters: the inputs, then the options."""
        return len(self.inputs) + len(self.options)

    @property
    def checks_requires(self) -> bool:
        """Some variant requires sizes: the inputs' checks call _check_requires."""
        return any(v.requirements for v in self.variants)

    @property
    def checks_derivatives(self) -> bool:
        """Some variant's rules check that their derivative exists: the module defines
        _jvp_checks and _vjp_checks."""
        return any(c.jvp_checks or c.vjp_checks for v in self.variants for c in v.cases)

    @property
    def first_output(self) -> Output:
        """The first output: the one returned alone when one is shown."""
        return self.outputs[0]

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.outputs)

    @property
    def output_cotangents(self) -> tuple[str, ...]:
        return tuple(o.cotangent for o in self.outputs)

    @property
    def shown_count(self) -> int:
        """How many outputs users get (the hidden ones are last)."""
        return sum(o.shown for o in self.outputs)

    @property
    def returns_one(self) -> bool:
        """One output is shown: the operation returns it alone, not a named tuple."""
        return self.shown_count == 1

    @property
    def result_fields(self) -> tuple[str, ...]:
        """The fields of the result's named tuple."""
        return tuple(o.field for o in self.outputs if o.shown)

    @property
    def has_vector_output(self) -> bool:
        return any(o.is_vector for o in self.outputs)

    @property
    def has_alone(self) -> bool:
        """Some variant returns one output alone, omitting the others (_tangents_returned)."""
        return any(v.alone is not None for v in self.variants)

    @property
    def vector_flags(self) -> str:
        """Python source of which outputs are vectors: [False, True]."""
        return py_literal([o.is_vector for o in self.outputs])

    @property
    def has_complex_output(self) -> bool:
        """Some output is complex for real input (the cotangent of a real input is then the
        real part of the rule's)."""
        return any(o.complex_valued for o in self.outputs)

    @property
    def library(self) -> str | None:
        """The module whose installed version chooses among the primals (None: one primal)."""
        return self.older_primals[0].library if self.older_primals else None
