"""Load a spec YAML file into frozen dataclasses.

Each mapping is read by popping the keys the loader knows; a key left over, a missing
required key or a value of the wrong kind is a ``SpecError`` that names ``file:line``.
Nothing in a spec is evaluated: equation text stays text here and is parsed by
``generator.compiler.expr`` later.
"""
from __future__ import annotations

import hashlib
import keyword
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import backends as _backends


class SpecError(Exception):
    """A problem in a spec file, reported as one line ``path:line: message``."""

    def __init__(self, path: str, line: int, message: str):
        message = _one_line(message)
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line, self.message = path, line, message


def _one_line(text: str) -> str:
    """Spec text quoted in a message, with line breaks and other control characters escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


# -- YAML with line numbers -------------------------------------------------------------------
class _Map(dict):
    """A YAML mapping that remembers the line of itself, of each key and of each value."""

    line: int
    key_lines: dict
    value_lines: dict


class _List(list):
    line: int
    item_lines: list


class _Loader(yaml.SafeLoader):
    pass


def _value_line(node: yaml.Node) -> int:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        line += 1  # block scalar text starts on the line after the indicator
    return line


def _construct_mapping(loader, node, deep=False):
    # A merge key ('<<: *anchor') puts the merged pairs first; keys written in the mapping
    # itself override them, as YAML specifies.  A key written twice is an error.
    own = sum(1 for key_node, _ in node.value if key_node.tag != "tag:yaml.org,2002:merge")
    loader.flatten_mapping(node)
    merged = len(node.value) - own
    out = _Map()
    out.line, out.key_lines, out.value_lines = node.start_mark.line + 1, {}, {}
    written = set()
    for i, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise yaml.constructor.ConstructorError(
                None, None, f"mapping keys must be strings, found {key!r}", key_node.start_mark)
        if key in written:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}'", key_node.start_mark)
        if i >= merged:
            written.add(key)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
        out.value_lines[key] = _value_line(value_node)
    return out


def _construct_sequence(loader, node, deep=False):
    out = _List(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [_value_line(child) for child in node.value]
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


class _Reader:
    """Pops keys from one mapping, raising SpecError with the right line."""

    def __init__(self, path: str, data, what: str, line: int):
        if not isinstance(data, _Map):
            raise SpecError(path, getattr(data, "line", line), f"{what} must be a mapping")
        self.path, self.data, self.what = path, data, what
        self.remaining = dict(data)

    def line_of(self, key: str) -> int:
        return self.data.value_lines.get(key, self.data.line)

    def error(self, key: str | None, message: str) -> SpecError:
        line = self.data.key_lines.get(key, self.data.line) if key else self.data.line
        return SpecError(self.path, line, message)

    def pop(self, key: str, kind=None, default=..., required=True):
        if key not in self.remaining:
            if default is not ... or not required:
                return None if default is ... else default
            raise self.error(None, f"{self.what}: missing required key '{key}'")
        value = self.remaining.pop(key)
        if kind is not None and not isinstance(value, kind):
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            found = type(value).__name__
            names, found = (x.replace("_Map", "mapping").replace("_List", "list")
                            for x in (names, found))
            raise SpecError(self.path, self.line_of(key),
                            f"{self.what}.{key} must be a {names}, found {found}")
        return value

    def done(self) -> None:
        for key in self.remaining:
            raise self.error(key, f"{self.what}: unknown key '{key}'")


# -- the spec model ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Reference:
    key: str
    cite: str


@dataclass(frozen=True)
class Tensor:
    """An input or output: a matrix (two dimension names) or a vector (one)."""

    name: str
    shape: tuple[str, ...]
    line: int
    structure: str | None = None
    diagonal: str | None = None
    # 'value'; 'empty': returned as an empty array, not differentiated; 'hidden': computed for
    # the rules only, neither returned nor differentiated
    returned: str = "value"
    field: str | None = None  # its name in the result's named tuple (default: its own name)
    order: str | None = None  # a vector's order as computed: 'ascending' or 'descending'
    complex_valued: bool = False  # complex even for real input (eig): 'dtype: complex'
    # a 'permutation' output computed from a 'pivots' output of the same variant (lu_factor's
    # hidden P), not returned by the native call
    from_pivots: str | None = None
    # a 'permutation' output computed from an 'indices' output (qr_pivoted's hidden Pi)
    from_indices: str | None = None

    @property
    def is_vector(self) -> bool:
        return len(self.shape) == 1

    @property
    def constant(self) -> bool:
        """Locally constant: a permutation, pivots or indices (no tangent, cotangent None)."""
        return self.structure in ("permutation", "pivots", "indices")

    @property
    def is_index(self) -> bool:
        """Integer data (LAPACK pivots, column indices), never a matrix of the rules."""
        return self.structure in ("pivots", "indices")

    @property
    def built_from(self) -> str | None:
        """The integer output a permutation is built from (from_pivots or from_indices)."""
        return self.from_pivots or self.from_indices

    @property
    def result_field(self) -> str:
        return self.field or self.name


@dataclass(frozen=True)
class Option:
    name: str
    values: tuple  # all str, or all bool (e.g. cholesky's upper: [false, true])
    default: str | bool
    line: int
    selects: bool = True  # False: passed to the rules (check_gauge), chooses no variant


@dataclass(frozen=True)
class Text:
    """A block of equation text and the file line its first line sits on."""

    text: str
    line: int


@dataclass(frozen=True)
class Case:
    when: str
    line: int  # the line of the case's condition
    jvp: Text
    vjp: Text | None  # None: derived by transposing the JVP (generator.compiler.derive)
    defining: tuple[Text, ...] = ()  # equations that hold only under this case's condition


@dataclass(frozen=True)
class Gauge:
    """A continuous freedom of the outputs (the phase of complex eigen/singular vectors).

    tangent: expressions of the outputs and their tangents that the JVP makes zero (the
    derivative the rules choose); cotangent: expressions of the outputs and cotangents that
    are zero exactly when the loss does not depend on the gauge (checked at run time);
    phases: blocks of outputs ('Q', 'U[:, :k]', 'Vh[:k, :].H') whose columns carry one free
    unit factor each, the same j-th factor in every block (SVD: U -> U D, Vh -> D^H Vh);
    rotations: blocks whose columns are any orthonormal basis of their span (the completion
    of a full SVD), each free up to its own unitary rotation.  Tests align both before
    comparing outputs.
    """

    tangent: tuple[Text, ...]
    cotangent: tuple[Text, ...]  # empty: no differentiable output carries the gauge
    phases: tuple[str, ...]
    message: str
    line: int
    rotations: tuple[str, ...] = ()


@dataclass(frozen=True)
class Variant:
    when: tuple[tuple[str, str], ...]
    native: tuple[tuple[str, str | bool], ...]  # option values the primal is computed with
    outputs: tuple[Tensor, ...]
    defining: tuple[Text, ...]
    cases: tuple[Case, ...]
    line: int
    # output -> expression of the native variant's outputs (e.g. cholesky upper: L = L.H)
    from_native: tuple[tuple[str, Text], ...] = ()
    # what the native call returns, when that is not the outputs themselves: names and
    # shapes of its results, and each output as an expression of them ('primal' key)
    primal_returns: tuple[tuple[str, tuple[str, str]], ...] = ()
    primal_outputs: tuple[tuple[str, Text], ...] = ()
    gauge: Gauge | None = None
    # output -> expression of other outputs that the random draws of samples use (not an
    # equation the factorization must meet: e.g. geqrf's tau making each reflector unitary)
    sample: tuple[tuple[str, Text], ...] = ()
    # conditions on the input sizes checked at run time before anything is computed
    requires: tuple[Text, ...] = ()

    @property
    def label(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.when) or "default"


@dataclass(frozen=True)
class Signature:
    backend: str
    call: str
    line: int
    since: str | None = None
    until: str | None = None
    batched: bool = True          # False: the call takes one matrix; the code maps it over batches
    pivots_base: int = 1          # the first row's number in the call's pivots (SciPy, JAX: 0)
    transposed: tuple[str, ...] = ()  # outputs the call returns transposed (NumPy's raw QR)
    compute: bool = False         # no native call: the variants' primal expressions compute it
    # option -> ((our value, the call's value), ...) where the call spells a value otherwise
    # (SciPy's mode='economic' for our 'reduced')
    values: tuple[tuple[str, tuple[tuple[object, object], ...]], ...] = ()
    # True: a NumPy/SciPy function called on host copies of the arrays (a backend without
    # the routine, e.g. pivoted QR in torch and CuPy); its results are moved back
    host: bool = False
    # the called function's own signature, as the library declares it (text, e.g.
    # "(a, mode='reduced')"; checked against the installed library by `cli.py signatures`)
    signature: str | None = None
    # keyword -> every value the library's documentation lists for it (its 'mode' values)
    accepts: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class Benchmark:
    """One row of `cli.py bench`: options, an input shape (batch dims first), a dtype."""

    options: tuple[tuple[str, str | bool], ...]
    shape: tuple[int, ...]
    quick: tuple[int, ...]  # the shape used by `bench --quick` (smoke tests)
    dtype: str
    line: int

    @property
    def label(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.options) or "default"


@dataclass(frozen=True)
class Spec:
    name: str
    path: str
    sha256: str
    summary: str
    references: tuple[Reference, ...]
    dims: tuple[tuple[str, str], ...]
    inputs: tuple[Tensor, ...]
    options: tuple[Option, ...]
    variants: tuple[Variant, ...]
    signatures: tuple[Signature, ...]
    notes: str = ""
    benchmarks: tuple[Benchmark, ...] = ()
    # 'framework': the op's torch/jax function is another spec's, one field of its result
    # (eigvalsh is eigh's eigenvalues there), so that the frameworks' AD has the derivatives
    # of every output the rules use (second derivatives need those of the hidden ones)
    framework: tuple[str, str, int] | None = None  # (call text, result field, line)
    # 'delegate': a boolean keyword of the public functions (False by default) that, True,
    # makes the operation another spec's call (qr(A, pivoting=True) is qr_pivoted(A, ...))
    delegate: tuple[str, str, int] | None = None  # (keyword, call text, line)
    # 'aliases': old spellings of an option the public functions still take, with a
    # DeprecationWarning: (alias, option, ((alias value, option value), ...), line)
    aliases: tuple[tuple[str, str, tuple[tuple[object, object], ...], int], ...] = ()
    # named values of the primitive dimensions that the audit and tests use when they are
    # not one m x n (or n x n) input's: {name: ((dim, value), ...)}, zero-size ones too
    shapes: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()
    line_of: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    def option(self, name: str) -> Option:
        return next(o for o in self.options if o.name == name)


BACKENDS = _backends.NAMES
# backends whose arrays can be copied to NumPy and back for a 'host: true' call
HOST_BACKENDS = tuple(b.name for b in _backends.BACKENDS if b.host_fallbacks)
ALWAYS = "always"  # the condition of a case without 'when'

STRUCTURES = ("general", "orthonormal_columns", "orthonormal_rows", "unitary",
              "upper_triangular", "lower_triangular", "hermitian", "diagonal", "unit_columns",
              "permutation")
VECTOR_STRUCTURES = ("general", "real", "positive", "pivots", "indices")
# integer outputs: LAPACK's row interchanges (1-based), a permutation as 0-based column numbers
INDEX_STRUCTURES = ("pivots", "indices")
DIAGONALS = ("any", "real", "unit", "positive")
ORDERS = ("ascending", "descending")


def _aliases(path, r: "_Reader", options, inputs, delegate) -> tuple:
    """'aliases': {old keyword: {option, values: [[old value, option value], ...]}}."""
    data = r.pop("aliases", _Map, default=_Map())
    known = {o.name: o for o in options}
    taken = set(known) | {t.name for t in inputs} | ({delegate[0]} if delegate else set())
    out = []
    for alias, entry in data.items():
        line = data.key_lines[alias]
        _check_name(path, alias, line, "aliases")
        if alias in taken:
            raise SpecError(path, line, f"aliases: '{alias}' already names an option, an input "
                                        f"or the delegate")
        ar = _Reader(path, entry, f"aliases.{alias}", data.value_lines[alias])
        option = ar.pop("option", str)
        if option not in known:
            raise SpecError(path, ar.line_of("option"), f"aliases.{alias}: '{option}' is not "
                                                        f"an option")
        values = ar.pop("values", _List)
        if not values or not all(isinstance(p, _List) and len(p) == 2 for p in values):
            raise SpecError(path, ar.line_of("values"), f"aliases.{alias}.values must be a "
                                                        f"list of [old value, option value]")
        for old, new in values:
            if type(old) not in (str, bool) or not _is_value(new, known[option].values):
                raise SpecError(path, ar.line_of("values"),
                                f"aliases.{alias}.values: {_show(old)} -> {_show(new)}: the "
                                f"option's values are {', '.join(map(_show, known[option].values))}")
        ar.done()
        out.append((str(alias), option, tuple((old, new) for old, new in values), line))
    return tuple(out)


def _signature_values(path, sr: "_Reader", options) -> tuple:
    """A signature entry's 'values': {option: {our value: the call's value}}."""
    data = sr.pop("values", _Map, default=_Map())
    known = {o.name: o for o in options}
    out = []
    for opt, mapping in data.items():
        line = data.value_lines[opt]
        if opt not in known:
            raise SpecError(path, line, f"values: '{opt}' is not an option")
        if not isinstance(mapping, _Map) or not mapping:
            raise SpecError(path, line, f"values.{opt} must map option values to the call's")
        for ours, theirs in mapping.items():
            if not _is_value(ours, known[opt].values):
                raise SpecError(path, line, f"values.{opt}: {_show(ours)} is not one of its "
                                            f"values")
            if type(theirs) not in (str, bool, int):
                raise SpecError(path, line, f"values.{opt}.{ours}: give a string, a boolean "
                                            f"or an integer")
        out.append((opt, tuple(mapping.items())))
    return tuple(out)


def _check_name(path, name, line, what) -> None:
    """Names of matrices and options become Python names in the generated code."""
    if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_") \
            or name == "I":
        raise SpecError(path, line, f"{what}: '{name}' is not a valid name (a Python "
                                    f"identifier, not a keyword, not 'I', not starting with '_')")


def _shape(path, value, line, what) -> list:
    if not (isinstance(value, _List) and len(value) in (1, 2)
            and all(isinstance(d, str) for d in value)):
        raise SpecError(path, line, f"{what} must be a list of two dimension names (a matrix) "
                                    f"or of one (a vector)")
    return value


def _tensor(path, name, data, line, what) -> Tensor:
    r = _Reader(path, data, f"{what}.{name}", line)
    shape = r.pop("shape", _List)
    if len(shape) not in (1, 2) or not all(isinstance(d, str) for d in shape):
        raise SpecError(path, r.line_of("shape"),
                        f"{what}.{name}.shape must be a list of two dimension names (a matrix) "
                        f"or of one (a vector)")
    vector = len(shape) == 1
    known = VECTOR_STRUCTURES if vector else STRUCTURES
    structure = r.pop("structure", str, default="general")
    if structure not in known:
        raise SpecError(path, r.line_of("structure"),
                        f"unknown {'vector ' if vector else ''}structure '{structure}' "
                        f"(known: {', '.join(known)})")
    diagonal = r.pop("diagonal", str, default="any")
    if diagonal not in DIAGONALS:
        raise SpecError(path, r.line_of("diagonal"),
                        f"unknown diagonal '{diagonal}' (known: {', '.join(DIAGONALS)})")
    if vector and diagonal != "any":
        raise SpecError(path, r.line_of("diagonal"), "a vector has no diagonal (use structure)")
    returned = r.pop("returned", str, default="value")
    if returned not in ("value", "empty", "hidden"):
        raise SpecError(path, r.line_of("returned"),
                        "returned must be 'value', 'empty' or 'hidden'")
    result_field = r.pop("field", str, required=False)
    if result_field is not None:
        _check_name(path, result_field, r.line_of("field"), f"{what}.{name}.field")
    order = r.pop("order", str, required=False)
    if order is not None and (not vector or order not in ORDERS):
        raise SpecError(path, r.line_of("order"),
                        f"order is for vectors: one of {', '.join(ORDERS)}")
    dtype = r.pop("dtype", str, required=False)
    if dtype is not None and dtype != "complex":
        raise SpecError(path, r.line_of("dtype"), "dtype can only be 'complex' (an output "
                                                  "that is complex for real input too)")
    built = {}
    for key in ("from_pivots", "from_indices"):
        built[key] = r.pop(key, str, required=False)
        if built[key] is not None and structure != "permutation":
            raise SpecError(path, r.line_of(key), f"{key} is for a permutation output")
    if built["from_pivots"] is not None and built["from_indices"] is not None:
        raise SpecError(path, line, f"{what}.{name}: give from_pivots or from_indices, "
                                    f"not both")
    constant = ("permutation",) + INDEX_STRUCTURES
    if what == "inputs" and structure in constant:
        raise SpecError(path, r.line_of("structure"), f"an input cannot be a {structure}")
    if structure in constant and (diagonal != "any" or dtype is not None):
        raise SpecError(path, line, f"{what}.{name}: a {structure} has no diagonal or dtype")
    r.done()
    return Tensor(name, tuple(shape), line, structure, diagonal, returned, result_field, order,
                  dtype == "complex", built["from_pivots"], built["from_indices"])


def _tensors(path, data, line, what) -> tuple[Tensor, ...]:
    if not isinstance(data, _Map) or not data:
        raise SpecError(path, line, f"{what} must be a non-empty mapping of name: {{shape: ...}}")
    for k in data:
        _check_name(path, k, data.key_lines[k], what)
    return tuple(_tensor(path, k, v, data.value_lines[k], what) for k, v in data.items())


def _text(path, value, line, what) -> Text:
    if not isinstance(value, str):
        raise SpecError(path, line, f"{what} must be text")
    return Text(value, line)


def _texts(path, r: _Reader, key: str, required: bool) -> tuple[Text, ...]:
    """One text or a list of texts (gauge expressions)."""
    value = r.pop(key, (str, _List), required=required)
    if value is None:
        return ()
    if isinstance(value, str):
        return (_text(path, value, r.line_of(key), f"gauge.{key}"),)
    if not value or not all(isinstance(x, str) for x in value):
        raise SpecError(path, r.line_of(key), f"gauge.{key} must be text or a non-empty list "
                                              f"of texts")
    return tuple(_text(path, x, value.item_lines[i], f"gauge.{key}") for i, x in enumerate(value))


def _defining(path, data) -> tuple[Text, ...]:
    return tuple(_text(path, t, data.item_lines[i], "defining equation")
                 for i, t in enumerate(data))


def _is_value(v, values) -> bool:
    """``v`` is one of ``values``, type included (True is not 1, 'true' is not True)."""
    return any(type(v) is type(x) and v == x for x in values)


def _show(v) -> str:
    return repr(v) if isinstance(v, bool) else f"'{v}'"


def _option_values(path, r: _Reader, key: str, options: tuple[Option, ...]):
    data = r.pop(key, _Map, default=_Map())
    out = []
    for k, v in data.items():
        opt = next((o for o in options if o.name == k), None)
        line = data.value_lines[k]
        if opt is None:
            raise SpecError(path, data.key_lines[k], f"{r.what}.{key}: unknown option '{k}'")
        if not opt.selects:
            raise SpecError(path, data.key_lines[k], f"{r.what}.{key}: option '{k}' selects "
                                                     f"no variant (selects: false)")
        if not _is_value(v, opt.values):
            raise SpecError(path, line, f"option {k} has no value {_show(v)} "
                                        f"(values: {', '.join(map(str, opt.values))})")
        out.append((k, v))
    return tuple(out)


def _variant(path, data, line, options) -> Variant:
    r = _Reader(path, data, "variant", line)
    when = _option_values(path, r, "when", options)
    native = _option_values(path, r, "native", options) or when
    outputs = _tensors(path, r.pop("outputs", _Map), r.line_of("outputs"), "outputs")
    defining_data = r.pop("defining", _List)
    if not defining_data:
        raise SpecError(path, r.line_of("defining"), "variant: 'defining' needs at least one "
                                                     "equation")
    defining = _defining(path, defining_data)
    from_native_data = r.pop("from_native", _Map, default=_Map())
    from_native = tuple((k, _text(path, v, from_native_data.value_lines[k], "from_native"))
                        for k, v in from_native_data.items())
    primal_data = r.pop("primal", _Map, default=None, required=False)
    primal_returns, primal_outputs = (), ()
    if primal_data is not None:
        pr = _Reader(path, primal_data, "primal", r.line_of("primal"))
        returns = pr.pop("returns", _Map, default=_Map())
        primal_returns = tuple((k, tuple(_shape(path, v, returns.value_lines[k], f"primal.returns.{k}")))
                               for k, v in returns.items())
        outs = pr.pop("outputs", _Map)
        primal_outputs = tuple((k, _text(path, v, outs.value_lines[k], "primal.outputs"))
                               for k, v in outs.items())
        pr.done()
    requires_data = r.pop("requires", _List, default=_List())
    if not all(isinstance(x, str) for x in requires_data):
        raise SpecError(path, r.line_of("requires"), "requires must be a list of conditions "
                                                     "such as 'k <= n'")
    requires = tuple(Text(x, requires_data.item_lines[i]) for i, x in enumerate(requires_data))
    sample_data = r.pop("sample", _Map, default=_Map())
    sample = tuple((k, _text(path, v, sample_data.value_lines[k], "sample"))
                   for k, v in sample_data.items())
    gauge = None
    gauge_data = r.pop("gauge", _Map, default=None, required=False)
    if gauge_data is not None:
        gr = _Reader(path, gauge_data, "gauge", r.line_of("gauge"))
        tangent = _texts(path, gr, "tangent", required=True)
        cotangent = _texts(path, gr, "cotangent", required=False)
        blocks = {}
        for key in ("phases", "rotations"):
            value = gr.pop(key, _List, default=_List(), required=key == "phases")
            if (key == "phases" and not value) or not all(isinstance(x, str) for x in value):
                raise SpecError(path, gr.line_of(key), f"gauge.{key} must be a "
                                                       f"{'non-empty ' if key == 'phases' else ''}"
                                                       f"list of outputs or output blocks")
            blocks[key] = tuple(value)
        phases = blocks["phases"]
        message = " ".join(gr.pop("message", str, default="").split())
        gr.done()
        gauge = Gauge(tangent, cotangent, phases, message, r.line_of("gauge"),
                      blocks["rotations"])
    cases_data = r.pop("cases", _List)
    cases = []
    for i, c in enumerate(cases_data):
        cr = _Reader(path, c, "case", cases_data.item_lines[i])
        case_when = cr.pop("when", str, default=ALWAYS)
        jvp = _text(path, cr.pop("jvp", str), cr.line_of("jvp"), "jvp")
        vjp_text = cr.pop("vjp", str, required=False)
        vjp = None if vjp_text is None else _text(path, vjp_text, cr.line_of("vjp"), "vjp")
        case_defining = _defining(path, cr.pop("defining", _List, default=_List()))
        cr.done()
        cases.append(Case(case_when, cr.line_of("when"), jvp, vjp, case_defining))
    if not cases:
        raise SpecError(path, r.line_of("cases"), "variant: 'cases' needs at least one case")
    r.done()
    return Variant(when, native, outputs, defining, tuple(cases), line, from_native,
                   primal_returns, primal_outputs, gauge, sample, requires)


DTYPES = ("float32", "float64", "complex64", "complex128")


def _items(data: _List):
    return zip(data, getattr(data, "item_lines", []))


def _benchmark(path, data, line, options) -> Benchmark:
    r = _Reader(path, data, "benchmark", line)
    chosen = _option_values(path, r, "options", options)
    shapes = []
    for key in ("shape", "quick"):
        value = r.pop(key, _List)
        if len(value) < 2 or not all(type(d) is int and d >= 0 for d in value):
            raise SpecError(path, r.line_of(key), f"benchmark.{key} must be a list of at least "
                                                  f"two non-negative integers (batch dims first)")
        shapes.append(tuple(value))
    dtype = r.pop("dtype", str)
    if dtype not in DTYPES:
        raise SpecError(path, r.line_of("dtype"), f"benchmark.dtype must be one of "
                                                  f"{', '.join(DTYPES)}, not '{dtype}'")
    r.done()
    return Benchmark(chosen, shapes[0], shapes[1], dtype, line)


def load_spec(path: str | Path, display_path: str | None = None) -> Spec:
    """Read and structurally validate one spec file."""
    path = Path(path)
    shown = display_path or str(path)
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except OSError as err:
        raise SpecError(shown, 1, f"cannot read the spec: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise SpecError(shown, line, "a spec must be UTF-8 text") from None
    loader = None
    try:
        loader = _Loader(text)  # checks every character first (yaml.reader.ReaderError)
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else 1
        raise SpecError(shown, line, f"malformed YAML: {err.problem or err.context}") from None
    except yaml.reader.ReaderError as err:
        line = text[:err.position].count("\n") + 1
        raise SpecError(shown, line, f"malformed YAML: unacceptable character "
                                     f"#x{err.character:04x}: {err.reason}") from None
    except yaml.YAMLError as err:
        raise SpecError(shown, 1, f"malformed YAML: {err}") from None
    except RecursionError:
        raise SpecError(shown, loader.get_mark().line + 1,
                        "malformed YAML: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()
    if not isinstance(data, _Map):
        raise SpecError(shown, 1, "a spec must be a YAML mapping")

    r = _Reader(shown, data, "spec", 1)
    name = r.pop("name", str)
    if not name.isidentifier() or name.startswith("_"):
        raise SpecError(shown, r.line_of("name"), f"spec name '{name}' is not a valid identifier")
    if name != path.stem:
        raise SpecError(shown, r.line_of("name"), f"spec name '{name}' differs from its file "
                                                  f"name '{path.stem}'")
    summary = r.pop("summary", str)
    notes = r.pop("notes", str, default="")
    refs_data = r.pop("references", _List)
    references = []
    for i, ref in enumerate(refs_data):
        rr = _Reader(shown, ref, "reference", refs_data.item_lines[i])
        references.append(Reference(rr.pop("key", str), rr.pop("cite", str)))
        rr.done()
    dims_data = r.pop("dims", _Map)
    dims = tuple((k, str(v)) for k, v in dims_data.items())
    dim_lines = {f"dims.{k}": dims_data.value_lines[k] for k in dims_data}
    inputs = _tensors(shown, r.pop("inputs", _Map), r.line_of("inputs"), "inputs")

    options_data = r.pop("options", _Map, default=_Map())
    options = []
    for k, v in options_data.items():
        _check_name(shown, k, options_data.key_lines[k], "options")
        orr = _Reader(shown, v, f"options.{k}", options_data.value_lines[k])
        values = orr.pop("values", _List)
        if not values or not (all(type(x) is str for x in values)
                              or all(type(x) is bool for x in values)):
            raise SpecError(shown, orr.line_of("values"),
                            f"options.{k}.values must be a non-empty list of strings or of "
                            f"booleans")
        default = orr.pop("default", (str, bool))
        if not _is_value(default, values):
            raise SpecError(shown, orr.line_of("default"),
                            f"options.{k}: default {_show(default)} is not one of its values")
        selects = orr.pop("selects", bool, default=True)
        orr.done()
        options.append(Option(k, tuple(values), default,
                              options_data.value_lines[k], selects))
    options = tuple(options)

    variants_data = r.pop("variants", _List)
    if not variants_data:
        raise SpecError(shown, r.line_of("variants"), "spec: 'variants' needs at least one "
                                                      "variant")
    variants = tuple(_variant(shown, v, variants_data.item_lines[i], options)
                     for i, v in enumerate(variants_data))

    sig_data = r.pop("signatures", _Map)
    signatures = []
    for backend, entries in sig_data.items():
        if backend not in BACKENDS:
            raise SpecError(shown, sig_data.key_lines[backend],
                            f"signatures: unknown backend '{backend}' "
                            f"(known: {', '.join(BACKENDS)})")
        if not isinstance(entries, _List) or not entries:
            raise SpecError(shown, sig_data.value_lines[backend],
                            f"signatures.{backend} must be a non-empty list")
        for i, entry in enumerate(entries):
            sr = _Reader(shown, entry, f"signatures.{backend}", entries.item_lines[i])
            compute = sr.pop("compute", bool, default=False)
            call = sr.pop("call", str, required=not compute)
            if compute and call is not None:
                raise SpecError(shown, entries.item_lines[i],
                                f"signatures.{backend}: give 'call' or 'compute: true', not both")
            if compute is False and "compute" in entry:
                raise SpecError(shown, entries.item_lines[i],
                                f"signatures.{backend}: 'compute' can only be true (or left out)")
            call = call or ""
            since = sr.pop("since", str, required=False)
            until = sr.pop("until", str, required=False)
            batched = sr.pop("batched", bool, default=True)
            base = sr.pop("pivots_base", int, default=1)
            if type(base) is not int or base not in (0, 1):
                raise SpecError(shown, sr.line_of("pivots_base"), "pivots_base must be 0 or 1")
            transposed = sr.pop("transposed", _List, default=_List())
            if not all(isinstance(x, str) for x in transposed):
                raise SpecError(shown, sr.line_of("transposed"),
                                "transposed must be a list of output names")
            values = _signature_values(shown, sr, options)
            host = sr.pop("host", bool, default=False)
            if host and backend not in HOST_BACKENDS:
                raise SpecError(shown, sr.line_of("host"), f"signatures.{backend}: host is for "
                                                           f"{' and '.join(HOST_BACKENDS)} "
                                                           f"(the others run NumPy/SciPy "
                                                           f"calls as they are)")
            if host and not call.startswith(("numpy.", "scipy.")):
                raise SpecError(shown, sr.line_of("host"), f"signatures.{backend}: host is for "
                                                           f"a numpy. or scipy. call")
            recorded = sr.pop("signature", str, required=False)
            accepts_data = sr.pop("accepts", _Map, default=_Map())
            accepts = []
            for keyword, listed in accepts_data.items():
                if not (isinstance(listed, _List) and listed
                        and all(isinstance(x, str) for x in listed)):
                    raise SpecError(shown, accepts_data.value_lines[keyword],
                                    f"signatures.{backend}.accepts.{keyword} must be a "
                                    f"non-empty list of strings")
                accepts.append((str(keyword), tuple(listed)))
            signatures.append(Signature(backend, call, entries.item_lines[i], since, until,
                                        batched, base, tuple(transposed), compute, values,
                                        host, recorded, tuple(accepts)))
            sr.done()
        if all(s.until is not None for s in signatures if s.backend == backend):
            raise SpecError(shown, sig_data.value_lines[backend],
                            f"signatures.{backend}: no current entry (one without 'until')")
    missing = [b for b in BACKENDS if b not in sig_data]
    if missing:
        raise SpecError(shown, data.key_lines["signatures"],
                        f"signatures: no entry for backend(s) {', '.join(missing)}")
    benchmarks = tuple(_benchmark(shown, b, line, options)
                       for b, line in _items(r.pop("benchmarks", _List, default=_List())))
    framework = None
    shapes_data = r.pop("shapes", _Map, default=_Map())
    shapes = []
    for label, values in shapes_data.items():
        line = shapes_data.value_lines[label]
        if not (isinstance(values, _Map) and values
                and all(type(v) is int and v >= 0 for v in values.values())):
            raise SpecError(shown, line, f"shapes.{label} must map dimension names to "
                                         f"non-negative integers")
        shapes.append((str(label), tuple((str(k), v) for k, v in values.items())))
    framework_data = r.pop("framework", _Map, default=None, required=False)
    if framework_data is not None:
        fr = _Reader(shown, framework_data, "framework", r.line_of("framework"))
        framework = (fr.pop("call", str), fr.pop("result", str), r.line_of("framework"))
        fr.done()
    delegate = None
    delegate_data = r.pop("delegate", _Map, default=None, required=False)
    if delegate_data is not None:
        dr = _Reader(shown, delegate_data, "delegate", r.line_of("delegate"))
        keyword = dr.pop("option", str)
        _check_name(shown, keyword, dr.line_of("option"), "delegate.option")
        if keyword in {o.name for o in options} | {t.name for t in inputs}:
            raise SpecError(shown, dr.line_of("option"), f"delegate.option: '{keyword}' "
                                                         f"already names an option or input")
        delegate = (keyword, dr.pop("call", str), r.line_of("delegate"))
        dr.done()
    aliases = _aliases(shown, r, options, inputs, delegate)
    r.done()
    return Spec(name=name, path=shown, sha256=hashlib.sha256(raw).hexdigest(), summary=summary,
                references=tuple(references), dims=dims, inputs=inputs, options=options,
                variants=variants, signatures=tuple(signatures), notes=notes,
                benchmarks=benchmarks, framework=framework, delegate=delegate,
                aliases=aliases,
                shapes=tuple(shapes),
                line_of={"dims": data.value_lines["dims"], **dim_lines,
                         **({"shapes": data.value_lines["shapes"]} if "shapes" in data else {}),
                         "variants": data.value_lines["variants"]})
