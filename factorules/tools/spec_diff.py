"""``cli.py diff OLD NEW``: the effect of a spec edit on the generated code, before it is merged.

Each side is a set of spec files: a git revision's ``spec/`` folder, a spec folder, or one
spec file (which replaces the working tree's spec of the same name, so that the rest of the
tree, which 'framework' and 'delegate' calls refer to, stays as it is).  NEW defaults to the
working tree's ``spec/``.  Both sides are rendered by the generator of the working tree, so
that the diff shows what the specs change, not what the generator changed between revisions.

The report is a summary (specs added or removed, options and native calls changed, one line
per JVP or VJP rule that changed, the files that change and by how many lines), then a
unified diff of generated/ and of the derivation pages (docs/derivations/).
"""
from __future__ import annotations

import difflib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..compiler.paths import ROOT
from ..compiler.native_call import parse_native_call
from ..compiler.check_calls import related
from ..compiler.render import load_checked, render_tree
from ..compiler.spec import BACKENDS, SpecError

SPEC_FOLDER = "spec"


class DiffError(Exception):
    """A side that names neither a spec file, a spec folder nor a git revision."""


@dataclass(frozen=True)
class Side:
    label: str      # as given on the command line
    spec_dir: Path  # a folder of spec files


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)


def _spec_name(path: Path) -> str:
    """The 'name' a spec file gives itself (read as YAML data, nothing evaluated)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise DiffError(f"{path}: not YAML ({err.__class__.__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise DiffError(f"{path}: a spec file needs a 'name'")
    return data["name"]


def materialize(arg: str | None, workdir: Path, base: Path) -> Side:
    """The spec folder a command-line side names, copied under ``workdir`` where needed.

    ``base`` is the folder a single spec file is substituted into (the working tree's)."""
    if arg is None:
        return Side("working tree", base)
    path = Path(arg)
    if path.is_dir():
        return Side(arg, path)
    if path.is_file():
        name = _spec_name(path)
        folder = Path(tempfile.mkdtemp(prefix="spec-", dir=workdir))
        for other in sorted(base.glob("*.yaml")):
            if other.stem != name:
                shutil.copy2(other, folder / other.name)
        shutil.copy2(path, folder / f"{name}.yaml")
        return Side(arg, folder)
    commit = _git("rev-parse", "--verify", "--quiet", f"{arg}^{{commit}}")
    if commit.returncode != 0:
        raise DiffError(f"'{arg}' is not a spec file, a spec folder or a git revision")
    listing = _git("ls-tree", "--name-only", commit.stdout.strip(), f"{SPEC_FOLDER}/")
    folder = Path(tempfile.mkdtemp(prefix="spec-", dir=workdir))
    for rel in listing.stdout.split():
        if rel.endswith(".yaml"):
            text = _git("show", f"{commit.stdout.strip()}:{rel}")
            (folder / Path(rel).name).write_text(text.stdout, encoding="utf-8")
    return Side(arg, folder)


@dataclass(frozen=True)
class Rendered:
    files: dict[str, str]       # generated/ and docs/derivations/, path -> text
    rules: dict[tuple, tuple]   # (spec, variant, case, kind) -> (statements, derived)
    options: dict[str, str]     # spec -> its options, as text
    calls: dict[tuple, str]     # (spec, backend) -> the native call, as text


def _texts(side: Side) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(side.spec_dir.glob("*.yaml"))}


def render_side(side: Side, pages: bool | set = True, files: bool | set = True) -> Rendered:
    """``pages``: whether to render the derivation pages, or the spec file names to render
    them for (a page is a function of its spec alone: those of specs alike on both sides
    are alike, and are not rendered, since each reruns the audit); ``files``: whether to
    render the generated tree (not where both sides' specs are the same texts: nothing in it
    can differ), or the spec file names whose own generated files to render (with those of
    the specs their calls relate them to: render.related), the files of the whole tree
    rendered in full (those of specs alike on both sides are alike)."""
    from ..audit import derivation

    try:
        checked = load_checked(sorted(side.spec_dir.glob("*.yaml")), display_dir=SPEC_FOLDER)
        if files is True or not files:
            files = render_tree(checked) if files else {}
        else:
            named = {c.spec.name for c in checked if Path(c.spec.path).name in files}
            files = render_tree(checked, only=related(checked, named))
        if pages:
            files.update(derivation.render(
                [c for c in checked if pages is True or Path(c.spec.path).name in pages]))
    except SpecError as err:
        raise DiffError(f"{side.label}: {err}") from None
    rules, options, calls = {}, {}, {}
    for c in checked:
        name = c.spec.name
        options[name] = ", ".join(f"{o.name} in {list(o.values)} (default {o.default!r})"
                                  for o in c.spec.options) or "none"
        for backend in BACKENDS:
            calls[(name, backend)] = "; ".join(
                _call_text(parse_native_call(c.spec, backend, sig), sig)
                for sig in c.spec.signatures if sig.backend == backend)
        for cv in c.variants:
            for case in cv.cases:
                for rule in (case.jvp, case.vjp):
                    text = tuple(f"{s.name} = {s.expr}" for s in rule.program.statements)
                    rules[(name, cv.variant.label, case.condition.text, rule.kind)] = (
                        text, _origin(rule, case))
    return Rendered(files, rules, options, calls)


