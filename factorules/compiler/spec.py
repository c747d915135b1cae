"""The spec model: one spec file (spec/<name>.yaml) as frozen dataclasses.

``factorules.compiler.spec_loader.load_spec`` builds a ``Spec`` from the YAML text, checking
each section's structure; ``factorules.compiler.check`` then parses the equation text, which
stays text here (nothing in a spec is evaluated).  Each dataclass corresponds to one section
of the YAML file; ``line`` fields are the file lines that error messages name.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import backends as _backends


class SpecError(Exception):
    """A problem in a spec file, reported as one line ``path:line: message``."""

    def __init__(self, path: str, line: int, message: str):
        message = _one_line(message)
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line, self.message = path, line, message


def _one_line(text: str) -> str:
    """Spec text quoted in a message, with line breaks and other control characters escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


# -- the vocabulary of a spec -----------------------------------------------------------------
BACKENDS = _backends.NAMES  # every spec gives a signature for each
# backends whose arrays can be copied to NumPy and back for a 'host: true' call
HOST_BACKENDS = tuple(b.name for b in _backends.BACKENDS if b.host_fallbacks)
ALWAYS = "always"  # the condition of a case without 'when'

STRUCTURES = ("general", "orthonormal_columns", "orthonormal_rows", "unitary",
              "upper_triangular", "lower_triangular", "hermitian", "diagonal", "unit_columns",
              "permutation")
VECTOR_STRUCTURES = ("general", "real", "positive", "pivots", "indices")
# integer outputs: LAPACK's row interchanges (1-based), a permutation as 0-based column numbers
INDEX_STRUCTURES = ("pivots", "indices")
# 'spread': any values, drawn at least 1 apart (eigenvalues on a triangular output's diagonal)
DIAGONALS = ("any", "real", "unit", "positive", "spread")
ORDERS = ("ascending", "descending")
DTYPES = ("float32", "float64", "complex64", "complex128")  # a benchmark's dtypes


def options_label(options: tuple[tuple[str, str | bool], ...]) -> str:
    """Option values as one label, 'mode=reduced,upper=True'; 'default' for none."""
    return ",".join(f"{k}={v}" for k, v in options) or "default"


# -- the spec model ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Reference:
    """One entry of 'references': the literature a spec's rules come from."""

    key: str  # the short name it is cited by (e.g. 'WLL2012')
    cite: str  # the full citation


@dataclass(frozen=True)
class Tensor:
    """An input or output: a matrix (two dimension names) or a vector (one)."""

    name: str  # the matrix's name in the equations and the generated code
    shape: tuple[str, ...]  # dimension names from 'dims': (rows, cols) or (size,)
    line: int  # the line of its entry
    # a matrix: one of STRUCTURES; a vector: one of VECTOR_STRUCTURES ('general' if not given)
    structure: str | None = None
    diagonal: str | None = None  # one of DIAGONALS ('any' if not given; a vector's is 'any')
    # 'value'; 'empty': returned as an empty array, not differentiated; 'hidden': computed for
    # the rules only, neither returned nor differentiated; 'omitted': as 'empty' (the
    # frameworks differentiate the native variant), but left out of the result, which is then
    # the variant's one other output alone (scipy.linalg.rq(mode='r') returns R)
    returned: str = "value"
    field: str | None = None  # its name in the result's named tuple (default: its own name)
    order: str | None = None  # a vector's order as computed: 'ascending' or 'descending'
    complex_valued: bool = False  # complex even for real input (eig): 'dtype: complex'
    # a 'permutation' output computed from a 'pivots' output of the same variant (lu_factor's
    # hidden P), not returned by the native call
    from_pivots: str | None = None
    # a 'permutation' output computed from an 'indices' output (qr_pivoted's hidden Pi)
    from_indices: str | None = None
    # a triangular structure's bounding diagonal (j - i = offset) as text, a dimension
    # expression ('n - m': RQ's upper trapezoidal R); None: the main diagonal
    offset: str | None = None
    # a Hermitian output's eigendecomposition among the variant's outputs, (values, vectors):
    # X = vectors diag(values) vectors^H (polar's P = V diag(S) V^H), which the backends'
    # solve_sylvester with X uses instead of diagonalising X again
    eigenbasis: tuple[str, str] | None = None

    @property
    def is_vector(self) -> bool:
        return len(self.shape) == 1

    @property
    def constant(self) -> bool:
        """Locally constant: a permutation, pivots or indices (no tangent, cotangent None)."""
        return self.structure in ("permutation", "pivots", "indices")

    @property
    def is_index(self) -> bool:
        """Integer data (LAPACK pivots, column indices), never a matrix of the rules."""
        return self.structure in ("pivots", "indices")

    @property
    def built_from(self) -> str | None:
        """The integer output a permutation is built from (from_pivots or from_indices)."""
        return self.from_pivots or self.from_indices

    @property
    def result_field(self) -> str:
        return self.field or self.name


@dataclass(frozen=True)
class Option:
    """One entry of 'options': a keyword of the public functions."""

    name: str  # the keyword
    values: tuple  # all str, or all bool (e.g. cholesky's upper: [false, true])
    default: str | bool  # one of values
    line: int  # the line of its entry
    selects: bool = True  # False: passed to the rules (check_gauge), chooses no variant


