"""One printer per backend: a module here defining ``Printer`` (a SymPy printer subclass with
the backend's op table), named by its backend's ``printer`` in factorules/compiler/backends.py.

``MODULES`` maps a backend name to its printer module, derived from that registry.
"""
import importlib

from ..backends import BACKENDS

MODULES = {b.name: importlib.import_module(b.printer.partition(":")[0]) for b in BACKENDS}
