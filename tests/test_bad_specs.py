"""Bad specs: one line ``path:line: message`` on stderr, exit code 2, nothing written.

Each case copies a frozen copy of spec/qr.yaml (tests/fixtures/specs/qr.yaml, so that edits
of the live spec do not move the pinned lines), makes one small edit on one line and runs the
loader and the checker on it in-process (factorules.compiler.render.load_checked: what ``cli.py`` runs
on every spec before any command), expecting one SpecError whose text is the line the CLI
prints.  A handful of end-to-end tests run ``cli.py generate``, ``generate --check`` and
``list`` in subprocesses: exit code 2, that one line on stderr, nothing written.  The CLI runs
from a copy of the repository (cli.py, factorules/, templates/, generated/), so even a bad spec
that slipped through could only write into the copy; those tests compare a hash of the copy's
generated/ before and after, and the module compares one of the real generated/ before and
after.
"""
from __future__ import annotations

import ast
import builtins
import hashlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import sympy
import sympy.parsing.sympy_parser

from factorules.compiler import expr
from factorules.compiler.check import check_spec
from factorules.compiler.render import check_frameworks, load_checked
from factorules.compiler.spec import SpecError
from factorules.compiler.spec_loader import load_spec

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "specs"
QR = FIXTURES / "qr.yaml"
COMMANDS = (("generate",), ("generate", "--check"), ("list",))