@dataclass(frozen=True)
class Text:
    """A block of equation text and the file line its first line sits on."""

    text: str  # as written, parsed later by factorules.compiler.expr
    line: int


@dataclass(frozen=True)
class Case:
    """One entry of a variant's 'cases': the rules under one condition on the sizes."""

    when: str  # the condition as written ('m >= n'), ALWAYS when the case gives none
    line: int  # the line of the case's condition
    jvp: Text  # the JVP program: tangents of the outputs from those of the inputs
    vjp: Text | None  # None: derived by transposing the JVP (factorules.compiler.derive)
    defining: tuple[Text, ...] = ()  # equations that hold only under this case's condition
    # 'jvp: derive': the JVP program was written by factorules.compiler.derive_jvp from the
    # defining equation and the outputs' structures (jvp holds the derived text)
    derived: bool = False
    # a derived rule's second opinion: the JVP as written by hand ('written_jvp'), which
    # `cli.py derive` and the tests compare with the derived one at 50 digits
    written_jvp: Text | None = None


@dataclass(frozen=True)
class Gauge:
    """A continuous freedom of the outputs (the phase of complex eigen/singular vectors).

    tangent: expressions of the outputs and their tangents that the JVP makes zero (the
    derivative the rules choose); cotangent: expressions of the outputs and cotangents that
    are zero exactly when the loss does not depend on the gauge (checked at run time);
    phases: blocks of outputs ('Q', 'U[:, :k]', 'Vh[:k, :].H') whose columns carry one free
    unit factor each, the same j-th factor in every block (SVD: U -> U D, Vh -> D^H Vh);
    rotations: blocks whose columns are any orthonormal basis of their span (the completion
    of a full SVD), each free up to its own unitary rotation.  Tests align both before
    comparing outputs.
    """

    tangent: tuple[Text, ...]  # at least one
    cotangent: tuple[Text, ...]  # empty: no differentiable output carries the gauge
    phases: tuple[str, ...]  # at least one block
    message: str  # the error a gauge-dependent loss raises (whitespace collapsed)
    line: int  # the line of the variant's 'gauge' key
    rotations: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pivots:
    """Values the rules divide by (R's diagonal for QR, U's for LU): where one of them is
    zero or numerically zero, |p| <= max(m, n) eps ||A||_F (A the first input, m x n), the
    derivative does not exist, whatever the tangent or cotangent (checked at run time).

    With 'tangent' and 'cotangent' (one vector of k values), the rules divide by the values
    only in terms that read column j of those expressions (each with k columns): a zero
    value p_j leaves the derivative undefined only along a tangent, or for a cotangent, whose
    column j is not negligible (sqrt(eps) times the largest tangent or cotangent entry), as
    SVD's S^-1 terms read (I - U U^H) gU.
    """

    values: tuple[Text, ...]  # expressions of the outputs, each a vector
    message: str  # the error (whitespace collapsed): what is singular, and why no derivative
    line: int  # the line of the variant's 'pivots' key
    tangent: tuple[Text, ...] = ()  # expressions of the primal values and the inputs' tangents
    cotangent: tuple[Text, ...] = ()  # of the primal values and the outputs' cotangents
    # 'norm': an output whose Frobenius norm is A's (svd's S: ||S||_2 = ||A||_F), read in the
    # limit's place so that the check does not read A; (name, line), None: A itself
    norm: tuple[str, int] | None = None


@dataclass(frozen=True)
class Ties:
    """Values whose ties leave the derivative undefined unless the tangent or cotangent is
    invariant on each block of tied values (eigenvalues, singular values).

    Values i != j tie where |v_i - v_j| <= k eps max|v| (k their number): the zeros of
    pairwise_inv.  Each tangent (cotangent) expression is a k x k matrix that must be scalar
    on every block of tied values, M_ij = 0 and M_ii = M_jj for tied i, j (checked at run
    time, like the gauge's cotangent, against sqrt(eps) times the largest tangent or
    cotangent entry).  With neither, every tie fails: no derivative exists there (schur's
    eigenvalues on T's diagonal).
    """

    values: Text  # a vector of the outputs (L, S)
    tangent: tuple[Text, ...]  # expressions of the primal values and the inputs' tangents
    cotangent: tuple[Text, ...]  # expressions of the primal values and the outputs' cotangents
    message: str  # the error (whitespace collapsed)
    line: int  # the line of the variant's 'ties' key


