"""What the checks of degenerate inputs compute when nothing is degenerate (their cost:
``cli.py bench-checks``, docs/degenerate-inputs.md).

A 'ties' or 'zeros' check reads its values on the tied or zero entries only.  Eager code
computes them only when there are such entries; JAX's traced code computes them under a
conditional on the CPU, so that XLA multiplies no matrix for them at a regular input: the
jaxprs of the jitted JVP and pullback have as many matrix products outside conditionals with
the checks on as with them off.  The checks' products inside the conditionals are there (the
checks run: tests/test_degenerate.py has them fail).  torch.func's transforms, traced too, read
a mask on the CPU and compute those checks' values only where it has an entry.
"""
import jax
import jax.extend.core as _core
import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from generated import jax as fr
from generated import torch as tr
from factorules.tools.adapters import as_tuple
from jax_strictness import strict

CONDITIONALS = ("cond", "platform_index")


def products(jaxpr) -> tuple[int, int]:
    """(outside, inside): the matrix products of ``jaxpr`` and the jaxprs it calls, outside
    any conditional and inside one."""
    out = [0, 0]

    def walk(j, inside):
        for eqn in j.eqns:
            if eqn.primitive.name == "dot_general" and eqn.outvars[0].aval.ndim >= 2:
                out[inside] += 1  # a matrix product (not a norm's sum of squares)
            nested = inside or eqn.primitive.name in CONDITIONALS
            for sub in _core.jaxprs_in_params(eqn.params):
                walk(sub, nested)
    walk(jaxpr.jaxpr, False)
    return tuple(out)


# the switches of the checks that read their values on a mask (the gauge's read them all)
SWITCHES = ("check_ties", "check_singular")

# (operation, its keywords, the input's shape): the operations with ties and zero pivots
CASES = [("eigh", {}, (6, 6)), ("eigvalsh", {}, (6, 6)),
         ("svd", {"full_matrices": False}, (7, 4)), ("svd", {"full_matrices": False}, (4, 7)),
         ("svd", {"full_matrices": True}, (7, 4)), ("svdvals", {}, (7, 4)),
         ("eig", {}, (5, 5))]


@pytest.mark.parametrize("direction", ["jvp", "vjp"])
@pytest.mark.parametrize("op, options, shape", CASES, ids=lambda x: str(x))
def test_checks_of_ties_and_zeros_multiply_no_matrix_outside_a_conditional(op, options, shape,
                                                                           direction):
    f = getattr(fr, op)
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    if op in ("eigh", "eigvalsh"):
        a = a + a.conj().T
    a = jax.numpy.asarray(a.astype(np.complex64))
    switches = [s for s in SWITCHES if s in f.__code__.co_varnames]

    def traced(**off):
        def g(x):
            return as_tuple(f(x, **options, **off))
        if direction == "jvp":
            return jax.make_jaxpr(lambda x: jax.jvp(g, (x,), (x,)))(a)
        outs = g(a)
        return jax.make_jaxpr(lambda x, c: jax.vjp(g, x)[1](c))(a, outs)

    with strict():
        on = products(traced())
        off = products(traced(**{s: False for s in switches}))
    assert "check_ties" in switches
    assert on[0] == off[0], (on, off)
    if direction == "vjp" and op != "eigvalsh":
        # the ties' products of the cotangents, under the conditional
        assert on[1] > off[1], (on, off)
    elif direction == "vjp":
        # eigvalsh's pullback has the eigenvalues' cotangent alone (that of the eigenvectors
        # is a symbolic zero, whose terms the checks leave out): its checks multiply nothing
        assert on == off and on[1] == 0, (on, off)


class _Products(TorchDispatchMode):
    """Counts the matrix products torch runs while it is on."""

    # the products a rule's matrix multiplications dispatch to

    PRODUCTS = ("aten.mm", "aten.bmm", "aten.matmul", "aten.addmm", "aten.baddbmm")

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        # a matrix product, not a norm's sum of squares (einsum's bmm to a 1 x 1 result)
        self.count += (str(func.overloadpacket) in self.PRODUCTS
                       and tuple(out.shape[-2:]) != (1, 1))
        return out


