"""The test ladder's option: ``--full`` runs every parametrized check on the full product of its
factors (spec x variant x shape class x dtype x batch x backend) instead of a pairwise covering
sample (tests/ladder.py).  Run it before a change to the printers or the templates."""
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
