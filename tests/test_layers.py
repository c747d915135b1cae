"""The import contract of factorules/ (factorules/layers.toml): the layers import only
downwards, no module takes part in an import cycle (imports inside functions included), and
no module is longer than the contract's limit."""
from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest


from factorules.compiler.paths import ROOT

PACKAGE = ROOT / "factorules"
CONTRACT = tomllib.loads((PACKAGE / "layers.toml").read_text())


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """The factorules modules ``name`` imports, wherever the import statement stands."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # 'from package import module' names a module; 'from module import name' does not
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target.startswith("factorules") and target != name and target != "factorules":
                found.add(target)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def layer_of(name: str) -> int | None:
    for i, layer in enumerate(CONTRACT["layers"]):
        if name == layer or name.startswith(layer + "."):
            return i
    return None


def test_every_module_belongs_to_a_layer():
    outside = [n for n in MODULES if n != "factorules" and layer_of(n) is None]
    assert not outside, f"modules outside every layer of factorules/layers.toml: {outside}"


def test_layers_import_only_downwards():
    upward = [f"{a} imports {b}" for a, targets in GRAPH.items() for b in sorted(targets)
              if layer_of(a) is not None and layer_of(b) is not None and layer_of(b) < layer_of(a)]
    assert not upward, "\n".join(upward)


def cycle_from(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """An import cycle through ``start`` (its modules in order, the first repeated at the end),
    or None."""
    stack, on_path = [(start, iter(sorted(graph[start])))], [start]
    seen = {start}
    while stack:
        node, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            on_path.pop()
        elif child in on_path:
            return on_path[on_path.index(child):] + [child]
        elif child not in seen:
            seen.add(child)
            stack.append((child, iter(sorted(graph[child]))))
            on_path.append(child)
    return None


def test_no_import_cycles():
    cycles = {tuple(c) for name in GRAPH if (c := cycle_from(GRAPH, name)) is not None}
    assert not cycles, "\n".join(" -> ".join(c) for c in sorted(cycles))


def test_the_checker_sees_a_lazy_upward_import(tmp_path):
    """The check reads imports inside functions too (a lazy import is still an edge)."""
    assert "factorules.compiler.pipeline" in GRAPH["factorules.audit.command"]
    assert any("factorules.compiler" in t for t in GRAPH["factorules.tools.bench"])


def test_the_cycle_check_finds_a_cycle_through_a_lazy_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycle_from(graph, "a") == ["a", "b", "c", "a"]
    assert cycle_from(graph, "d") == ["a", "b", "c", "a"]
    assert cycle_from({"a": {"b"}, "b": set()}, "a") is None


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_is_at_most_max_lines(name):
    """Every module of factorules/ can be read in one sitting (layers.toml's max_lines)."""
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= CONTRACT["max_lines"], (f"{MODULES[name].relative_to(ROOT)}: {lines} lines, "
                                            f"more than max_lines = {CONTRACT['max_lines']}")
