"""PyTorch's own harnesses on the generated torch.autograd.Function: gradcheck and
gradgradcheck (forward AD, batched gradients, forward-over-reverse), torch.vmap, torch.func."""
import numpy as np
import pytest
import torch

from generated import torch as fr
from generator.verify import well_conditioned

SHAPES = {"tall": (5, 3), "square": (3, 3), "wide": (3, 5)}


def matrix(shape, dtype, batch=(2,), seed=0):
    np_dtype = np.complex128 if dtype.is_complex else np.float64
    a = well_conditioned(np.random.default_rng(seed), SHAPES[shape], np_dtype, batch)
    return torch.tensor(a, dtype=dtype, requires_grad=True)


def differentiable_outputs(mode):
    def f(a):
        return tuple(x for x in fr.qr(a, mode=mode) if x.numel() > 0)
    return f


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("mode", ["reduced", "complete", "r"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128], ids=["f64", "c128"])
def test_gradcheck_forward_and_reverse_batched(dtype, mode, shape):
    assert torch.autograd.gradcheck(
        differentiable_outputs(mode), (matrix(shape, dtype),), check_forward_ad=True,
        check_backward_ad=True, check_batched_grad=True, check_batched_forward_grad=True)


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("mode", ["reduced", "complete", "r"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128], ids=["f64", "c128"])
def test_gradgradcheck_second_order(dtype, mode, shape):
    assert torch.autograd.gradgradcheck(
        differentiable_outputs(mode), (matrix(shape, dtype),), check_fwd_over_rev=True,
        check_rev_over_rev=True, check_batched_grad=True)


@pytest.mark.parametrize("mode", ["reduced", "complete", "r"])
def test_vmap_matches_the_batched_call(mode):
    a = matrix("tall", torch.float64, batch=(4,)).detach()
    mapped = torch.vmap(lambda x: tuple(fr.qr(x, mode=mode)))(a)
    direct = fr.qr(a, mode=mode)
    assert torch.allclose(mapped[1], direct.R, rtol=0, atol=1e-13)
    if mode != "r":
        assert torch.allclose(mapped[0], direct.Q, rtol=0, atol=1e-13)


def test_torch_func_jacrev_equals_jacfwd():
    a = matrix("tall", torch.float64, batch=()).detach()
    rev = torch.func.jacrev(lambda x: fr.qr(x, mode="complete").Q)(a)
    fwd = torch.func.jacfwd(lambda x: fr.qr(x, mode="complete").Q)(a)
    assert rev.shape == (5, 5, 5, 3)
    assert torch.allclose(rev, fwd, rtol=0, atol=1e-12)


def test_float32_gradients_flow_and_keep_their_dtype():
    a = matrix("wide", torch.float32)
    q, r = fr.qr(a)
    (q.sum() + r.sum()).backward()
    assert a.grad.dtype == torch.float32 and torch.isfinite(a.grad).all()


@pytest.mark.parametrize("shape", [(5, 0), (0, 5), (0, 0)])
@pytest.mark.parametrize("mode", ["reduced", "complete", "r"])
def test_zero_size_matrices_backpropagate_zero_size_gradients(mode, shape):
    a = torch.zeros((2,) + shape, dtype=torch.float64, requires_grad=True)
    out = [x for x in fr.qr(a, mode=mode) if x.numel() or x.ndim > 1]
    sum(x.sum() for x in out).backward()
    assert a.grad.shape == a.shape
