"""Where things are: the specs and templates the compiler reads, the generated tree it writes,
and the import package the tools load the generated rules from.

Two layouts, told apart by what lies beside this package:

- a checkout of the repository: ``spec/``, ``templates/`` and ``generated/`` next to
  ``factorules/``; the rules are imported as ``generated.<backend>``;
- an installed wheel (pyproject.toml maps the files): the specs and templates are package data
  (``factorules/spec``, ``factorules/templates``) and the rules are ``factorules.<backend>``;
  there is no generated/ to rewrite, so ``factorules generate`` needs ``--out``.
"""
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]
_CHECKOUT = PACKAGE.parent
# True in a checkout of the repository, False in an installed package
IN_CHECKOUT = all((_CHECKOUT / name).is_dir() for name in ("spec", "templates", "generated"))
# the folder spec/ and templates/ are in; file names in messages and headers are relative to it
ROOT = _CHECKOUT if IN_CHECKOUT else PACKAGE
SPEC_DIR = ROOT / "spec"
TEMPLATES = ROOT / "templates"
# the Python package that holds one subpackage of rules per backend
RULES_PACKAGE = "generated" if IN_CHECKOUT else "factorules"
# the folder of the repository the rules are written to, and the key prefix of rendered files
GENERATED = "generated"
