"""The calls a spec names, parsed as Python ``ast`` trees and never evaluated: each
backend's signature entry (against the library's recorded signature and the values its
documentation accepts), and the 'framework' and 'delegate' calls of other specs' operations.
"""
from __future__ import annotations

import ast

from .check_dims import parse_python_expression
from .native_call import INPUT_ARGUMENTS, is_input_argument
from .spec import Spec, SpecError


def check_signature_calls(spec: Spec) -> None:
    """Each backend's current call: 'dotted.func(INPUT, ..., keyword=OPTION, ...)'."""
    inputs = {t.name for t in spec.inputs}
    options = {o.name for o in spec.options}
    for sig in spec.signatures:  # every entry: an older one is generated too
        if sig.compute:
            continue

        def fail(msg, sig=sig):
            raise SpecError(spec.path, sig.line, f"signatures.{sig.backend}: {msg}: {sig.call!r}")

        node = parse_python_expression(sig.call, fail, "cannot parse the call")
        if not isinstance(node, ast.Call):
            fail("expected a call such as 'module.func(A, mode=mode)'")
        func = node.func
        while isinstance(func, ast.Attribute):
            func = func.value
        if not isinstance(func, ast.Name):
            fail("the function must be a dotted name")
        if not all(is_input_argument(a, inputs) for a in node.args):
            fail(INPUT_ARGUMENTS)
        matrices = {t.name for v in spec.variants for t in v.outputs if not t.is_vector}
        for name in sig.transposed:
            if name not in matrices:
                fail(f"transposed: '{name}' is not a matrix output")
        for k in node.keywords:
            if k.arg is None:
                fail("'**' unpacking is not allowed")
            if isinstance(k.value, ast.Constant) and type(k.value.value) in (bool, str, int):
                continue
            if not (isinstance(k.value, ast.Name) and k.value.id in options):
                fail(f"keyword {k.arg}= must be given an option name or a constant")
        _recorded_signature(spec, sig, node, fail)


def recorded_parameters(text: str) -> ast.arguments | None:
    """A signature entry's 'signature' text, "(a, mode='reduced')", parsed (not evaluated)
    as the parameters of a def; None when it is not one."""
    try:
        tree = ast.parse(f"def _recorded{text}: pass", mode="exec")
    except SyntaxError:
        return None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef):
        return None
    return tree.body[0].args


def _recorded_signature(spec: Spec, sig, node: ast.Call, fail) -> None:
    """The call passes only keywords its recorded signature has, and only values its
    'accepts' lists (after the entry's 'values' spellings)."""
    if sig.signature is None:
        if sig.accepts:
            fail("accepts needs the function's signature too")
        return
    params = recorded_parameters(sig.signature)
    if params is None:
        fail(f"signature {sig.signature!r} is not a parameter list such as \"(a, mode='reduced')\"")
    names = [a.arg for a in (*params.posonlyargs, *params.args, *params.kwonlyargs)]
    positional = len(params.posonlyargs) + len(params.args)
    if len(node.args) > positional and params.vararg is None:
        fail(f"passes {len(node.args)} positional arguments; its signature takes {positional}")
    for k in node.keywords:
        if k.arg not in names and params.kwarg is None:
            fail(f"keyword {k.arg}= is not in its signature {sig.signature}")
    accepts = dict(sig.accepts)
    for keyword in accepts:
        if keyword not in names:
            fail(f"accepts: '{keyword}' is not in its signature {sig.signature}")
    mapped = {opt: dict(pairs) for opt, pairs in sig.values}
    for k in node.keywords:
        if isinstance(k.value, ast.Constant) and k.arg in accepts \
                and k.value.value not in accepts[k.arg]:
            fail(f"passes {k.arg}={k.value.value!r}, which accepts.{k.arg} does not list")
        if isinstance(k.value, ast.Name) and k.arg in accepts:
            for v in spec.variants:  # the option's value each variant's call is made with
                value = dict(v.native).get(k.value.id)
                if value is None:
                    continue
                passed = mapped.get(k.value.id, {}).get(value, value)
                if passed not in accepts[k.arg]:
                    fail(f"passes {k.arg}={passed!r}, which accepts.{k.arg} does not list")


def framework_call(spec: Spec) -> tuple[str, list[str], list[tuple[str, str]]] | None:
    """The 'framework' call parsed without evaluating it: (spec name, positional input
    names, [(keyword, option name or Python literal source)])."""
    if spec.framework is None:
        return None
    text, _, line = spec.framework
    return _spec_call(spec, text, line, "framework")


def delegate_call(spec: Spec) -> tuple[str, list[str], list[tuple[str, str]]] | None:
    """The 'delegate' call parsed without evaluating it, as framework_call's."""
    if spec.delegate is None:
        return None
    _, text, line = spec.delegate
    return _spec_call(spec, text, line, "delegate")


def _spec_call(spec: Spec, text: str, line: int, what: str):
    """A call of another spec's operation on this one's inputs and options."""
    def fail(msg):
        raise SpecError(spec.path, line, f"{what}: {msg}: {text!r}")

    node = parse_python_expression(text, fail, "cannot parse the call")
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        fail("expected a call of another spec's operation, such as 'eigh(A, UPLO=UPLO)'")
    inputs = [t.name for t in spec.inputs]
    if [a.id if isinstance(a, ast.Name) else None for a in node.args] != inputs:
        fail(f"the positional arguments must be the inputs ({', '.join(inputs)})")
    options = {o.name for o in spec.options}
    keywords = []
    for k in node.keywords:
        if isinstance(k.value, ast.Constant) and type(k.value.value) in (bool, str, int):
            keywords.append((k.arg, repr(k.value.value)))
        elif isinstance(k.value, ast.Name) and k.value.id in options and k.arg is not None:
            keywords.append((k.arg, k.value.id))
        else:
            fail(f"keyword {k.arg}= must be given an option name or a constant")
    if node.func.id == spec.name:
        fail(f"an operation cannot be its own {what}")
    return node.func.id, inputs, keywords


def related(specs, names: set[str]) -> set[str]:
    """``names`` and the specs whose generated code may read theirs: those a 'delegate' or
    'framework' call of one of them names, and those whose call names one of them."""
    calls = {c.spec.name: {p[0] for p in (delegate_call(c.spec), framework_call(c.spec))
                           if p is not None} for c in specs}
    out = set(names)
    while True:
        grown = out | {t for n in out for t in calls.get(n, ())} | {
            n for n, targets in calls.items() if targets & out}
        if grown == out:
            return out
        out = grown
