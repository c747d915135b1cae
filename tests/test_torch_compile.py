"""torch.compile of every differentiable generated torch operation: a loss through it and its
gradient are one graph (no graph break, fullgraph=True), equal to eager; the gauge check still
raises in the compiled backward; and the host primal (qr_pivoted's geqp3 through SciPy) runs
as an operator.  Eager behaviour (forward AD, double backward, vmap) is tested elsewhere
(tests/test_torch_harness.py).

Every loss is real and gauge invariant: eigen- and singular vectors enter through |v|^2
(a phase multiplies v) and the full SVD's completion through U U^H (a rotation of U[:, k:]
leaves it unchanged), so the pullbacks' gauge check stays quiet; the losses that are not
(GAUGE_CASES) make it raise."""
from __future__ import annotations

import time

import pytest
import torch

import generated.torch as fr
import ladder

# inductor's compilation calls torch.jit.script_method, which torch 2.13 deprecates
pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")

RTOL = 1e-12  # compiled against eager: the same rules in the same operations
DTYPES = {"f64": torch.float64, "c128": torch.complex128}


def _random(shape, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, dtype=torch.float64, generator=g)
    if dtype.is_complex:
        x = x + 1j * torch.randn(shape, dtype=torch.float64, generator=g)
    return x


def _weights(shape, seed):
    """Fixed real weights that make each entry of an output count differently."""
    return torch.linspace(0.5, 1.5, torch.Size(shape).numel(), dtype=torch.float64).reshape(
        shape).roll(seed)


def _dot(y, seed=0):
    """A real linear function of y (of its real and imaginary parts)."""
    w = _weights(y.shape, seed)
    return (y.real * w).sum() + ((y.imag * w.flip(-1)).sum() if y.is_complex() else 0)


def _sq(v, seed=0):
    """A weighted sum of |v|^2: invariant to the phase of every entry of v."""
    return ((v.abs() ** 2) * _weights(v.shape, seed)).sum()


def _general(shape, dtype, seed=0):
    return (_random(shape, dtype, seed),)


def _hermitian(n, dtype, seed=0, batch=()):
    x = _random((*batch, n, n), dtype, seed)
    return ((x + x.mH) / 2,)


def _positive(n, dtype, seed=0):
    x = _random((n, n), dtype, seed)
    return (x @ x.mH + n * torch.eye(n, dtype=dtype),)


def _compact(shape, dtype, seed=0):
    """(a, tau) of LAPACK's geqrf of a random matrix, the inputs householder_product takes."""
    return tuple(torch.geqrf(_random(shape, dtype, seed)))


def _linear(op, *fields, **options):
    """A loss linear in the named outputs of op(*inputs, **options); with no names, in the
    one output op returns."""
    def loss(*inputs):
        outputs = op(*inputs, **options)
        if not fields:
            return _dot(outputs)
        return sum(_dot(getattr(outputs, name), i) for i, name in enumerate(fields))
    return loss


def _eig_loss(a):
    w, v = fr.eig(a)
    return _dot(w) + _sq(w, 1) + _sq(v, 2)


def _schur_loss(output):
    """|T|^2 weighted, T's diagonal (the eigenvalues) and Z's columns through Z diag(c) Z^H:
    invariant to the Schur vectors' phases (Z -> Z D, T -> D^H T D)."""
    def loss(a):
        t, z = fr.schur(a, output=output)
        c = _weights(z.shape[-1:], 2).to(z.dtype)
        return (_sq(t, 1) + _dot(t.diagonal(dim1=-2, dim2=-1))
                + _dot((z * c) @ z.mH))
    return loss


def _real_spectrum(n, dtype, seed=0):
    """Q (diag(1..n) + strictly upper noise) Q^H: distinct real eigenvalues (real Schur form
    triangular)."""
    q = torch.linalg.qr(_random((n, n), dtype, seed))[0]
    t = torch.diag(torch.arange(1, n + 1, dtype=torch.float64)).to(dtype)
    return (q @ (t + _random((n, n), dtype, seed + 1).triu(1)) @ q.mH,)


