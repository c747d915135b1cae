"""Cases and comparisons shared by the CuPy backend tests.

The same checks run the generated CuPy backend on the CPU (tests/fake_cupy.py) and on a GPU
(real CuPy): structural kernels against NumPy (exactly), and qr / qr_jvp / qr_vjp against
the generated NumPy backend and against PyTorch's autograd (to a dtype's tolerance).
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from generator import verify

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


# -- QR ----------------------------------------------------------------------------------------

QR_MODES = ("reduced", "complete", "r")
QR_SHAPES = ((5, 3), (3, 3), (3, 5), (5, 0), (0, 5), (0, 0))
QR_BATCHES = ((), (2,))


def qr_cases():
    return [pytest.param(mode, batch, shape, dtype,
                         id=f"{mode}-{'x'.join(map(str, batch + shape))}-{np.dtype(dtype).name}")
            for mode, batch, shape, dtype in itertools.product(QR_MODES, QR_BATCHES, QR_SHAPES,
                                                               DTYPES)]


def well_conditioned(rng, batch, shape, dtype):
    """A random A whose leading min(m, n) columns have singular values in [1, 2]."""
    return verify.well_conditioned(rng, shape, dtype, batch)


def assert_close(got, want, dtype, what):
    """Relative Frobenius error at most RTOL[dtype]; exact when the reference is zero."""
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, expected {want.dtype}"
    err, scale = np.linalg.norm(got - want), np.linalg.norm(want)
    assert err <= RTOL[np.dtype(dtype)] * scale, \
        f"{what}: relative error {err / scale if scale else err:.3e} > {RTOL[np.dtype(dtype)]}"


def _assert_all_close(got, want, device_type, to_host, dtype, what):
    assert len(got) == len(want), what
    for name, g, w in zip(("Q", "R"), got, want):
        assert (g is None) == (w is None), f"{what} {name}: None on one side only"
        if w is not None:
            assert isinstance(g, device_type), f"{what} {name}: {type(g)} is not on the device"
            assert_close(to_host(g), w, dtype, f"{what} {name}")


def qr_problem(seed, mode, batch, shape, dtype, numpy_qr):
    """(A, dA, gQ, gR): well-conditioned A, random tangent and cotangents (gQ None for 'r')."""
    rng = np.random.default_rng(seed)
    a = well_conditioned(rng, batch, shape, dtype)
    q, r = numpy_qr.qr(a, mode=mode)
    g_q = None if mode == "r" else random_array(rng, q.shape, dtype)
    return a, random_array(rng, a.shape, dtype), g_q, random_array(rng, r.shape, dtype)


def check_qr_against_numpy(cupy_qr, numpy_qr, device_type, to_host, mode, batch, shape, dtype,
                           seed=0):
    """qr, qr_jvp and qr_vjp's pullback of the CuPy backend against the NumPy backend."""
    a, d_a, g_q, g_r = qr_problem(seed, mode, batch, shape, dtype, numpy_qr)
    _assert_all_close(cupy_qr.qr(a, mode=mode), numpy_qr.qr(a, mode=mode), device_type,
                      to_host, dtype, "qr")

    (got_out, got_tan), (want_out, want_tan) = (b.qr_jvp(a, d_a, mode=mode)
                                                for b in (cupy_qr, numpy_qr))
    _assert_all_close(got_out, want_out, device_type, to_host, dtype, "qr_jvp outputs")
    _assert_all_close(got_tan, want_tan, device_type, to_host, dtype, "qr_jvp tangents")

    (got_out, got_pullback), (want_out, want_pullback) = (b.qr_vjp(a, mode=mode)
                                                          for b in (cupy_qr, numpy_qr))
    _assert_all_close(got_out, want_out, device_type, to_host, dtype, "qr_vjp outputs")
    for args, what in (((g_q, g_r), "pullback"), ((), "pullback of zero cotangents")):
        got, want = got_pullback(*args), want_pullback(*args)
        assert isinstance(got, device_type), f"{what}: {type(got)} is not on the device"
        assert_close(to_host(got), want, dtype, what)


def torch_supports(mode, shape):
    """Whether torch.linalg.qr has derivatives here (not mode='r', not complete with m > n)."""
    return mode == "reduced" or (mode == "complete" and shape[0] <= shape[1])


def torch_qr_reference(a, d_a, g_q, g_r, mode, device):
    """PyTorch's (Q, R), (dQ, dR) by forward AD and gA by autograd, as NumPy arrays."""
    import torch
    import torch.autograd.forward_ad as fwad

    def host(t):
        return t.detach().cpu().resolve_conj().numpy()

    a_t = torch.as_tensor(a, device=device)
    with fwad.dual_level():
        q, r = torch.linalg.qr(fwad.make_dual(a_t, torch.as_tensor(d_a, device=device)),
                               mode=mode)
        (q, d_q), (r, d_r) = fwad.unpack_dual(q), fwad.unpack_dual(r)
        outputs, tangents = (host(q), host(r)), (host(d_q), host(d_r))
    leaf = a_t.clone().requires_grad_(True)
    q, r = torch.linalg.qr(leaf, mode=mode)
    torch.autograd.backward([q, r], [torch.as_tensor(g_q, device=device),
                                     torch.as_tensor(g_r, device=device)])
    return outputs, tangents, host(leaf.grad)


def check_qr_against_torch(cupy_qr, numpy_qr, device_type, to_host, mode, batch, shape, dtype,
                           torch_device, seed=0):
    """qr, qr_jvp and the pullback of the CuPy backend against PyTorch's autograd."""
    a, d_a, g_q, g_r = qr_problem(seed, mode, batch, shape, dtype, numpy_qr)
    outputs, tangents, g_a = torch_qr_reference(a, d_a, g_q, g_r, mode, torch_device)
    got_out, got_tan = cupy_qr.qr_jvp(a, d_a, mode=mode)
    _assert_all_close(got_out, outputs, device_type, to_host, dtype, "torch: outputs")
    _assert_all_close(got_tan, tangents, device_type, to_host, dtype, "torch: tangents")
    _, pullback = cupy_qr.qr_vjp(a, mode=mode)
    assert_close(to_host(pullback(g_q, g_r)), g_a, dtype, "torch: pullback")


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
