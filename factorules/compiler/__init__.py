"""The compiler: spec files in, generated files out.

It owns the spec model and its loader (spec), the expression language and its operations
(expr, ops), the static checker (check), derivation by linearization and transposition
(derive), straight-line programs (program), the native calls of the signature tables
(native_call), one printer per backend (printers/), rendering through the templates (render)
and writing with its drift check (pipeline).  It imports nothing from factorules.audit or
factorules.tools.
"""
