"""The catalogue of splits that ``jvp: derive`` separates linearized factorizations with.

Every classical derivation of a factorization's derivative makes one move.  Linearize the
defining equation ``A = F1 F2`` (or ``F1 diag(v) F3``), carry the input's tangent into the
frame where the outputs' tangents separate, ``C = F1^-1 dA F2^-1``, and read each factor's
*frame tangent* (``F1^-1 dF1`` of a left factor, ``dF2 F2^-1`` of a right one) off ``C`` by
the direct sum that the factors' structures imply.  A frame tangent lies in a subspace fixed
by its factor's structure alone (``SPACES``); the catalogue holds, for each pair of subspaces
that meet only in zero and together span the frame, the projections onto each.

This module is data: the subspaces, the splits (each with its formula as spec-language text,
its proof sketch and where it is known from), and the spectral splits of a diagonal factor
between two orthonormal ones.  ``factorules.compiler.derive_jvp`` finds the entry a defining
equation needs and writes the JVP program; the audit checks every derived program against the
defining equations, structures and finite differences at 50 digits, which is each entry's
proof obligation at every instance.  docs/derivation-by-catalogue.md prints the catalogue.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Space:
    """A subspace of square matrices that a factor's frame tangent lies in."""

    name: str  # the key splits use ('skew', 'upper_real', ...)
    meaning: str  # what the subspace is, in words


SPACES = {s.name: s for s in (
    Space("skew", "skew-Hermitian (X^H = -X): F^H dF of an F with orthonormal columns, "
                  "dF F^H of one with orthonormal rows"),
    Space("upper_real", "upper triangular with a real diagonal: F^-1 dF and dF F^-1 of an "
                        "upper triangular F with a real diagonal"),
    Space("upper_any", "upper triangular: of an upper triangular F"),
    Space("upper_unit", "strictly upper triangular: of an upper triangular F with a unit "
                        "diagonal"),
    Space("lower_real", "lower triangular with a real diagonal"),
    Space("lower_any", "lower triangular"),
    Space("lower_unit", "strictly lower triangular: of a unit lower triangular F"),
    Space("hermitian", "Hermitian: the tangent dP of a Hermitian factor P itself (its frame "
                       "is the identity)"),
)}


def factor_space(structure: str, diagonal: str | None, adjointed: bool) -> str | None:
    """The space of the frame tangent of a factor ``F`` (``F.H`` when ``adjointed``) with the
    declared structure and diagonal; None: no entry (a general or diagonal factor)."""
    if structure in ("orthonormal_columns", "orthonormal_rows", "unitary"):
        return "skew"
    if structure in ("upper_triangular", "lower_triangular"):
        upper = (structure == "upper_triangular") != adjointed
        kind = {"real": "real", "positive": "real", "unit": "unit"}.get(diagonal or "any", "any")
        return f"{'upper' if upper else 'lower'}_{kind}"
    if structure == "hermitian":
        return "hermitian"
    return None


@dataclass(frozen=True)
class Split:
    """C = X1 + X2 with X1 in ``left`` and X2 in ``right``: the projections onto each.

    ``first`` is the frame tangent written out, as spec text of ``{C}``; the other one is
    ``{C} - first`` unless ``second`` writes it too (LU's two triangles)."""

    name: str  # the factorization it is classically known from
    left: str  # the space of the left factor's frame tangent F1^-1 dF1
    right: str  # the space of the right factor's dF2 F2^-1
    first_of: str  # 'left' or 'right': whose frame tangent ``first`` is
    first: str  # spec text of {C}
    second: str | None  # the other's spec text of {C}; None: {C} minus the first
    proof: str  # why the projections are these (a sketch)
    reference: str  # where the split is known from


