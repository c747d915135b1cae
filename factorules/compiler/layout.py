"""The layout of generated Python: lines of at most ``LINE_LENGTH`` characters.

Code is laid out by ruff's formatter (one version, RUFF_VERSION, so that the output and
`cli.py generate --check` do not depend on what else is installed); the text ruff does not
break (docstrings, string literals) is wrapped here before rendering.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

LINE_LENGTH = 100
# the formatter's version: another may lay the same code out otherwise (requirements.txt pins
# it alike, tests/test_generated_layout.py checks that)
RUFF_VERSION = "0.14.0"
# the width of one piece of a string literal split across lines: it stays within
# LINE_LENGTH at the deepest indentation the generated code gives it
STRING_PIECE = 68


def _wrapped(text: str, width: int, first: str, rest: str) -> list[str]:
    return textwrap.wrap(" ".join(text.split()), width=width, initial_indent=first,
                         subsequent_indent=rest, break_long_words=False,
                         break_on_hyphens=False)


def docstring_text(text: str, indent: int, opening: str = '"""') -> str:
    """``text`` wrapped to follow ``opening`` on a docstring's first line at ``indent``
    spaces, its further lines indented alike (the opening quotes are not returned)."""
    pad = " " * indent
    lines = _wrapped(text, LINE_LENGTH, pad + opening, pad)
    return "\n".join(lines)[indent + len(opening):]


def hanging_lines(text: str, indent: int, hang: int = 4) -> str:
    """``text`` wrapped at ``indent`` spaces, its further lines ``hang`` spaces deeper."""
    return "\n".join(_wrapped(text, LINE_LENGTH, " " * indent, " " * (indent + hang)))


def string_source(text: str, formatted: bool = False) -> str:
    """Python source of the string ``text`` as adjacent literals of at most STRING_PIECE
    characters each between the quotes (unless one word is longer), split at spaces (ruff
    lays adjacent literals out one a line when they do not fit on one).  ``formatted``: ``text`` is an f-string's body; a piece with a
    replacement field is an f-string, the others plain strings."""
    pieces: list[str] = []
    for word in re.findall(r"\s*\S+\s*|\s+", text):  # a word and the spaces after it
        if pieces and len(json.dumps(pieces[-1] + word.rstrip())) <= STRING_PIECE + 2:
            pieces[-1] += word
        else:
            pieces.append(word)
    out = []
    for piece in pieces:
        if formatted and piece.count("{") != piece.count("}"):
            raise ValueError(f"a replacement field split across pieces: {text!r}")
        out.append(("f" if formatted and "{" in piece else "") + json.dumps(piece))
    return " ".join(out) if out else '""'


def _ruff(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=cwd, capture_output=True,
                          text=True)


def format_python(files: dict[str, str]) -> dict[str, str]:
    """The Python files of ``files`` ({relative path: text}) as ruff formats them, in one
    run of ruff, which must be RUFF_VERSION."""
    version = _ruff("--version")
    if version.returncode != 0 or version.stdout.split()[-1:] != [RUFF_VERSION]:
        raise RuntimeError(f"generated code is laid out by ruff=={RUFF_VERSION} (as "
                           f"requirements.txt pins it); found: "
                           f"{(version.stdout + version.stderr).strip() or 'none'}")
    with tempfile.TemporaryDirectory(prefix="factorules-format-") as tmp:
        folder = Path(tmp)
        for path, text in files.items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_text(text, encoding="utf-8")
        result = _ruff("format", "--isolated", "--no-cache", f"--line-length={LINE_LENGTH}",
                       "--target-version=py311",
                       # the quotes and tuples as printed: no quote churn, no trailing
                       # comma that spreads a tuple one element a line
                       "--config=format.quote-style='preserve'",
                       "--config=format.skip-magic-trailing-comma=true", "--quiet", *files,
                       cwd=folder)
        if result.returncode != 0:
            raise RuntimeError(f"ruff format failed on generated code:\n{result.stderr}")
        return {path: (folder / path).read_text(encoding="utf-8") for path in files}