def tree_hash(folder: Path) -> str:
    """sha256 over the relative path and bytes of every file under ``folder``."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()


@pytest.fixture(scope="module", autouse=True)
def real_generated_is_untouched():
    before = tree_hash(ROOT / "generated")
    yield
    assert tree_hash(ROOT / "generated") == before


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory) -> Path:
    """cli.py with the code, specs and generated/ it works on, outside the real repository."""
    copy = tmp_path_factory.mktemp("repo")
    shutil.copy2(ROOT / "cli.py", copy / "cli.py")
    for name in ("factorules", "spec", "templates", "generated"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def edited_qr(line: int, old: str, new: str) -> str:
    """The frozen qr.yaml with ``old`` replaced by ``new`` on (1-based) ``line`` only."""
    lines = QR.read_text(encoding="utf-8").splitlines(keepends=True)
    assert lines[line - 1].count(old) == 1, \
        f"{QR} changed: line {line} no longer holds {old!r} once: {lines[line - 1]!r}"
    lines[line - 1] = lines[line - 1].replace(old, new)
    return "".join(lines)


def start_cli(repo: Path, spec_dir: Path, *args: str, cwd: Path | None = None):
    return subprocess.Popen([sys.executable, str(repo / "cli.py"), "--spec-dir", str(spec_dir),
                             *args], cwd=cwd or repo, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def run_cli(repo: Path, spec_dir: Path, *args: str, cwd: Path | None = None):
    return finish(start_cli(repo, spec_dir, *args, cwd=cwd))


def assert_rejected(repo: Path, spec_dir: Path, line: int, words: tuple[str, ...],
                    cwd: Path | None = None) -> None:
    """All three commands: exit 2, one stderr line 'path:line: message', nothing written."""
    path = spec_dir / "qr.yaml"
    before = tree_hash(repo / "generated")
    processes = [start_cli(repo, spec_dir, *command, cwd=cwd) for command in COMMANDS]
    for command, process in zip(COMMANDS, processes):
        result = finish(process)
        shown = " ".join(command)
        assert result.returncode == 2, (shown, result.returncode, result.stderr)
        assert result.stdout == "", (shown, result.stdout)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and result.stderr.endswith("\n"), (shown, result.stderr)
        prefix = f"{path}:{line}: "
        assert lines[0].startswith(prefix), (shown, prefix, lines[0])
        for word in words:
            assert word in lines[0], (shown, word, lines[0])
        assert tree_hash(repo / "generated") == before, shown


def assert_rejected_in_process(path: Path, line: int, words: tuple[str, ...]) -> None:
    """The loader and the checker, as the CLI runs them on every spec before any command:
    one SpecError whose text, the line the CLI prints, is one line 'path:line: message'."""
    with pytest.raises(SpecError) as err:
        load_checked([path])
    text = str(err.value)
    assert "\n" not in text and "\r" not in text, text
    prefix = f"{path}:{line}: "
    assert text.startswith(prefix) and err.value.line == line, (prefix, text)
    for word in words:
        assert word in text, (word, text)


def write_spec(tmp_path: Path, text: str | bytes) -> Path:
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    path = spec_dir / "qr.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@dataclass(frozen=True)
class Bad:
    id: str
    edit_line: int    # the line of spec/qr.yaml that is edited
    old: str          # text on that line ...
    new: str          # ... replaced by this
    line: int         # the line the error must name
    words: tuple[str, ...]  # key words of the message

    def param(self):
        return pytest.param(self, id=self.id)


# Line numbers refer to tests/fixtures/specs/qr.yaml.  A block scalar's text starts on the line after its
# '|' indicator: the tall JVP's '|' is on line 62, so its text starts on line 63.
CASES = [
    # -- YAML itself
    Bad("yaml-unclosed-bracket", 50, "A: {shape: [m, n]}", "A: {shape: [m, n}", 50,
        ("malformed YAML", "expected ',' or ']'")),
    # one space more: 'n: cols(A)' continues the plain scalar 'rows(A)' of line 46, and its
    # ': ' is a mapping indicator where none may be
    Bad("yaml-bad-indentation", 47, "  n: cols(A)", "   n: cols(A)", 47,
        ("malformed YAML", "mapping values are not allowed here")),
    Bad("yaml-duplicate-key", 58, "diagonal: real}", "diagonal: real, shape: [k, n]}", 58,
        ("malformed YAML", "duplicate key 'shape'")),
    Bad("yaml-python-tag", 50, "A: {shape", "A: !!python/object:os.system {shape", 50,
        ("malformed YAML", "could not determine a constructor", "python/object")),
    # -- keys
    Bad("unknown-top-level-key", 33, "notes: |", "notse: |", 33,
        ("spec: unknown key 'notse'",)),
    # -- row_blocks: the large dimension and the top's rows are dimensions of 'dims'
    Bad("row-blocks-unknown-rows", 49, "inputs:", "row_blocks: {rows: M, below: k}\ninputs:",
        49, ("row_blocks.rows: 'M' is not a dimension",)),
    Bad("row-blocks-unknown-below", 49, "inputs:", "row_blocks: {rows: m, below: s}\ninputs:",
        49, ("row_blocks.below: 's' is not a dimension",)),
    Bad("row-blocks-unknown-key", 49, "inputs:",
        "row_blocks: {rows: m, below: k, top: k}\ninputs:", 49, ("row_blocks: unknown key 'top'",)),
    Bad("unknown-variant-key", 134, "native:", "nativ:", 134,
        ("variant: unknown key 'nativ'",)),
    Bad("unknown-output-key", 57, "structure:", "structur:", 57,
        ("outputs.Q: unknown key 'structur'",)),
    Bad("missing-option-default", 52, ", default: reduced}", "}", 52,
        ("options.mode: missing required key 'default'",)),
    Bad("misspelt-case-vjp", 70, "vjp: &tall_vjp |", "vjq: &tall_vjp |", 70,
        ("case: unknown key 'vjq'",)),
    Bad("missing-case-jvp", 62, "jvp: &tall_jvp |", "jvq: &tall_jvp |", 61,
        ("case: missing required key 'jvp'",)),
    Bad("unknown-option-value", 55, "{mode: reduced}", "{mode: reducd}", 55,
        ("option mode has no value 'reducd'", "reduced, complete, r")),
    Bad("unknown-structure", 57, "orthonormal_columns", "orthonormal", 57,
        ("unknown structure 'orthonormal'",)),
    Bad("input-name-is-a-keyword", 50, "A: {", "lambda: {", 50,
        ("inputs: 'lambda' is not a valid name",)),
    # -- names, shapes and functions in a JVP (tall case: Q is m x n, R is n x n)
    Bad("undeclared-name", 66, "B = Q.H @ C", "B = Q.H @ X", 66,
        ("jvp of mode=reduced when m >= n", "undeclared name 'X'")),
    Bad("shape-mismatch-matmul", 66, "B = Q.H @ C", "B = Q @ dA", 66,
        ("jvp of mode=reduced when m >= n", "@: mxn times mxn")),
    Bad("shape-mismatch-add", 69, "dR = U @ R", "dR = R + Q", 69,
        ("+: operands have shapes nxn and mxn",)),
    Bad("unknown-function", 67, "diag(re(diagonal(B)))", "expm(B)", 67,
        ("unknown function 'expm'",)),
    Bad("assigns-reserved-name", 66, "B = Q.H @ C", "_B = Q.H @ C", 66,
        ("names starting with '_' are reserved: '_B'",)),
    Bad("assigns-identity", 66, "B = Q.H @ C", "I = Q.H @ C", 66,
        ("'I' is the identity matrix and cannot be assigned",)),
    Bad("assigns-an-input", 66, "B = Q.H @ C", "A = Q.H @ C", 66,
        ("'A' is already declared and cannot be assigned",)),
    Bad("never-assigns-dR", 69, "dR = U @ R", "dS = U @ R", 63,
        ("jvp of mode=reduced when m >= n", "never assigns 'dR'")),
    Bad("result-has-wrong-shape", 69, "dR = U @ R", "dR = C", 69,
        ("'dR' is mxn but must be nxn",)),
    Bad("bare-identity-negated", 66, "B = Q.H @ C", "B = Q.H @ C + -I", 66,
        ("cannot tell the size of I here", "eye(rows, cols)")),
    Bad("block-outside-matrix", 77, "R[:, :m]", "R[:-1, :m]", 77,
        ("jvp of mode=reduced when m < n", "block 0:-1 does not fit in m rows")),
    Bad("number-too-large", 66, "B = Q.H @ C", "B = 1e400 * Q.H @ C", 66,
        ("is not a finite number",)),
    Bad("zeros-beside-only-zeros", 114, "vstack(U @ R1, zeros(m - n, n))",
        "vstack(zeros(n, n), zeros(m - n, n))", 114,
        ("jvp of mode=complete when m > n", "can only be a block of hstack/vstack beside a "
         "block that is not zeros")),
    Bad("zeros-outside-a-stack", 114, "vstack(U @ R1, zeros(m - n, n))",
        "vstack(U @ R1, zeros(m - n, n)) + zeros(m, n)", 114,
        ("jvp of mode=complete when m > n", "can only be a block of hstack/vstack")),
    Bad("size-left-as-min", 69, "dR = U @ R", "dR = diag(diagonal(C))", 69,
        ("the size min(m, n) is a min/max that the case condition does not settle",)),
    # -- Python code where an equation belongs
    Bad("python-import", 66, "B = Q.H @ C", "B = __import__('os')", 66,
        ("unknown function '__import__'",)),
    Bad("python-dunder-attribute", 66, "B = Q.H @ C", "B = Q.__class__", 66,
        ("attribute access '.__class__' is not allowed",)),
    Bad("python-attribute", 67, "B + B.H", "B + B.real", 67,
        ("attribute access '.real' is not allowed", "only .H, .T and .conj")),
    Bad("python-lambda", 66, "B = Q.H @ C", "B = (lambda X: X)(C)", 66,
        ("a lambda cannot be called",)),
    Bad("python-comprehension", 66, "B = Q.H @ C", "B = [X for X in C]", 66,
        ("a comprehension is not allowed",)),
    Bad("python-slice-step", 77, "R[:, :m]", "R[:, :m:2]", 77,
        ("block indices are slices 'start:stop'", "no steps")),
    Bad("python-string", 66, "B = Q.H @ C", "B = 'Q.H @ C'", 66,
        ("constant 'Q.H @ C' is not a number",)),
    Bad("python-power", 66, "B = Q.H @ C", "B = Q.H @ C ** 2", 66,
        ("operator '**' is not allowed",)),
    Bad("python-keyword-unpacking", 65, "upper=True, left=False", "**dict(upper=True)", 65,
        ("unpacking is not allowed",)),
    Bad("python-statement", 66, "B = Q.H @ C", "import os", 66,
        ("expected 'NAME = expression', found an import",)),
    Bad("python-syntax", 68, "dQ = C - Q @ U", "dQ = C - Q @@ U", 68,
        ("syntax error",)),
    # -- option types, benchmarks
    Bad("option-values-of-two-types", 52, "[reduced, complete, r]", "[reduced, true]", 52,
        ("options.mode.values must be a non-empty list of strings or of booleans",)),
    Bad("option-value-of-the-wrong-type", 55, "{mode: reduced}", "{mode: true}", 55,
        ("option mode has no value True",)),
    Bad("benchmark-dtype", 163, "dtype: float64}", "dtype: float16}", 163,
        ("benchmark.dtype must be one of float32, float64, complex64, complex128",)),
    Bad("benchmark-unknown-option", 163, "{mode: reduced}", "{pivot: reduced}", 163,
        ("benchmark.options: unknown option 'pivot'",)),
    Bad("benchmark-shape", 163, "shape: [2048, 512]", "shape: [2048]", 163,
        ("its shape [2048] needs at least 2 entries (batch dims first, then the input's rows "
         "and columns)",)),
    Bad("benchmark-shape-negative", 163, "shape: [2048, 512]", "shape: [2048, -1]", 163,
        ("benchmark.shape must be a list of non-negative integers",)),
    # -- defining equations, case conditions, dims
    Bad("defining-equation-of-scalars", 59, '"A = Q @ R"', '"1 = 1"', 59,
        ("defining equation: both sides of an equation must be matrices",)),
    Bad("defining-identity-not-square", 59, '"Q.H @ Q = I"', '"A = I"', 59,
        ("defining equation: I: needs a square matrix, got mxn",)),
    Bad("output-without-defining-equation", 59, '"A = Q @ R", "Q.H @ Q = I"',
        '"Q.H @ Q = I"', 58,
        ("output R of mode=reduced appears in no defining equation",)),
    Bad("no-defining-equations", 59, '["A = Q @ R", "Q.H @ Q = I"]', "[]", 59,
        ("variant: 'defining' needs at least one equation",)),
    Bad("case-defining-equation-unparsable", 101, 'Q[:, n:] = ', 'Q[:, n:] == ', 101,
        ("defining equation:",)),
    Bad("defining-two-equals", 59, '"A = Q @ R"', '"A = Q = R"', 59,
        ("an equation has exactly one '='",)),
    Bad("case-condition-not-a-comparison", 61, '"m >= n"', '"m"', 61,
        ("case condition 'm'", "expected one comparison")),
    Bad("case-condition-chained", 61, '"m >= n"', '"m >= n >= 1"', 61,
        ("expected one comparison",)),
    Bad("dims-unparseable", 48, '"min(m, n)"', '"min(m, n"', 48,
        ("dims: cannot parse 'min(m, n'",)),
    Bad("dims-unknown-function", 48, '"min(m, n)"', '"expm(m)"', 48,
        ("dims: 'expm(m)' is not a dimension definition",)),
    Bad("dims-unknown-dimension", 48, '"min(m, n)"', '"min(m, p)"', 48,
        ("dims: unknown dimension 'p'",)),
    Bad("dims-rows-inside-an-expression", 48, '"min(m, n)"', '"rows(A) + 1"', 48,
        ("dims: rows(A) must be a dimension's whole definition",)),
    Bad("input-shape-contradicts-dims", 50, "[m, n]", "[n, m]", 50,
        ("input A: its rows are 'n', but dims says m = rows(A)",)),
    # -- signatures
    Bad("signature-without-current-entry", 157, 'accepts: {mode: [reduced, complete, r]}}',
        'accepts: {mode: [reduced, complete, r]}, until: "2.0"}', 157,
        ("signatures.torch: no current entry (one without 'until')",)),
    Bad("signature-call-argument", 157, "qr(A, mode=mode)", "qr(B, mode=mode)", 157,
        ("signatures.torch: positional arguments must be input names",)),
    Bad("signature-unknown-backend", 157, "torch:", "tensorflow:", 157,
        ("signatures: unknown backend 'tensorflow'",)),
    # -- text that would print on two lines, or that no editor shows
    Bad("newline-in-name", 1, "name: qr", 'name: "q\\nr"', 1,
        ("spec name 'q\\nr' is not a valid identifier",)),
    Bad("nul-character", 66, "B = Q.H @ C", "B = Q.H @ C\0", 66,
        ("malformed YAML", "unacceptable character #x0000")),
    Bad("deeply-nested-yaml", 50, "A: {shape: [m, n]}", "A: " + "[" * 3000 + "]" * 3000, 50,
        ("malformed YAML: nested too deeply",)),
    Bad("deeply-nested-expression", 66, "B = Q.H @ C", "B = Q.H @ C" + " + Q.H @ C" * 1500, 66,
        ("expression nested too deeply",)),
]


def test_cases_have_unique_ids():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_bad_spec_is_one_line_with_its_line(case, tmp_path):
    path = write_spec(tmp_path, edited_qr(case.edit_line, case.old, case.new))
    assert_rejected_in_process(path, case.line, case.words)


# End to end, through the CLI: a rule error (the checker) and a YAML error (the loader).
END_TO_END = ("undeclared-name", "yaml-python-tag")


@pytest.mark.parametrize("case", [c.param() for c in CASES if c.id in END_TO_END])
def test_bad_spec_is_one_line_with_its_line_and_exit_code_2(case, repo_copy, tmp_path):
    path = write_spec(tmp_path, edited_qr(case.edit_line, case.old, case.new))
    assert_rejected(repo_copy, path.parent, case.line, case.words)


def test_end_to_end_cases_are_cases():
    assert set(END_TO_END) <= {c.id for c in CASES}


def test_the_unedited_copy_passes(repo_copy, tmp_path):
    """The edits above are what fails: the frozen qr.yaml itself is accepted by the same run."""
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    shutil.copy2(QR, spec_dir / "qr.yaml")
    result = run_cli(repo_copy, spec_dir, "list")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "mode=reduced" in result.stdout


def test_the_frozen_specs_pass_unedited():
    """Every frozen copy (tests/fixtures/specs/) passes the loader, the checker and the
    cross-spec checks as it is: the edits of the bad-spec tests are what fails."""
    paths = sorted(FIXTURES.glob("*.yaml"))
    assert {p.stem for p in paths} >= {"qr", "lq", "qr_pivoted", "eigh", "eigvalsh", "geqrf",
                                       "lu", "lu_factor"}
    checked = load_checked(paths)
    check_frameworks(checked)
    assert [cv.variant.label for cv in checked[[c.spec.name for c in checked].index("qr")]
            .variants] == ["mode=reduced", "mode=complete", "mode=r"]


def test_error_in_an_anchored_rule_is_reported_inside_the_anchor(tmp_path):
    """The wide JVP (&wide_jvp, text from line 76) is reused by *wide_jvp on lines 127, 143."""
    path = write_spec(tmp_path, edited_qr(82, "dQ.H @ A[:, m:]", "dX.H @ A[:, m:]"))
    assert_rejected_in_process(path, 82, ("jvp of mode=reduced when m < n",
                                          "undeclared name 'dX'"))


def test_non_utf8_spec(tmp_path):
    path = write_spec(tmp_path, QR.read_bytes().replace(b"summary: >-", b"summary: \xff>-", 1))
    assert_rejected_in_process(path, 2, ("a spec must be UTF-8 text",))


@pytest.mark.parametrize("folder", ["missing", "empty"])
def test_spec_dir_without_specs_writes_nothing(folder, repo_copy, tmp_path):
    spec_dir = tmp_path / folder
    if folder == "empty":
        spec_dir.mkdir()
    before = tree_hash(repo_copy / "generated")
    for command in COMMANDS:
        result = run_cli(repo_copy, spec_dir, *command)
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr == f"{spec_dir}: no spec files (*.yaml) in this folder\n"
    assert tree_hash(repo_copy / "generated") == before


# -- spec text is never evaluated -------------------------------------------------------------
PWNED = "B = __import__('os').system('touch PWNED')"


def test_cli_does_not_run_code_from_a_spec(repo_copy, tmp_path):
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    (spec_dir / "qr.yaml").write_text(edited_qr(66, "B = Q.H @ C", PWNED), encoding="utf-8")
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    assert_rejected(repo_copy, spec_dir, 66, ("cannot be called",), cwd=workdir)
    for folder in (workdir, spec_dir, repo_copy, ROOT):
        assert not (folder / "PWNED").exists(), folder


@pytest.mark.parametrize("text", [
    PWNED,
    "B = eval('1')",
    "B = exec('import os')",
    "B = C.__class__.__subclasses__()",
    "B = (lambda: __import__('os').system('touch PWNED'))()",
    "B = [__import__('os').system('touch PWNED') for _ in C]",
    "B = C[__import__('os').system('touch PWNED'):, :]",
    "B = solve(C, C, left=__import__('os').system('touch PWNED'))",
    "B = triu(C, __import__('os').system('touch PWNED'))",
    "B = f'{__import__(\"os\").system(\"touch PWNED\")}'",
    "import os; os.system('touch PWNED')",
    "B = C if __import__('os').system('touch PWNED') else C",
    "B = C @ (C := C)",
])
def test_parser_rejects_code_without_running_it(text, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names = {"C": sympy.MatrixSymbol("C", 3, 3)}
    with pytest.raises(expr.ExprError) as err:
        expr.Parser(names, {}).program(text)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "PWNED").exists()


def test_checking_a_spec_compiles_no_source_and_evaluates_nothing(monkeypatch):
    """ast.parse only (compile with PyCF_ONLY_AST); no eval/exec of text, no sympy parsing."""
    # sympy initializes itself on first use (sympy.simplify imports sympy.physics, which
    # parses its own unit names; the polynomial code builds helpers with exec): one check
    # before the watch, so that the watched one sees only what is done with spec text,
    # whichever test runs first
    check_spec(load_spec(QR))
    seen = []
    real = {name: getattr(builtins, name) for name in ("eval", "exec", "compile")}

    def watch(name):
        def wrapper(source, *args, **kwargs):
            flags = kwargs.get("flags", args[2] if len(args) > 2 else 0)
            if isinstance(source, (str, bytes)) and not (name == "compile"
                                                         and flags & ast.PyCF_ONLY_AST):
                seen.append((name, source))
            return real[name](source, *args, **kwargs)
        return wrapper

    def no_parse_expr(*args, **kwargs):
        seen.append(("parse_expr", args))
        raise AssertionError("sympy parse_expr called on spec text")

    for name in real:
        monkeypatch.setattr(builtins, name, watch(name))
    monkeypatch.setattr(sympy.parsing.sympy_parser, "parse_expr", no_parse_expr)
    eval("1 + 1")  # the watch itself works
    assert seen == [("eval", "1 + 1")]
    seen.clear()
    checked = check_spec(load_spec(QR))
    assert [cv.variant.label for cv in checked.variants] == ["mode=reduced", "mode=complete",
                                                            "mode=r"]
    assert seen == []


def test_a_merge_key_is_overridden_not_duplicated(tmp_path):
    """'<<: *case' then 'when:' reuses a case with another condition (YAML merge semantics)."""
    text = edited_qr(126, '- when: "m == n"', '- <<: *tall_case\n        when: "m == n"')
    for old, new in [
            ('      - when: "m >= n"\n        jvp: &tall_jvp',
             '      - &tall_case\n        when: "m >= n"\n        jvp: &tall_jvp'),
            ('        when: "m == n"\n        jvp: *tall_jvp\n        vjp: *tall_vjp\n',
             '        when: "m == n"\n')]:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    (tmp_path / "qr.yaml").write_text(text, encoding="utf-8")
    complete = check_spec(load_spec(tmp_path / "qr.yaml")).variants[1]
    assert [c.condition.text for c in complete.cases] == ["m > n", "m == n", "m < n"]
    reference = check_spec(load_spec(QR)).variants[1]
    assert complete.cases[1].jvp == reference.cases[1].jvp
    assert complete.cases[1].vjp == reference.cases[1].vjp


def test_a_spec_without_variants(tmp_path):
    text = QR.read_text(encoding="utf-8")
    head, rest = text.split("\nvariants:\n")
    text = head + "\nvariants: []\n" + rest[rest.index("signatures:"):]
    (tmp_path / "qr.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as err:
        load_spec(tmp_path / "qr.yaml")
    assert err.value.line == 54 and "'variants' needs at least one variant" in err.value.message


def test_spec_error_is_always_one_line():
    err = SpecError("spec/x.yaml", 3, "bad 'a\nb\r\x00' here")
    assert str(err) == "spec/x.yaml:3: bad 'a\\nb\\r\\x00' here"


# -- a variant whose native call returns something else (spec/lq.yaml, QR of A.H) ------------
LQ = FIXTURES / "lq.yaml"


@pytest.mark.parametrize("old, new, line, words", [
    ('outputs: {L: "Rh.H", Q: "Qh.H"}', 'outputs: {L: "Rh.H"}', 42,
     "primal.outputs must give every output (L, Q)"),
    ('outputs: {L: "Rh.H", Q: "Qh.H"}', 'outputs: {L: "Rh.H", Q: "Qh"}', 42,
     "primal.outputs: 'Q' would be n x m, not m x n"),
    ('outputs: {L: "Rh.H", Q: "Qh.H"}', 'outputs: {L: "Rx.H", Q: "Qh.H"}', 42,
     "primal.outputs: undeclared name 'Rx'"),
    ('"torch.linalg.qr(A.H, mode=mode)"', '"torch.linalg.qr(A.X, mode=mode)"', 67,
     "positional arguments must be input names, optionally with .H, .T or .conj"),
])
def test_bad_primal_mapping_is_one_line_with_its_line(old, new, line, words, tmp_path):
    text = LQ.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    (tmp_path / "lq.yaml").write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(SpecError) as err:
        check_spec(load_spec(tmp_path / "lq.yaml"))
    assert err.value.line == line, str(err.value)
    assert words.replace(" x ", "x") in str(err.value), str(err.value)
