"""The layout of generated/: short lines, imports the code uses, each rule headed by its
spec line and citations."""
import ast
import io
import json
import re
import tokenize

import pytest

from factorules.compiler import layout
from factorules.compiler.paths import ROOT, SPEC_DIR
from factorules.compiler.provenance import citations
from factorules.compiler.spec import Reference, Spec, Text
from factorules.compiler.spec_loader import load_spec

GENERATED = ROOT / "generated"
BACKENDS = ("numpy", "torch", "jax", "cupy")
# the runtime helpers' modules are laid out as written, not by the generator
RUNTIME_MODULES = {"_runtime.py", "_runtime_shared.py", "_array_module.py", "sparse_qr.py",
                   "distributed.py", "_fused.py"}
SPECS = [load_spec(p, display_path=f"spec/{p.name}") for p in sorted(SPEC_DIR.glob("*.yaml"))]


def laid_out_files():
    return sorted(p for p in GENERATED.rglob("*.py") if p.name not in RUNTIME_MODULES)


def test_every_line_of_the_generated_modules_fits_in_the_line_length():
    """The modules the generator lays out, and the runtime sources copied as written."""
    assert len(laid_out_files()) == 1 + len(BACKENDS) * (1 + len(SPECS))
    files = sorted(GENERATED.rglob("*.py"))
    assert {p.name for p in files} >= RUNTIME_MODULES
    long = [f"{p.relative_to(ROOT)}:{i}: {len(line)} characters"
            for p in files for i, line in enumerate(p.read_text().splitlines(), 1)
            if len(line) > layout.LINE_LENGTH]
    assert long == []


