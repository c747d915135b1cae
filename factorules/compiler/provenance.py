"""Where each generated rule comes from: the spec file and line of its text and the citations
that text's comments make.

A rule's citation is what its own comments say: every key of the spec's ``references`` that
a comment of the rule's text names, with the place in the work that directly follows it
("WLL2012 Sec. 3", "LLWX2019 eq. (7)", "M1985 Theorem 1").  Nothing is cited that the text
does not name.
"""
from __future__ import annotations

import re

from .spec import Case, Spec, Text

# a place in a cited work, as the specs' comments write it after the reference key
_PLACE = (r"(?:Sec\.|Section|eqs?\.|Eqs?\.|Theorem|Lemma|Prop\.|Proposition|Alg\.|"
          r"Algorithm|Table|Fig\.)\s*(?:\(\d[\w.]*\)|\d[\w.]*\d|\d)")


def _comments(text: str) -> str:
    """The comments of a rule's text, joined into one line (the rule language has no strings:
    every '#' starts a comment)."""
    return " ".join(line.partition("#")[2].strip() for line in text.splitlines()
                    if "#" in line)


def citations(spec: Spec, text: Text) -> list[str]:
    """The spec's references that the comments of ``text`` name, in order of first mention,
    each with the place its comment gives (a section, an equation) when it gives one."""
    comments = _comments(text.text)
    found: dict[str, str] = {}
    mentions = sorted((m.start(), r.key, m) for r in spec.references
                      for m in re.finditer(rf"(?<![\w]){re.escape(r.key)}(?![\w])", comments))
    for _, key, mention in mentions:
        place = re.match(rf"\s*({_PLACE})", comments[mention.end():])
        cited = f"{key} {place.group(1)}" if place else key
        if key not in found or (place and found[key] == key):
            found[key] = cited
    return list(found.values())


def _source(spec: Spec, text: Text) -> str:
    return ", ".join([f"{spec.path}:{text.line}", *citations(spec, text)])


def _derived_source(spec: Spec, case: Case, transposed: bool = False) -> str:
    """A derived JVP's line, the catalogue split it used, and what its second opinion (the
    written rule) cites; ``transposed``: of the VJP that is its transpose."""
    split = re.search(r"split '(\w+)'", case.jvp.text)
    written = citations(spec, case.written_jvp) if case.written_jvp is not None else []
    how = f"derived ({split.group(1) if split else 'catalogue'} split)"
    return ", ".join([f"{spec.path}:{case.jvp.line}",
                      how + (" and transposed" if transposed else ""), *written])


def case_sources(spec: Spec, case: Case) -> dict[str, str]:
    """The comment text (without '#') that heads a case's generated JVP and VJP: the spec
    line of each rule's text and its citations; a VJP the spec does not give is the JVP's
    transpose (factorules.compiler.derive) and says so."""
    jvp = _derived_source(spec, case) if case.derived else _source(spec, case.jvp)
    vjp = (_source(spec, case.vjp) if case.vjp is not None
           else _derived_source(spec, case, transposed=True) if case.derived
           else f"{jvp}, transposed (the spec gives no VJP)")
    return {"jvp": jvp, "vjp": vjp}
