"""Load a spec YAML file into the spec model (factorules.compiler.spec).

Each mapping is read by popping the keys the loader knows (factorules.compiler.yaml_lines); a
key left over, a missing required key or a value of the wrong kind is a ``SpecError`` that
names ``file:line``.  Nothing in a spec is evaluated: equation text stays text here and is
parsed by ``factorules.compiler.expr`` later.
"""
from __future__ import annotations

import hashlib
import keyword
from pathlib import Path

from .spec import (ALWAYS, BACKENDS, DIAGONALS, DTYPES, HOST_BACKENDS, INDEX_STRUCTURES, ORDERS,
                   STRUCTURES, VECTOR_STRUCTURES, Benchmark, Case, Gauge, Option, Pivots, Reference,
                   Signature, Spec, SpecError, Tensor, Text, Ties, Variant)
from .yaml_lines import KeyReader, LineList, LineMap, read_yaml_mapping
from . import derive_jvp


def _aliases(path, r: KeyReader, options, inputs, delegate) -> tuple:
    """'aliases': {old keyword: {option, values: [[old value, option value], ...]}}."""
    data = r.pop("aliases", LineMap, default=LineMap())
    known = {o.name: o for o in options}
    taken = set(known) | {t.name for t in inputs} | ({delegate[0]} if delegate else set())
    out = []
    for alias, entry in data.items():
        line = data.key_lines[alias]
        _check_name(path, alias, line, "aliases")
        if alias in taken:
            raise SpecError(path, line, f"aliases: '{alias}' already names an option, an input "
                                        f"or the delegate")
        ar = KeyReader(path, entry, f"aliases.{alias}", data.value_lines[alias])
        option = ar.pop("option", str)
        if option not in known:
            raise SpecError(path, ar.line_of("option"), f"aliases.{alias}: '{option}' is not "
                                                        f"an option")
        values = ar.pop("values", LineList)
        if not values or not all(isinstance(p, LineList) and len(p) == 2 for p in values):
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


def _signature_values(path, sr: KeyReader, options) -> tuple:
    """A signature entry's 'values': {option: {our value: the call's value}}."""
    data = sr.pop("values", LineMap, default=LineMap())
    known = {o.name: o for o in options}
    out = []
    for opt, mapping in data.items():
        line = data.value_lines[opt]
        if opt not in known:
            raise SpecError(path, line, f"values: '{opt}' is not an option")
        if not isinstance(mapping, LineMap) or not mapping:
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


def _listed(names) -> str:
    """'a, b and c'."""
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def _check_name(path, name, line, what) -> None:
    """Names of matrices and options become Python names in the generated code."""
    if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_") \
            or name == "I":
        raise SpecError(path, line, f"{what}: '{name}' is not a valid name (a Python "
                                    f"identifier, not a keyword, not 'I', not starting with '_')")


def _shape(path, value, line, what) -> list:
    if not (isinstance(value, LineList) and len(value) in (1, 2)
            and all(isinstance(d, str) for d in value)):
        raise SpecError(path, line, f"{what} must be a list of two dimension names (a matrix) "
                                    f"or of one (a vector)")
    return value


def _tensor(path, name, data, line, what) -> Tensor:
    r = KeyReader(path, data, f"{what}.{name}", line)
    shape = r.pop("shape", LineList)
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
    if returned not in ("value", "empty", "hidden", "omitted"):
        raise SpecError(path, r.line_of("returned"),
                        "returned must be 'value', 'empty', 'hidden' or 'omitted'")
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
    offset = r.pop("offset", (str, int), required=False)
    if offset is not None:
        if structure not in ("upper_triangular", "lower_triangular") or what != "outputs":
            raise SpecError(path, r.line_of("offset"), "offset is for an upper_triangular or "
                                                       "lower_triangular output")
        if diagonal == "unit":
            raise SpecError(path, r.line_of("offset"), "a unit diagonal is the main one: no "
                                                       "offset")
        offset = str(offset)
    eigenbasis = r.pop("eigenbasis", LineList, required=False)
    if eigenbasis is not None:
        if structure != "hermitian" or what != "outputs":
            raise SpecError(path, r.line_of("eigenbasis"), "eigenbasis is for a hermitian "
                                                           "output")
        if len(eigenbasis) != 2 or not all(isinstance(x, str) for x in eigenbasis):
            raise SpecError(path, r.line_of("eigenbasis"), "eigenbasis must name two outputs: "
                                                           "[values, vectors]")
        eigenbasis = tuple(eigenbasis)
    constant = ("permutation",) + INDEX_STRUCTURES
    if what == "inputs" and structure in constant:
        raise SpecError(path, r.line_of("structure"), f"an input cannot be a {structure}")
    if structure in constant and (diagonal != "any" or dtype is not None):
        raise SpecError(path, line, f"{what}.{name}: a {structure} has no diagonal or dtype")
    r.done()
    return Tensor(name, tuple(shape), line, structure, diagonal, returned, result_field, order,
                  dtype == "complex", built["from_pivots"], built["from_indices"], offset,
                  eigenbasis)


