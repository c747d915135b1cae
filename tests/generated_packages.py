"""Importing a generated backend package from a folder under a private name (a tree the
tests generated into a temporary folder, or the committed one imported afresh)."""
from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path

_ids = itertools.count()


def load_package(package_dir: Path) -> dict:
    """Import a generated backend package under a private name: {submodule: module}."""
    name = f"_factorules_private_{next(_ids)}"
    spec = importlib.util.spec_from_file_location(
        name, package_dir / "__init__.py", submodule_search_locations=[str(package_dir)])
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    try:
        spec.loader.exec_module(package)
        prefix = name + "."
        return {k[len(prefix):]: m for k, m in sys.modules.items() if k.startswith(prefix)}
    finally:
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]
