"""A spec's signature table picks the call for the installed library version: spec/qr.yaml
gives torch.qr(A, some=...) for torch before 1.8 and torch.linalg.qr(A, mode=...) since.
The generated torch module chooses at import; `generate --target torch==1.7` emits the old
call alone, and that module computes what the current one does."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import generated.torch as current
from generated_packages import load_package
from factorules.compiler import pipeline
from factorules.compiler.paths import ROOT
from factorules.compiler.render import load_checked, render_tree
from factorules.compiler.spec import SpecError


@pytest.fixture(scope="module")
def torch_1_7(tmp_path_factory):
    """generated/ for torch 1.7: every torch call from the entries that hold 1.7."""
    root = tmp_path_factory.mktemp("target")
    # the specs with an entry for torch 1.7 (torch.linalg, which the others call, is 1.8's)
    specs = [ROOT / "spec" / "qr.yaml", ROOT / "spec" / "qr_pivoted.yaml"]
    files = render_tree(load_checked(specs, display_dir="spec"), {"torch": "1.7"})
    pipeline.write(files, root)
    return files, load_package(root / "generated" / "torch")


def test_the_target_emits_the_old_call_alone(torch_1_7):
    files, _ = torch_1_7
    text = files["generated/torch/qr.py"]
    assert "_torch.qr(A, some=True)" in text and "_torch.qr(A, some=False)" in text
    assert "_torch.linalg.qr(" not in text and "_LIBRARY_VERSION" not in text
    # the other backends, and a torch spec whose entry holds every version, are as committed
    committed = pipeline.on_disk()
    assert files["generated/numpy/qr.py"] == committed["generated/numpy/qr.py"]
    assert files["generated/torch/qr_pivoted.py"] == committed["generated/torch/qr_pivoted.py"]


@pytest.mark.filterwarnings("ignore:torch.qr is deprecated:UserWarning")  # the old call's
@pytest.mark.parametrize("mode", ["reduced", "complete", "r"])
@pytest.mark.parametrize("shape", [(2, 6, 4), (2, 3, 5)], ids=["tall", "wide"])
def test_the_old_call_computes_what_the_current_one_does(torch_1_7, mode, shape):
    _, modules = torch_1_7
    old = modules["qr"]
    a = torch.tensor(np.random.default_rng(0).standard_normal(shape), requires_grad=True)
    q0, r0 = current.qr(a, mode=mode)
    q1, r1 = old.qr(a, mode=mode)
    assert torch.equal(r0, r1) and torch.equal(q0, q1)
    (g0,) = torch.autograd.grad(r0.sum(), a)
    (g1,) = torch.autograd.grad(r1.sum(), a)
    assert torch.equal(g0, g1)


@pytest.mark.filterwarnings("ignore:torch.qr is deprecated:UserWarning")
def test_the_committed_module_chooses_by_the_installed_version(monkeypatch):
    module = load_package(ROOT / "generated" / "torch")["qr"]
    assert module._primal.__name__ == "_primal"  # torch 2.13: torch.linalg.qr
    monkeypatch.setattr(torch, "__version__", "1.7.1")
    old = load_package(ROOT / "generated" / "torch")["qr"]
    assert old._primal.__name__ == "_primal_until_1_8"
    a = torch.tensor(np.random.default_rng(1).standard_normal((5, 3)))
    assert torch.equal(old.qr(a).R, current.qr(a).R)


def test_a_target_no_entry_holds_is_a_spec_error():
    """cholesky calls torch.linalg.cholesky, since torch 1.8."""
    with pytest.raises(SpecError, match="signatures.torch: no entry for version 1.7") as err:
        render_tree(load_checked([ROOT / "spec" / "cholesky.yaml"]), {"torch": "1.7"})
    text = (ROOT / "spec" / "cholesky.yaml").read_text(encoding="utf-8")
    assert err.value.line == text[:text.index("  torch: [{")].count("\n") + 1


SCIPY_ENTRY = ('  numpy: [{call: "scipy.linalg.qr(A, mode=mode)", batched: false, '
               'values: {mode: {reduced: economic, complete: full}}, '
               'signature: "(a, overwrite_a=False, lwork=None, mode=\'full\', pivoting=False, '
               'check_finite=True)", accepts: {mode: [full, r, economic, raw]}}]')


def test_a_changed_entry_is_followed_by_the_generated_code(tmp_path):
    """qr's NumPy entry changed to SciPy's qr (other mode names, one matrix at a time) in a
    copy of the specs: the regenerated module calls it and computes what the committed one
    does (outputs, tangents, cotangents; every mode; a stack; tall and wide)."""
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    text = (ROOT / "spec" / "qr.yaml").read_text(encoding="utf-8")
    entry = next(line for line in text.splitlines() if line.startswith("  numpy: [{call:"))
    (spec_dir / "qr.yaml").write_text(text.replace(entry, SCIPY_ENTRY), encoding="utf-8")
    (spec_dir / "qr_pivoted.yaml").write_text(
        (ROOT / "spec" / "qr_pivoted.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    files = pipeline.render(spec_dir)
    assert "_unbatched(lambda *_m: _scipy.linalg.qr(*_m, mode='economic'), A)" in \
        files["generated/numpy/qr.py"]
    pipeline.write(files, tmp_path)
    changed = load_package(tmp_path / "generated" / "numpy")["qr"]
    import generated.numpy as committed
    rng = np.random.default_rng(2)
    for shape in [(2, 6, 4), (2, 3, 5)]:
        a, da = rng.standard_normal(shape), rng.standard_normal(shape)
        for mode in ("reduced", "complete", "r"):
            out, tangents = changed.qr_jvp(a, da, mode=mode)
            ref, ref_tangents = committed.qr_jvp(a, da, mode=mode)
            assert all(np.allclose(x, y, rtol=0, atol=1e-12) for x, y in zip(out, ref))
            assert all((x is None and y is None) or np.allclose(x, y, rtol=0, atol=1e-10)
                       for x, y in zip(tangents, ref_tangents))
            _, pullback = changed.qr_vjp(a, mode=mode)
            _, ref_pullback = committed.qr_vjp(a, mode=mode)
            g = rng.standard_normal(ref.R.shape)
            assert np.allclose(pullback(gR=g), ref_pullback(gR=g), rtol=0, atol=1e-10)