def _tensors(path, data, line, what) -> tuple[Tensor, ...]:
    if not isinstance(data, LineMap) or not data:
        raise SpecError(path, line, f"{what} must be a non-empty mapping of name: {{shape: ...}}")
    for k in data:
        _check_name(path, k, data.key_lines[k], what)
    return tuple(_tensor(path, k, v, data.value_lines[k], what) for k, v in data.items())


def _text(path, value, line, what) -> Text:
    if not isinstance(value, str):
        raise SpecError(path, line, f"{what} must be text")
    return Text(value, line)


def _texts(path, r: KeyReader, key: str, required: bool) -> tuple[Text, ...]:
    """One text or a list of texts (the expressions of 'gauge', 'pivots' and 'ties')."""
    what = f"{r.what}.{key}"
    value = r.pop(key, (str, LineList), required=required)
    if value is None:
        return ()
    if isinstance(value, str):
        return (_text(path, value, r.line_of(key), what),)
    if not value or not all(isinstance(x, str) for x in value):
        raise SpecError(path, r.line_of(key), f"{what} must be text or a non-empty list of texts")
    return tuple(_text(path, x, value.item_lines[i], what) for i, x in enumerate(value))


def _message(r: KeyReader) -> str:
    """A block's 'message', whitespace collapsed; required."""
    text = " ".join(r.pop("message", str).split())
    if not text:
        raise SpecError(r.path, r.line_of("message"), f"{r.what}.message must not be empty")
    return text


def _pivots(path, r: KeyReader) -> Pivots | None:
    data = r.pop("pivots", LineMap, default=None, required=False)
    if data is None:
        return None
    pr = KeyReader(path, data, "pivots", r.line_of("pivots"))
    values = _texts(path, pr, "values", required=True)
    tangent = _texts(path, pr, "tangent", required=False)
    cotangent = _texts(path, pr, "cotangent", required=False)
    norm = pr.pop("norm", str, required=False)
    norm = None if norm is None else (norm, pr.line_of("norm"))
    message = _message(pr)
    pr.done()
    if bool(tangent) != bool(cotangent):
        given = "tangent" if tangent else "cotangent"
        raise SpecError(path, pr.line_of(given), f"pivots.{given} needs pivots."
                        f"{'cotangent' if tangent else 'tangent'} too (the columns along "
                        f"which a zero pivot leaves each derivative undefined)")
    return Pivots(values, message, r.line_of("pivots"), tangent, cotangent, norm)


def _ties(path, r: KeyReader) -> Ties | None:
    data = r.pop("ties", LineMap, default=None, required=False)
    if data is None:
        return None
    tr = KeyReader(path, data, "ties", r.line_of("ties"))
    values = _text(path, tr.pop("values", str), tr.line_of("values"), "ties.values")
    tangent = _texts(path, tr, "tangent", required=False)
    cotangent = _texts(path, tr, "cotangent", required=False)
    message = _message(tr)
    tr.done()
    if bool(tangent) != bool(cotangent):
        given = "tangent" if tangent else "cotangent"
        raise SpecError(path, tr.line_of(given), f"ties.{given} needs ties."
                        f"{'cotangent' if tangent else 'tangent'} too (none: every tie "
                        f"fails, no derivative existing there)")
    return Ties(values, tangent, cotangent, message, r.line_of("ties"))


def _defining(path, data) -> tuple[Text, ...]:
    return tuple(_text(path, t, data.item_lines[i], "defining equation")
                 for i, t in enumerate(data))


def _is_value(v, values) -> bool:
    """``v`` is one of ``values``, type included (True is not 1, 'true' is not True)."""
    return any(type(v) is type(x) and v == x for x in values)


