"""Cases and comparisons shared by the CuPy backend tests.

The same checks run the generated CuPy backend on the CPU (tests/fake_cupy.py) and on a GPU
(real CuPy): structural kernels against NumPy (exactly), and, for every spec in spec/
(tests/spec_cases.py), op / op_jvp / op_vjp against the generated NumPy backend and against
PyTorch's autograd (to a dtype's tolerance).
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import spec_cases
from generator import sample, verify

DTYPES = (np.float32, np.float64, np.complex64, np.complex128)
# Relative error allowed between two backends, per dtype.
RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.complex64): 1e-5,
        np.dtype(np.float64): 1e-12, np.dtype(np.complex128): 1e-12}
THREADS_PER_BLOCK = 256  # what generated/cupy/_runtime.py launches with


def random_array(rng, shape, dtype):
    """Standard normal entries (real and imaginary parts for complex dtypes)."""
    dtype = np.dtype(dtype)
    x = rng.standard_normal(shape)
    if dtype.kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


# -- structural kernels ------------------------------------------------------------------------

def _adjoint(x):
    return np.conj(np.swapaxes(x, -1, -2))


def _diag_of_column(v):
    out = np.zeros(v.shape[:-1] + (v.shape[-2],), v.dtype)
    idx = np.arange(v.shape[-2])
    out[..., idx, idx] = v[..., 0]
    return out


def _copyltu(x):
    lower = np.tril(x, -1)
    return lower + _adjoint(lower) + _diag_of_column(np.real(np.diagonal(x, 0, -2, -1))
                                                     [..., :, None].astype(x.dtype))


# op -> NumPy reference of (x, *scalars); the runtime runs op as _<op>(x, *scalars).
STRUCTURAL_OPS = {
    "tril": lambda x, offset: np.tril(x, offset),
    "triu": lambda x, offset: np.triu(x, offset),
    "copyltu": _copyltu,
    "sym": lambda x: (x + _adjoint(x)) / 2,
    "skew": lambda x: (x - _adjoint(x)) / 2,
    "re": lambda x: np.real(x).astype(x.dtype),
    "im": lambda x: np.imag(x).astype(x.dtype),
    "diag": _diag_of_column,
}
OFFSETS = (-1, 0, 1, 2)
BATCHES = ((), (2, 3))
ANY_SHAPES = ((4, 4), (3, 5), (5, 3), (1, 1), (7, 9))   # (2, 3, 7, 9): two blocks of threads
SQUARE_SHAPES = ((4, 4), (1, 1), (9, 9))                # (2, 3, 9, 9): two blocks
COLUMN_SHAPES = ((4, 1), (1, 1), (23, 1))               # diag: (2, 3, 23, 23), three blocks
EMPTY = {"any": [((), (0, 0)), ((), (0, 3)), ((), (3, 0)), ((0,), (3, 3)), ((2, 3), (0, 4))],
         "square": [((), (0, 0)), ((0,), (3, 3)), ((2, 3), (0, 0))],
         "column": [((), (0, 1)), ((0,), (3, 1)), ((2, 3), (0, 1))]}


def _kind(op):
    return {"copyltu": "square", "sym": "square", "skew": "square", "diag": "column"}.get(op, "any")


def kernel_cases(empty: bool):
    """pytest params (op, scalars, batch, shape, dtype) over every op, dtype and shape."""
    cases = []
    for op in STRUCTURAL_OPS:
        kind = _kind(op)
        scalar_sets = [(k,) for k in OFFSETS] if op in ("tril", "triu") else [()]
        if empty:
            shapes = EMPTY[kind]
        else:
            matrices = {"any": ANY_SHAPES, "square": SQUARE_SHAPES, "column": COLUMN_SHAPES}[kind]
            shapes = list(itertools.product(BATCHES, matrices))
        for scalars, (batch, shape), dtype in itertools.product(scalar_sets, shapes, DTYPES):
            label = "-".join([op, *map(str, scalars), "x".join(map(str, batch + shape)),
                              np.dtype(dtype).name])
            cases.append(pytest.param(op, scalars, batch, shape, dtype, id=label))
    return cases


def expected_launch(op, dtype, out_size):
    """(kernel name, grid, block) the runtime should launch for an output of ``out_size``."""
    suffix = {"float32": "f32", "float64": "f64", "complex64": "c64",
              "complex128": "c128"}[np.dtype(dtype).name]
    blocks = (out_size + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
    return f"fr_{op}_{suffix}", (blocks,), (THREADS_PER_BLOCK,)


def check_structural_op(runtime, to_host, op, scalars, batch, shape, dtype):
    """Run runtime._<op> on a random input; assert the exact NumPy result. Returns the output."""
    x = random_array(np.random.default_rng(0), batch + shape, dtype)
    want = STRUCTURAL_OPS[op](x, *scalars)
    got = getattr(runtime, f"_{op}")(runtime._cp.asarray(x), *scalars)
    host = to_host(got)
    assert host.shape == want.shape and host.dtype == np.dtype(dtype), (host.shape, host.dtype)
    assert np.array_equal(host, want), f"{op}{scalars}: max |diff| {np.max(np.abs(host - want))}"
    return got


# -- the rules of every spec ------------------------------------------------------------------

def rule_cases():
    """pytest params (one spec_cases.Case) over every spec, variant, small and zero-size shape
    class, dtype and batch (), (2,)."""
    return spec_cases.cases(("regular", "zero"), tuple(spec_cases.DTYPES), ("unbatched", "b2"),
                            small=True)


def torch_rule_cases():
    """rule_cases() where torch's native rule exists and differentiates
    (spec_cases.NATIVE_REFUSES: not qr mode='r', not qr mode='complete' with m > n)."""
    return [p for p in rule_cases() if p.values[0].native("torch") == "rule"]


def assert_close(got, want, dtype, what):
    """Relative Frobenius error at most RTOL[dtype]; exact when the reference is zero."""
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, expected {want.dtype}"
    err, scale = np.linalg.norm(got - want), np.linalg.norm(want)
    assert err <= RTOL[np.dtype(dtype)] * scale, \
        f"{what}: relative error {err / scale if scale else err:.3e} > {RTOL[np.dtype(dtype)]}"


def _assert_all_close(got, want, names, device_type, to_host, dtype, what):
    got, want = verify.as_tuple(got), verify.as_tuple(want)
    assert len(got) == len(want) == len(names), what
    for name, g, w in zip(names, got, want):
        assert (g is None) == (w is None), f"{what} {name}: None on one side only"
        if w is not None:
            assert isinstance(g, device_type), f"{what} {name}: {type(g)} is not on the device"
            assert_close(to_host(g), w, dtype, f"{what} {name}")


def rule_problem(case, seed, numpy_module):
    """(A, dA, cotangents): a well-conditioned A drawn from the spec, a random tangent on its
    structure, random cotangents of the outputs (None for one returned empty, qr mode='r')."""
    rng = np.random.default_rng(seed)
    a = case.input(rng)
    d_a = case.tangent(rng, a)
    outputs = verify.as_tuple(getattr(numpy_module, case.op)(a, **case.options))
    cotangents = [random_array(rng, o.shape, case.dtype) if d else None
                  for o, d in zip(outputs, case.differentiable)]
    return a, d_a, cotangents


def check_against_numpy(cupy_module, numpy_module, device_type, to_host, case, seed=0):
    """op, op_jvp and op_vjp's pullback of the CuPy backend against the NumPy backend."""
    a, d_a, cotangents = rule_problem(case, seed, numpy_module)
    op, opts, names, dtype = case.op, case.options, case.outputs, case.dtype
    _assert_all_close(getattr(cupy_module, op)(a, **opts), getattr(numpy_module, op)(a, **opts),
                      names, device_type, to_host, dtype, op)

    (got_out, got_tan), (want_out, want_tan) = (getattr(b, f"{op}_jvp")(a, d_a, **opts)
                                                for b in (cupy_module, numpy_module))
    _assert_all_close(got_out, want_out, names, device_type, to_host, dtype, f"{op}_jvp outputs")
    _assert_all_close(got_tan, want_tan, names, device_type, to_host, dtype, f"{op}_jvp tangents")

    (got_out, got_pullback), (want_out, want_pullback) = (getattr(b, f"{op}_vjp")(a, **opts)
                                                          for b in (cupy_module, numpy_module))
    _assert_all_close(got_out, want_out, names, device_type, to_host, dtype, f"{op}_vjp outputs")
    for args, what in ((cotangents, "pullback"), ((), "pullback of zero cotangents")):
        got, want = got_pullback(*args), want_pullback(*args)
        assert isinstance(got, device_type), f"{what}: {type(got)} is not on the device"
        assert_close(to_host(got), want, dtype, what)


