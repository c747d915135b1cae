"""Cases and comparisons shared by the CuPy backend tests.

The same checks run the generated CuPy backend on the CPU (tests/fake_cupy.py) and on a GPU
(real CuPy): structural kernels against NumPy (exactly), and, for every spec in spec/
(tests/spec_cases.py), op / op_jvp / op_vjp against the generated NumPy backend and against
PyTorch's autograd (to a dtype's tolerance), outputs with a gauge aligned first
(factorules.tools.gauge), and the pullbacks' gauge check.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import ladder
import spec_cases
from factorules.tools import gauge
from factorules.tools.adapters import as_tuple
from factorules.audit import sample
from factorules.compiler.check_gauge import GAUGE_OPTION

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
    "re": np.real,  # real dtype for complex x, as NumPy's (the runtime takes the kernel's
    "im": np.imag,  # complex result's real part)
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
    """pytest params (op, scalars, batch, shape, dtype) over every op, dtype and shape: a
    pairwise covering sample of them (tests/ladder.py; all of them under --full)."""
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
    return ladder.sample(cases, lambda p: (p.values[0], p.values[1], p.values[2], p.values[3],
                                           np.dtype(p.values[4]).name))


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
    assert host.shape == want.shape and host.dtype == want.dtype, (host.shape, host.dtype)
    assert np.array_equal(host, want), f"{op}{scalars}: max |diff| {np.max(np.abs(host - want))}"
    return got


# -- the rules of every spec ------------------------------------------------------------------

def _all_rule_cases():
    return spec_cases.cases(("regular", "zero"), tuple(spec_cases.DTYPES), ("unbatched", "b2"),
                            small=True)


def rule_cases():
    """pytest params (one spec_cases.Case) over every spec, variant, small and zero-size shape
    class, dtype and batch (), (2,): a pairwise covering sample (spec_cases.sampled; all of
    them under --full)."""
    return spec_cases.sampled(_all_rule_cases(), seed=11)


def torch_rule_cases():
    """The cases of rule_cases() where torch's native rule exists and differentiates
    (spec_cases.NATIVE_REFUSES: not qr mode='r', not qr mode='complete' with m > n), sampled
    among those."""
    return spec_cases.sampled([p for p in _all_rule_cases()
                               if p.values[0].native("torch") == "rule"], seed=12)


def assert_close(got, want, dtype, what):
    """Relative Frobenius error at most RTOL[dtype]; exact when the reference is zero."""
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, expected {want.dtype}"
    err, scale = np.linalg.norm(got - want), np.linalg.norm(want)
    assert err <= RTOL[np.dtype(dtype)] * scale, \
        f"{what}: relative error {err / scale if scale else err:.3e} > {RTOL[np.dtype(dtype)]}"


def _host(values, names, device_type, to_host, what):
    """Device results as host arrays (None stays None); each must be on the device."""
    values = as_tuple(values)
    assert len(values) == len(names), f"{what}: {len(values)} results for outputs {names}"
    out = []
    for name, v in zip(names, values):
        if v is not None:
            assert isinstance(v, device_type), f"{what} {name}: {type(v)} is not on the device"
            v = to_host(v)
        out.append(v)
    return out


def _assert_all_close(got, want, names, dtype, what):
    """Host results against the reference's, output by output (None on both sides or none)."""
    want = list(want) if isinstance(want, (list, tuple)) else [want]
    assert len(got) == len(want) == len(names), what
    for name, g, w in zip(names, got, want):
        assert (g is None) == (w is None), f"{what} {name}: None on one side only"
        if w is not None:
            assert_close(g, np.asarray(w), dtype, f"{what} {name}")


def rule_problem(case, seed, numpy_module):
    """(A, dA, cotangents, outputs): a well-conditioned A drawn from the spec, a random
    tangent on its structure, the NumPy backend's outputs and random cotangents of them
    (None for one returned empty, qr mode='r'; real for a real output; gauge invariant)."""
    rng = np.random.default_rng(seed)
    a = case.input(rng)
    d_a = case.tangent(rng, a)
    outputs = as_tuple(getattr(numpy_module, case.op)(a, **case.options))
    return a, d_a, case.cotangents(rng, outputs), outputs


