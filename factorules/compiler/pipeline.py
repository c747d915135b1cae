"""The whole pipeline from spec files to files on disk: generate, check for drift."""
from __future__ import annotations

import difflib
import os
import shutil
import tempfile
from pathlib import Path

from .paths import GENERATED, ROOT, SPEC_DIR
from .render import load_checked, render_tree


def spec_paths(spec_dir: Path = SPEC_DIR) -> list[Path]:
    return sorted(spec_dir.glob("*.yaml"))


def render(spec_dir: Path = SPEC_DIR, targets: dict[str, str] | None = None) -> dict[str, str]:
    """{path relative to the repository root: text} for every generated file; ``targets``:
    {backend: library version} to emit for (generate --target)."""
    return render_tree(load_checked(spec_paths(spec_dir)), targets)


def write(files: dict[str, str], root: Path = ROOT, folder: str = GENERATED) -> None:
    """Replace ``root/folder`` with exactly ``files`` (keyed ``folder/...``): all of them or,
    on any error, none.

    The new tree is written next to the old one and swapped in with two renames.
    """
    target = root / folder
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder}-", dir=root))
    try:
        for rel, text in files.items():
            rel_path = Path(rel)
            if rel_path.parts[0] != folder:
                raise ValueError(f"refusing to write outside {folder}/: {rel}")
            path = staging / Path(*rel_path.parts[1:])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        old = None
        if target.exists():
            old = root / f".{folder}-old-{os.getpid()}"
            target.rename(old)
        staging.rename(target)
        if old is not None:
            shutil.rmtree(old)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def on_disk(root: Path = ROOT, folder: str = GENERATED) -> dict[str, str]:
    target = root / folder
    out = {}
    if target.exists():
        for path in sorted(target.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts \
                    and not path.name.startswith("."):
                out[str(path.relative_to(root))] = path.read_text(encoding="utf-8")
    return out


def drift(files: dict[str, str], root: Path = ROOT, folder: str = GENERATED) -> str:
    """Unified diff from what is on disk under ``folder`` to ``files`` ('' when in sync)."""
    current = on_disk(root, folder)
    chunks = []
    for rel in sorted(set(files) | set(current)):
        old, new = current.get(rel, ""), files.get(rel, "")
        if old != new:
            chunks.extend(difflib.unified_diff(
                old.splitlines(keepends=True), new.splitlines(keepends=True),
                fromfile=f"a/{rel}" if rel in current else "/dev/null",
                tofile=f"b/{rel}" if rel in files else "/dev/null"))
    return "".join(chunks)
