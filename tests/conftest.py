"""The test ladder's option: ``--full`` runs every parametrized check on the full product of its
factors (spec x variant x shape class x dtype x batch x backend) instead of a pairwise covering
sample (tests/ladder.py).  Run it before a change to the printers or the templates."""
import pytest

import ladder


def pytest_addoption(parser):
    parser.addoption("--full", action="store_true", default=False,
                     help="run the full product of every parametrized ladder instead of its "
                          "pairwise covering sample (also FACTORULES_FULL=1)")


def pytest_configure(config):
    # Before collection imports the test modules, whose parametrizations read ladder.FULL.
    ladder.FULL = ladder.FULL or config.getoption("full")


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
