"""One harness adapter per backend: what verify, bench, bench-memory and the tests do with a
framework, written once.

An adapter converts arrays to and from NumPy, calls the generated operation and its
``_jvp``/``_vjp``, calls the framework's native function, differentiates either with the
framework's own autodiff, and synchronises for timing.  Each backend of the registry
(factorules/compiler/backends.py) names its adapter class; ``adapter_class`` resolves it.

At the interface, arrays are NumPy arrays and cotangents follow PyTorch's convention (the
reference: a loss Re <g, y> = Re sum(conj(g) y) pulls back g); an adapter whose framework
conjugates them (``conjugate_cotangents``: JAX) converts on the way in and out.  An operation's
input is one array, or a tuple of arrays for an operation with several (ormqr's (a, tau, C));
its cotangent comes back in the same form.
"""
from __future__ import annotations

import importlib
import os

import numpy as np

from . import natives
from ..compiler.backends import BACKENDS, Backend, backend, resolve


def as_tuple(result) -> tuple:
    """An operation's outputs as a tuple: a named tuple as it is, a single array as (array,)."""
    return tuple(result) if isinstance(result, tuple) else (result,)


def adapter_class(entry: Backend | str) -> type[Adapter]:
    """The adapter class of a backend (a registry entry or its name)."""
    return resolve((backend(entry) if isinstance(entry, str) else entry).adapter)


def _entry(cls) -> Backend:
    """The registry entry that names ``cls`` (or a class it derives from) as its adapter."""
    paths = {f"{c.__module__}:{c.__qualname__}" for c in cls.__mro__}
    return next(b for b in BACKENDS if b.adapter in paths)


class Adapter:
    """A backend without autodiff of its own (NumPy): the generated functions only."""

    # whether the framework differentiates functions itself (autodiff)
    differentiates = False
    # the generated _vjp and the framework's autodiff take and give the complex conjugates of
    # PyTorch's cotangents (JAX's convention)
    conjugate_cotangents = False
    # what the footnote of verify's table adds where this backend could not run
    not_run_note = ""

    def __init__(self):
        self.backend = _entry(type(self))
        self.name = self.backend.name
        self.module = importlib.import_module(self.backend.package)

    @classmethod
    def unavailable(cls) -> str:
        """Why this backend cannot run here, or "" when it can."""
        return ""

    @staticmethod
    def prepare_environment(env) -> None:
        """Settings the framework reads when it starts, put into ``env`` (a mapping such as
        os.environ) unless the user set them: for a process about to import it."""

    def environment(self) -> str:
        """The framework's version and settings, for a table's footnote."""
        module = importlib.import_module(self.backend.framework)
        return f"{self.name} {getattr(module, self.backend.version_attribute)}"

    # -- arrays ---------------------------------------------------------------------------
    def to(self, x):
        """A NumPy array as the framework's array."""
        return x

    def back(self, x):
        """A framework array as a NumPy array (None stays None)."""
        return None if x is None else np.asarray(x)

    def sync(self, x):
        """``x`` once the framework has computed it (for timing)."""
        return x

    def real_dot(self, xs, cs) -> float:
        """Re sum(x * c) over the pairs (no conjugate), x NumPy arrays and c the framework's,
        summed by the framework."""
        return sum(float(np.real(np.sum(x * np.asarray(c)))) for x, c in zip(xs, cs))

    # -- the generated functions, NumPy in and out ------------------------------------------
    def _packed(self, x):
        """The inputs as an operation's _jvp/_vjp take them: one array, or a tuple."""
        return tuple(self.to(v) for v in x) if isinstance(x, tuple) else self.to(x)

    def _conj(self, x):
        """A cotangent (or a tuple of them) between PyTorch's convention and the framework's."""
        if not self.conjugate_cotangents or x is None:
            return x
        return tuple(np.conj(g) for g in x) if isinstance(x, tuple) else np.conj(x)

    def jvp(self, op, x, dx, opts):
        outs, tans = getattr(self.module, f"{op}_jvp")(self._packed(x), self._packed(dx),
                                                       **opts)
        return [self.back(o) for o in as_tuple(outs)], [self.back(t) for t in as_tuple(tans)]

    def vjp(self, op, x, cots, opts):
        """The cotangent of the input (a tuple of them for several inputs)."""
        outs, pullback = getattr(self.module, f"{op}_vjp")(self._packed(x), **opts)
        grads = pullback(*(None if g is None else self.to(self._conj(g)) for g in cots))
        if isinstance(x, tuple):
            return self._conj(tuple(self.back(g) for g in grads))
        return self._conj(self.back(grads))

    def forward(self, op, x, opts):
        xs = x if isinstance(x, tuple) else (x,)
        return [self.back(o) for o in as_tuple(getattr(self.module, op)(
            *(self.to(v) for v in xs), **opts))]

    # -- the framework's autodiff -------------------------------------------------------------
    # the exception by which the framework's autodiff refuses to differentiate
    refusal: type[BaseException] = NotImplementedError

    def native_function(self, op: str):
        """The framework's own function for ``op``, or None (factorules.tools.natives)."""
        if self.backend.native_linalg is None:
            return None
        return natives.native_function(self.name, op)

    def derivatives(self, fn, x, dx, cots):
        """(tangents, cotangent of the input(s), in the input's form) of ``fn`` by the
        framework's autodiff, NumPy in and out."""
        raise NotImplementedError(f"{self.name} has no autodiff")

    def autodiff(self, op, x, dx, cots, opts):
        """(tangents, input cotangent) from the framework's own AD, or None."""
        if not self.differentiates:
            return None
        return self.derivatives(lambda *a: getattr(self.module, op)(*a, **opts), x, dx, cots)

    def native(self, op, x, dx, cots, opts):
        """(tangents, input cotangent) from the framework's native rule, None, or 'refuses'."""
        native = self.native_function(op)
        if native is None:
            return None
        try:
            return self.derivatives(lambda *a: native(*a, **opts), x, dx, cots)
        except self.refusal:
            return "refuses"

    # -- timed derivatives (bench) --------------------------------------------------------------
    def timed_vjp(self, g, args, cots):
        """A call that pulls ``cots`` back through ``g`` at ``args`` (framework arrays; the
        cotangents of the loss Re sum(y * c), JAX's convention) and returns the inputs'."""
        raise NotImplementedError(f"{self.name} has no autodiff")

    def timed_jvp(self, g, args, tangents):
        """A call that pushes ``tangents`` forward through ``g`` at ``args``: (outputs,
        tangents)."""
        raise NotImplementedError(f"{self.name} has no autodiff")