def _show(v) -> str:
    return repr(v) if isinstance(v, bool) else f"'{v}'"


def _option_values(path, r: KeyReader, key: str, options: tuple[Option, ...]):
    data = r.pop(key, LineMap, default=LineMap())
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
    r = KeyReader(path, data, "variant", line)
    when = _option_values(path, r, "when", options)
    native = _option_values(path, r, "native", options) or when
    outputs = _tensors(path, r.pop("outputs", LineMap), r.line_of("outputs"), "outputs")
    defining_data = r.pop("defining", LineList)
    if not defining_data:
        raise SpecError(path, r.line_of("defining"), "variant: 'defining' needs at least one "
                                                     "equation")
    defining = _defining(path, defining_data)
    from_native_data = r.pop("from_native", LineMap, default=LineMap())
    from_native = tuple((k, _text(path, v, from_native_data.value_lines[k], "from_native"))
                        for k, v in from_native_data.items())
    primal_data = r.pop("primal", LineMap, default=None, required=False)
    primal_returns, primal_outputs = (), ()
    if primal_data is not None:
        pr = KeyReader(path, primal_data, "primal", r.line_of("primal"))
        returns = pr.pop("returns", LineMap, default=LineMap())
        primal_returns = tuple((k, tuple(_shape(path, v, returns.value_lines[k], f"primal.returns.{k}")))
                               for k, v in returns.items())
        outs = pr.pop("outputs", LineMap)
        primal_outputs = tuple((k, _text(path, v, outs.value_lines[k], "primal.outputs"))
                               for k, v in outs.items())
        pr.done()
    requires_data = r.pop("requires", LineList, default=LineList())
    if not all(isinstance(x, str) for x in requires_data):
        raise SpecError(path, r.line_of("requires"), "requires must be a list of conditions "
                                                     "such as 'k <= n'")
    requires = tuple(Text(x, requires_data.item_lines[i]) for i, x in enumerate(requires_data))
    sample_data = r.pop("sample", LineMap, default=LineMap())
    sample = tuple((k, _text(path, v, sample_data.value_lines[k], "sample"))
                   for k, v in sample_data.items())
    gauge = None
    gauge_data = r.pop("gauge", LineMap, default=None, required=False)
    if gauge_data is not None:
        gr = KeyReader(path, gauge_data, "gauge", r.line_of("gauge"))
        tangent = _texts(path, gr, "tangent", required=True)
        cotangent = _texts(path, gr, "cotangent", required=False)
        blocks = {}
        for key in ("phases", "rotations"):
            value = gr.pop(key, LineList, default=LineList(), required=key == "phases")
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
    pivots, ties = _pivots(path, r), _ties(path, r)
    cases_data = r.pop("cases", LineList)
    cases = []
    for i, c in enumerate(cases_data):
        cr = KeyReader(path, c, "case", cases_data.item_lines[i])
        case_when = cr.pop("when", str, default=ALWAYS)
        jvp = _text(path, cr.pop("jvp", str), cr.line_of("jvp"), "jvp")
        vjp_text = cr.pop("vjp", str, required=False)
        vjp = None if vjp_text is None else _text(path, vjp_text, cr.line_of("vjp"), "vjp")
        written_text = cr.pop("written_jvp", str, required=False)
        derived = jvp.text.strip() == derive_jvp.KEYWORD
        if written_text is not None and not derived:
            raise SpecError(path, cr.line_of("written_jvp"), "written_jvp is the second "
                                                             "opinion of a derived rule: give "
                                                             "it beside 'jvp: derive'")
        written = (None if written_text is None
                   else _text(path, written_text, cr.line_of("written_jvp"), "written_jvp"))
        case_defining = _defining(path, cr.pop("defining", LineList, default=LineList()))
        cr.done()
        cases.append(Case(case_when, cr.line_of("when"), jvp, vjp, case_defining,
                          derived=derived, written_jvp=written))
    if not cases:
        raise SpecError(path, r.line_of("cases"), "variant: 'cases' needs at least one case")
    r.done()
    return Variant(when, native, outputs, defining, tuple(cases), line, from_native,
                   primal_returns, primal_outputs, gauge, sample, requires, pivots, ties)


def _items(data: LineList):
    return zip(data, getattr(data, "item_lines", []))