def _eigh_loss(a):
    w, v = fr.eigh(a)
    return _dot(w) + _sq(v, 1)


def _eigvals_loss(a):
    w = fr.eigvals(a)
    return _dot(w) + _sq(w, 1)


def _svd_loss(full_matrices):
    def loss(a):
        u, s, vh = fr.svd(a, full_matrices=full_matrices)
        k = s.shape[-1]
        return (_dot(s) + _sq(u[..., :k], 1) + _sq(vh[..., :k, :], 2)
                + (u @ u.mH).real.sum())
    return loss


def _tall(d):
    return _general((5, 3), d)


def _wide(d):
    return _general((3, 5), d)


# id: (inputs(dtype), loss of the inputs).  Where torch's own derivative of the primal differs
# from the spec's (svd-full, cholesky of complex input) or is missing (geqrf, qr-complete of a
# tall matrix, the host qr_pivoted), a compiled gradient equal to eager's is the spec's rule.
CASES = {
    "cholesky": (lambda d: _positive(4, d), _linear(fr.cholesky)),
    "cholesky-upper": (lambda d: _positive(4, d), _linear(fr.cholesky, upper=True)),
    "eig": (lambda d: _general((4, 4), d), _eig_loss),
    "eigh": (lambda d: _hermitian(4, d), _eigh_loss),
    "eigh-batched": (lambda d: _hermitian(4, d, batch=(2,)), _eigh_loss),
    "eigvals": (lambda d: _general((4, 4), d), _eigvals_loss),
    "eigvalsh": (lambda d: _hermitian(4, d), _linear(fr.eigvalsh)),
    "geqrf": (_tall, _linear(fr.geqrf, "a", "tau")),
    "householder_product": (lambda d: _compact((5, 3), d), _linear(fr.householder_product)),
    "lq": (_wide, _linear(fr.lq, "L", "Q")),
    "lu": (_tall, _linear(fr.lu, "L", "U")),
    "lu_factor": (lambda d: _general((4, 4), d), _linear(fr.lu_factor, "LU")),
    "polar": (_tall, _linear(fr.polar, "U", "P")),
    "polar-left": (_wide, _linear(fr.polar, "U", "P", side="left")),
    "ormqr": (lambda d: (*_compact((5, 3), d), _random((5, 2), d, 1)), _linear(fr.ormqr)),
    "ormqr-right-transpose": (lambda d: (*_compact((4, 3), d), _random((2, 4), d, 1)),
                              _linear(fr.ormqr, left=False, transpose=True)),
    "qr-reduced": (_tall, _linear(fr.qr, "Q", "R")),
    "schur": (lambda d: _real_spectrum(4, d), _schur_loss("real")),
    "schur-complex": (lambda d: _general((4, 4), d), _schur_loss("complex")),
    "hessenberg": (lambda d: _general((4, 4), d), _linear(fr.hessenberg, "H", "Q", calc_q=True)),
    "hessenberg-H": (lambda d: _general((4, 4), d), _linear(fr.hessenberg)),
    "qr-reduced-wide": (_wide, _linear(fr.qr, "Q", "R")),
    "qr-complete": (_tall, _linear(fr.qr, "Q", "R", mode="complete")),
    "qr-r": (_tall, _linear(fr.qr, "R", mode="r")),
    "qr-pivoting": (_tall, _linear(fr.qr, "Q", "R", pivoting=True)),
    "qr_pivoted-complete": (_tall, _linear(fr.qr_pivoted, "Q", "R", mode="complete")),
    "qr_pivoted-r-wide": (_wide, _linear(fr.qr_pivoted, "R", mode="r")),
    "qr_pivoted-batched": (lambda d: _general((2, 5, 3), d), _linear(fr.qr_pivoted, "Q", "R")),
    "svd": (_tall, _svd_loss(False)),
    "svd-full": (_tall, _svd_loss(True)),
    "svd-full-wide": (_wide, _svd_loss(True)),
    "svdvals": (_tall, _linear(fr.svdvals)),
}


def _leaves(inputs):
    return [x.detach().requires_grad_() for x in inputs]


