"""spec/qr.yaml's text with its hand-written JVPs (the written_jvp second opinions of its
derived ones) made its JVPs again: for tests that edit a rule's statements and need the edit
to reach the generated code and the audit."""
from __future__ import annotations


def qr_with_written_jvps(text: str, rules=("tall", "wide")) -> str:
    """``text`` (spec/qr.yaml) with the YAML-anchored JVPs ``rules`` written, not derived."""
    for rule in rules:
        derived = f"jvp: &{rule}_jvp derive\n        written_jvp: &{rule}_written |"
        assert text.count(derived) == 1, derived
        text = text.replace(derived, f"jvp: &{rule}_jvp |")
        text = text.replace(f"        written_jvp: *{rule}_written\n", "")
    return text