@pytest.mark.parametrize("transform", ["jvp", "grad"])
@pytest.mark.parametrize("op, options, shape", CASES, ids=lambda x: str(x))
def test_torch_func_computes_no_product_for_checks_of_ties_and_zeros_at_a_regular_input(
        op, options, shape, transform):
    """torch.func's jvp and grad (traced: the checks mark NaN instead of raising) read a CPU
    mask with no tied or zero values and compute none of those checks' values."""
    f = getattr(tr, op)
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    if op in ("eigh", "eigvalsh"):
        a = a + a.conj().T
    a = torch.from_numpy(a.astype(np.complex64))
    switches = [s for s in SWITCHES if s in f.__code__.co_varnames]

    def products(**off):
        def g(x):
            return as_tuple(f(x, **options, **off))
        with _Products() as counted:
            if transform == "jvp":
                torch.func.jvp(g, (a,), (a,))
            else:  # a loss invariant to the gauge (phases, rotations of a completion)
                torch.func.grad(lambda x: sum((y.abs() ** 2).sum() for y in g(x)))(a)
        return counted.count

    on, off = products(), products(**{s: False for s in switches})
    assert off > 0
    assert on == off


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_a_short_columns_ties_by_shifted_gaps_are_those_of_its_mask(dtype):
    """Columns of at most SHIFTED_TIES_MAX values test their ties from shifted copies (no
    k x k mask): anywhere in a batch exactly where the mask has an entry, each pair tested,
    the far ones included (a tie between the first and the last value alone)."""
    from generated.numpy import _runtime_shared as shared

    rng = np.random.default_rng(1)
    for k in range(1, shared.SHIFTED_TIES_MAX + 1):
        for pair in [None] + [(i, j) for i in range(k) for j in range(i + 1, k)][:6] + (
                [(0, k - 1)] if k > 1 else []):
            v = rng.standard_normal((3, k, 1)) + (1j * rng.standard_normal((3, k, 1))
                                                  if dtype == np.complex128 else 0)
            v = v.astype(dtype)
            if pair is not None:  # a tie up to rounding in one matrix of the batch
                v[1, pair[1]] = v[1, pair[0]] * (1 + 1e-16)
            check = shared._Check("ties", lambda: (), (), "", "check_ties", v)
            want = bool(shared._tie_mask(v).any())
            assert want == (pair is not None), (k, pair)
            assert bool(shared._any_entry(check)) == want, (k, pair)
            # traced, as JAX's pullback reads it under jit
            jv = jax.numpy.asarray(v)
            got = jax.jit(lambda x: fr._runtime._anywhere(check._replace(vector=x)))(jv)
            assert bool(got) == want, (k, pair)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_a_long_columns_ties_are_read_from_sorted_neighbours_of_values_or_projections(backend):
    """Longer columns need no k x k mask to pass: real ones have a tie anywhere exactly where
    sorted neighbours are close, complex ones -- a real matrix's eigenvalues with their
    conjugate pairs and real ones included -- only where their projections onto a line
    are.  Close projections of values far apart (on a perpendicular) may have an entry:
    the check is then measured, and passes."""
    import generated.torch._runtime as torch_runtime
    from generated.numpy import _runtime_shared as shared
    runtime = shared if backend == "numpy" else torch_runtime
    rng = np.random.default_rng(2)
    k = shared.SHIFTED_TIES_MAX + 20
    as_array = np.asarray if backend == "numpy" else torch.as_tensor
    for kind in ("real", "complex", "eigenvalues"):
        for tie in (None, (0, k - 1), (3, 4)):
            if kind == "eigenvalues":
                v = np.linalg.eigvals(rng.standard_normal((3, k, k)))[..., None]
            else:
                v = rng.standard_normal((3, k, 1)) + (
                    1j * rng.standard_normal((3, k, 1)) if kind == "complex" else 0)
            if tie is not None:
                v[1, tie[1]] = v[1, tie[0]] * (1 + 1e-16)
            check = shared._Check("ties", lambda: (), (), "", "check_ties", as_array(v))
            want = bool(runtime._mask(check).any())
            assert want == (tie is not None), (kind, tie)
            assert bool(runtime._any_entry(check)) == want, (kind, tie)
            if backend == "numpy":  # traced, as JAX's pullback reads it under jit (its dtype)
                jv = check._replace(vector=jax.numpy.asarray(v))
                got = jax.jit(lambda x: fr._runtime._anywhere(jv._replace(vector=x)))(jv.vector)
                assert bool(got) == bool(fr._runtime._mask(jv).any()), (kind, tie)
    # projections equal, values far apart: may have an entry, measured, no tie
    v = np.arange(k, dtype=np.complex128)[None, :, None] * 10.0
    v[0, 1, 0] = 3.0 * (-np.sin(1.0) + 1j * np.cos(1.0))
    check = shared._Check("ties", lambda: (), (np.ones((1, k, k)),), "", "check_ties",
                          as_array(v))
    assert bool(runtime._any_entry(check)) and not bool(runtime._mask(check).any())


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
@pytest.mark.parametrize("op", ["svd", "eigh"])
def test_a_gauge_check_of_imaginary_parts_is_left_out_for_real_input(backend, op):
    """The gauge's cotangent condition of svd and eigh is im(diagonal(...)) of values in the
    input's field: zero for a real input, whose pullback leaves the check out (None) instead
    of computing it; a complex input's has it."""
    import importlib

    module = importlib.import_module(f"generated.{backend}.{op}")
    to = {"numpy": np.asarray, "torch": torch.from_numpy, "jax": jax.numpy.asarray}[backend]
    rng = np.random.default_rng(2)
    for dtype in (np.float64, np.complex128):
        a = rng.standard_normal((5, 5)) + (1j * rng.standard_normal((5, 5))
                                           if dtype == np.complex128 else 0)
        a = to((a + a.conj().T).astype(dtype))
        flags = (False,) if op == "svd" else ("L",)
        outputs = module._primal(a, *flags, True, True, *((True,) if op == "svd" else ()))
        checks = module._vjp_checks(a, *outputs, *outputs, *flags, True, True,
                                    *((True,) if op == "svd" else ()))
        gauge = [c for c in checks if c is not None and c.option == "check_gauge"]
        assert len(gauge) == (dtype == np.complex128), (backend, op, dtype)
        assert len([c for c in checks if c is None]) == (dtype == np.float64)


