"""factorules' generator, in three layers (docs/architecture.md; the import contract in
generator/layers.toml is checked by tests/test_layers.py):

- ``generator.compiler``: spec files in, generated files out. Imports nothing from the others.
- ``generator.audit``: the mathematics checked in high precision; builds on the compiler only.
- ``generator.tools``: measurements of the generated code (verify, bench, memory, signatures,
  spec diff); builds on both.
"""
