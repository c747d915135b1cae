"""The test ladder, sampled: a deterministic pairwise covering of a parametrization's cases.

A parametrized check runs, by default, on a covering sample of its full product: every value of
every factor appears, and every pair of values of two factors that appears together in some case
of the full product appears together in at least one sampled case (all-pairs covering).  Tuples
of more than two factors can be asked for as well (``groups``), and cases a past bug needed are
always kept (``must``).  ``pytest --full`` (tests/conftest.py; ``python3 run.py test --full``), or
FACTORULES_FULL=1 in the environment, gives the full product instead: run it before a change to
the printers or the templates.

The covering is built greedily from the full product itself (so that only cases that exist are
drawn: a square-input spec has no 'tall' shape class), in the manner of AETG: take the first
uncovered tuple, and among the cases that cover it, the one that covers the most tuples still
uncovered; ties are broken by a random generator with a fixed seed.  The same cases give the
same sample on every run and on every pytest-xdist worker.
"""
from __future__ import annotations

import itertools
import os
import random
from typing import Hashable, Iterable, Sequence

# Set by tests/conftest.py's pytest_configure from --full, before any test module is collected.
FULL = os.environ.get("FACTORULES_FULL", "") not in ("", "0")
SEED = 20260101


def _tuples(row: Sequence[Hashable], groups: Sequence[tuple[int, ...]]):
    return [(g, tuple(row[i] for i in g)) for g in groups]


def covering(rows: Sequence[Sequence[Hashable]], groups: Iterable[tuple[int, ...]] = (),
             must: Iterable[int] = (), seed: int = SEED) -> list[int]:
    """Indices (ascending) of a subset of ``rows`` that covers every tuple of factor values that
    ``rows`` cover: for every pair of factor positions (and every extra group of positions in
    ``groups``), each combination of values found in some row is found in a selected row.
    ``must``: indices always selected.  Deterministic for a given ``rows`` and ``seed``."""
    rows = [tuple(r) for r in rows]
    if not rows:
        return []
    width = len(rows[0])
    assert all(len(r) == width for r in rows), "every row needs a value of every factor"
    groups = sorted(set(itertools.combinations(range(width), 2))
                    | {tuple(sorted(g)) for g in groups})
    uncovered: dict = {}  # tuple -> the rows that cover it (insertion order: first seen first)
    row_tuples = []
    for index, row in enumerate(rows):
        mine = _tuples(row, groups)
        row_tuples.append(mine)
        for t in mine:
            uncovered.setdefault(t, []).append(index)
    chosen: set[int] = set()

    def take(index):
        chosen.add(index)
        for t in row_tuples[index]:
            uncovered.pop(t, None)

    for index in sorted(set(must)):
        take(index)
    rng = random.Random(seed)
    while uncovered:
        first = next(iter(uncovered))
        candidates = [i for i in uncovered[first] if i not in chosen]
        scores = [sum(t in uncovered for t in row_tuples[i]) for i in candidates]
        best = max(scores)
        take(rng.choice([i for i, s in zip(candidates, scores) if s == best]))
    return sorted(chosen)


def sample(params: Sequence, factors, groups: Iterable[tuple[int, ...]] = (),
           must=lambda p: False, seed: int = SEED, full: bool | None = None) -> list:
    """``params`` (pytest params, or anything), all of them under --full, else a covering
    sample: ``factors(param)`` gives the tuple of its factor values (hashable), ``must(param)``
    whether it is a case a past bug needed (always kept)."""
    params = list(params)
    if FULL if full is None else full:
        return params
    keep = covering([factors(p) for p in params], groups,
                    [i for i, p in enumerate(params) if must(p)], seed)
    return [params[i] for i in keep]
