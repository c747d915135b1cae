"""factorules: differentiation rules for matrix factorizations, compiled from specs.

Installed, the rules are ``factorules.numpy``, ``factorules.torch``, ``factorules.jax`` and
``factorules.cupy`` (generated/<backend>/ of the repository; each imports only its own
framework).  The code that makes them is in three layers (docs/architecture.md; the import
contract in factorules/layers.toml is checked by tests/test_layers.py), under the command
``factorules`` (factorules/cli.py):

- ``factorules.compiler``: spec files in, generated files out. Imports nothing from the others.
- ``factorules.audit``: the mathematics checked in high precision; builds on the compiler only.
- ``factorules.tools``: measurements of the generated code (verify, bench, memory, signatures,
  spec diff); builds on both.
"""

# the one place the version is written (pyproject.toml reads it)
__version__ = "0.1.0"
