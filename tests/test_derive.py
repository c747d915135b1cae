"""`jvp: derive`: JVPs derived from the defining equations by the catalogue of splits
(factorules/compiler/derive_jvp.py, catalogue.py), compared with the written rules at 50
digits, their one-line errors, and the audit catching a wrong catalogue entry."""
from __future__ import annotations

import io
import re
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import replace
from pathlib import Path

import pytest

from factorules.audit import agreement, audit
from factorules.compiler import catalogue, derive_jvp
from factorules.compiler.check import check_spec
from factorules.compiler.spec import SpecError
from factorules.compiler.spec_loader import load_spec

SPEC_DIR = Path(__file__).resolve().parent.parent / "spec"
SPECS = sorted(p.stem for p in SPEC_DIR.glob("*.yaml"))

# the targets: (spec, variant label, case) that must derive and agree with a written rule
TARGETS = [
    ("qr", "mode=reduced", "m >= n"), ("qr", "mode=reduced", "m < n"),
    ("qr", "mode=complete", "m == n"), ("lq", "mode=reduced", "m <= n"),
    ("lq", "mode=reduced", "m > n"), ("cholesky", "upper=False", "always"),
    ("cholesky", "upper=True", "always"), ("lu", "pivot=True", "m == n"),
    ("eigh", "UPLO=L", "always"), ("svd", "full_matrices=False", "m == n"),
    ("svd", "full_matrices=False", "m > n"), ("svd", "full_matrices=False", "m < n"),
    ("polar", "side=right", "m > n"), ("polar", "side=left", "m < n"),
]


def _load(name: str):
    return load_spec(SPEC_DIR / f"{name}.yaml", display_path=f"spec/{name}.yaml")


@pytest.mark.parametrize("name", SPECS)
def test_derived_rules_agree_with_the_written_ones(name):
    """Every case the catalogue derives and the spec also writes (as its jvp, or as the
    written_jvp of a derived one) agrees at 50 digits on every configuration the audit draws."""
    for d in agreement.derivations(_load(name)):
        if d.derived is None or d.written is None:
            continue
        assert d.configurations > 0, (name, d.variant, d.case)
        assert d.residual <= agreement.AGREE, (name, d.variant, d.case, d.residual)


def test_the_targets_derive_and_agree():
    found = {}
    for name in {t[0] for t in TARGETS}:
        for d in agreement.derivations(_load(name)):
            found[(name, d.variant, d.case)] = d
    for key in TARGETS:
        d = found[key]
        assert d.derived is not None, (key, d.failure)
        assert d.written is not None and d.residual <= agreement.AGREE, (key, d.residual)


def test_six_or_more_specs_use_jvp_derive_with_a_second_opinion():
    using = [name for name in SPECS
             if any(c.derived and c.written_jvp is not None
                    for v in _load(name).variants for c in v.cases)]
    assert len(using) >= 6, using


def test_the_derived_qr_rule_as_printed():
    spec = _load("qr")
    v = next(v for v in spec.variants if v.label == "mode=reduced")
    text = derive_jvp.derive_text(spec, v, "m >= n")
    statements = [line for line in text.splitlines() if not line.startswith("#")]
    assert statements == [
        "C = solve_triangular(R, dA, upper=True, left=False)",
        "B = Q.H @ C",
        "Y = triu(B + B.H, 1) + diag(re(diagonal(B)))",
        "dQ = C - Q @ Y",
        "dR = Y @ R",
    ]
    # the loaded spec holds that text as the case's JVP, parsed like a written one
    case = next(c for c in v.cases if c.when == "m >= n")
    assert case.derived and case.jvp.text == text


@pytest.mark.parametrize("when, expected", [
    ("m >= n", {"k": "n"}), ("m > n", {"k": "n"}), ("m <= n", {"k": "m"}),
    ("m < n", {"k": "m"}), ("m == n", {"k": "m", "n": "m"}),
])
def test_case_sizes(when, expected):
    sizes = derive_jvp.case_sizes((("m", "rows(A)"), ("n", "cols(A)"), ("k", "min(m, n)")),
                                  when)
    for name, canonical in expected.items():
        assert sizes.canonical[name] == canonical


def test_case_sizes_needs_an_order_for_min():
    with pytest.raises(derive_jvp.DeriveFailure, match="needs a case condition that orders"):
        derive_jvp.case_sizes((("m", "rows(A)"), ("n", "cols(A)"), ("k", "min(m, n)")),
                              "always")