def _call_text(call, sig) -> str:
    """A signature entry in one line: its call, spellings, host/batch flags and versions."""
    text = "computed from the spec's primal" if call.compute else (
        f"{call.func}({', '.join(call.args)}"
        + "".join(f", {k}={opt or repr(value)}" for k, opt, value in call.keywords)
        + ")" + "".join(f" {opt}: " + ", ".join(f"{a}->{b}" for a, b in pairs)
                        for opt, pairs in call.values)
        + (" on host" if call.host else "") + ("" if call.batched else " unbatched"))
    bounds = ([f"since {sig.since}"] if sig.since else []) + (
        [f"until {sig.until}"] if sig.until else [])
    return text + (f" ({', '.join(bounds)})" if bounds else "")


def _changed_lines(old: str, new: str) -> tuple[int, int]:
    added = removed = 0
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0):
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return added, removed


def summary(old: Rendered, new: Rendered) -> list[str]:
    """One line per change: specs, options, native calls, rules, files."""
    lines = []
    old_specs, new_specs = set(old.options), set(new.options)
    for name in sorted(new_specs - old_specs):
        lines.append(f"spec {name}: added")
    for name in sorted(old_specs - new_specs):
        lines.append(f"spec {name}: removed")
    for name in sorted(old_specs & new_specs):
        if old.options[name] != new.options[name]:
            lines.append(f"spec {name}: options {old.options[name]} -> {new.options[name]}")
    for key in sorted(set(old.calls) & set(new.calls)):
        if old.calls[key] != new.calls[key]:
            lines.append(f"spec {key[0]}: {key[1]} calls {old.calls[key]} -> {new.calls[key]}")
    unchanged = 0
    for key in sorted(set(old.rules) | set(new.rules)):
        name, variant, case, kind = key
        if name not in old_specs or name not in new_specs:
            continue  # the spec line says it
        where = f"rule {name} {variant} [{case}] {kind}"
        if key not in old.rules:
            lines.append(f"{where}: added ({new.rules[key][1]})")
        elif key not in new.rules:
            lines.append(f"{where}: removed")
        elif old.rules[key] != new.rules[key]:
            (before, _), (after, _) = old.rules[key], new.rules[key]
            lines.append(f"{where}: changed ({new.rules[key][1]}, "
                         f"{len(before)} -> {len(after)} statements)")
        else:
            unchanged += 1
    for rel in sorted(set(old.files) | set(new.files)):
        if rel not in old.files:
            lines.append(f"file {rel}: new, {len(new.files[rel].splitlines())} lines")
        elif rel not in new.files:
            lines.append(f"file {rel}: deleted")
        elif old.files[rel] != new.files[rel]:
            added, removed = _changed_lines(old.files[rel], new.files[rel])
            lines.append(f"file {rel}: +{added} -{removed}")
    lines.append(f"{unchanged} rule(s) unchanged")
    return lines


def _origin(rule, case) -> str:
    """Where a checked rule comes from, in the words of the report."""
    if rule.derived:
        return "derived by transposing the JVP"
    if rule.kind == "jvp" and case.case is not None and case.case.derived:
        return "derived from the defining equation"
    return "written in the spec"


def unified(old: Rendered, new: Rendered) -> str:
    chunks = []
    for rel in sorted(set(old.files) | set(new.files)):
        a, b = old.files.get(rel, ""), new.files.get(rel, "")
        if a != b:
            chunks.extend(difflib.unified_diff(
                a.splitlines(keepends=True), b.splitlines(keepends=True),
                fromfile=f"a/{rel}" if rel in old.files else "/dev/null",
                tofile=f"b/{rel}" if rel in new.files else "/dev/null"))
    return "".join(chunks)


def main(args) -> int:
    import sys

    workdir = Path(tempfile.mkdtemp(prefix="factorules-diff-"))
    try:
        base = Path(getattr(args, "spec_dir", None) or ROOT / SPEC_FOLDER)
        try:
            old_side = materialize(args.old, workdir, base)
            new_side = materialize(args.new, workdir, base)
            before, after = _texts(old_side), _texts(new_side)
            changed = {name for name in set(before) | set(after)
                       if before.get(name) != after.get(name)}
            pages = set() if args.no_pages else changed
            old = render_side(old_side, pages=pages, files=changed)
            # the same spec texts on both sides render the same (generation is deterministic)
            new = old if not changed else render_side(new_side, pages=pages, files=changed)
        except DiffError as err:
            print(f"diff: {err}", file=sys.stderr)
            return 2
        print(f"diff: {old_side.label} -> {new_side.label}")
        for line in summary(old, new):
            print(line)
        if not args.summary:
            text = unified(old, new)
            if text:
                print()
                sys.stdout.write(text)
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