def _benchmark(path, data, line, options) -> Benchmark:
    r = KeyReader(path, data, "benchmark", line)
    chosen = _option_values(path, r, "options", options)
    shapes = []
    for key in ("shape", "quick"):
        value = r.pop(key, LineList)
        if len(value) < 1 or not all(type(d) is int and d >= 0 for d in value):
            raise SpecError(path, r.line_of(key), f"benchmark.{key} must be a list of "
                                                  f"non-negative integers (batch dims first)")
        shapes.append(tuple(value))
    dtype = r.pop("dtype", str)
    if dtype not in DTYPES:
        raise SpecError(path, r.line_of("dtype"), f"benchmark.dtype must be one of "
                                                  f"{', '.join(DTYPES)}, not '{dtype}'")
    r.done()
    return Benchmark(chosen, shapes[0], shapes[1], dtype, line)


def _options(shown: str, r: KeyReader) -> tuple[Option, ...]:
    """'options': {name: {values, default, selects}}."""
    options_data = r.pop("options", LineMap, default=LineMap())
    options = []
    for k, v in options_data.items():
        _check_name(shown, k, options_data.key_lines[k], "options")
        orr = KeyReader(shown, v, f"options.{k}", options_data.value_lines[k])
        values = orr.pop("values", LineList)
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
    return tuple(options)


def _signatures(shown: str, r: KeyReader, options) -> tuple[Signature, ...]:
    """'signatures': {backend: [entry, ...]}, every backend of BACKENDS with a current
    entry (one without 'until')."""
    sig_data = r.pop("signatures", LineMap)
    signatures = []
    for backend, entries in sig_data.items():
        if backend not in BACKENDS:
            raise SpecError(shown, sig_data.key_lines[backend],
                            f"signatures: unknown backend '{backend}' "
                            f"(known: {', '.join(BACKENDS)})")
        if not isinstance(entries, LineList) or not entries:
            raise SpecError(shown, sig_data.value_lines[backend],
                            f"signatures.{backend} must be a non-empty list")
        for i, entry in enumerate(entries):
            sr = KeyReader(shown, entry, f"signatures.{backend}", entries.item_lines[i])
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
            transposed = sr.pop("transposed", LineList, default=LineList())
            if not all(isinstance(x, str) for x in transposed):
                raise SpecError(shown, sr.line_of("transposed"),
                                "transposed must be a list of output names")
            values = _signature_values(shown, sr, options)
            host = sr.pop("host", bool, default=False)
            if host and backend not in HOST_BACKENDS:
                raise SpecError(shown, sr.line_of("host"), f"signatures.{backend}: host is for "
                                                           f"{_listed(HOST_BACKENDS)} "
                                                           f"(the others run NumPy/SciPy "
                                                           f"calls as they are)")
            if host and not call.startswith(("numpy.", "scipy.")):
                raise SpecError(shown, sr.line_of("host"), f"signatures.{backend}: host is for "
                                                           f"a numpy. or scipy. call")
            recorded = sr.pop("signature", str, required=False)
            accepts_data = sr.pop("accepts", LineMap, default=LineMap())
            accepts = []
            for accepted, listed in accepts_data.items():
                if not (isinstance(listed, LineList) and listed
                        and all(isinstance(x, str) for x in listed)):
                    raise SpecError(shown, accepts_data.value_lines[accepted],
                                    f"signatures.{backend}.accepts.{accepted} must be a "
                                    f"non-empty list of strings")
                accepts.append((str(accepted), tuple(listed)))
            signatures.append(Signature(backend, call, entries.item_lines[i], since, until,
                                        batched, base, tuple(transposed), compute, values,
                                        host, recorded, tuple(accepts)))
            sr.done()
        if all(s.until is not None for s in signatures if s.backend == backend):
            raise SpecError(shown, sig_data.value_lines[backend],
                            f"signatures.{backend}: no current entry (one without 'until')")
    missing = [b for b in BACKENDS if b not in sig_data]
    if missing:
        raise SpecError(shown, r.data.key_lines["signatures"],
                        f"signatures: no entry for backend(s) {', '.join(missing)}")
    return tuple(signatures)