@dataclass(frozen=True)
class Variant:
    """One entry of 'variants': the outputs and rules for one choice of option values."""

    when: tuple[tuple[str, str], ...]  # (option, value) pairs that choose it; () if none
    native: tuple[tuple[str, str | bool], ...]  # option values the primal is computed with
    outputs: tuple[Tensor, ...]  # the same names, in the same order, in every variant
    defining: tuple[Text, ...]  # equations that state what the outputs are (A = Q @ R)
    cases: tuple[Case, ...]  # at least one
    line: int  # the line of its entry
    # output -> expression of the native variant's outputs (e.g. cholesky upper: L = L.H)
    from_native: tuple[tuple[str, Text], ...] = ()
    # what the native call returns, when that is not the outputs themselves: names and
    # shapes of its results, and each output as an expression of them ('primal' key)
    primal_returns: tuple[tuple[str, tuple[str, str]], ...] = ()
    primal_outputs: tuple[tuple[str, Text], ...] = ()
    gauge: Gauge | None = None
    # output -> expression of other outputs that the random draws of samples use (not an
    # equation the factorization must meet: e.g. geqrf's tau making each reflector unitary)
    sample: tuple[tuple[str, Text], ...] = ()
    # conditions on the input sizes checked at run time before anything is computed
    requires: tuple[Text, ...] = ()
    pivots: Pivots | None = None  # where a zero divisor leaves no derivative
    ties: Ties | None = None  # where tied values leave no derivative for some losses

    @property
    def label(self) -> str:
        return options_label(self.when)


@dataclass(frozen=True)
class Signature:
    """One entry of 'signatures.<backend>': the library call that computes the primal."""

    backend: str  # one of BACKENDS
    call: str  # the call as text, 'numpy.linalg.qr(A, mode=mode)' ('' when compute is True)
    line: int  # the line of its entry
    # the library versions the entry is for: [since, until); the current entry has no until
    since: str | None = None
    until: str | None = None
    batched: bool = True          # False: the call takes one matrix; the code maps it over batches
    pivots_base: int = 1          # the first row's number in the call's pivots (SciPy, JAX: 0)
    transposed: tuple[str, ...] = ()  # outputs the call returns transposed (NumPy's raw QR)
    compute: bool = False         # no native call: the variants' primal expressions compute it
    # option -> ((our value, the call's value), ...) where the call spells a value otherwise
    # (SciPy's mode='economic' for our 'reduced')
    values: tuple[tuple[str, tuple[tuple[object, object], ...]], ...] = ()
    # True: a NumPy/SciPy function called on host copies of the arrays (a backend without
    # the routine, e.g. pivoted QR in torch and CuPy); its results are moved back
    host: bool = False
    # the called function's own signature, as the library declares it (text, e.g.
    # "(a, mode='reduced')"; checked against the installed library by `cli.py signatures`)
    signature: str | None = None
    # keyword -> every value the library's documentation lists for it (its 'mode' values)
    accepts: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class Benchmark:
    """One row of `cli.py bench`: options, an input shape (batch dims first), a dtype."""

    options: tuple[tuple[str, str | bool], ...]  # (option, value) pairs of selecting options
    shape: tuple[int, ...]  # batch dims first, then the input's
    quick: tuple[int, ...]  # the shape used by `bench --quick` (smoke tests)
    dtype: str  # one of DTYPES
    line: int  # the line of its entry

    @property
    def label(self) -> str:
        return options_label(self.options)


@dataclass(frozen=True)
class Spec:
    """One spec file: an operation, its inputs, options, variants and library calls."""

    name: str  # the operation's name, which is the file's stem
    path: str  # the file's path as error messages show it
    sha256: str  # of the file's bytes (generated files and derivation pages record it)
    summary: str  # one line on what the operation computes
    references: tuple[Reference, ...]
    dims: tuple[tuple[str, str], ...]  # (name, definition text) in file order
    inputs: tuple[Tensor, ...]
    options: tuple[Option, ...]
    variants: tuple[Variant, ...]
    signatures: tuple[Signature, ...]  # every backend's entries, in file order
    notes: str = ""  # free text, shown on the derivation page
    benchmarks: tuple[Benchmark, ...] = ()
    # 'framework': the op's torch/jax function is another spec's, one field of its result
    # (eigvalsh is eigh's eigenvalues there), so that the frameworks' AD has the derivatives
    # of every output the rules use (second derivatives need those of the hidden ones)
    framework: tuple[str, str, int] | None = None  # (call text, result field, line)
    # 'delegate': a boolean keyword of the public functions (False by default) that, True,
    # makes the operation another spec's call (qr(A, pivoting=True) is qr_pivoted(A, ...))
    delegate: tuple[str, str, int] | None = None  # (keyword, call text, line)
    # 'aliases': old spellings of an option the public functions still take, with a
    # DeprecationWarning: (alias, option, ((alias value, option value), ...), line)
    aliases: tuple[tuple[str, str, tuple[tuple[object, object], ...], int], ...] = ()
    # 'row_blocks': the large dimension of a tall input (m) and the rows at its top that hold
    # the rules' structure (k): backends that evaluate the rules' m-row values a block of
    # rows at a time below them (factorules/compiler/row_blocks.py): (rows, below, line)
    row_blocks: tuple[str, str, int] | None = None
    # named values of the primitive dimensions that the audit and tests use when they are
    # not one m x n (or n x n) input's: {name: ((dim, value), ...)}, zero-size ones too
    shapes: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()
    # lines of sections the checker names: 'dims', 'dims.<name>', 'shapes', 'variants'
    line_of: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    def option(self, name: str) -> Option:
        return next(o for o in self.options if o.name == name)
