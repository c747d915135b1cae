"""The installable package: the wheel built from a copy of the repository's sources, installed
into an empty folder, used from another working directory (no checkout on sys.path)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from factorules import __version__
from factorules.compiler.backends import NAMES

ROOT = Path(__file__).resolve().parent.parent
# what pyproject.toml assembles the package from
SOURCES = ("pyproject.toml", "README.md", "factorules", "generated", "spec", "templates")

pytestmark = pytest.mark.xdist_group("package")


def run(*args, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built (without network: setuptools from the environment) from a copy of
    exactly the sources pyproject.toml names, so the checkout is left as it is."""
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
        "--disable-pip-version-check", "-q", "-w", out, source, cwd=source)
    (built,) = out.glob("factorules-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The wheel installed into an empty target folder (its dependencies are those of the
    test environment, reached through its site-packages)."""
    target = tmp_path_factory.mktemp("target")
    run(sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check",
        "-q", "--target", target, wheel, cwd=target)
    return target


def isolated(target: Path, code: str, cwd: Path) -> dict:
    """Run ``code`` with the installed folder as the only addition to the environment's
    sys.path (not the checkout: -I, and a working directory outside it); it prints JSON."""
    prelude = f"import sys; sys.path.insert(0, {str(target)!r})\n"
    result = run(sys.executable, "-I", "-c", prelude + code, cwd=cwd)
    return json.loads(result.stdout.splitlines()[-1])


def test_wheel_holds_the_rules_the_compiler_and_its_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert wheel.name == f"factorules-{__version__}-py3-none-any.whl"
    for backend in NAMES:
        assert f"factorules/{backend}/__init__.py" in names
        assert f"factorules/{backend}/qr.py" in names
        assert f"factorules/templates/{backend}/module.py.jinja" in names
    assert "factorules/cupy/_kernels.cu" in names
    assert {f"factorules/spec/{p.name}" for p in (ROOT / "spec").glob("*.yaml")} <= names
    assert {"factorules/cli.py", "factorules/compiler/render.py", "factorules/layers.toml",
            "factorules/templates/package_init.py.jinja"} <= names
    assert not any(n.startswith(("generated/", "tests/", "spec/")) for n in names)
    metadata = zipfile.ZipFile(wheel).read(
        f"factorules-{__version__}.dist-info/METADATA").decode()
    assert f"Version: {__version__}" in metadata
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for extra in ("torch", "jax", "cupy", "sparse"):
        assert f"Provides-Extra: {extra}" in metadata
        assert pyproject["project"]["optional-dependencies"][extra]
    for dependency in ("sympy", "Jinja2", "PyYAML", "numpy", "mpmath"):
        assert f"Requires-Dist: {dependency}" in metadata


def test_installed_backends_take_gradients_from_another_directory(installed, tmp_path):
    code = """
import json, sys
import factorules.torch as fr
import torch
A = torch.tensor([[2.0, 1.0], [1.0, 3.0], [0.5, -1.0]], dtype=torch.float64, requires_grad=True)
Q, R = fr.qr(A)
(R.diagonal().abs().sum() + (Q ** 2).sum()).backward()
torch_grad = A.grad.tolist()
torch_modules = sorted(m for m in ("scipy", "jax", "cupy", "generated") if m in sys.modules)
import factorules.jax as fj
import jax, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
jax_grad = jax.grad(lambda a: fj.qr(a).R.diagonal().__abs__().sum() + (fj.qr(a).Q ** 2).sum())(
    jnp.asarray([[2.0, 1.0], [1.0, 3.0], [0.5, -1.0]]))
import factorules
print(json.dumps({"file": factorules.__file__, "version": factorules.__version__,
                  "torch_grad": torch_grad, "jax_grad": jax_grad.tolist(),
                  "torch_imported": torch_modules,
                  "generated": "generated" in sys.modules}))
"""
    out = isolated(installed, code, cwd=tmp_path)
    assert Path(out["file"]).parent == installed / "factorules"
    assert out["version"] == __version__
    assert not out["generated"]
    assert out["torch_imported"] == [], "factorules.torch imported more than torch"
    # the same loss through the checkout's rules: the installed ones are those
    import numpy as np
    import torch

    from generated import torch as gt

    A = torch.tensor([[2.0, 1.0], [1.0, 3.0], [0.5, -1.0]], dtype=torch.float64,
                     requires_grad=True)
    Q, R = gt.qr(A)
    (R.diagonal().abs().sum() + (Q ** 2).sum()).backward()
    np.testing.assert_allclose(out["torch_grad"], A.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out["jax_grad"], A.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend, others", [
    ("numpy", ("torch", "jax", "cupy")),
    ("torch", ("scipy", "jax", "cupy")),
    ("jax", ("scipy", "torch", "cupy")),
])
def test_a_backend_imports_only_its_framework(installed, tmp_path, backend, others):
    """(SciPy is the NumPy reference's LAPACK; torch loads it for a host fallback only.)"""
    code = f"""
import json, sys
import factorules.{backend}
print(json.dumps(sorted(m for m in {list(others)!r} if m in sys.modules)))
"""
    assert isolated(installed, code, cwd=tmp_path) == []


def test_console_script_runs_every_subcommand_parser(installed, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(installed))
    script = installed / "bin" / "factorules"
    listed = run(sys.executable, script, "list", "--json", cwd=tmp_path, env=env)
    rows = json.loads(listed.stdout)
    assert {r["spec"] for r in rows} == {p.stem for p in (ROOT / "spec").glob("*.yaml")}
    helped = run(sys.executable, script, "--help", cwd=tmp_path, env=env).stdout
    from factorules.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    for command in commands:
        assert command in helped, command
    # the installed compiler renders what the checkout committed: vendor torch's qr with it
    # and compare with generated/torch
    out = tmp_path / "rules"
    run(sys.executable, script, "generate", "--out", out, "--package", "rules", "--ops", "qr",
        "--backends", "torch", cwd=tmp_path, env=env)
    for path in (out / "torch").glob("*.py"):
        committed = ROOT / "generated" / "torch" / path.name
        if path.name != "__init__.py":
            assert path.read_text() == committed.read_text(), path.name
    refused = subprocess.run([sys.executable, str(script), "generate"], cwd=tmp_path, env=env,
                             capture_output=True, text=True)
    assert refused.returncode == 2 and "--out" in refused.stderr, refused.stderr
