"""PyTorch's own harnesses on the generated torch.autograd.Function of every spec: gradcheck
and gradgradcheck (forward AD, batched gradients, forward-over-reverse), torch.vmap,
torch.func.  An input with a structure (cholesky's Hermitian A) is differentiated through
X -> op(project(X)), so that the numerical Jacobian sees a function of every entry; outputs
with a gauge (eigh's eigenvectors) are composed with factorules.tools.gauge.fix, the alignment to
their value at the checked point, so that the checked function is gauge invariant (a loss of
the raw eigenvectors has no derivative, and the pullbacks reject it)."""
import contextlib
import functools

import numpy as np
import pytest
import torch

import generated.torch as fr
from factorules.tools import gauge
from factorules.tools.adapters import as_tuple
from spec_cases import alternate, cases, in_turn, regression, sampled, wide64

TORCH_DTYPES = {"f32": torch.float32, "f64": torch.float64, "c64": torch.complex64,
                "c128": torch.complex128}


def matrix(case, seed=0, requires_grad=True):
    """The case's input as a tensor (drawn in double precision, then cast)."""
    a = case.input(np.random.default_rng(seed), wide64(case.dtype))
    return torch.tensor(a, dtype=TORCH_DTYPES[case.dtype_name], requires_grad=requires_grad)


def project(x, structure):
    """The input's structure imposed on any X, in torch (factorules.audit.sample.project's)."""
    if structure == "hermitian":
        # conj_physical, not the lazy x.mH: torch 2.13's batched forward AD hits an internal
        # assert on (x + x.mH) / 2 for complex x ("Expected the output of forward
        # differentiable view operations to have the tangent have the same layout as
        # primal"), whatever is applied after it (torch.linalg.cholesky alike)
        return (x + torch.conj_physical(x.transpose(-1, -2))) / 2
    if structure == "upper_triangular":
        return x.triu()
    if structure == "lower_triangular":
        return x.tril()
    assert structure in (None, "general"), f"no torch projection for structure {structure!r}"
    return x


def op(case):
    return getattr(fr, case.op)


def as_real(y):
    """y, or its real and imaginary parts stacked when it is complex (eig's outputs are complex
    for real input; jacrev and a real loss need real outputs)."""
    return torch.stack((y.real, y.imag), -1) if y.is_complex() else y


def differentiable_outputs(case, a):
    """X -> the differentiable outputs of op(project(X)) at the case's options, those with a
    gauge aligned with their value at ``a`` (a gauge-invariant function of X)."""
    f = op(case)
    with torch.no_grad():
        reference = as_tuple(f(project(a.detach(), case.structure), **case.options))

    def g(x):
        outs = gauge.fix(as_tuple(f(project(x, case.structure), **case.options)), reference,
                         case.cv)
        return tuple(y for y, d in zip(outs, case.differentiable) if d)
    return g


@pytest.mark.parametrize("case", sampled(cases(("regular",), ("f64", "c128"), ("b2",),
                                               small=True),
                                         seed=1, must=regression))
def test_gradcheck_forward_and_reverse_batched(case):
    a = matrix(case)
    assert torch.autograd.gradcheck(
        differentiable_outputs(case, a), (a,), check_forward_ad=True,
        check_backward_ad=True, check_batched_grad=True, check_batched_forward_grad=True)


def _second_order_cases():
    """Each spec variant in the shape classes that tests/test_jax_harness.py's two second-order
    tests (start=0 and 1, every other variant each) do not take: the one of start=2, and the
    one of the JAX test that skips the variant; so that every variant meets second order in
    every shape class in one framework, and in each framework in one; and the regression
    cases (all of them under --full)."""
    params = cases(("regular",), ("f64", "c128"), ("b2",), small=True)
    chosen = {}
    for p in (in_turn(params, shapes=True, start=2)
              + alternate(in_turn(params, shapes=True, start=1), 1)
              + alternate(in_turn(params, shapes=True, start=0), 0)
              + [p for p in params if regression(p.values[0])]):
        chosen.setdefault(p.id, p)
    return list(chosen.values())


@pytest.mark.parametrize("case", _second_order_cases())
def test_gradgradcheck_second_order(case):
    a = matrix(case)
    assert torch.autograd.gradgradcheck(
        differentiable_outputs(case, a), (a,), check_fwd_over_rev=True,
        check_rev_over_rev=True, check_batched_grad=True)


@pytest.mark.parametrize("case", cases(("first",), ("f64",), ("b2",), small=True))
def test_vmap_matches_the_batched_call(case):
    a = matrix(case, requires_grad=False)
    a = torch.cat([a, 2 * a])  # a batch of four
    f = op(case)
    mapped = as_tuple(torch.vmap(lambda x: as_tuple(f(x, **case.options)))(a))
    direct = as_tuple(f(a, **case.options))
    assert len(mapped) == len(direct) == len(case.outputs)
    for differentiable, m, d in zip(case.differentiable, mapped, direct):
        if differentiable:  # an output returned empty is empty in both, in its own way
            assert torch.allclose(m, d, rtol=0, atol=1e-13)


