"""Render checked specs through each backend's printer and Jinja templates.

``render_tree`` is a pure function: spec files in, ``{relative path: file text}`` out.
Writing (atomically) and drift checks live in ``generator.pipeline``.
"""
from __future__ import annotations

import ast
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import jinja2
import sympy as sp

from .check import (CheckedSpec, CheckedVariant, check_spec, delegate_call, framework_call,
                    matrix_symbol)
from .expr import Parser
from .ops import fold_diagonal_products, fold_permutation_products
from .printers import BACKENDS
from .spec import ALWAYS, Spec, SpecError, load_spec

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["tangent"] = lambda name, kind: ("d" if kind == "jvp" else "g") + name
    env.filters["format_option"] = lambda opt: f"{opt}={{{opt}!r}}"
    env.filters["result_type"] = result_type
    env.filters["py"] = py_literal
    return env


def py_literal(value) -> str:
    """An option value (or a list of them) as Python source: "text", True, False."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(py_literal(v) for v in value) + "]"
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    raise TypeError(f"not an option value: {value!r}")


def result_type(name: str) -> str:
    """Name of the named tuple an operation returns: qr -> QRResult, cholesky -> CholeskyResult."""
    return (name.upper() if len(name) <= 3 else name.capitalize()) + "Result"



@dataclass(frozen=True)
class NativeCall:
    func: str                      # dotted path as written in the spec
    args: tuple[str, ...]          # inputs, positional: 'A' or e.g. 'A.H' (spec-language text)
    # native keyword -> option name, or -> a constant (('full_matrices', False) as
    # ('full_matrices', None, False))
    keywords: tuple[tuple[str, str | None, object], ...]
    batched: bool = True       # False: the call takes one matrix (mapped over batch axes)
    pivots_base: int = 1       # 0: its pivots count rows from 0 (shifted to LAPACK's 1)
    transposed: tuple[str, ...] = ()  # outputs it returns transposed
    compute: bool = False      # no call: the spec's primal expressions of the inputs
    values: tuple = ()         # option -> ((our value, the call's value), ...)
    host: bool = False         # a NumPy/SciPy function called on host copies of the arrays

    def keyword_value(self, option: str, value):
        """The call's spelling of an option's value (the signature's 'values')."""
        mapping = dict(dict(self.values).get(option, ()))
        return mapping.get(value, value)


# how the generated code names NumPy and SciPy in a 'host: true' call (every runtime that
# offers _on_host imports them under these names)
HOST_ALIASES = {"numpy": "_np", "scipy": "_scipy"}


def current_entry(spec: Spec, backend: str, version: str | None = None):
    """A backend's signature entry: the current one (its last without 'until'), or the one
    whose [since, until) holds ``version`` (generate --target)."""
    if version is not None:
        mine = [s for s in spec.signatures if s.backend == backend]
        entries = [s for s in mine if entry_holds(s, version_tuple(version))]
        if not entries:
            raise SpecError(spec.path, mine[0].line if mine else 1,
                            f"signatures.{backend}: no entry for version {version}")
        return entries[-1]
    entries = [s for s in spec.signatures if s.backend == backend and s.until is None]
    if not entries:
        raise SpecError(spec.path, 1, f"signatures.{backend}: no current entry (one without "
                                      f"'until')")
    return entries[-1]


def version_tuple(text: str) -> tuple[int, ...]:
    """The leading numeric components of a version string: '2.13.0+cpu' -> (2, 13, 0)."""
    parts = []
    for piece in text.split("."):
        digits = re.match(r"\d+", piece)
        if digits is None:
            break
        parts.append(int(digits.group()))
        if digits.group() != piece:
            break
    return tuple(parts)


def entry_holds(sig, version: tuple[int, ...]) -> bool:
    """Whether a signature entry's [since, until) holds the version."""
    if sig.since is not None and version < version_tuple(sig.since):
        return False
    return sig.until is None or version < version_tuple(sig.until)


def parse_native_call(spec: Spec, backend: str, sig=None) -> NativeCall:
    """A signature entry of one backend (default: the current one), parsed without
    evaluating."""
    sig = sig if sig is not None else current_entry(spec, backend)
    if sig.compute:
        return NativeCall("", (), (), compute=True)

    def fail(msg):
        raise SpecError(spec.path, sig.line, f"signatures.{backend}: {msg}: {sig.call!r}")

    try:
        node = ast.parse(sig.call, mode="eval").body
    except SyntaxError:
        fail("cannot parse the call")
    if not isinstance(node, ast.Call):
        fail("expected a call such as 'module.func(A, mode=mode)'")
    parts, f = [], node.func
    while isinstance(f, ast.Attribute):
        parts.append(f.attr)
        f = f.value
    if not isinstance(f, ast.Name):
        fail("the function must be a dotted name")
    parts.append(f.id)
    inputs = {t.name for t in spec.inputs}
    options = {o.name for o in spec.options}
    args = []
    for a in node.args:
        base = a
        while isinstance(base, ast.Attribute) and base.attr in ("H", "T", "conj"):
            base = base.value
        if not (isinstance(base, ast.Name) and base.id in inputs):
            fail("positional arguments must be input names, optionally with .H, .T or .conj")
        args.append(ast.unparse(a))
    keywords = []
    for k in node.keywords:
        if isinstance(k.value, ast.Constant) and type(k.value.value) in (bool, str, int):
            keywords.append((k.arg, None, k.value.value))
            continue
        if not (isinstance(k.value, ast.Name) and k.value.id in options):
            fail(f"keyword {k.arg}= must be given an option name or a constant")
        keywords.append((k.arg, k.value.id, None))
    return NativeCall(".".join(reversed(parts)), tuple(args), tuple(keywords), sig.batched,
                      sig.pivots_base, sig.transposed, values=sig.values, host=sig.host)


def header(source: str, sha256: str) -> list[str]:
    return [
        f"Generated by factorules from {source} (sha256 {sha256}).",
        "Do not edit: change the source and run `python cli.py generate`.",
    ]


def _variant_context(printer_cls, checked: CheckedSpec, cv: CheckedVariant, call: NativeCall):
    spec = checked.spec
    ref = spec.inputs[0].name
    native = dict(cv.variant.native)
    if call.compute:
        return _computed_context(printer_cls, checked, cv)
    root, _, rest = call.func.partition(".")
    # a host call is NumPy/SciPy code whatever the backend (its runtime imports both)
    aliases = HOST_ALIASES if call.host else printer_cls.ALIASES
    func = aliases.get(root, root) + ("." + rest if rest else "")
    kwargs = ", ".join(f"{k}={call.keyword_value(opt, native[opt])!r}" if opt
                       else f"{k}={value!r}" for k, opt, value in call.keywords)
    cdims = dict(cv.cases[0].dims)
    inputs = {t.name: matrix_symbol(t, cdims) for t in spec.inputs}
    vectors = {t.name for t in spec.inputs if t.is_vector}
    # a vector input is held as a column: the call gets it back as a vector
    args = [f"{a}[..., 0]" if a in vectors else
            printer_cls(dtype_ref=ref).doprint(Parser(inputs, cdims).expression(a))
            for a in call.args]
    returns = [name for name, _ in cv.variant.primal_returns]
    computed = [t for t in cv.variant.outputs if t.built_from is None]
    if call.host:  # on host copies, moved back; _on_host maps an unbatched call itself
        native_call = (f"_on_host(lambda *_m: {func}(*_m{', ' if kwargs else ''}{kwargs}), "
                       f"({', '.join(args)},), {call.batched})")
    elif call.batched:
        native_call = f"{func}({', '.join(args)}{', ' if kwargs else ''}{kwargs})"
        if len(returns or computed) == 1:
            native_call = f"({native_call},)"
    else:  # one matrix at a time: _unbatched maps it over the batch axes, returns a tuple
        native_call = (f"_unbatched(lambda *_m: {func}(*_m{', ' if kwargs else ''}{kwargs}), "
                       f"{', '.join(args)})")
    if call.transposed:
        flags = [name in call.transposed for name in (returns or [t.name for t in computed])]
        native_call = f"_transposed({native_call}, {py_literal(flags)})"
    names = [t.name for t in cv.variant.outputs]
    primal_texts = [printer_cls(dtype_ref=ref, min_max_sizes=True).doprint_output(e)
                    for _, e in cv.primal_outputs]
    from_printer = printer_cls(dtype_ref=ref)
    from_native = {name: from_printer.doprint_output(e) for name, e in cv.from_native}
    permutations = frozenset(t.name for t in cv.variant.outputs if t.structure == "permutation")

    def printed(printer, e):
        return printer.doprint(fold_permutation_products(fold_diagonal_products(e),
                                                         permutations))

    return {
        **_common_variant_context(printer_cls, checked, cv, printed),
        "computed_primal": None,
        "native_call": native_call,
        "primal_returns": returns,
        "primal_return_vectors": [len(shape) == 1 for _, shape in cv.variant.primal_returns],
        "primal_outputs": {**{name: text for (name, _), text in zip(cv.primal_outputs,
                                                                    primal_texts)},
                           **{t.name: f"_pivots_permutation({t.from_pivots}, {ref})"
                              for t in cv.variant.outputs if t.from_pivots and returns}},
        # the primal's expressions use sizes (m, n, min(m, n)): it computes them first
        "primal_dims": any(re.search(rf"\b{d.name}\b", text) for d in checked.dims
                           for text in primal_texts),
        "shift_returns": [t.from_pivots for t in cv.variant.outputs
                          if t.from_pivots in returns and call.pivots_base == 0],
        "from_native": from_native,
        # integer pivots: those the call numbers from 0 are shifted to LAPACK's numbering;
        # permutations 'from_pivots' are built from them after the call
        "pivots": [t.is_index for t in computed],
        "computed_vectors": [t.is_vector for t in computed],
        "shift_pivots": [i for i, t in enumerate(computed)
                         if t.structure == "pivots" and call.pivots_base == 0],
        # column numbers (a permutation) as returned to users (_indices)
        "indices": [i for i, t in enumerate(computed) if t.structure == "indices"],
        # (position among the outputs, position of its pivots among the call's results)
        # permutations built from indices (column numbers) after the call
        "from_pivots": [(names.index(t.name), [c.name for c in computed].index(t.built_from),
                         "_pivots_permutation" if t.from_pivots else "_indices_permutation")
                        for t in cv.variant.outputs if t.built_from in names],
    }


def _computed_context(printer_cls, checked: CheckedSpec, cv: CheckedVariant) -> dict:
    """A variant computed by the spec's primal expressions of the inputs (no native call)."""
    ref = checked.spec.inputs[0].name
    printer = printer_cls(dtype_ref=ref, sizes=chain_sizes(checked))
    permutations = frozenset(t.name for t in cv.variant.outputs if t.structure == "permutation")

    def printed(printer, e):
        return printer.doprint(fold_permutation_products(fold_diagonal_products(e),
                                                         permutations))

    return {
        **_common_variant_context(printer_cls, checked, cv, printed),
        "computed_primal": {name: printer.doprint_output(fold_diagonal_products(e))
                            for name, e in cv.primal_outputs},
        "native_call": None, "primal_returns": [], "primal_return_vectors": [],
        "primal_outputs": {}, "primal_dims": True, "shift_returns": [], "from_native": {},
        "pivots": [], "computed_vectors": [], "shift_pivots": [], "from_pivots": [],
        "indices": [],
    }


def chain_sizes(checked: CheckedSpec) -> dict | None:
    """Representative dimension values for ordering chains of products: the spec's first
    'shapes' entry without a zero (None without 'shapes': left to right)."""
    for _, values in checked.spec.shapes:
        if all(v > 0 for _, v in values):
            symbols = {d.name: d.expr for d in checked.dims if d.source is not None}
            return {symbols[k]: v for k, v in values}
    return None


def _common_variant_context(printer_cls, checked: CheckedSpec, cv: CheckedVariant, printed):
    spec = checked.spec
    ref = spec.inputs[0].name
    native = dict(cv.variant.native)
    cases = []
    for case in cv.cases:
        printer = printer_cls(dtype_ref=ref, sizes=chain_sizes(checked))
        cond = case.condition
        cases.append({
            "condition": ("True" if cond.text == ALWAYS else
                          f"{printer._dim(cond.lhs)} {cond.op} {printer._dim(cond.rhs)}"),
            "when": cond.text,
            "jvp": [(s.name, printed(printer, s.expr)) for s in case.jvp.program.statements],
            "vjp": [(s.name, printed(printer, s.expr)) for s in case.vjp.program.statements],
            "jvp_results": list(case.jvp.program.results),
            "vjp_results": list(case.vjp.program.results),
        })
    printer = printer_cls(dtype_ref=ref)
    requires = [(f"{printer._dim(c.lhs)} {c.op} {printer._dim(c.rhs)}", c.text,
                 f"{spec.name}: needs {c.text} for {cv.variant.label} (sizes: "
                 + ", ".join(f"{d.name} = {{{d.name}}}" for d in checked.dims
                             if d.source is not None) + ")")
                for c in cv.requires]
    return {
        "label": cv.variant.label,
        "when": dict(cv.variant.when),
        # Python source of each option's value for the native variant; an option that
        # selects no variant (check_gauge) is passed on as it is
        "native_options": {o.name: (py_literal(native.get(o.name, dict(cv.variant.when).get(o.name)))
                                    if o.selects else o.name)
                           for o in spec.options},
        "gauge": _gauge_context(printer_cls, ref, cv),
        "outputs": [o.name for o in cv.variant.outputs],
        "returned": [(o.name, o.returned) for o in cv.variant.outputs],
        "flags": [o.returned == "value" and not o.constant for o in cv.variant.outputs],
        "differentiable": [o.name for o in cv.differentiable_outputs],
        "cases": cases,
        "requires": requires,
        "line": cv.variant.line,
    }


def _gauge_context(printer_cls, ref: str, cv: CheckedVariant) -> dict | None:
    """The run-time check of a variant's gauge: the printed cotangent conditions (sizes may
    be min/max of the input's: the check runs before a case is chosen), the cotangents they
    read and the spec's message."""
    if not cv.gauge_cotangents:
        return None
    outputs = {t.name for t in cv.variant.outputs}
    names = sorted({s.name for e in cv.gauge_cotangents for s in e.atoms(sp.MatrixSymbol)
                    if s.name.startswith("g") and s.name[1:] in outputs})
    printer = printer_cls(dtype_ref=ref, min_max_sizes=True)
    return {"values": [printer.doprint(e) for e in cv.gauge_cotangents],
            "cotangents": names, "message": cv.variant.gauge.message}


def shape_equalities(spec: Spec) -> list[tuple[str, str, str]]:
    """(axis, axis, f-string message) for every two input axes the spec names alike."""
    shapes = {t.name: f"(..., {', '.join(t.shape)})" for t in spec.inputs}
    carriers: dict[str, list[tuple[str, int]]] = {}
    for t in spec.inputs:
        for axis, d in zip((-2, -1), t.shape):
            carriers.setdefault(d, []).append((t.name, axis))
    out = []
    for d, ((x0, a0), *rest) in carriers.items():
        for x, a in rest:
            if x == x0:
                message = f"{spec.name}: {x} must have shape {shapes[x]}, got {{tuple({x}.shape)}}"
            else:
                message = (f"{spec.name}: {x0} {shapes[x0]} and {x} {shapes[x]} must agree on "
                           f"{d}, got {{tuple({x0}.shape)}} and {{tuple({x}.shape)}}")
            out.append((f"{x0}.shape[{a0}]", f"{x}.shape[{a}]", message))
    return out


def _older_entries(printer_cls, checked: CheckedSpec, backend: str, current) -> list[dict]:
    """The backend's entries for older library versions ('until'), each a primal of its
    own, chosen at import by the installed version of the called library."""
    out = []
    for sig in checked.spec.signatures:
        if sig.backend != backend or sig is current or sig.until is None:
            continue
        call = parse_native_call(checked.spec, backend, sig)
        root = sig.call.split(".")[0] if not sig.compute else None
        aliases = HOST_ALIASES if call.host else printer_cls.ALIASES
        library = aliases.get(LIBRARY_OF.get(root, root), root)
        bounds = [f"_LIBRARY_VERSION >= {version_tuple(sig.since)!r}"] if sig.since else []
        bounds.append(f"_LIBRARY_VERSION < {version_tuple(sig.until)!r}")
        out.append({"suffix": "until_" + re.sub(r"\W", "_", sig.until),
                    "call": sig.call or "computed", "library": library,
                    "condition": " and ".join(bounds),
                    "variants": [_variant_context(printer_cls, checked, v, call)
                                 for v in checked.variants]})
    return out


# the package whose __version__ a call's version bounds compare (cupyx is CuPy's)
LIBRARY_OF = {"cupyx": "cupy"}


def spec_context(backend: str, checked: CheckedSpec, target: str | None = None) -> dict:
    """The template context of one spec for one backend; ``target``: the version of the
    backend's library to emit for alone (generate --target), instead of every entry."""
    printer_cls = BACKENDS[backend].Printer
    spec = checked.spec
    entry = current_entry(spec, backend, target)
    call = parse_native_call(spec, backend, entry)
    older = [] if target is not None else _older_entries(printer_cls, checked, backend, entry)
    return {
        "header": header(spec.path, spec.sha256),
        "name": spec.name,
        "summary": " ".join(spec.summary.split()),
        "references": [(r.key, " ".join(r.cite.split())) for r in spec.references],
        "inputs": [t.name for t in spec.inputs],
        "vector_inputs": [t.name for t in spec.inputs if t.is_vector],
        "input_vectors": [t.is_vector for t in spec.inputs],
        "requires": any(v.requires for v in checked.variants),
        "options": [(o.name, list(o.values), o.default) for o in spec.options],
        "shape_equalities": shape_equalities(spec),
        "option_names": [o.name for o in spec.options],
        "dims": [(d.name, d.source, printer_cls().doprint(d.expr) if d.source is None else None)
                 for d in checked.dims],
        "outputs": [o.name for o in spec.variants[0].outputs],
        "shown": [o.name for o in spec.variants[0].outputs if o.returned != "hidden"],
        "fields": [o.result_field for o in spec.variants[0].outputs if o.returned != "hidden"],
        "vectors": [o.is_vector for o in spec.variants[0].outputs],
        "complexes": [o.complex_valued for o in spec.variants[0].outputs],
        "returns_text": _returns_text(spec),
        "variants": [_variant_context(printer_cls, checked, v, call) for v in checked.variants],
        # older signature entries: a primal each, picked at import by the library's version
        "older_entries": older,
        "framework": _framework_context(spec),
        "delegate": _delegate_context(spec),
        # old spellings of options (the spec's 'aliases'): (keyword, option, {old: new},
        # the option's default)
        "aliases": [(alias, option,
                     "(" + ", ".join(f"({py_literal(a)}, {py_literal(b)})" for a, b in pairs)
                     + ("," if len(pairs) == 1 else "") + ")",
                     py_literal(spec.option(option).default))
                    for alias, option, pairs, _ in spec.aliases],
        # the primal runs NumPy/SciPy code on host copies (torch: a vmap rule of its own)
        "host": call.host,
    }


def _delegate_context(spec: Spec) -> dict | None:
    parsed = delegate_call(spec)
    if parsed is None:
        return None
    op, args, keywords = parsed
    return {"option": spec.delegate[0], "op": op, "text": spec.delegate[1],
            "kwargs": "".join(f", {k}={v}" for k, v in keywords)}


def _framework_context(spec: Spec) -> dict | None:
    parsed = framework_call(spec)
    if parsed is None:
        return None
    op, args, keywords = parsed
    kwargs = "".join(f", {k}={v}" for k, v in keywords)
    return {"op": op, "call": f"_framework_{op}({', '.join(args)}{kwargs})",
            "result": spec.framework[1]}


def _returns_text(spec: Spec) -> str:
    shown = [o for o in spec.variants[0].outputs if o.returned != "hidden"]
    if len(shown) == 1:
        return shown[0].result_field
    return "a named tuple (" + ", ".join(o.result_field for o in shown) + ")"


def load_checked(paths, display_dir: str | None = None) -> list[CheckedSpec]:
    """Load and check every spec; the first problem raises SpecError.  ``display_dir``: the
    folder the specs are named in (messages, headers of generated files) whatever their
    place on disk (`cli.py diff` renders copies as spec/)."""
    out = []
    for p in sorted(Path(x) for x in paths):
        try:
            shown = str(p.resolve().relative_to(ROOT))
        except ValueError:
            shown = str(p)
        if display_dir is not None:
            shown = f"{display_dir}/{p.name}"
        out.append(check_spec(load_spec(p, display_path=shown)))
    names = [c.spec.name for c in out]
    for n in names:
        if names.count(n) > 1:
            raise SpecError(n, 1, f"two specs are named '{n}'")
    return out


def _called_spec(specs: list[CheckedSpec], c: CheckedSpec, name: str, line: int, what: str):
    target = next((d for d in specs if d.spec.name == name), None)
    if target is None:
        raise SpecError(c.spec.path, line, f"{what}: no spec named '{name}'")
    return target


def check_frameworks(specs: list[CheckedSpec]) -> None:
    """Every 'framework' call names a spec among ``specs`` and a field of its result; every
    'delegate' call a spec with as many inputs and the options it passes."""
    for c in specs:
        parsed = delegate_call(c.spec)
        if parsed is not None:
            line = c.spec.delegate[2]
            target = _called_spec(specs, c, parsed[0], line, "delegate")
            if len(target.spec.inputs) != len(c.spec.inputs):
                raise SpecError(c.spec.path, line, f"delegate: {parsed[0]} takes "
                                                   f"{len(target.spec.inputs)} input(s), "
                                                   f"{c.spec.name} {len(c.spec.inputs)}")
            theirs = {o.name for o in target.spec.options}
            unknown = [k for k, _ in parsed[2] if k not in theirs]
            if unknown:
                raise SpecError(c.spec.path, line, f"delegate: {parsed[0]} has no option "
                                                   f"{', '.join(unknown)}")
        parsed = framework_call(c.spec)
        if parsed is not None:
            line = c.spec.framework[2]
            target = _called_spec(specs, c, parsed[0], line, "framework")
            fields = [t.result_field for t in target.spec.variants[0].outputs
                      if t.returned != "hidden"]
            if c.spec.framework[1] not in fields:
                raise SpecError(c.spec.path, line, f"framework: {parsed[0]} returns "
                                                   f"{', '.join(fields)}, not "
                                                   f"'{c.spec.framework[1]}'")


def _template_hash(backend: str) -> str:
    digest = hashlib.sha256()
    for path in sorted((TEMPLATES / backend).glob("*.jinja")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def render_tree(specs: list[CheckedSpec], targets: dict[str, str] | None = None
                ) -> dict[str, str]:
    """Every generated file, as {path relative to the repository root: text}.  ``targets``:
    {backend: library version} to emit for that version's signature entries alone."""
    targets = targets or {}
    check_frameworks(specs)
    env = _environment()
    files: dict[str, str] = {}
    files["generated/__init__.py"] = env.get_template("package_init.py.jinja").render(
        header=header("templates/package_init.py.jinja",
                      hashlib.sha256((TEMPLATES / "package_init.py.jinja").read_bytes())
                      .hexdigest()),
        backends=list(BACKENDS))
    for backend, config in BACKENDS.items():
        contexts = [spec_context(backend, c, targets.get(backend)) for c in specs]
        base = f"generated/{backend}"
        common = {"backend": backend, "specs": contexts,
                  "header": header(f"templates/{backend}/", _template_hash(backend))}
        for extra in config.RUNTIME_FILES:
            files[f"{base}/{extra.removesuffix('.jinja')}"] = \
                env.get_template(f"{backend}/{extra}").render(**common)
        for ctx in contexts:
            files[f"{base}/{ctx['name']}.py"] = \
                env.get_template(f"{backend}/module.py.jinja").render(**ctx)
    return files
