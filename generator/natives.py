"""What the frameworks' own derivative rules refuse and get wrong: the one place that names
operations for this.

NATIVE_REFUSES: where a native rule raises (the tests pin that it does; bench and verify find
out by calling it).  NATIVE_WRONG: where it differentiates and disagrees with finite
differences (tests/test_svd.py and tests/test_rules.py pin it); bench and verify still time
it but check the generated derivative against finite differences instead.
"""
from __future__ import annotations

# Where a framework's native rule refuses to differentiate: op -> {framework: refuses(options,
# values of the primitive dims)}.  Whether a native rule exists at all is not tabulated: it is
# torch.linalg.<op> / jax.numpy.linalg.<op> if there is one (native_function, as in
# generator.verify), and it is expected to differentiate every variant and shape not listed.
NATIVE_REFUSES = {
    # torch.linalg.qr has no derivative for mode='r' nor for mode='complete' when m > n
    "qr": {"torch": lambda o, s: o["mode"] == "r" or (o["mode"] == "complete" and s[0] > s[1])},
    # jax.numpy.linalg.svd has no JVP for full_matrices=True unless A is square
    "svd": {"jax": lambda o, s: o["full_matrices"] and s[0] != s[1]},
    # jax.numpy.linalg.eig differentiates eigenvalues only (jax-ml/jax#2748)
    "eig": {"jax": lambda o, s: True},
}

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