def torch_reference(case, a, d_a, cotangents, device):
    """PyTorch's outputs and tangents by forward AD and gA by autograd, as NumPy arrays; gA
    projected onto the input's structure (torch's complex cholesky gradient is not Hermitian,
    ours is its Hermitian part: spec/cholesky.yaml, notes)."""
    import torch
    import torch.autograd.forward_ad as fwad

    fn = spec_cases.native_function("torch", case.op)

    def host(t):
        return t.detach().cpu().resolve_conj().numpy()

    a_t = torch.as_tensor(a, device=device)
    with fwad.dual_level():
        duals = verify.as_tuple(fn(fwad.make_dual(a_t, torch.as_tensor(d_a, device=device)),
                                   **case.options))
        unpacked = [fwad.unpack_dual(y) for y in duals]
        outputs = tuple(host(y.primal) for y in unpacked)
        tangents = tuple(host(y.tangent) for y in unpacked)
    leaf = a_t.clone().requires_grad_(True)
    pairs = [(y, torch.as_tensor(g, device=device))
             for y, g in zip(verify.as_tuple(fn(leaf, **case.options)), cotangents)
             if g is not None]
    torch.autograd.backward([y for y, _ in pairs], [g for _, g in pairs])
    return outputs, tangents, sample.project(host(leaf.grad), case.structure)