def check_against_numpy(cupy_module, numpy_module, device_type, to_host, case, seed=0):
    """op, op_jvp and op_vjp's pullback of the CuPy backend against the NumPy backend.

    Outputs with a gauge (eigenvectors: cuSOLVER may pick other phases than LAPACK) are
    aligned with NumPy's, their tangents alike, and the cotangents are carried into the
    CuPy outputs' gauge before its pullback (factorules.tools.gauge)."""
    a, d_a, cotangents, reference = rule_problem(case, seed, numpy_module)
    op, opts, names, dtype, cv = case.op, case.options, case.outputs, case.dtype, case.cv
    got = _host(getattr(cupy_module, op)(a, **opts), names, device_type, to_host, op)
    for g, want_dtype in zip(got, case.output_dtypes()):
        assert g.dtype == want_dtype, f"{op}: dtype {g.dtype}, expected {want_dtype}"
    _assert_all_close(gauge.align(got, reference, cv), reference, names, dtype, op)

    (got_out, got_tan), (want_out, want_tan) = (getattr(b, f"{op}_jvp")(a, d_a, **opts)
                                                for b in (cupy_module, numpy_module))
    got_out = _host(got_out, names, device_type, to_host, f"{op}_jvp outputs")
    got_tan = _host(got_tan, names, device_type, to_host, f"{op}_jvp tangents")
    factors = gauge.phases(got_out, as_tuple(want_out), cv)
    _assert_all_close(gauge.rotate(got_out, factors, cv), want_out, names, dtype,
                      f"{op}_jvp outputs")
    _assert_all_close(gauge.rotate(got_tan, factors, cv), want_tan, names, dtype,
                      f"{op}_jvp tangents")

    (got_out, got_pullback), (want_out, want_pullback) = (getattr(b, f"{op}_vjp")(a, **opts)
                                                          for b in (cupy_module, numpy_module))
    got_out = _host(got_out, names, device_type, to_host, f"{op}_vjp outputs")
    factors = gauge.phases(got_out, as_tuple(want_out), cv)
    _assert_all_close(gauge.rotate(got_out, factors, cv), want_out, names, dtype,
                      f"{op}_vjp outputs")
    mine = gauge.rotate(cotangents, factors, cv, inverse=True)  # in the CuPy outputs' gauge
    for args, want_args, what in ((mine, cotangents, "pullback"),
                                  ((), (), "pullback of zero cotangents")):
        got, want = got_pullback(*args), want_pullback(*want_args)
        assert isinstance(got, device_type), f"{what}: {type(got)} is not on the device"
        assert_close(to_host(got), want, dtype, what)


def torch_reference(case, a, d_a, cotangents, reference, device):
    """PyTorch's outputs and tangents by forward AD and gA by autograd of the cotangents, as
    NumPy arrays, in the gauge of ``reference`` (the NumPy backend's outputs, which the
    cotangents belong to); gA projected onto the input's structure (torch's complex cholesky
    gradient is not Hermitian, ours is its Hermitian part: spec/cholesky.yaml, notes)."""
    import torch
    import torch.autograd.forward_ad as fwad

    fn = spec_cases.native_function("torch", case.op)

    def host(t):
        return t.detach().cpu().resolve_conj().numpy()

    a_t = torch.as_tensor(a, device=device)
    with fwad.dual_level():
        duals = as_tuple(fn(fwad.make_dual(a_t, torch.as_tensor(d_a, device=device)),
                                   **case.options))
        unpacked = [fwad.unpack_dual(y) for y in duals]
        outputs = [host(y.primal) for y in unpacked]
        # a permutation or pivots has no tangent (ours: None; torch's: None or zeros)
        tangents = [None if y.tangent is None or t.constant else host(y.tangent)
                    for y, t in zip(unpacked, case.returned)]
    factors = gauge.phases(outputs, reference, case.cv)
    theirs = gauge.rotate(cotangents, factors, case.cv, inverse=True)  # in torch's gauge
    leaf = a_t.clone().requires_grad_(True)
    pairs = [(y, torch.as_tensor(g, device=device))
             for y, g in zip(as_tuple(fn(leaf, **case.options)), theirs)
             if g is not None]
    torch.autograd.backward([y for y, _ in pairs], [g for _, g in pairs])
    return (gauge.rotate(outputs, factors, case.cv), gauge.rotate(tangents, factors, case.cv),
            sample.project(host(leaf.grad), case.structure))


