"""A spec file's YAML read with the line of every key and value, and a reader that pops the
keys a section knows.

A key left over, a missing required key or a value of the wrong kind is a ``SpecError`` that
names ``file:line``; the YAML is read with PyYAML's safe loader (no tags, no objects).
"""
from __future__ import annotations

from pathlib import Path

import yaml

from .spec import SpecError


class LineMap(dict):
    """A YAML mapping that remembers the line of itself, of each key and of each value."""

    line: int
    key_lines: dict
    value_lines: dict


class LineList(list):
    """A YAML sequence that remembers the line of itself and of each item."""

    line: int
    item_lines: list


# the names of the kinds above in messages ('must be a mapping, found list')
_KIND_NAMES = {"LineMap": "mapping", "LineList": "list"}


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
    out = LineMap()
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
    out = LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [_value_line(child) for child in node.value]
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def read_yaml_mapping(path: Path, shown: str) -> tuple[bytes, LineMap]:
    """The file's bytes and its YAML, which must be a mapping; ``shown`` is the path that
    error messages name."""
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
    if not isinstance(data, LineMap):
        raise SpecError(shown, 1, "a spec must be a YAML mapping")
    return raw, data


class KeyReader:
    """Pops keys from one mapping, raising SpecError with the right line."""

    def __init__(self, path: str, data, what: str, line: int):
        if not isinstance(data, LineMap):
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
            names, found = ("/".join(_KIND_NAMES.get(n, n) for n in x.split("/"))
                            for x in (names, found))
            raise SpecError(self.path, self.line_of(key),
                            f"{self.what}.{key} must be a {names}, found {found}")
        return value

    def done(self) -> None:
        for key in self.remaining:
            raise self.error(key, f"{self.what}: unknown key '{key}'")
