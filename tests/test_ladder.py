"""The sampled ladder (tests/ladder.py): the covering holds every pair of factor values the
full product holds, keeps the cases it must, is the same on every run, and the ladders the
tests use cover every spec, variant, shape class, dtype, batch and backend."""
import itertools
import random

import pytest

import ladder
import spec_cases
from spec_cases import DTYPES, cases, sampled


def _tuples(rows, width, size=2):
    return {(g, tuple(r[i] for i in g)) for r in rows
            for g in itertools.combinations(range(width), size)}


def test_the_covering_holds_every_pair_of_a_product():
    factors = [range(5), "abc", (True, False), range(4)]
    rows = list(itertools.product(*factors))
    chosen = [rows[i] for i in ladder.covering(rows)]
    assert _tuples(chosen, 4) == _tuples(rows, 4)
    assert len(chosen) < len(rows) / 4  # 120 rows; at least 5 x 4 = 20 are needed
    assert len(set(chosen)) == len(chosen)


def test_the_covering_holds_every_pair_of_rows_that_are_not_a_product():
    rng = random.Random(0)
    rows = list({(rng.randrange(6), rng.randrange(3), rng.randrange(4), rng.randrange(2))
                 for _ in range(60)})
    chosen = [rows[i] for i in ladder.covering(rows)]
    assert _tuples(chosen, 4) == _tuples(rows, 4)
    assert set(chosen) <= set(rows)


def test_groups_are_covered_in_every_combination():
    rows = list(itertools.product(range(3), range(3), range(3), range(2)))
    chosen = [rows[i] for i in ladder.covering(rows, groups=[(0, 1, 2)])]
    assert {r[:3] for r in chosen} == {r[:3] for r in rows}
    assert _tuples(chosen, 4) == _tuples(rows, 4)


def test_must_rows_are_kept_and_the_result_is_deterministic():
    rows = list(itertools.product(range(4), range(4), range(3)))
    must = [5, 17, 40]
    first = ladder.covering(rows, must=must)
    assert set(must) <= set(first)
    assert ladder.covering(rows, must=must) == first
    assert ladder.covering(list(rows), must=must, seed=ladder.SEED) == first
    assert ladder.covering([]) == []


def test_sample_is_the_full_product_under_full():
    params = list(range(10))
    assert ladder.sample(params, lambda p: (p % 2, p % 5), full=True) == params
    small = ladder.sample(params, lambda p: (p % 2, p % 5), full=False)
    assert len(small) == 10 or {(p % 2, p % 5) for p in small} == {(p % 2, p % 5)
                                                                   for p in params}


@pytest.mark.parametrize("params, backends", [
    (cases(("regular", "zero"), tuple(DTYPES), ("unbatched", "b2", "b2x3", "b0")),
     ("numpy", "torch", "jax")),
    (cases(("regular", "zero"), tuple(DTYPES), ("unbatched", "b2x3", "b0")), ("torch", "jax")),
    (cases(("regular",), ("f64", "c128"), ("b2",), small=True), None),
], ids=["vjp", "agree", "harness"])
def test_the_spec_ladders_cover_every_pair(params, backends):
    """Every pair (spec and variant, shape class, dtype, batch, backend) of the full product is
    in the sample, so every spec, variant and shape class is run on every backend."""
    full = sampled(params, backends, full=True)
    small = sampled(params, backends)

    def rows(ps):
        if backends is None:
            return [spec_cases.factors(p.values[0]) for p in ps]
        return [spec_cases.factors(p.values[1], p.values[0]) for p in ps]

    width = 4 if backends is None else 5
    assert _tuples(rows(small), width) == _tuples(rows(full), width)
    assert {p.values[-1].checked.spec.name for p in small} == \
        {c.spec.name for c in spec_cases.SPECS if len(c.spec.inputs) == 1}
    if not ladder.FULL:
        assert len(small) < len(full)