@pytest.mark.parametrize("case", cases(("first",), ("f64",), ("unbatched",), small=True))
def test_torch_func_jacrev_equals_jacfwd(case):
    """Both modes of torch.func on op itself (no projection): at a structured input they
    must agree on every direction, including those off the structure.  With a gauge, the
    rows of jacrev whose cotangent (a basis vector) depends on the gauge have no derivative:
    NaN with the gauge check on (the rows of the others equal jacfwd's), the rules' own
    values with it off."""
    a = matrix(case, requires_grad=False)
    f = op(case)
    gauge = bool(case.cv.gauge_cotangents)
    for i, differentiable in enumerate(case.differentiable):
        if not differentiable:
            continue

        def output(x, i=i, **options):
            return as_real(as_tuple(f(x, **case.options, **options))[i])

        unchecked = functools.partial(output, **({"check_gauge": False} if gauge else {}))
        rev = torch.func.jacrev(unchecked)(a)
        fwd = torch.func.jacfwd(output)(a)
        assert rev.shape == output(a).shape + a.shape
        assert torch.allclose(rev, fwd, rtol=0, atol=1e-12)
        if gauge:
            checked = torch.func.jacrev(output)(a)
            rows = checked.reshape(output(a).numel(), -1)
            failed = rows.isnan().any(dim=1)
            assert (rows.isnan().all(dim=1) == failed).all()
            assert torch.allclose(rows[~failed], fwd.reshape(rows.shape)[~failed], rtol=0,
                                  atol=1e-12)


@pytest.mark.parametrize("case", cases(("regular",), ("f32",), ("b2",), small=True))
def test_float32_gradients_flow_and_keep_their_dtype(case):
    """The sum of the outputs' entries, those with a gauge aligned first (the sum of a full
    SVD's completion U[:, k:] depends on its rotation, and has no derivative)."""
    a = matrix(case)
    with torch.no_grad():
        reference = as_tuple(op(case)(a, **case.options))
    outs = gauge.fix(as_tuple(op(case)(a, **case.options)), reference, case.cv)
    sum(as_real(x).sum() for x, d in zip(outs, case.differentiable) if d).backward()
    assert a.grad.dtype == torch.float32 and torch.isfinite(a.grad).all()
    assert a.grad.abs().max() > 0


@contextlib.contextmanager
def default_dtype(dtype):
    saved = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(saved)


def outputs_and_derivatives(case, a, tangent):
    """The outputs, the gradient of the sum of the aligned outputs (float32 test's loss) and
    the explicit JVP's tangents at ``a`` along ``tangent``, as one tuple (None left out)."""
    x = a.clone().requires_grad_(True)
    with torch.no_grad():
        reference = as_tuple(op(case)(x, **case.options))
    outs = gauge.fix(as_tuple(op(case)(x, **case.options)), reference, case.cv)
    sum(as_real(y).sum() for y, d in zip(outs, case.differentiable) if d).backward()
    _, tangents = getattr(fr, f"{case.op}_jvp")(a, tangent, **case.options)
    return (*(y.detach() for y in reference), x.grad,
            *(t for t in as_tuple(tangents) if t is not None))


@pytest.mark.parametrize("case", cases(("first",), ("f32", "c128"), ("b2",), small=True))
def test_the_default_dtype_changes_no_result(case):
    """torch.set_default_dtype (float32 or float64) changes neither the dtype nor a bit of
    the outputs, the gradient or the tangents: nothing in a rule is created in the default
    dtype."""
    a = matrix(case, requires_grad=False)
    tangent = torch.tensor(case.tangent(np.random.default_rng(1), a.numpy()))
    results = {}
    for dtype in (torch.float32, torch.float64):
        with default_dtype(dtype):
            results[dtype] = outputs_and_derivatives(case, a, tangent)
    single, double = results[torch.float32], results[torch.float64]
    want = [TORCH_DTYPES[case.dtype_name] if np.dtype(d) == case.dtype else
            getattr(torch, np.dtype(d).name) for d in case.output_dtypes()]
    assert [y.dtype for y in single[:len(want)]] == want
    assert single[len(want)].dtype == a.dtype
    assert len(single) == len(double)
    for s_, d in zip(single, double):
        assert s_.dtype == d.dtype and torch.equal(s_, d)


@pytest.mark.parametrize("case", cases(("zero",), ("f64",), ("b2",)))
def test_zero_size_matrices_backpropagate_zero_size_gradients(case):
    a = torch.tensor(case.input(np.random.default_rng(0)), requires_grad=True)
    assert a.numel() == 0
    outs = as_tuple(op(case)(a, **case.options))
    sum(as_real(x).sum() for x, d in zip(outs, case.differentiable) if d).backward()
    assert a.grad.shape == a.shape