def check_against_torch(cupy_module, numpy_module, device_type, to_host, case, torch_device,
                        seed=0):
    """op_jvp and op_vjp's pullback of the CuPy backend against PyTorch's autograd, both in
    the gauge of the NumPy backend's outputs."""
    a, d_a, cotangents, reference = rule_problem(case, seed, numpy_module)
    outputs, tangents, g_a = torch_reference(case, a, d_a, cotangents, reference, torch_device)
    names, dtype, cv = case.outputs, case.dtype, case.cv
    got_out, got_tan = getattr(cupy_module, f"{case.op}_jvp")(a, d_a, **case.options)
    got_out = _host(got_out, names, device_type, to_host, "torch: outputs")
    got_tan = _host(got_tan, names, device_type, to_host, "torch: tangents")
    factors = gauge.phases(got_out, reference, cv)
    _assert_all_close(gauge.rotate(got_out, factors, cv), outputs, names, dtype,
                      "torch: outputs")
    # torch's rule may pick another derivative along the gauge: compared without it
    _assert_all_close(gauge.project_tangent(reference, gauge.rotate(got_tan, factors, cv), cv),
                      gauge.project_tangent(reference, tangents, cv), names, dtype,
                      "torch: tangents")
    got_out, pullback = getattr(cupy_module, f"{case.op}_vjp")(a, **case.options)
    got_out = _host(got_out, names, device_type, to_host, "torch: vjp outputs")
    mine = gauge.rotate(cotangents, gauge.phases(got_out, reference, cv), cv, inverse=True)
    assert_close(to_host(pullback(*mine)), g_a, dtype, "torch: pullback")


def gauge_cases():
    """rule_cases() of complex dtypes and variants whose pullbacks check the gauge."""
    complex_cases = spec_cases.cases(("regular",), ("c64", "c128"), ("b2",), small=True)
    return spec_cases.sampled([p for p in complex_cases if p.values[0].gauge_check], seed=13)


def check_gauge(cupy_module, device_type, to_host, case, seed=0):
    """The CuPy pullback raises on a cotangent along the gauge (a loss that depends on it),
    and with check_gauge=False returns the gradient of the cotangent's invariant part."""
    import re

    rng = np.random.default_rng(seed)
    a = case.input(rng)
    outputs, pullback = getattr(cupy_module, f"{case.op}_vjp")(a, **case.options)
    outputs = _host(outputs, case.outputs, device_type, to_host, "outputs")
    invariant = case.cotangents(rng, outputs)
    along = gauge.dependent_cotangent(outputs, rng, case.cv)
    dependent = [g if d is None else g + d for g, d in zip(invariant, along)]
    assert gauge.residual(outputs, dependent, case.cv) > 0.5
    message = re.escape(f"{case.op}: {case.cv.variant.gauge.message}")
    with pytest.raises(ValueError, match=message):
        pullback(*dependent)
    _, unchecked = getattr(cupy_module, f"{case.op}_vjp")(a, **case.options,
                                                          **{GAUGE_OPTION: False})
    got, want = unchecked(*dependent), pullback(*invariant)
    assert isinstance(got, device_type) and isinstance(want, device_type)
    assert np.abs(to_host(want)).max() > 0.1
    assert_close(to_host(got), to_host(want), case.dtype, "pullback with check_gauge=False")


# -- solves ------------------------------------------------------------------------------------

SOLVE_DTYPES = [(d, d) for d in DTYPES] + [(np.float64, np.complex128),
                                            (np.complex128, np.float64),
                                            (np.float32, np.complex64)]
SOLVE_BATCHES = (((), ()), ((2,), ()), ((), (2,)), ((2,), (2,)))


def solve_cases(triangular: bool):
    """pytest params (a dtype, b dtype, a batch, b batch, left[, upper, unit]): a pairwise
    covering sample of dtype pairs, batch pairs and flags (tests/ladder.py; all under --full)."""
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
    return ladder.sample(cases, lambda p: (
        (np.dtype(p.values[0]).name, np.dtype(p.values[1]).name), (p.values[2], p.values[3]),
        *p.values[4:]))


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
