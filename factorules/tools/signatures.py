"""``cli.py signatures``: the spec's signature tables against the installed libraries.

For every spec and backend, the signature entry that applies to the installed version of the
called library (``since <= version < until``) records the function's own signature
("(a, mode='reduced')") and, under ``accepts``, the values its documentation lists for a
keyword (``mode: [reduced, complete, r, raw]``).  This module imports the library, finds the
function, reads its signature (``inspect.signature``, or for a C builtin without one the
``name(...)`` first line of its docstring, as torch's have) and the keyword's paragraph of
its docstring, and reports every difference: a keyword added or removed, a default changed,
a parameter that became keyword-only, a value added to or gone from the documentation.
Nothing from a spec is evaluated: the recorded signature and the defaults are compared as
parsed syntax trees.  A function that cannot be imported here (CuPy's cupyx without CUDA
libraries) or read is reported as such, not guessed.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
import sys
from dataclasses import asdict, dataclass, field

from ..compiler.backends import NAMES, library_of
from ..compiler.check_calls import recorded_parameters
from ..compiler.native_call import entry_holds, parse_native_call, version_tuple
from ..compiler.spec import Signature, Spec

# Parameter kinds, in the order Python declares them.
POSITIONAL_ONLY, POSITIONAL, VAR_POSITIONAL, KEYWORD_ONLY, VAR_KEYWORD = (
    "positional-only", "positional or keyword", "*args", "keyword-only", "**kwargs")
_INSPECT_KINDS = {
    inspect.Parameter.POSITIONAL_ONLY: POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD: POSITIONAL,
    inspect.Parameter.VAR_POSITIONAL: VAR_POSITIONAL,
    inspect.Parameter.KEYWORD_ONLY: KEYWORD_ONLY,
    inspect.Parameter.VAR_KEYWORD: VAR_KEYWORD,
}


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    default: str | None  # ast.dump of the default's syntax tree; None: no default
    shown: str           # the default as written, for the report


@dataclass
class Finding:
    spec: str
    backend: str
    function: str
    version: str
    status: str  # 'as recorded', 'differs', 'not introspected', 'no entry'
    differences: list[str] = field(default_factory=list)
    note: str = ""


def _dump_default(text: str) -> str:
    try:
        return ast.dump(ast.parse(text, mode="eval").body)
    except SyntaxError:
        return text  # not a literal (an object's repr): compared as text


def params_of_arguments(args: ast.arguments) -> list[Param]:
    """The parameters of a parsed parameter list, defaults as syntax trees."""
    out = []
    positional = [*args.posonlyargs, *args.args]
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    for i, (a, d) in enumerate(zip(positional, defaults)):
        kind = POSITIONAL_ONLY if i < len(args.posonlyargs) else POSITIONAL
        out.append(Param(a.arg, kind, None if d is None else ast.dump(d),
                         "" if d is None else ast.unparse(d)))
    if args.vararg is not None:
        out.append(Param(args.vararg.arg, VAR_POSITIONAL, None, ""))
    for a, d in zip(args.kwonlyargs, args.kw_defaults):
        out.append(Param(a.arg, KEYWORD_ONLY, None if d is None else ast.dump(d),
                         "" if d is None else ast.unparse(d)))
    if args.kwarg is not None:
        out.append(Param(args.kwarg.arg, VAR_KEYWORD, None, ""))
    return out


def _params_of_inspect(signature: inspect.Signature) -> list[Param]:
    out = []
    for p in signature.parameters.values():
        if p.default is inspect.Parameter.empty:
            out.append(Param(p.name, _INSPECT_KINDS[p.kind], None, ""))
        else:
            shown = repr(p.default)
            out.append(Param(p.name, _INSPECT_KINDS[p.kind], _dump_default(shown), shown))
    return out


def _params_of_docstring(function, name: str) -> list[Param] | None:
    """torch's C builtins carry their signature as the first line of their docstring,
    'qr(A, mode='reduced', *, out=None) -> (Tensor, Tensor)' or 'linalg.eigh(...)'; a typed
    parameter there ('bool pivot=True') loses its type."""
    doc = inspect.getdoc(function) or ""
    first = doc.splitlines()[0] if doc else ""
    match = re.match(rf"^(?:[\w.]*\.)?{re.escape(name)}\((.*)\)\s*(->.*)?$", first)
    if match is None:
        return None
    pieces = []
    for piece in _split_top(match.group(1)):
        lhs, eq, rhs = piece.strip().partition("=")
        words = lhs.split()
        if not words:
            return None
        pieces.append(words[-1] + eq + rhs.strip())
    args = recorded_parameters("(" + ", ".join(pieces) + ")")
    return None if args is None else params_of_arguments(args)


def _split_top(text: str) -> list[str]:
    """``text`` split at the commas outside brackets and quotes."""
    pieces, depth, quote, current = [], 0, None, []
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            pieces.append("".join(current))
            current = []
            continue
        current.append(ch)
    if "".join(current).strip():
        pieces.append("".join(current))
    return [p for p in pieces if p.strip()]


# a quoted word of a docstring: 'x', "x", `'x'`, ``"x"``
_QUOTED = re.compile(r"""(['"])([\w-]+)\1""")


def documented_values(function, keyword: str) -> tuple[str, ...] | None:
    """The quoted words of the paragraph of ``function``'s docstring that describes
    ``keyword`` (numpy style 'mode : {...}', Google style 'mode (str): ...' or 'mode: ...'),
    up to the next line indented no deeper; None when no paragraph describes it."""
    doc = inspect.getdoc(function) or ""
    lines = doc.splitlines()
    start = re.compile(rf"^(\s*){re.escape(keyword)}\s*(:|\()")
    for i, line in enumerate(lines):
        found = start.match(line)
        if not found:
            continue
        indent = len(found.group(1))
        paragraph = [line]
        for other in lines[i + 1:]:
            if other.strip() and len(other) - len(other.lstrip()) <= indent:
                break
            paragraph.append(other)
        words = []
        for _, word in _QUOTED.findall("\n".join(paragraph)):
            if word not in words:
                words.append(word)
        return tuple(words)
    return None


def resolve(dotted: str):
    """The object a dotted name names: the longest importable module prefix, then
    attributes.  Raises ImportError or AttributeError."""
    parts = dotted.split(".")
    error = None
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError as err:
            error = err
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(str(error))


def library_version(root: str) -> str | None:
    """The installed version of a call's root package (cupyx is CuPy's)."""
    package, attribute = library_of(root)
    try:
        module = importlib.import_module(package)
    except ImportError:
        return None
    return getattr(module, attribute, None)


def compare(recorded: list[Param], actual: list[Param]) -> list[str]:
    """Every difference from the recorded parameters to the installed function's."""
    out = []
    mine = {p.name: p for p in recorded}
    theirs = {p.name: p for p in actual}
    for p in actual:
        if p.name not in mine:
            default = f", default {p.shown}" if p.default is not None else ", no default"
            out.append(f"keyword '{p.name}' added ({p.kind}{default})")
    for p in recorded:
        if p.name not in theirs:
            out.append(f"keyword '{p.name}' removed")
            continue
        q = theirs[p.name]
        if p.default != q.default:
            out.append(f"default of '{p.name}' changed: "
                       f"{p.shown or '(none)'} -> {q.shown or '(none)'}")
        if p.kind != q.kind:
            out.append(f"'{p.name}' is now {q.kind} (recorded: {p.kind})")
    order = [p.name for p in recorded if p.name in theirs]
    if order != [p.name for p in actual if p.name in mine]:
        out.append(f"parameters reordered: ({', '.join(order)}) -> "
                   f"({', '.join(p.name for p in actual if p.name in mine)})")
    return out


def check_entry(spec: Spec, sig: Signature, version: str) -> Finding:

    dotted = parse_native_call(spec, sig.backend, sig).func
    finding = Finding(spec.name, sig.backend, dotted, version, "as recorded")
    if sig.signature is None:
        finding.status = "differs"
        finding.differences.append("no signature recorded in the spec")
        return finding
    try:
        function = resolve(dotted)
    except (ImportError, AttributeError) as err:
        finding.status = "not introspected"
        finding.note = f"cannot import it here: {type(err).__name__}: " \
                       f"{str(err).splitlines()[0] if str(err) else ''}"
        return finding
    try:
        actual = _params_of_inspect(inspect.signature(function))
        source = "inspect.signature"
    except (ValueError, TypeError):
        actual = _params_of_docstring(function, dotted.rsplit(".", 1)[-1])
        source = "its docstring's first line"
    if actual is None:
        finding.status = "not introspected"
        finding.note = "no signature: inspect.signature fails and the docstring gives none"
        return finding
    finding.note = f"read from {source}"
    finding.differences.extend(compare(params_of_arguments(recorded_parameters(sig.signature)),
                                       actual))
    for keyword, listed in sig.accepts:
        documented = documented_values(function, keyword)
        if documented is None:
            finding.differences.append(f"'{keyword}': its docstring no longer describes it")
            continue
        for value in documented:
            if value not in listed:
                finding.differences.append(f"'{keyword}': value '{value}' added")
        for value in listed:
            if value not in documented:
                finding.differences.append(f"'{keyword}': value '{value}' no longer documented")
    if finding.differences:
        finding.status = "differs"
    return finding


def check_spec_signatures(spec: Spec) -> list[Finding]:
    """One finding per backend: the entry for the installed version of its library."""
    out = []
    for backend in sorted({s.backend for s in spec.signatures},
                          key=NAMES.index):
        entries = [s for s in spec.signatures if s.backend == backend]
        if all(s.compute for s in entries):
            out.append(Finding(spec.name, backend, "", "", "as recorded",
                               note="computed from the spec (no native call)"))
            continue
        # each entry's bounds are versions of its own call's library
        versions = {s.line: library_version(s.call.split(".")[0])
                    for s in entries if not s.compute}
        missing = sorted({s.call.split(".")[0] for s in entries
                          if not s.compute and versions[s.line] is None})
        current = [s for s in entries if not s.compute and versions[s.line] is not None
                   and entry_holds(s, version_tuple(versions[s.line]))]
        if current:
            out.append(check_entry(spec, current[-1], versions[current[-1].line]))
        elif missing:
            out.append(Finding(spec.name, backend, entries[-1].call.split("(")[0], "",
                               "not introspected",
                               note=f"{', '.join(missing)} is not importable here"))
        else:
            shown = ", ".join(sorted({v for v in versions.values() if v}))
            out.append(Finding(spec.name, backend, "", shown, "no entry",
                               [f"no entry covers version {shown}"]))
    return out


def main(args) -> int:
    from pathlib import Path

    from ..compiler.pipeline import spec_paths
    from ..compiler.spec_loader import load_spec

    paths = {p.stem: p for p in spec_paths(Path(args.spec_dir))}
    names = list(args.names) or list(paths)
    unknown = [n for n in names if n not in paths]
    if unknown:
        print(f"signatures: no spec named {', '.join(map(repr, unknown))}", file=sys.stderr)
        return 2
    findings = []
    for name in names:
        findings.extend(check_spec_signatures(load_spec(paths[name])))
    differs = [f for f in findings if f.status in ("differs", "no entry")]
    if args.json:
        print(json.dumps([asdict(f) for f in findings], indent=2))
    else:
        for f in findings:
            head = f"{f.spec:<20} {f.backend:<6} {f.function or '-':<34} {f.version or '-':<12}"
            print(f"{head} {f.status}" + (f" ({f.note})" if f.note else ""))
            for d in f.differences:
                print(f"{'':<20} {'':<6} - {d}")
        shown = sum(f.status == "not introspected" for f in findings)
        print(f"\nsignatures: {len(findings)} entries, {len(differs)} differ from the spec, "
              f"{shown} not introspected here")
    return 1 if differs else 0
