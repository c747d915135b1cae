"""The hand-written runtime sources (templates/<backend>/*.py, templates/_runtime_shared.py):
importable as they are, without rendering, and copied into generated/<backend>/ unchanged under
the two-line header that names them and their sha256."""
import ast
import hashlib
import importlib.machinery
import importlib.util
import itertools
import sys
import types

import numpy as np
import pytest

from fake_cupy import FakeCupy
from factorules.compiler.paths import ROOT, TEMPLATES
from factorules.compiler.backends import NAMES as BACKENDS
from factorules.compiler.render import SHARED_RUNTIME, header

ARRAY_MODULES = {"numpy": "numpy", "torch": "torch", "jax": "jax.numpy", "cupy": "cupy"}
_ids = itertools.count()


def _sources(backend):
    """The runtime sources generated/<backend>/ holds copies of: {generated name: source}."""
    own = {path.name: path for path in sorted((TEMPLATES / backend).glob("*.py"))}
    return {**own, SHARED_RUNTIME: TEMPLATES / SHARED_RUNTIME}


def _load_sources(backend, modules, folder=None):
    """Import ``modules`` of templates/<backend>/ under a private package whose path is that
    folder and templates/ (where _runtime_shared.py lies): {submodule name: module}.  With
    ``folder``, the modules' ``__file__`` is there (what they read beside them, too)."""
    name = f"_factorules_runtime_source_{backend}_{next(_ids)}"
    package = types.ModuleType(name)
    package.__path__ = [str(TEMPLATES / backend), str(TEMPLATES)]
    sys.modules[name] = package
    try:
        for module in modules:
            source = TEMPLATES / backend / f"{module}.py"
            loader = importlib.machinery.SourceFileLoader(f"{name}.{module}", str(source))
            spec = importlib.util.spec_from_file_location(
                loader.name, (folder or source.parent) / source.name, loader=loader)
            sys.modules[loader.name] = importlib.util.module_from_spec(spec)
            loader.exec_module(sys.modules[loader.name])
        prefix = name + "."
        return {key[len(prefix):]: m for key, m in sys.modules.items() if key.startswith(prefix)}
    finally:
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]


def _runtime_all(backend):
    """The runtime's ``__all__``, read from its source."""
    tree = ast.parse((TEMPLATES / backend / "_runtime.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["__all__"]:
            return ast.literal_eval(node.value)
    raise AssertionError(f"templates/{backend}/_runtime.py has no __all__")


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_runtime_source_imports_as_it_is(backend, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # nothing written under templates/
    wanted = ["_runtime", "sparse_qr"] if backend == "numpy" else ["_runtime"]
    if backend == "cupy":  # its runtime reads the rendered kernels beside it at import
        (tmp_path / "_kernels.cu").write_text(
            (ROOT / "generated" / "cupy" / "_kernels.cu").read_text(encoding="utf-8"))
        with FakeCupy(lambda: tmp_path).installed():
            modules = _load_sources(backend, wanted, tmp_path)
    else:
        modules = _load_sources(backend, wanted)
    assert set(wanted) | {"_runtime_shared", "_array_module"} <= set(modules)
    runtime, shared = modules["_runtime"], modules["_runtime_shared"]
    xp = modules["_array_module"].xp
    assert shared.xp is xp and xp.__name__ == ARRAY_MODULES[backend]
    assert [name for name in runtime.__all__ if not hasattr(runtime, name)] == []
    assert runtime._version_tuple("2.13.0+cpu") == (2, 13, 0)
    zeros = runtime._zeros_like(xp.asarray(np.ones((2, 3))))
    assert tuple(zeros.shape) == (2, 3) and float(abs(zeros).max()) == 0
    if backend == "numpy":
        assert modules["sparse_qr"]._copyltu is runtime._copyltu
        assert np.array_equal(runtime._pad_rows(np.ones((1, 2)), 1), [[1, 1], [0, 0]])


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_generated_runtime_files_are_their_sources_under_a_header(backend):
    sources = _sources(backend)
    assert {"_runtime.py", "_array_module.py", SHARED_RUNTIME} <= set(sources)
    for name, source in sources.items():
        data = source.read_bytes()
        head = header(source.relative_to(ROOT).as_posix(), hashlib.sha256(data).hexdigest())
        generated = (ROOT / "generated" / backend / name).read_text(encoding="utf-8")
        assert generated == f"# {head[0]}\n# {head[1]}\n" + data.decode("utf-8"), name


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_runtime_offers_what_the_generated_modules_import(backend):
    """Each module imports the helpers it reads (tests/test_generated_layout.py); the runtime's
    __all__ offers them all (and what the printers may emit besides: _pad_cols, ...)."""
    imported = set()
    for path in (ROOT / "generated" / backend).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module == "_runtime":
                imported |= {alias.name for alias in node.names}
    offered = set(_runtime_all(backend))
    assert imported and imported <= offered, sorted(imported - offered)