SPLITS = (
    Split("qr", "skew", "upper_real", "right",
          "triu({C} + {C}.H, 1) + diag(re(diagonal({C})))", None,
          "X1 skew-Hermitian, X2 upper with a real diagonal: C + C^H = X2 + X2^H, whose strict "
          "upper triangle is X2's; re(C_ii) = X2_ii since X1_ii is imaginary. Unique: a matrix "
          "both skew-Hermitian and upper with a real diagonal is zero.",
          "S. F. Walter, L. Lehmann, R. Lamour, Optim. Methods Softw. 27(2) (2012), Sec. 3"),
    Split("lq", "lower_real", "skew", "left",
          "tril({C} + {C}.H, -1) + diag(re(diagonal({C})))", None,
          "the transpose of the qr split: C + C^H = X1 + X1^H, whose strict lower triangle is "
          "X1's, and re(C_ii) = X1_ii.",
          "D. A. O. Roberts, L. R. Roberts, arXiv:2009.10071 (2020), Sec. 4 (LQ)"),
    Split("rq", "upper_real", "skew", "left",
          "triu({C} + {C}.H, 1) + diag(re(diagonal({C})))", None,
          "as qr's with the triangular factor on the left.",
          "the qr split, mirrored"),
    Split("ql", "skew", "lower_real", "right",
          "tril({C} + {C}.H, -1) + diag(re(diagonal({C})))", None,
          "as lq's with the triangular factor on the right.",
          "the lq split, mirrored"),
    Split("lu", "lower_unit", "upper_any", "left", "tril({C}, -1)", "triu({C})",
          "strictly lower plus upper triangular: the two triangles of C, disjoint and "
          "spanning.",
          "F. R. de Hoog, R. S. Anderssen, M. A. Lukas, Math. Comp. 80(275), 1585-1600 "
          "(2011): X = L^-1 dA U^-1, dL = L tril(X, -1), dU = triu(X) U"),
    Split("lu_crout", "lower_any", "upper_unit", "left", "tril({C})", "triu({C}, 1)",
          "lower plus strictly upper triangular: the two triangles of C.",
          "the lu split with the unit diagonal on the right"),
)


@dataclass(frozen=True)
class HermitianSplit:
    """C = X + X^H, C Hermitian, X in ``space``: the one such X (A = F F^H, Cholesky)."""

    name: str
    space: str  # the space of X, the frame tangent of the factor written unadjointed
    formula: str  # spec text of {C}
    proof: str
    reference: str


HERMITIAN_SPLITS = (
    HermitianSplit("cholesky", "lower_real", "tril({C}, -1) + diag(re(diagonal({C}))) / 2",
                   "X lower with a real diagonal: X + X^H has X's strict lower triangle below "
                   "the diagonal and 2 X_ii on it (the map Phi).",
                   "I. Murray, arXiv:1602.07527 (2016), eqs. (8)-(10)"),
    HermitianSplit("cholesky_upper", "upper_real", "triu({C}, 1) + diag(re(diagonal({C}))) / 2",
                   "the same for an upper triangular X (A = U^H U).",
                   "I. Murray (2016), transposed"),
)


@dataclass(frozen=True)
class SpectralSplit:
    """C = Om1 D - D Om2 + dD with D = diag(v) real: the derivative of a diagonal factor
    between two orthonormal ones, up to the gauge (the phases of their columns).

    Spec text of ``{C}``, ``{v}`` (the values) and ``{n}`` (their number), and of the named
    temporaries ``{F}`` (the gap factor) and ``{D}`` (the phase term) where used."""

    name: str
    same_outer: bool  # True: A = F diag(v) F^H (Om2 = Om1); False: A = F1 diag(v) F2
    values: str  # dv
    gaps: str  # F, the factor off the diagonal
    phases: str | None  # D, the frame tangents' diagonal (None: zero)
    left: str  # Om1 = F1^H dF1
    right: str | None  # dF2 F2^H (same_outer: None)
    gauge: str  # the phases the frame tangents' imaginary diagonals take
    proof: str
    reference: str


