"""JAX's own library standard, as the JAX tests hold the generated code to it: the strictest
promotion settings a user can turn on, and matrix products at full precision."""
import contextlib

import jax
import jax.extend.core as _core


@contextlib.contextmanager
def strict():
    """jax_numpy_dtype_promotion="strict" (nothing promoted implicitly: real and complex,
    float32 and float64 never mix) and jax_numpy_rank_promotion="raise" (nothing broadcast
    to more axes implicitly), as JAX's test suite runs."""
    with jax.numpy_dtype_promotion("strict"), jax.numpy_rank_promotion("raise"):
        yield


def dot_precisions(jaxpr, skip=()) -> list:
    """The ``precision`` of every dot_general in ``jaxpr`` (a ClosedJaxpr) and the jaxprs
    it calls, but those of the primitives named in ``skip``."""
    out, pending = [], [jaxpr.jaxpr]
    while pending:
        j = pending.pop()
        for eqn in j.eqns:
            if eqn.primitive.name == "dot_general":
                out.append(eqn.params["precision"])
            if eqn.primitive.name not in skip:
                pending.extend(_core.jaxprs_in_params(eqn.params))
    return out


def is_highest(precision) -> bool:
    """Whether a dot_general's precision is HIGHEST for both operands."""
    highest = jax.lax.Precision.HIGHEST
    if isinstance(precision, tuple):
        return all(p == highest for p in precision)
    return precision == highest