def load_spec(path: str | Path, display_path: str | None = None) -> Spec:
    """Read and structurally validate one spec file."""
    path = Path(path)
    shown = display_path or str(path)
    raw, data = read_yaml_mapping(path, shown)

    r = KeyReader(shown, data, "spec", 1)
    name = r.pop("name", str)
    if not name.isidentifier() or name.startswith("_"):
        raise SpecError(shown, r.line_of("name"), f"spec name '{name}' is not a valid identifier")
    if name != path.stem:
        raise SpecError(shown, r.line_of("name"), f"spec name '{name}' differs from its file "
                                                  f"name '{path.stem}'")
    summary = r.pop("summary", str)
    notes = r.pop("notes", str, default="")
    refs_data = r.pop("references", LineList)
    references = []
    for i, ref in enumerate(refs_data):
        rr = KeyReader(shown, ref, "reference", refs_data.item_lines[i])
        references.append(Reference(rr.pop("key", str), rr.pop("cite", str)))
        rr.done()
    dims_data = r.pop("dims", LineMap)
    dims = tuple((k, str(v)) for k, v in dims_data.items())
    dim_lines = {f"dims.{k}": dims_data.value_lines[k] for k in dims_data}
    inputs = _tensors(shown, r.pop("inputs", LineMap), r.line_of("inputs"), "inputs")

    options = _options(shown, r)

    variants_data = r.pop("variants", LineList)
    if not variants_data:
        raise SpecError(shown, r.line_of("variants"), "spec: 'variants' needs at least one "
                                                      "variant")
    variants = tuple(_variant(shown, v, variants_data.item_lines[i], options)
                     for i, v in enumerate(variants_data))

    signatures = _signatures(shown, r, options)
    benchmarks = tuple(_benchmark(shown, b, line, options)
                       for b, line in _items(r.pop("benchmarks", LineList, default=LineList())))
    framework = None
    shapes_data = r.pop("shapes", LineMap, default=LineMap())
    shapes = []
    for label, values in shapes_data.items():
        line = shapes_data.value_lines[label]
        if not (isinstance(values, LineMap) and values
                and all(type(v) is int and v >= 0 for v in values.values())):
            raise SpecError(shown, line, f"shapes.{label} must map dimension names to "
                                         f"non-negative integers")
        shapes.append((str(label), tuple((str(k), v) for k, v in values.items())))
    framework_data = r.pop("framework", LineMap, default=None, required=False)
    if framework_data is not None:
        fr = KeyReader(shown, framework_data, "framework", r.line_of("framework"))
        framework = (fr.pop("call", str), fr.pop("result", str), r.line_of("framework"))
        fr.done()
    delegate = None
    delegate_data = r.pop("delegate", LineMap, default=None, required=False)
    if delegate_data is not None:
        dr = KeyReader(shown, delegate_data, "delegate", r.line_of("delegate"))
        keyword = dr.pop("option", str)
        _check_name(shown, keyword, dr.line_of("option"), "delegate.option")
        if keyword in {o.name for o in options} | {t.name for t in inputs}:
            raise SpecError(shown, dr.line_of("option"), f"delegate.option: '{keyword}' "
                                                         f"already names an option or input")
        delegate = (keyword, dr.pop("call", str), r.line_of("delegate"))
        dr.done()
    aliases = _aliases(shown, r, options, inputs, delegate)
    row_blocks = None
    blocks_data = r.pop("row_blocks", LineMap, default=None, required=False)
    if blocks_data is not None:
        br = KeyReader(shown, blocks_data, "row_blocks", r.line_of("row_blocks"))
        rows, below = br.pop("rows", str), br.pop("below", str)
        for key, value in (("rows", rows), ("below", below)):
            if value not in dims_data:
                raise SpecError(shown, br.line_of(key), f"row_blocks.{key}: '{value}' is not "
                                                        f"a dimension of 'dims'")
        br.done()
        row_blocks = (rows, below, r.line_of("row_blocks"))
    r.done()
    spec = Spec(name=name, path=shown, sha256=hashlib.sha256(raw).hexdigest(), summary=summary,
                references=tuple(references), dims=dims, inputs=inputs, options=options,
                variants=variants, signatures=signatures, notes=notes,
                benchmarks=benchmarks, framework=framework, delegate=delegate,
                aliases=aliases, row_blocks=row_blocks,
                shapes=tuple(shapes),
                line_of={"dims": data.value_lines["dims"], **dim_lines,
                         **({"shapes": data.value_lines["shapes"]} if "shapes" in data else {}),
                         "variants": data.value_lines["variants"]})
    return derive_jvp.derive_spec(spec)  # each 'jvp: derive' written out
