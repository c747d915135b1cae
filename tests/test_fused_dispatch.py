"""torch's backward takes the fused pullback (generated/torch/_fused.py) for a batch of
small matrices on the CPU, and the unfused rule everywhere else: both give the same
gradient, the checks of degenerate inputs raise on both, and without a compiler the rules run
unfused after one warning.  (Every kernel is checked against the NumPy rule in
tests/test_fused_rules.py.)"""
import numpy as np
import pytest
import torch

from generated import torch as fr
from generated.torch import _fused

BATCH = _fused.MIN_BATCH
# (op, options, matrix size): a spectral rule with its partial pullbacks, a triangular one,
# a tall and a wide one
CASES = [("svd", {"full_matrices": False}, (4, 4)), ("eigh", {}, (5, 5)),
         ("cholesky", {}, (3, 3)), ("qr", {"mode": "reduced"}, (6, 3)),
         ("lq", {"mode": "reduced"}, (3, 5))]


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FACTORULES_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.delenv("FACTORULES_FUSED", raising=False)


@pytest.fixture()
def runs(monkeypatch):
    """The fused kernels' calls, recorded (their results: True when a rule ran)."""
    calls = []
    real = _fused.run

    def recorded(*args):
        calls.append(real(*args))
        return calls[-1]
    monkeypatch.setattr(_fused, "run", recorded)
    return calls


def _input(op, shape, batch, dtype=torch.float64, seed=0):
    a = torch.tensor(np.random.default_rng(seed).standard_normal((batch, *shape)), dtype=dtype)
    if op in ("eigh", "cholesky"):
        a = a @ a.mT + shape[0] * torch.eye(shape[0], dtype=dtype)
    return a


def _gradient(op, options, a, weights, create_graph=False):
    x = a.clone().requires_grad_()
    outputs = [y for y in getattr(fr, op)(x, **options) if y.dtype.is_floating_point]
    # a loss of every output (|entry|^2 is invariant to the eigenvectors' signs)
    loss = sum((w[: y.numel()].reshape(y.shape) * y.abs() ** 2).sum()
               for y, w in zip(outputs, weights))
    (grad,) = torch.autograd.grad(loss, x, create_graph=create_graph)
    return grad


def _weights(a):
    rng = np.random.default_rng(1)
    return [torch.tensor(rng.uniform(0.5, 2.0, a.numel() * 2), dtype=a.dtype) for _ in range(3)]


@pytest.mark.parametrize("op,options,shape", CASES, ids=[c[0] for c in CASES])
def test_a_batch_of_small_matrices_takes_the_fused_pullback(op, options, shape, runs,
                                                            monkeypatch):
    a = _input(op, shape, BATCH)
    weights = _weights(a)
    fused = _gradient(op, options, a, weights)
    assert runs == [True]
    monkeypatch.setenv("FACTORULES_FUSED", "0")
    unfused = _gradient(op, options, a, weights)
    assert runs == [True]  # the switch turned it off
    assert torch.linalg.vector_norm(fused - unfused) <= 1e-12 * torch.linalg.vector_norm(unfused)


def test_float32_and_complex_batches_too(runs, monkeypatch):
    for dtype in (torch.float32, torch.complex128):
        a = _input("svd", (8, 8), BATCH * 2 + 3, dtype)  # lanes and a rest (float32)
        weights = [w.real.to(a.real.dtype) for w in _weights(a)]
        fused = _gradient("svd", {"full_matrices": False}, a, weights)
        monkeypatch.setenv("FACTORULES_FUSED", "0")
        unfused = _gradient("svd", {"full_matrices": False}, a, weights)
        monkeypatch.delenv("FACTORULES_FUSED")
        assert fused.dtype == unfused.dtype == dtype
        tolerance = 1e-4 if dtype == torch.float32 else 1e-12
        assert torch.linalg.vector_norm(fused - unfused) <= \
            tolerance * torch.linalg.vector_norm(unfused)
    assert runs == [True, True]


def test_second_order_small_batches_and_large_matrices_run_unfused(runs):
    a = _input("svd", (4, 4), BATCH)
    grad = _gradient("svd", {"full_matrices": False}, a, _weights(a), create_graph=True)
    assert grad.requires_grad  # differentiable: the unfused rule in torch operations
    _gradient("svd", {"full_matrices": False}, a[:BATCH - 1], _weights(a))
    big = _input("svd", (_fused.MAX_SIZE + 1, 2), BATCH)
    _gradient("svd", {"full_matrices": False}, big, _weights(big))
    assert runs == []


def test_the_checks_raise_on_the_fused_path(runs, monkeypatch):
    """Tied singular values and a cotangent that tells them apart: no derivative, the same
    error on both paths (the kernel measures the checks as the runtime does)."""
    a = torch.eye(3, dtype=torch.float64).repeat(BATCH, 1, 1)
    errors = []
    for switch in ("1", "0"):
        monkeypatch.setenv("FACTORULES_FUSED", switch)
        x = a.clone().requires_grad_()
        U, S, Vh = fr.svd(x, full_matrices=False)
        with pytest.raises(ValueError, match="svd: .*check_ties=False") as raised:
            torch.autograd.grad(U[..., 1, 0].sum(), x)
        errors.append(str(raised.value))
    assert runs == [True]
    assert errors[0] == errors[1]


def test_without_a_compiler_the_rules_run_unfused_after_a_warning(runs, monkeypatch, tmp_path):
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("FACTORULES_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(_fused, "_KERNELS", {})
    monkeypatch.setattr(_fused, "_WARNED", [])
    a = _input("cholesky", (3, 3), BATCH)
    with pytest.warns(RuntimeWarning, match="fused pullbacks are unavailable"):
        grad = _gradient("cholesky", {}, a, _weights(a))
    monkeypatch.setenv("FACTORULES_FUSED", "0")
    assert torch.equal(grad, _gradient("cholesky", {}, a, _weights(a)))
    assert runs == []
