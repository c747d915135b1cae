"""`cli.py signatures`: every spec's signature table agrees with the pinned libraries, and a
library that changes a keyword, a default or a documented value is reported by name (a stub
module stands for the changed library); a table entry that contradicts its own call is a
spec error."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from factorules.tools import signatures
from factorules.compiler.check import check_spec
from factorules.compiler.paths import ROOT
from factorules.compiler.spec import SpecError
from factorules.compiler.spec_loader import load_spec

QR = ROOT / "spec" / "qr.yaml"
NUMPY_ENTRY = ('  numpy: [{call: "numpy.linalg.qr(A, mode=mode)", signature: "(a, mode=\'reduced\')", '
               'accepts: {mode: [reduced, complete, r, raw, full, economic]}}]')


def test_the_tables_agree_with_the_pinned_libraries():
    result = subprocess.run([sys.executable, "cli.py", "signatures", "--json"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    findings = json.loads(result.stdout)
    specs = {p.stem for p in (ROOT / "spec").glob("*.yaml")}
    assert {f["spec"] for f in findings} == specs
    assert len(findings) == 4 * len(specs)  # one per backend
    assert all(f["status"] in ("as recorded", "not introspected") for f in findings), findings
    read = [f for f in findings if f["status"] == "as recorded" and f["function"]]
    assert any(f["note"] == "read from its docstring's first line" for f in read)  # torch
    assert any(f["note"] == "read from inspect.signature" for f in read)
    # what cannot be read here is said, not guessed (cupyx needs CUDA libraries to import)
    for f in findings:
        if f["status"] == "not introspected":
            assert f["note"] and not f["differences"]


STUB = '''
def qr(a, mode="reduced", *, pivot=False, check=True):
    """QR decomposition (a stub of a changed library).

    Parameters
    ----------
    a : array
    mode : {'reduced', 'complete', 'r', 'raw', 'full', 'economic', 'sketch'}, optional
        How much to return.
    pivot : bool
        New.
    """


def qr_renamed(matrix, mode="complete"):
    """QR.

    Args:
        mode (str): one of 'reduced', 'complete'.
    """
'''


@pytest.fixture
def stub_tree(tmp_path):
    """A spec folder whose qr calls stublib.qr on NumPy, with the table of numpy.linalg.qr."""
    (tmp_path / "stublib").mkdir()
    (tmp_path / "stublib" / "__init__.py").write_text(
        textwrap.dedent(STUB) + '\n__version__ = "1.2.3"\n', encoding="utf-8")
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    return tmp_path, spec_dir


def _write_qr(spec_dir: Path, entry: str) -> Path:
    text = QR.read_text(encoding="utf-8")
    assert text.count(NUMPY_ENTRY) == 1
    path = spec_dir / "qr.yaml"
    path.write_text(text.replace(NUMPY_ENTRY, entry), encoding="utf-8")
    return path


def _numpy_finding(root: Path, path: Path):
    sys.path.insert(0, str(root))
    try:
        sys.modules.pop("stublib", None)
        found = signatures.check_spec_signatures(load_spec(path))
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("stublib", None)
    return next(f for f in found if f.backend == "numpy")


def test_a_changed_keyword_default_and_value_are_named(stub_tree):
    root, spec_dir = stub_tree
    path = _write_qr(spec_dir, NUMPY_ENTRY.replace("numpy.linalg.qr(", "stublib.qr("))
    finding = _numpy_finding(root, path)
    assert finding.status == "differs" and finding.version == "1.2.3"
    assert finding.differences == [
        "keyword 'pivot' added (keyword-only, default False)",
        "keyword 'check' added (keyword-only, default True)",
        "'mode': value 'sketch' added"]


def test_a_removed_keyword_and_a_changed_default_are_named(stub_tree):
    root, spec_dir = stub_tree
    entry = ('  numpy: [{call: "stublib.qr_renamed(A, mode=mode)", '
             'signature: "(a, mode=\'reduced\', order=\'C\')", '
             'accepts: {mode: [reduced, complete, r]}}]')
    finding = _numpy_finding(root, _write_qr(spec_dir, entry))
    assert finding.differences == [
        "keyword 'matrix' added (positional or keyword, no default)",
        "keyword 'a' removed",
        "default of 'mode' changed: 'reduced' -> 'complete'",
        "keyword 'order' removed",
        "'mode': value 'r' no longer documented"]


def test_the_entry_for_the_installed_version_is_the_one_checked(stub_tree):
    root, spec_dir = stub_tree
    entry = NUMPY_ENTRY.replace("numpy.linalg.qr(", "stublib.qr(").replace(
        "[{call:", '[{until: "1.0", call: "stublib.qr_renamed(A, mode=mode)", '
                   'signature: "(matrix, mode=\'complete\')"}, {since: "1.0", call:')
    finding = _numpy_finding(root, _write_qr(spec_dir, entry))
    assert finding.function == "stublib.qr"  # 1.2.3 is past 'until: 1.0'
    later = NUMPY_ENTRY.replace("numpy.linalg.qr(", "stublib.qr(").replace(
        "[{call:", '[{since: "2.0", call:')
    path = _write_qr(spec_dir, later.replace('[{since: "2.0", call:', '[{until: "1.0", call: '
                                             '"stublib.qr(A)", signature: "(a)"}, '
                                             '{since: "2.0", call:'))
    finding = _numpy_finding(root, path)
    assert finding.status == "no entry"
    assert finding.differences == ["no entry covers version 1.2.3"]


def test_the_command_reports_the_stub_and_exits_1(stub_tree):
    root, spec_dir = stub_tree
    _write_qr(spec_dir, NUMPY_ENTRY.replace("numpy.linalg.qr(", "stublib.qr("))
    (spec_dir / "qr.yaml").write_text((spec_dir / "qr.yaml").read_text().replace(
        'delegate: {option: pivoting, call: "qr_pivoted(A, mode=mode)"}\n', ""))
    env = dict(os.environ, PYTHONPATH=f"{root}{os.pathsep}{ROOT}")
    result = subprocess.run([sys.executable, "cli.py", "--spec-dir", str(spec_dir),
                             "signatures"], cwd=ROOT, capture_output=True, text=True,
                            timeout=600, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "- keyword 'pivot' added (keyword-only, default False)" in result.stdout
    assert "- 'mode': value 'sketch' added" in result.stdout
    assert "signatures: 4 entries, 1 differ from the spec" in result.stdout


# a table entry checked against its own call when the spec is loaded
BAD = [
    ("not-a-signature", "signature: \"(a, mode='reduced')\"", 'signature: "a, mode"',
     "signature 'a, mode' is not a parameter list"),
    ("keyword-not-in-signature", "signature: \"(a, mode='reduced')\"", 'signature: "(a)"',
     "keyword mode= is not in its signature (a)"),
    ("accepts-without-signature", "signature: \"(a, mode='reduced')\", ", "",
     "accepts needs the function's signature too"),
    ("accepts-of-another-keyword", "accepts: {mode:", "accepts: {how:",
     "accepts: 'how' is not in its signature"),
    ("a-value-not-accepted", "accepts: {mode: [reduced, complete, r, raw, full, economic]}",
     "accepts: {mode: [complete, r, raw]}", "passes mode='reduced', which accepts.mode does "
                                            "not list"),
    ("reversal-of-two-arrays", "call: \"numpy.linalg.qr(A, mode=mode)\"",
     "call: \"numpy.linalg.qr(flip_rows(A, A), mode=mode)\"",
     "positional arguments must be input names, optionally with .H, .T or .conj and reversed"),
    ("accepts-not-strings", "accepts: {mode: [reduced, complete, r, raw, full, economic]}",
     "accepts: {mode: reduced}", "signatures.numpy.accepts.mode must be a non-empty list"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_a_bad_table_entry_is_a_spec_error(case, tmp_path):
    _, old, new, words = case
    path = _write_qr(tmp_path, NUMPY_ENTRY.replace(old, new))
    text = path.read_text(encoding="utf-8")
    line = text[:text.index("  numpy: [{call:")].count("\n") + 1
    with pytest.raises(SpecError) as err:
        check_spec(load_spec(path, display_path="spec/qr.yaml"))
    assert err.value.line == line, str(err.value)
    assert words in err.value.message, str(err.value)


def _ignoring_mode(qr):
    """A qr whose mode keyword has no effect (a library that changed what it means): the
    complete factors for every mode."""
    def changed(a, mode="reduced"):
        return qr(a, mode="complete")
    return changed


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
def test_a_native_call_returning_other_shapes_fails_in_one_line_naming_it(backend, monkeypatch):
    """A native call's results are checked against the shapes the spec declares, so a call
    that returns others fails at the call, not deep in a rule."""
    import importlib

    import numpy as np
    a = np.random.default_rng(0).standard_normal((2, 5, 3))
    if backend == "numpy":
        library = np.linalg
        fr = importlib.import_module("generated.numpy")
    elif backend == "torch":
        import torch
        library, a = torch.linalg, torch.from_numpy(a)
        fr = importlib.import_module("generated.torch")
    else:
        import jax.numpy as jnp
        library, a = jnp.linalg, jnp.asarray(a)
        fr = importlib.import_module("generated.jax")
    monkeypatch.setattr(library, "qr", _ignoring_mode(library.qr))
    with pytest.raises(ValueError) as raised:
        fr.qr(a, mode="reduced")
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"qr: {backend if backend != 'jax' else 'jax.numpy'}.linalg.qr("
                              "A, mode='reduced') returned Q of shape (2, 5, 5), where "
                              "spec/qr.yaml:61 declares Q: [m, k] = (5, 3)"), message
    monkeypatch.undo()
    assert tuple(fr.qr(a, mode="reduced")[0].shape) == (2, 5, 3)  # the real call passes


def test_a_call_may_pass_an_input_reversed():
    """A positional argument may be an input reversed by flip_rows/flip_cols (RQ as QR of
    flip_cols(A.H)); the generated code passes it so."""
    from factorules.compiler.native_call import parse_native_call
    from factorules.compiler.printers import MODULES
    from factorules.compiler.render import load_checked
    (checked,) = load_checked([QR])
    entry = next(s for s in checked.spec.signatures if s.backend == "numpy" and s.until is None)
    import dataclasses
    entry = dataclasses.replace(entry, call="numpy.linalg.qr(flip_cols(A.H), mode=mode)")
    call = parse_native_call(checked.spec, "numpy", entry)
    assert call.args == ("flip_cols(A.H)",)
    from factorules.compiler.render import _primal
    primal = _primal(MODULES["numpy"].Printer, checked, checked.variants[0], call)
    assert primal.call.startswith("_native_shapes(_np.linalg.qr(_np.flip(_adjoint(A), -1), "
                                  "mode='reduced'), "), primal.call
