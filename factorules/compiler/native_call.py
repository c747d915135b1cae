"""A spec's native calls (its ``signatures`` entries): which entry holds for a library
version, and each call parsed once, without evaluating, into a ``NativeCall``."""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from .backends import BACKENDS
from .spec import Spec, SpecError


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


# what a call's positional argument may apply to an input besides .H, .T and .conj: the
# reversals of the spec language (RQ as QR of flip_cols(A.H))
REVERSALS = ("flip_rows", "flip_cols")
INPUT_ARGUMENTS = ("positional arguments must be input names, optionally with .H, .T or .conj "
                   "and reversed by flip_rows(...) or flip_cols(...)")


def is_input_argument(node: ast.AST, inputs) -> bool:
    """Whether a call's positional argument is an input, optionally with .H / .T / .conj
    applied ('A.H' for LQ through QR) and reversed ('flip_cols(A.H)' for RQ through QR)."""
    while (isinstance(node, ast.Attribute) and node.attr in ("H", "T", "conj")) or (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in REVERSALS and len(node.args) == 1 and not node.keywords):
        node = node.value if isinstance(node, ast.Attribute) else node.args[0]
    return isinstance(node, ast.Name) and node.id in inputs


# the package whose version a call's version bounds compare, for a call root that is not
# that package itself (cupyx is CuPy's): the backends' companion modules
LIBRARY_OF = {module: b.framework for b in BACKENDS for module in b.companion_modules}


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
        if not is_input_argument(a, inputs):
            fail(INPUT_ARGUMENTS)
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