class NumpyAdapter(Adapter):
    pass


class TorchAdapter(Adapter):
    differentiates = True
    refusal = RuntimeError

    def __init__(self):
        super().__init__()
        import torch
        self.torch = torch

    def environment(self) -> str:
        return f"{super().environment()} ({self.torch.get_num_threads()} threads)"

    def to(self, x):
        return self.torch.from_numpy(np.ascontiguousarray(x))

    def back(self, x):
        return None if x is None else x.detach().cpu().resolve_conj().numpy()

    def real_dot(self, xs, cs) -> float:
        # x as laid out (the sum runs in memory order: a contiguous copy would round
        # differently)
        return sum(float((self.torch.from_numpy(x) * c).real.sum()) for x, c in zip(xs, cs))

    def derivatives(self, fn, x, dx, cots):
        single = not isinstance(x, tuple)
        xs, dxs = ((x,), (dx,)) if single else (x, dx)
        torch = self.torch
        xt = tuple(self.to(v) for v in xs)
        _, tangents = torch.func.jvp(lambda *a: as_tuple(fn(*a)), xt,
                                     tuple(self.to(d) for d in dxs))
        xg = [x.clone().requires_grad_(True) for x in xt]
        outs = as_tuple(fn(*xg))
        pairs = [(o, self.to(g)) for o, g in zip(outs, cots) if g is not None]
        grads = torch.autograd.grad([o for o, _ in pairs], xg, [g for _, g in pairs])
        grads = tuple(self.back(g) for g in grads)
        return [self.back(t) for t in tangents], grads[0] if single else grads

    def timed_vjp(self, g, args, cots):
        """The backward pass alone: the first call runs the forward (where a framework may
        refuse) and keeps its graph."""
        torch = self.torch
        leaves = [x.clone().requires_grad_() for x in args]
        # the loss Re sum(y * c) gives y the PyTorch cotangent conj(c)
        given = [c.conj().resolve_conj() for c in cots]
        graph = []

        def run():
            if not graph:
                graph.extend(g(*leaves))
            return torch.autograd.grad(graph, leaves, given, retain_graph=True)
        return run

    def timed_jvp(self, g, args, tangents):
        torch = self.torch

        def run():
            return torch.func.jvp(g, args, tangents)
        return run