def _loss_and_grad(loss):
    """The loss and its gradient in every input, one function: torch.compile captures both
    (with torch.autograd.grad traced, trace_autograd_ops) in one graph."""
    def loss_and_grad(*inputs):
        value = loss(*inputs)
        return value.detach(), list(torch.autograd.grad(value, inputs))
    return loss_and_grad


def _eager(loss, inputs):
    return _loss_and_grad(loss)(*_leaves(inputs))


def _relative_error(got, want):
    return float((got - want).abs().max() / want.abs().max().clamp_min(1e-300))


def _assert_equal_to_eager(got, want):
    """(value, gradients) against eager's; the largest relative error of the gradients."""
    (value, grads), (want_value, want_grads) = got, want
    assert _relative_error(value, want_value) <= RTOL
    assert len(grads) == len(want_grads)
    for g, w in zip(grads, want_grads):
        assert g.dtype == w.dtype and g.shape == w.shape
    errors = [_relative_error(g, w) for g, w in zip(grads, want_grads)]
    assert max(errors) <= RTOL, errors
    return max(errors)


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    """Each test compiles from scratch (no cache of another test's graphs) and may trace
    torch.autograd.grad."""
    torch._dynamo.reset()
    with torch._dynamo.config.patch(trace_autograd_ops=True):
        yield
    torch._dynamo.reset()


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_loss_and_its_gradient_are_one_graph(case):
    make, loss = CASES[case]
    explained = torch._dynamo.explain(_loss_and_grad(loss))(*_leaves(make(torch.float64)))
    assert explained.graph_break_count == 0, explained.break_reasons
    assert explained.graph_count == 1


# every case in one dtype, the dtypes in turn (both under --full: tests/ladder.py); every
# case compiles as one graph in float64 above
IN_TURN = [(case, dtype) for i, case in enumerate(sorted(CASES))
           for j, dtype in enumerate(sorted(DTYPES)) if ladder.FULL or i % len(DTYPES) == j]


@pytest.mark.parametrize("case, dtype", IN_TURN, ids=[f"{c}-{d}" for c, d in IN_TURN])
def test_compiled_loss_and_gradient_equal_eager(case, dtype):
    make, loss = CASES[case]
    inputs = make(DTYPES[dtype])
    want = _eager(loss, inputs)
    start = time.perf_counter()
    compiled = torch.compile(_loss_and_grad(loss), backend="aot_eager", fullgraph=True)
    got = compiled(*_leaves(inputs))
    elapsed = time.perf_counter() - start
    error = _assert_equal_to_eager(got, want)
    print(f"{case} {dtype}: gradient relative error {error:.1e}, compile and run {elapsed:.2f} s")


@pytest.mark.parametrize("case", ["cholesky", "geqrf", "qr-complete", "qr-pivoting", "svd-full"])
def test_compiled_loss_then_backward_equals_eager(case):
    """The usual training step: the loss compiled, .backward() after it (the compiled
    backward graph holds the spec's VJP)."""
    make, loss = CASES[case]
    inputs = make(torch.complex128)
    want = _eager(loss, inputs)
    leaves = _leaves(inputs)
    value = torch.compile(loss, backend="aot_eager", fullgraph=True)(*leaves)
    value.backward()
    _assert_equal_to_eager((value.detach(), [x.grad for x in leaves]), want)


def test_inductor():
    """svd's backward holds differences C - A @ B with a row-major product, which inductor's
    addmm rewrite got wrong as torch.add(C, A @ B, alpha=-1) (the runtime's _addmm), and the
    checks of its gauge and ties."""
    make, loss = CASES["svd"]
    inputs = make(torch.float64)
    want = _eager(loss, inputs)
    start = time.perf_counter()
    got = torch.compile(_loss_and_grad(loss), backend="inductor", fullgraph=True)(
        *_leaves(inputs))
    elapsed = time.perf_counter() - start
    error = _assert_equal_to_eager(got, want)
    print(f"svd f64 inductor: gradient relative error {error:.1e}, "
          f"compile and run {elapsed:.2f} s")


