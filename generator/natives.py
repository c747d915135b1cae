"""What the frameworks' own derivative rules get wrong, measured (tests/test_svd.py pins each
entry against finite differences): op -> {framework: (predicate(options, shape), reason)}.

Where an entry holds, `cli.py bench` and `cli.py verify` still time the native rule but check
the generated derivative against finite differences instead.  Where a native rule refuses
(raises), the callers find out by calling it; that needs no table.
"""
from __future__ import annotations

NATIVE_WRONG = {
    "svd": {
        # torch.linalg.svd(full_matrices=True) of a tall matrix: the backward drops the
        # cotangent of U[:, n:] and the forward-mode rule leaves U[:, n:] still; both
        # disagree with finite differences for a loss that depends on the completion only
        # through gauge-invariant quantities (tests/test_svd.py)
        "torch": (lambda options, shape: options.get("full_matrices") is True
                  and shape[-2] != shape[-1],
                  "torch's full_matrices=True rule ignores the completion U[:, k:] / Vh[k:, :]"),
    },
}


def native_wrong(op: str, framework: str, options: dict, shape) -> str | None:
    """The reason the native rule of ``op`` is wrong for these options and input shape, or
    None."""
    entry = NATIVE_WRONG.get(op, {}).get(framework)
    if entry is None:
        return None
    predicate, reason = entry
    return reason if predicate(dict(options), tuple(shape)) else None