def test_requirements_pin_the_formatter_the_generator_expects():
    pins = re.findall(r"^ruff==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert pins == [layout.RUFF_VERSION]


def _runtime_imports(tree: ast.Module) -> list[str]:
    return [a.asname or a.name for node in tree.body
            if isinstance(node, ast.ImportFrom) and node.module == "_runtime" and node.level == 1
            for a in node.names]


def _top_level_names(tree: ast.Module, but_runtime_imports: bool = False) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if not (but_runtime_imports and getattr(node, "module", None) == "_runtime"):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign):
            names.update(n.id for t in node.targets for n in ast.walk(t)
                         if isinstance(n, ast.Name))
    return names


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_module_imports_exactly_the_runtime_helpers_its_code_reads(backend):
    helpers = _top_level_names(ast.parse((GENERATED / backend / "_runtime.py").read_text()))
    for spec in SPECS:
        tree = ast.parse((GENERATED / backend / f"{spec.name}.py").read_text())
        read = {n.id for n in ast.walk(tree)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        imported = _runtime_imports(tree)
        assert imported, spec.name
        assert sorted(set(imported)) == imported, spec.name  # sorted, each once
        assert [name for name in imported if name not in read] == [], spec.name
        own = _top_level_names(tree, but_runtime_imports=True)
        assert sorted(read & helpers - own - set(imported)) == [], spec.name


def _case_texts(spec: Spec) -> list[Text]:
    """The text of every case's JVP, then of every case's VJP (the JVP's for a VJP the spec
    derives), as the generated rules list them: once for variants with the same rules (eigh's
    UPLO="L" and "U", written once under one test); variants with the same texts but other
    outputs differentiated (rq's mode="r", whose Q is omitted) or outputs of other fields
    (schur's output="complex", complex for real input, whose gauge check always runs) have
    rules of their own."""
    cases, seen = [], set()
    for v in spec.variants:
        texts = (tuple((c.jvp.line, (c.vjp or c.jvp).line) for c in v.cases),
                 tuple((t.returned, t.complex_valued) for t in v.outputs))
        if texts not in seen:
            seen.add(texts)
            cases += v.cases
    return [c.jvp for c in cases] + [c.vjp or c.jvp for c in cases]


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_rule_is_headed_by_the_spec_line_of_its_text(backend):
    for spec in SPECS:
        source = (GENERATED / backend / f"{spec.name}.py").read_text()
        lines = [int(n) for n in re.findall(rf"^ *# {re.escape(spec.path)}:(\d+)\b", source,
                                            re.M)]
        assert lines == [t.line for t in _case_texts(spec)], spec.name


def _line_of(path: str, fragment: str) -> int:
    lines = (ROOT / path).read_text().splitlines()
    found = [i for i, line in enumerate(lines, 1) if fragment in line]
    assert len(found) == 1, (path, fragment, found)
    return found[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_comment_cites_what_the_rule_text_names(backend):
    qr = (GENERATED / backend / "qr.py").read_text()
    # qr's tall JVP is derived: its line, the split, and what its written_jvp cites
    line = _line_of("spec/qr.yaml", "jvp: &tall_jvp derive")
    assert f"# spec/qr.yaml:{line}, derived (qr split), WLL2012 Sec. 3\n" in qr
    line = _line_of("spec/qr.yaml", "# LLWX2019 eq. (7); the transpose")
    assert f"# spec/qr.yaml:{line}, LLWX2019 eq. (7)\n" in qr
    # eig's VJP is the transpose of its JVP (the spec gives none)
    eig = (GENERATED / backend / "eig.py").read_text()
    line = _line_of("spec/eig.yaml", "# G2008 Sec. 3.1, then")
    assert f"# spec/eig.yaml:{line}, G2008 Sec. 3.1\n" in eig
    assert f"# spec/eig.yaml:{line}, G2008 Sec. 3.1, transposed (the spec gives no VJP)\n" in eig
    # svd's VJP is the transpose of its derived JVP
    svd = (GENERATED / backend / "svd.py").read_text()
    lines = (ROOT / "spec" / "svd.yaml").read_text().splitlines()
    line = lines.index('      - when: "m > n"') + 2  # the thin variant's, then its jvp line
    assert lines[line - 1].strip() == "jvp: derive"
    assert f"# spec/svd.yaml:{line}, derived (svd split) and transposed, T2016, WZ2019\n" in svd


def _spec_citing(*keys: str) -> Spec:
    return Spec("op", "spec/op.yaml", "0" * 64, "an op", tuple(Reference(k, k) for k in keys),
                (), (), (), (), ())


def test_citations_are_the_references_the_comments_name_with_their_place():
    spec = _spec_citing("AB2001", "CD2002", "EF2003")
    text = Text("# CD2002 eq. (4) and AB2001 Sec. 2.3.\n"
                "X = A @ B  # AB2001 again, then CD2002\n"
                "Y = X  # XY1999 Theorem 2 is no reference of the spec\n", 10)
    assert citations(spec, text) == ["CD2002 eq. (4)", "AB2001 Sec. 2.3"]
    # a key outside comments, or inside a longer word, is no citation
    assert citations(spec, Text("EF2003x = A  # EF20034, notEF2003\n", 1)) == []
    # a place given at a later mention completes a bare first one
    assert citations(spec, Text("# EF2003, see EF2003 Theorem 1\n", 1)) == ["EF2003 Theorem 1"]


@pytest.mark.parametrize("text", [
    "short",
    "",
    'a "quoted" message \\ with a backslash and ünicode, ' * 4,
    "the loss depends on the phases of the singular vectors or on the arbitrary orthonormal "
    "completion U[:, k:], Vh[k:, :] (k = min(m, n)), so it has no derivative",
])
def test_a_string_split_into_pieces_keeps_its_value(text):
    source = layout.string_source(text)
    assert ast.literal_eval(source) == text
    literals = [t.string for t in tokenize.generate_tokens(io.StringIO(source).readline)
                if t.type == tokenize.STRING]
    assert (len(literals) > 1) == (len(json.dumps(text)) > layout.STRING_PIECE + 2)
    assert all(len(literal) <= layout.STRING_PIECE + 2 for literal in literals)


def test_an_f_string_split_into_pieces_keeps_its_fields():
    body = ("op: needs r == m for left=True,transpose=False (sizes: r = {r}, p = {p}, "
            "k = {k}, m = {m}, n = {n})")
    source = layout.string_source(body, formatted=True)
    assert source.count('" f"') + source.count('" "') >= 1  # more than one piece
    values = dict(r=1, p=2, k=3, m=4, n=5)
    assert eval(compile(source, "<test>", "eval"), {}, values) == body.format(**values)
