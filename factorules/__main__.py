"""``python -m factorules ARGS``: the ``factorules`` command."""
import sys

from .cli import main

sys.exit(main())