def check_against_torch(cupy_module, numpy_module, device_type, to_host, case, torch_device,
                        seed=0):
    """op_jvp and op_vjp's pullback of the CuPy backend against PyTorch's autograd."""
    a, d_a, cotangents = rule_problem(case, seed, numpy_module)
    outputs, tangents, g_a = torch_reference(case, a, d_a, cotangents, torch_device)
    names, dtype = case.outputs, case.dtype
    got_out, got_tan = getattr(cupy_module, f"{case.op}_jvp")(a, d_a, **case.options)
    _assert_all_close(got_out, outputs, names, device_type, to_host, dtype, "torch: outputs")
    _assert_all_close(got_tan, tangents, names, device_type, to_host, dtype, "torch: tangents")
    _, pullback = getattr(cupy_module, f"{case.op}_vjp")(a, **case.options)
    assert_close(to_host(pullback(*cotangents)), g_a, dtype, "torch: pullback")


# -- solves ------------------------------------------------------------------------------------

SOLVE_DTYPES = [(d, d) for d in DTYPES] + [(np.float64, np.complex128),
                                            (np.complex128, np.float64),
                                            (np.float32, np.complex64)]
SOLVE_BATCHES = (((), ()), ((2,), ()), ((), (2,)), ((2,), (2,)))


def solve_cases(triangular: bool):
    """pytest params (a dtype, b dtype, a batch, b batch, left[, upper, unit])."""
    flags = (list(itertools.product((True, False), (True, False), (False, True))) if triangular
             else [(left,) for left in (True, False)])
    cases = []
    for (a_dtype, b_dtype), (a_batch, b_batch), flag in itertools.product(
            SOLVE_DTYPES, SOLVE_BATCHES, flags):
        names = ("left", "upper", "unit") if triangular else ("left",)
        label = "-".join([np.dtype(a_dtype).name, np.dtype(b_dtype).name,
                          "a" + "x".join(map(str, a_batch)), "b" + "x".join(map(str, b_batch)),
                          *(n if f else "no" + n for n, f in zip(names, flag))])
        cases.append(pytest.param(a_dtype, b_dtype, a_batch, b_batch, *flag, id=label))
    return cases


def _solve_problem(a_dtype, b_dtype, a_batch, b_batch, left, n=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    a = (0.3 * random_array(rng, a_batch + (n, n), a_dtype)
         + np.eye(n) * (2.0 + rng.random(a_batch + (1, n)))).astype(a_dtype)
    b = random_array(rng, b_batch + ((n, k) if left else (k, n)), b_dtype)
    return a, b


def check_solve_triangular(runtime, numpy_runtime, device_type, to_host, a_dtype, b_dtype,
                           a_batch, b_batch, left, upper, unit):
    """runtime._solve_triangular against the NumPy backend's, on device inputs."""
    t, b = _solve_problem(a_dtype, b_dtype, a_batch, b_batch, left)
    want = numpy_runtime._solve_triangular(t, b, upper=upper, left=left, unit=unit)
    got = runtime._solve_triangular(runtime._cp.asarray(t), runtime._cp.asarray(b),
                                    upper=upper, left=left, unit=unit)
    assert isinstance(got, device_type), type(got)
    assert_close(to_host(got), want, want.dtype, "solve_triangular")


def check_solve(runtime, numpy_runtime, device_type, to_host, a_dtype, b_dtype, a_batch,
                b_batch, left):
    """runtime._solve against the NumPy backend's, on device inputs."""
    a, b = _solve_problem(a_dtype, b_dtype, a_batch, b_batch, left)
    want = numpy_runtime._solve(a, b, left=left)
    got = runtime._solve(runtime._cp.asarray(a), runtime._cp.asarray(b), left=left)
    assert isinstance(got, device_type), type(got)
    assert_close(to_host(got), want, want.dtype, "solve")