SPECTRAL_SPLITS = (
    SpectralSplit(
        "eigh", True, "re(diagonal({C}))", "pairwise_inv({v})", None,
        "hadamard({F}, {C})", None,
        "Im diag(F^H dF) = 0",
        "C = Om D - D Om + dD with Om skew-Hermitian: C_ij = Om_ij (v_j - v_i) off the "
        "diagonal, C_ii = dv_i; the gauge takes Om_ii = 0 (pairwise_inv is 1 / (v_j - v_i) "
        "off the diagonal and 0 on it).",
        "J. R. Magnus, Econometric Theory 1(2), 179-191 (1985), Theorem 1; M. B. Giles, "
        "Oxford NA report 08/01 (2008), Sec. 3.1"),
    SpectralSplit(
        "svd", False, "re(diagonal({C}))",
        # 1 / ((v_j - v_i)(v_j + v_i)): the second factor read off the gaps of [v; -v]
        "hadamard(pairwise_inv({v}), -pairwise_inv(vstack({v}, -{v}))[:{n}, {n}:])",
        "diag(hadamard(diagonal(skew({C})), recip({v}))) / 2",
        "hadamard({F}, {C} @ diag({v}) + diag({v}) @ {C}.H) + {D}",
        "(hadamard({F}, diag({v}) @ {C} + {C}.H @ diag({v})) - {D}).H",
        "Im diag(F1^H dF1) = Im diag(F2 dF2^H), each half of Im(C_ii) / v_i",
        "C = Om1 D + dD - D Om2 with Om1 = F1^H dF1, Om2 = F2 dF2^H skew-Hermitian: off the "
        "diagonal C_ij = Om1_ij v_j - v_i Om2_ij and -conj(C_ji) = Om1_ij v_i - v_j Om2_ij, a "
        "2 x 2 system with determinant v_i^2 - v_j^2; on it re(C_ii) = dv_i and the gauge "
        "shares Im(C_ii) / v_i between the two.",
        "J. Townsend, 'Differentiating the singular value decomposition', technical note "
        "(2016); Z.-Q. Wan, S.-X. Zhang, arXiv:1909.02659 (2019), eq. (12) (the imaginary "
        "diagonal and the phase gauge)"),
)


@dataclass(frozen=True)
class SylvesterSplit:
    """C = Om P + dP (the orthonormal factor on the left; mirrored on the right, C = P Om +
    dP) with Om skew-Hermitian and dP Hermitian, P Hermitian positive definite: C - C^H =
    Om P + P Om, a Sylvester equation for Om; then dP = sym(C - Om P)."""

    name: str
    frame: str  # Om, spec text of {C} (C - C^H) and {P}
    left: str  # dP with the orthonormal factor on the left, spec text of {C}, {Om}, {P}
    right: str  # dP with it on the right
    proof: str
    reference: str


SYLVESTER_SPLITS = (
    SylvesterSplit(
        "polar", "solve_sylvester({P}, {P}, {C} - {C}.H)", "sym({C} - {Om} @ {P})",
        "sym({C} - {P} @ {Om})",
        "(Om P)^H = -P Om, so C - C^H = Om P + P Om, whose solution is unique where no two "
        "eigenvalues of P sum to zero (P positive definite); the rest of C is dP. sym() "
        "states dP's structure.",
        "N. J. Higham, Functions of Matrices, SIAM (2008), Theorem 8.1 (uniqueness); E. S. "
        "Gawlik, M. Leok, SIAM J. Matrix Anal. Appl. 38(4), 1354-1379 (2017) (the derivative "
        "of the polar factor)"),
)


def split_for(left: str, right: str) -> Split | None:
    return next((s for s in SPLITS if (s.left, s.right) == (left, right)), None)


def hermitian_split_for(space: str) -> HermitianSplit | None:
    return next((s for s in HERMITIAN_SPLITS if s.space == space), None)


def spectral_split_for(same_outer: bool) -> SpectralSplit:
    return next(s for s in SPECTRAL_SPLITS if s.same_outer == same_outer)
