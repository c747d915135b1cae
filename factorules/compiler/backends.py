"""The backends, each described once: ``BACKENDS`` is the one list of them, in order (the
first, NumPy, is the reference verify compares the others with).

Everything that differs between NumPy, PyTorch, JAX and CuPy, outside the printers, the
templates and the runtime sources themselves, is a field of a ``Backend`` here: the spec
model reads the names and host fallbacks, rendering the printer, templates and runtime
files, the tools (verify, bench, signatures) the framework and the harness adapter.

Printers and adapters are named by dotted paths, imported where they are used: the spec model
imports this module without loading SymPy's printers, and the compiler never imports
factorules.tools (the tools layer resolves ``adapter`` itself).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from .paths import GENERATED, RULES_PACKAGE


@dataclass(frozen=True)
class Backend:
    # the backend's key under a spec's 'signatures', and its name on the command line and
    # in the tables of verify and bench
    name: str
    # files generated once per backend besides one module per spec, in templates/<templates>/:
    # a .jinja template is rendered (the package's __init__, CuPy's kernels), a plain source
    # is copied under a header (its runtime helpers, _array_module.py binding xp for the
    # helpers all backends share in templates/_runtime_shared.py)
    runtime_files: tuple[str, ...]
    # whether its arrays can be copied to NumPy and back for a 'host: true' call (a NumPy or
    # SciPy function run on host copies where the framework has none)
    host_fallbacks: bool
    # the framework's linear algebra module whose functions (and their native autodiff)
    # verify and bench compare against; None: the framework has no autodiff
    native_linalg: str | None
    # "module:Class" of its harness adapter in factorules/tools (convert to and from NumPy,
    # call the generated and native functions, differentiate them, synchronise), resolved
    # by the tools layer (factorules.tools.adapters.adapter_class)
    adapter: str
    # modules whose calls are versioned as the framework's (cupyx ships with CuPy)
    companion_modules: tuple[str, ...] = ()
    # (runtime file, the operations it imports): a package vendored without one of those
    # operations leaves the file out (factorules.compiler.vendor)
    runtime_needs: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # The fields below follow from ``name`` unless given ("" or None: derived).
    # "module:Class" of its SymPy printer, imported by printer_class(); by default
    # factorules/compiler/printers/<name>.py's Printer
    printer: str = ""
    # its folder under templates/ (module.py.jinja and the runtime files' templates); by
    # default <name>
    templates: str = ""
    # the package the tools import the rules from: generated.<name> in a checkout,
    # factorules.<name> installed (paths.RULES_PACKAGE); the rules are written to
    # generated/<name>/ either way
    package: str = ""
    # the framework's importable module (by default <name>), and the attribute holding its
    # version (what a signature entry's since/until compare, and what `cli.py signatures`
    # reads)
    framework: str = ""
    version_attribute: str = "__version__"
    fused: bool = False  # it runs the fused pullbacks (factorules.compiler.fused) on the CPU

    def __post_init__(self):
        derived = {"printer": f"factorules.compiler.printers.{self.name}:Printer",
                   "templates": self.name, "package": f"{RULES_PACKAGE}.{self.name}",
                   "framework": self.name}
        for field, value in derived.items():
            if not getattr(self, field):
                object.__setattr__(self, field, value)

    def printer_class(self):
        """The backend's printer class (imports SymPy's printing modules)."""
        return resolve(self.printer)

    @property
    def package_dir(self) -> str:
        """The folder its rules are written to, relative to the repository root."""
        return f"{GENERATED}/{self.name}"


def resolve(path: str):
    """The object a "module:attribute" path names, its module imported."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


BACKENDS = (
    Backend(name="numpy",
            runtime_files=("__init__.py.jinja", "_runtime.py", "_array_module.py",
                           "sparse_qr.py"),
            host_fallbacks=False, native_linalg=None,
            adapter="factorules.tools.adapters:NumpyAdapter"),
    Backend(name="torch",
            runtime_files=("__init__.py.jinja", "_runtime.py", "_array_module.py", "_fused.py"),
            fused=True,
            host_fallbacks=True, native_linalg="torch.linalg",
            adapter="factorules.tools.adapters:TorchAdapter"),
    Backend(name="jax",
            runtime_files=("__init__.py.jinja", "_runtime.py", "_array_module.py",
                           "distributed.py"),
            runtime_needs=(("distributed.py", ("qr",)),),
            host_fallbacks=True, native_linalg="jax.numpy.linalg",
            adapter="factorules.tools.adapters:JaxAdapter"),
    Backend(name="cupy",
            runtime_files=("__init__.py.jinja", "_runtime.py", "_array_module.py",
                           "_kernels.cu.jinja"),
            host_fallbacks=True, native_linalg=None, companion_modules=("cupyx",),
            adapter="factorules.tools.adapters:CupyAdapter"),
)

NAMES = tuple(b.name for b in BACKENDS)
_BY_NAME = {b.name: b for b in BACKENDS}


def backend(name: str) -> Backend:
    """The backend of that name (KeyError for an unknown one)."""
    return _BY_NAME[name]


def library_of(root: str) -> tuple[str, str]:
    """(module, version attribute) of the library a call whose dotted path starts with
    ``root`` is versioned by: its framework for a framework or companion module (cupyx:
    cupy), else ``root`` itself (scipy) and ``__version__``."""
    for b in BACKENDS:
        if root == b.framework or root in b.companion_modules:
            return b.framework, b.version_attribute
    return root, "__version__"