# jaxlib 0.10 runs a batched LAPACK call (geqrf, orgqr, trsm, ...) on a worker of XLA's
# intra-op thread pool, splits the batch into tasks on that same pool and blocks the worker
# until they are done (jax::ParallelBatchMap).  When as many such calls are in flight as the
# pool has workers (XLA runs independent thunks concurrently: two on a two-core machine, e.g.
# the orgqr and the trsm of the JVP of a batch of LQs), every worker waits and the process
# hangs in block_until_ready.  XLA sizes the pool from the CPUs it may use unless PJRT_NPROC
# (or NPROC) says otherwise: a pool of at least JAX_POOL_MIN workers, more than any of these
# rules has LAPACK calls in flight, always leaves workers free for the batches.  (Neither
# --xla_cpu_enable_concurrency_optimized_scheduler=false nor --xla_cpu_multi_thread_eigen=false
# prevents the hang.)  A user's own setting wins.
JAX_POOL_MIN = 8


class JaxAdapter(Adapter):
    differentiates = True
    conjugate_cotangents = True

    def __init__(self):
        self.prepare_environment(os.environ)
        import jax
        jax.config.update("jax_enable_x64", True)
        super().__init__()
        self.jax = jax

    @staticmethod
    def prepare_environment(env) -> None:
        """Size XLA's CPU pool so that batched LAPACK calls cannot exhaust it (JAX_POOL_MIN),
        before jax creates its CPU client."""
        if "PJRT_NPROC" not in env and "NPROC" not in env:
            try:
                cpus = len(os.sched_getaffinity(0))
            except AttributeError:  # not Linux
                cpus = os.cpu_count() or 1
            env["PJRT_NPROC"] = str(max(JAX_POOL_MIN, cpus))

    def environment(self) -> str:
        return (f"{super().environment()} (XLA_FLAGS={os.environ.get('XLA_FLAGS', '')}, "
                f"PJRT_NPROC={os.environ.get('PJRT_NPROC', '')})")

    def to(self, x):
        return self.jax.numpy.asarray(x)

    def sync(self, x):
        return self.jax.block_until_ready(x)

    def derivatives(self, fn, x, dx, cots):
        single = not isinstance(x, tuple)
        xs, dxs = ((x,), (dx,)) if single else (x, dx)
        jax = self.jax
        args = tuple(self.to(x) for x in xs)
        _, tangents = jax.jvp(lambda *a: as_tuple(fn(*a)), args,
                              tuple(self.to(d) for d in dxs))
        outs, pullback = jax.vjp(lambda *a: as_tuple(fn(*a)), *args)
        full = tuple(jax.numpy.zeros_like(o) if g is None else self.to(np.conj(g))
                     for o, g in zip(outs, cots))
        grads = tuple(np.conj(self.back(g)) for g in pullback(full))
        return [self.back(t) for t in tangents], grads[0] if single else grads

    def timed_vjp(self, g, args, cots):
        """The pullback alone, jitted: the first call runs the forward (jitted; where a
        framework may refuse), whose residuals are the pullback's arguments."""
        jax = self.jax
        forward = jax.jit(lambda X: jax.vjp(g, *X)[1])
        pulled = jax.jit(lambda p, cts: p(cts))
        pullback = []

        def run():
            if not pullback:
                pullback.append(forward(args))
            return pulled(pullback[0], cots)
        return run

    def timed_jvp(self, g, args, tangents):
        jax = self.jax
        pushed = jax.jit(lambda X, dX: jax.jvp(g, X, dX))
        return lambda: pushed(args, tangents)


class CupyAdapter(Adapter):
    not_run_note = "its kernels are compiled and executed on the CPU by the test suite"

    def __init__(self):
        super().__init__()
        import cupy
        self.cupy = cupy

    @classmethod
    def unavailable(cls) -> str:
        try:
            import cupy
            if cupy.cuda.runtime.getDeviceCount() < 1:
                return "no CUDA device"
        except Exception as err:  # noqa: BLE001 (any failure to reach a device means: none)
            return f"no CUDA device ({type(err).__name__})"
        return ""

    def to(self, x):
        return self.cupy.asarray(x)

    def back(self, x):
        return None if x is None else self.cupy.asnumpy(x)

    def sync(self, x):
        self.cupy.cuda.get_current_device().synchronize()
        return x