@pytest.mark.parametrize("op", ["cholesky", "lu_factor", "qr"])
def test_jax_takes_the_pivots_verdict_in_the_forward_pass(op):
    """A pivots check reads primal values alone: the forward pass takes its verdict (a
    residual), and the pullback only applies it: no norm of A (sqrt), no reduction of the
    pivots, the same products as with the check off."""
    f = getattr(fr, op)
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 5, 5))
    a = jax.numpy.asarray(a @ np.swapaxes(a, -1, -2) + 5 * np.eye(5))

    def pullback(check):
        def g(x):
            return tuple(y for y in as_tuple(f(x, check_singular=check))
                         if jax.numpy.issubdtype(y.dtype, jax.numpy.inexact))
        outs, back = jax.vjp(g, a)
        return jax.make_jaxpr(back)(outs)

    def primitives(jaxpr):
        names = []

        def walk(j):
            for eqn in j.eqns:
                names.append(eqn.primitive.name)
                for sub in _core.jaxprs_in_params(eqn.params):
                    walk(sub)
        walk(jaxpr.jaxpr)
        return names

    with strict():
        on, off = pullback(True), pullback(False)
    assert "sqrt" not in primitives(on) and "reduce_max" not in primitives(on), on
    assert products(on) == products(off)
    # the verdict is applied: a singular input's gradient is NaN
    singular = a.at[0].set(0.0)
    grad = jax.jit(jax.grad(lambda x: sum(jax.numpy.sum(y) for y in as_tuple(f(x))
                                          if jax.numpy.issubdtype(y.dtype, jax.numpy.inexact))))
    assert bool(jax.numpy.isnan(grad(singular)[0]).all())
    assert not bool(jax.numpy.isnan(grad(singular)[1:]).any())


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128, torch.float32])
def test_torch_pairwise_inverse_of_values_that_cannot_tie_is_the_masked_one(dtype):
    """torch's _pairwise_inv takes the reciprocals of the gaps in place where no two values of
    the batch can tie (a read with no graph recorded): the same numbers as the masked form,
    which it keeps at ties, and under a recorded graph (its second derivatives)."""
    import generated.torch._runtime as runtime
    torch.manual_seed(0)

    def masked(v):
        gaps = v.mT - v
        tol = v.shape[-2] * torch.finfo(v.dtype).eps * v.abs().amax(dim=(-2, -1), keepdim=True)
        tie = gaps.abs() <= tol
        return torch.where(tie, 0, 1 / torch.where(tie, 1, gaps))

    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(str(func.overloadpacket))
            return func(*args, **(kwargs or {}))

    for shape in ((5, 1), (3, 40, 1), (2, 1, 1), (0, 4, 1)):
        v = torch.randn(shape, dtype=dtype)
        with Ops() as ops:
            got = runtime._pairwise_inv(v)
        assert torch.equal(got, masked(v)), shape
        assert "aten.where" not in ops.names and "aten.reciprocal_" in ops.names, ops.names
        if shape[-2] > 1 and v.numel():
            tied = v.clone()
            tied[..., -1, :] = tied[..., 0, :]
            got = runtime._pairwise_inv(tied)
            assert torch.equal(got, masked(tied)) and bool((got == 0).sum() > v.shape[-2])
    v = torch.randn(6, 1, dtype=torch.float64, requires_grad=True)
    F = runtime._pairwise_inv(v)
    (g,) = torch.autograd.grad((F * F).sum(), v)  # recorded: no in-place reciprocal
    assert torch.equal(F, masked(v)) and torch.isfinite(g).all()


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_torch_largest_complex_entry_is_its_modulus_without_a_modulus_per_entry(dtype):
    """A check's scale, the largest |entry|, of a complex tensor is read from re^2 + im^2
    (no complex modulus of every entry); it is the largest modulus, also where that square
    leaves the dtype's range (huge and tiny entries: the moduli), per matrix of a batch and
    for empty matrices."""
    from generated.torch import _runtime as rt
    torch.manual_seed(0)
    finfo = torch.finfo(dtype)
    x = torch.randn(3, 5, 4, dtype=dtype)
    exact = x.abs().amax(dim=(-2, -1))
    assert torch.allclose(rt._abs_max(x), exact, rtol=4 * finfo.eps, atol=0)
    for scale in (finfo.max ** 0.75, finfo.tiny ** 0.75):
        y = x * scale
        assert torch.equal(rt._abs_max(y), y.abs().amax(dim=(-2, -1))), scale
    assert rt._abs_max(torch.zeros(2, 0, 3, dtype=dtype)).tolist() == [0.0, 0.0]
    with _no_abs_of(dtype):
        rt._abs_max(x)


class _no_abs_of(TorchDispatchMode):
    """Fails on an elementwise abs of a ``dtype`` tensor."""

    def __init__(self, dtype):
        super().__init__()
        self.dtype = dtype

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        assert not (func.overloadpacket == torch.ops.aten.abs and args[0].dtype == self.dtype)
        return func(*args, **(kwargs or {}))
