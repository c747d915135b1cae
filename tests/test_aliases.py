"""Old spellings of options (the spec's 'aliases'): qr(A, some=False), svd(A, some=True) and
eigh(A, lower=False) are accepted with a DeprecationWarning that names the new spelling, give
what the new spelling gives, in every backend's function, _jvp and _vjp; an old and a new
spelling together, or an old value that has no meaning, are errors; a bad 'aliases' entry is
a spec error."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import generated.jax as fj
import generated.numpy as fn
import generated.torch as ft
from factorules.compiler.check import check_spec
from factorules.compiler.paths import ROOT
from factorules.compiler.spec import SpecError
from factorules.compiler.spec_loader import load_spec

BACKENDS = {"numpy": (fn, np.asarray), "torch": (ft, torch.tensor), "jax": (fj, jnp.asarray)}
# (operation, old keyword and value, the new keyword and value)
CASES = [("qr", ("some", False), ("mode", "complete")),
         ("qr", ("some", True), ("mode", "reduced")),
         ("svd", ("some", True), ("full_matrices", False)),
         ("eigh", ("lower", False), ("UPLO", "U")),
         ("eigvalsh", ("lower", True), ("UPLO", "L"))]


def matrix(op):
    a = np.random.default_rng(0).standard_normal((5, 3) if op in ("qr", "svd") else (4, 4))
    return a + a.T if op.startswith("eig") else a


def same(x, y):
    xs = x if isinstance(x, tuple) else (x,)
    ys = y if isinstance(y, tuple) else (y,)
    return len(xs) == len(ys) and all(np.array_equal(np.asarray(u), np.asarray(v))
                                      for u, v in zip(xs, ys))


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1][0]}={c[1][1]}" for c in CASES])
def test_an_old_spelling_warns_and_means_the_new_one(backend, case):
    op, (old, old_value), (new, new_value) = case
    module, to = BACKENDS[backend]
    a = to(matrix(op))
    message = f"{op}: {old}={old_value!r} is deprecated, use {new}={new_value!r}"
    with pytest.warns(DeprecationWarning, match=message.replace("(", r"\(")) as record:
        got = getattr(module, op)(a, **{old: old_value})
    assert record[0].filename == __file__  # the warning points at the caller
    assert same(got, getattr(module, op)(a, **{new: new_value}))
    with pytest.warns(DeprecationWarning, match=message):
        outputs, _ = getattr(module, op + "_jvp")(a, a, **{old: old_value})
    assert same(outputs, got)
    with pytest.warns(DeprecationWarning, match=message):
        outputs, _ = getattr(module, op + "_vjp")(a, **{old: old_value})
    assert same(outputs, got)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_old_and_new_together_or_a_meaningless_old_value_are_errors(backend):
    module, to = BACKENDS[backend]
    a = to(matrix("qr"))
    with pytest.raises(ValueError, match="qr: give mode= or some=, not both"):
        module.qr(a, mode="complete", some=True)
    with pytest.raises(ValueError, match=r"qr: some must be one of \[True, False\], got 1"):
        module.qr(a, some=1)
    with pytest.raises(ValueError, match="svd: give full_matrices= or some=, not both"):
        module.svd(a, full_matrices=False, some=True)


QR = ROOT / "spec" / "qr.yaml"
ALIAS = "  some: {option: mode, values: [[true, reduced], [false, complete]]}"
BAD = [
    ("an-option-name", ALIAS.replace("  some:", "  mode:"),
     "aliases: 'mode' already names an option, an input or the delegate"),
    ("the-delegate", ALIAS.replace("  some:", "  pivoting:"),
     "aliases: 'pivoting' already names an option, an input or the delegate"),
    ("no-such-option", ALIAS.replace("option: mode", "option: modes"),
     "aliases.some: 'modes' is not an option"),
    ("no-such-value", ALIAS.replace("[false, complete]", "[false, full]"),
     "aliases.some.values: False -> 'full': the option's values are 'reduced', 'complete', 'r'"),
    ("not-pairs", ALIAS.replace("[[true, reduced], [false, complete]]", "{old: reduced}"),
     "aliases.some.values must be a list"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_a_bad_alias_is_a_spec_error(case, tmp_path):
    _, new, words = case
    text = QR.read_text(encoding="utf-8")
    assert text.count(ALIAS) == 1
    path = tmp_path / "qr.yaml"
    edited = text.replace(ALIAS, new)
    path.write_text(edited, encoding="utf-8")
    with pytest.raises(SpecError) as err:
        check_spec(load_spec(path, display_path="spec/qr.yaml"))
    assert err.value.line == edited[:edited.index(new)].count("\n") + 1, str(err.value)
    assert words in err.value.message, str(err.value)