def _edited(tmp_path, name: str, old: str, new: str) -> tuple[Path, int]:
    """spec/NAME.yaml with one edit, written to tmp_path; the line the edit starts on."""
    text = (SPEC_DIR / f"{name}.yaml").read_text()
    assert text.count(old) == 1, old
    line = text[:text.index(old)].count("\n") + 1
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace(old, new))
    return path, line


def test_no_catalogue_entry_is_a_one_line_error_naming_the_equation(tmp_path):
    # complete-mode QR of a tall A: R's zero rows leave Q's completion free
    text = (SPEC_DIR / "qr.yaml").read_text()
    path = tmp_path / "qr.yaml"
    start = text.index("        jvp: |\n          # Thin part as in WLL2012")
    end = text.index("        vjp: |\n          # Transpose of the completion")
    path.write_text(text[:start] + "        jvp: derive\n" + text[end:])
    jvp_line = text[:start].count("\n") + 1
    with pytest.raises(SpecError) as err:
        load_spec(path, display_path="spec/qr.yaml")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"spec/qr.yaml:{jvp_line}: jvp: derive: cannot separate "
                              f"'A = Q @ R': R is triangular with more rows than columns")
    assert "orthonormal completion" in message


def test_an_unreadable_factor_is_a_one_line_error(tmp_path):
    path, line = _edited(tmp_path, "eigh", "- jvp: derive", "- jvp: derive")
    text = path.read_text().replace('defining: &defining ["A = Q @ diag(L) @ Q.H"]',
                                    'defining: &defining ["A = Q @ diag(L) @ Q.H @ Q @ Q.H"]')
    path.write_text(text)
    with pytest.raises(SpecError) as err:
        load_spec(path, display_path="spec/eigh.yaml")
    assert re.match(rf"spec/eigh\.yaml:{line}: jvp: derive: cannot separate 'A = Q @ diag\(L\) "
                    rf"@ Q\.H @ Q @ Q\.H': a product of 5 factors", str(err.value))


def test_written_jvp_needs_jvp_derive(tmp_path):
    old = "      - jvp: derive\n        written_jvp: |\n          # M2008 eq. (8)"
    path, line = _edited(tmp_path, "cholesky", old,
                         "      - jvp: |\n          dL = dA\n        written_jvp: |\n"
                         "          # M2008 eq. (8)")
    # the error names the first line of the text, as for a jvp
    with pytest.raises(SpecError, match=rf"^spec/cholesky\.yaml:{line + 3}: written_jvp is the "
                                        rf"second opinion of a derived rule"):
        load_spec(path, display_path="spec/cholesky.yaml")


def test_the_audit_catches_a_wrong_catalogue_entry(monkeypatch):
    """Each entry's proof obligation is the audit's: a split that drops R's diagonal gives
    a derived rule the linearization and finite-difference checks reject."""
    wrong = tuple(replace(s, first="triu({C} + {C}.H, 1)") if s.name == "qr" else s
                  for s in catalogue.SPLITS)
    monkeypatch.setattr(catalogue, "SPLITS", wrong)
    results = audit.audit_spec(check_spec(_load("qr")))
    failed = {r.check for r in results if not r.passed}
    assert {"linearization", "fd"} <= failed, failed
    monkeypatch.undo()
    assert all(r.passed for r in audit.audit_spec(check_spec(_load("lq"))))


def test_cli_derive_prints_the_rules_and_their_agreement():
    from factorules.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["derive", "cholesky", "lu"])
    assert code == 0, err.getvalue()
    text = out.getvalue()
    assert "cholesky upper=False [always]" in text and "lu pivot=True [m > n]" in text
    assert "split 'cholesky'" in text and "split 'lu'" in text
    assert text.count("(agree)") == 5 and "DIFFER" not in text
    assert "every derived rule agrees" in err.getvalue()


def test_cli_derive_reports_what_it_cannot_derive():
    from factorules.cli import main

    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        code = main(["derive", "schur"])
    assert code == 0
    assert "not derived: cannot separate 'A = Z @ T @ Z.H'" in out.getvalue()


def test_the_catalogue_document_lists_every_entry():
    doc = (SPEC_DIR.parent / "docs" / "derivation-by-catalogue.md").read_text()
    entries = [*catalogue.SPLITS, *catalogue.HERMITIAN_SPLITS, *catalogue.SYLVESTER_SPLITS,
               *catalogue.SPECTRAL_SPLITS]
    for entry in entries:
        assert f"| `{entry.name}` |" in doc, entry.name
    for space in catalogue.SPACES:
        assert f"`{space}`" in doc, space