# id: (inputs, loss of the inputs that depends on the gauge given check_gauge, the error)
GAUGE_CASES = {
    "eigh": (lambda: _hermitian(4, torch.complex128),
             lambda check: lambda a: _dot(fr.eigh(a, check_gauge=check).eigenvectors),
             r"^eigh: the loss depends on the phases of the eigenvectors"),
    "eig": (lambda: _general((4, 4), torch.float64),
            lambda check: lambda a: _dot(fr.eig(a, check_gauge=check).eigenvectors),
            r"^eig: the loss depends on the phases of the eigenvectors"),
    "svd-completion": (lambda: _general((5, 3), torch.float64),
                       lambda check: lambda a: _dot(
                           fr.svd(a, full_matrices=True, check_gauge=check).U[..., 3:]),
                       r"^svd: the loss depends on the phases of the singular vectors or on "
                       r"the arbitrary orthonormal completion"),
}


@pytest.mark.parametrize("case", sorted(GAUGE_CASES))
def test_the_gauge_check_gives_nan_in_the_compiled_backward(case):
    """Eager, a gauge-dependent loss raises; compiled (traced: no value to raise on without a
    host synchronisation), its gradient is NaN, never a finite number."""
    make, loss_of, message = GAUGE_CASES[case]
    inputs = make()
    with pytest.raises(ValueError, match=message):
        _eager(loss_of(True), inputs)
    leaves = _leaves(inputs)
    value = torch.compile(loss_of(True), backend="aot_eager", fullgraph=True)(*leaves)
    value.backward()
    assert leaves[0].grad.isnan().all()
    # and in a graph that holds the backward too
    value, grads = torch.compile(_loss_and_grad(loss_of(True)), backend="aot_eager",
                                 fullgraph=True)(*_leaves(inputs))
    assert torch.isfinite(value) and grads[0].isnan().all()


@pytest.mark.parametrize("case", sorted(GAUGE_CASES))
def test_the_compiled_gauge_check_can_be_skipped(case):
    make, loss_of, _ = GAUGE_CASES[case]
    inputs = make()
    want = _eager(loss_of(False), inputs)
    got = torch.compile(_loss_and_grad(loss_of(False)), backend="aot_eager", fullgraph=True)(
        *_leaves(inputs))
    _assert_equal_to_eager(got, want)


def test_a_torch_func_transform_runs_the_operation_eagerly():
    """Inside torch.func.grad dynamo would trace the forward alone and differentiate
    torch.linalg.svd by torch's own rule, which is wrong for the completion of a full SVD
    (tests/test_svd.py): the operation runs eagerly there (a graph break), so the gradient
    is the spec's, and fullgraph=True refuses it."""
    make, loss = CASES["svd-full"]
    inputs = make(torch.float64)
    want = _eager(loss, inputs)
    grad_and_value = torch.func.grad_and_value(loss)
    grad, value = torch.compile(grad_and_value, backend="aot_eager")(*inputs)
    _assert_equal_to_eager((value, [grad]), want)
    torch._dynamo.reset()
    with pytest.raises(torch._dynamo.exc.Unsupported, match="runs eagerly"):
        torch.compile(grad_and_value, backend="aot_eager", fullgraph=True)(*inputs)


def test_batched_gradients_of_a_compiled_loss_equal_eager():
    """autograd.grad(..., is_grads_batched=True) runs the compiled backward on batched
    tensors, the checks of the gauge and ties among them."""
    make, loss = CASES["eigh"]
    inputs = make(torch.complex128)

    def losses(a):
        return loss(a) * torch.arange(1, 3, dtype=torch.float64)

    def batched_grad(f):
        a = _leaves(inputs)[0]
        return torch.autograd.grad(f(a), a, grad_outputs=torch.eye(2, dtype=torch.float64),
                                   is_grads_batched=True)[0]

    want = batched_grad(losses)
    got = batched_grad(torch.compile(losses, backend="aot_eager", fullgraph=True))
    assert got.shape == (2, 4, 4)
    assert _relative_error(got, want) <= RTOL
