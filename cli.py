#!/usr/bin/env python3
"""``python cli.py ARGS`` in a checkout: the ``factorules`` command (factorules/cli.py) with
this checkout's spec/, templates/ and generated/, whether or not the package is installed."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from factorules.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
