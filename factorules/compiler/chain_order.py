"""The cheapest order of a chain of matrix products (the textbook matrix-chain dynamic
program), at representative sizes (factorules/compiler/chain_sizes.py): the printers
multiply in it, and common-subexpression elimination shares a product only where that order
costs no more (factorules/compiler/program.py).
"""
from __future__ import annotations

from sympy import MatMul

from .ops import as_expr


def cheapest(mats, sizes) -> tuple[int, MatMul] | None:
    """(multiply-adds, mats as a tree of two-factor products) of the cheapest order at
    ``sizes``, or None where a size is not a number there.  Ties keep the left-to-right
    split."""
    try:
        dims = [int(as_expr(mats[0].rows).subs(sizes))] + \
               [int(as_expr(x.cols).subs(sizes)) for x in mats]
    except (TypeError, ValueError):
        return None
    n = len(mats)
    best = {(i, i): (0, mats[i]) for i in range(n)}
    for span in range(1, n):
        for i in range(n - span):
            j = i + span
            found = None
            for s in range(i, j):  # ties keep the left-to-right split (s = j - 1)
                c = best[(i, s)][0] + best[(s + 1, j)][0] + dims[i] * dims[s + 1] * dims[j + 1]
                if found is None or c <= found[0]:
                    found = (c, MatMul(best[(i, s)][1], best[(s + 1, j)][1]))
            best[(i, j)] = found
    return best[(0, n - 1)]
