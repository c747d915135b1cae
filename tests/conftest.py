"""The test ladder's option: ``--full`` runs every parametrized check on the full product of its
factors (spec x variant x shape class x dtype x batch x backend) instead of a pairwise covering
sample (tests/ladder.py).  Run it before a change to the printers or the templates."""
import os
import shutil
import tempfile

# One thread per process for the BLAS, OpenMP and XLA pools, set before NumPy, torch or JAX
# is first imported (here, in the process that starts pytest-xdist's workers, which inherit
# it, and in each worker).  The tests multiply matrices of a few rows, one worker per core:
# a pool of threads per worker oversubscribed the two cores, and its threads' spinning made
# torch's second-order checks 2.4 times slower (tests/test_torch_harness.py, -n 2: 215 s
# against 88 s).
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
_xla_flags = os.environ.get("XLA_FLAGS", "").split()
# (XLA's parser stops at a word without "--": every flag here is one of XLA's own, with it)
for _flag in ("--xla_cpu_multi_thread_eigen=false",):
    if _flag.split("=")[0] not in {f.split("=")[0] for f in _xla_flags}:
        _xla_flags.append(_flag)
os.environ["XLA_FLAGS"] = " ".join(_xla_flags)
# JAX's persistent compilation cache in a folder of this run, shared by the pytest-xdist
# workers and the processes the tests start (cli.py bench's rows): the harnesses' eager calls
# compile each operation once per shape, the same operations at the same shapes in every
# process; sharing them took the JAX second-order checks (tests/test_jax_harness.py,
# tests/test_householder.py, -n 2) from 154 s to 104 s.  Removed when the run ends.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="factorules-jax-cache-")
    _OWN_JAX_CACHE = os.environ["JAX_COMPILATION_CACHE_DIR"]
else:
    _OWN_JAX_CACHE = None
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import pytest  # noqa: E402

import ladder  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--full", action="store_true", default=False,
                     help="run the full product of every parametrized ladder instead of its "
                          "pairwise covering sample (also FACTORULES_FULL=1)")


def pytest_configure(config):
    # Before collection imports the test modules, whose parametrizations read ladder.FULL.
    ladder.FULL = ladder.FULL or config.getoption("full")


def pytest_unconfigure(config):
    if _OWN_JAX_CACHE is not None:  # the process that made it (not a worker, which inherits it)
        shutil.rmtree(_OWN_JAX_CACHE, ignore_errors=True)


def pytest_report_header(config):
    return ("ladder: full product (--full)" if ladder.FULL else
            "ladder: pairwise covering sample (--full for the full product)")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist's --dist loadgroup (python3 run.py test), the tests of a module that
    use one of its module-scoped fixtures (the bench run, the CuPy fake's compiled kernels, a
    copy of the repository) run on one worker, so that the fixture is built once; before
    xdist's own hook reads the groups (tryfirst)."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None or item.get_closest_marker("xdist_group") is not None:
            continue
        module = item.module.__name__
        if any(d.scope == "module" and d.baseid and not d.baseid.endswith("conftest.py")
               for defs in info.name2fixturedefs.values() for d in defs):
            item.add_marker(pytest.mark.xdist_group(module))
