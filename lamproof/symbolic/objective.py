"""The LAM's population objective as a SymPy matrix expression, its gradients and stationarity.

With ``x = [o; o']`` and no bias terms, every part of the objective is a trace of products of
the parameters and the second moments ``S_oo = E[o oᵀ]``, ``S_{oo'} = E[o o'ᵀ]``,
``S_{o'o'} = E[o' o'ᵀ]`` (and ``S_{oa}``, ``S_{o'a}``, ``S_aa`` for the action head):

    E‖ô' − o'‖² = tr(M₁ S_oo M₁ᵀ) + 2 tr(M₁ S_{oo'} (M₂ − I)ᵀ) + tr((M₂ − I) S_{o'o'} (M₂ − I)ᵀ)

with ``M₁ = A + BC`` and ``M₂ = BD``. Gradients come from SymPy's matrix calculus
(``Trace(...).diff(X)``), term by term. :func:`check_optimum` substitutes a candidate optimum and
the structural facts it relies on and decides, exactly, that every gradient vanishes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import numpy as np
import sympy
from sympy import Add, Identity, Inverse, MatrixSymbol, Trace, ZeroMatrix
from sympy.printing.numpy import NumPyPrinter

from lamproof.errors import InputError
from lamproof.symbolic.algebra import (
    Rules,
    is_zero_matrix,
    is_zero_scalar,
    residual_text,
    split_traces,
)

#: Dimension symbols.
d_o, d_z, d_a = sympy.symbols("d_o d_z d_a", integer=True, positive=True)
#: Scalar symbols of the objective: augmentation scale and action-loss weight.
s, lam = sympy.symbols("s lambda", nonnegative=True)


def moments(n=d_o, m=d_a) -> dict[str, MatrixSymbol]:
    """The second moments the objective depends on, as matrix symbols."""
    return {
        "S_oo": MatrixSymbol("S_{oo}", n, n),
        "S_op": MatrixSymbol("S_{oo'}", n, n),
        "S_pp": MatrixSymbol("S_{o'o'}", n, n),
        "S_oa": MatrixSymbol("S_{oa}", n, m),
        "S_pa": MatrixSymbol("S_{o'a}", n, m),
        "S_aa": MatrixSymbol("S_{aa}", m, m),
    }


def parameters(n=d_o, k=d_z, m=d_a) -> dict[str, MatrixSymbol]:
    return {
        "A": MatrixSymbol("A", n, n),
        "B": MatrixSymbol("B", n, k),
        "C": MatrixSymbol("C", k, n),
        "D": MatrixSymbol("D", k, n),
        "H": MatrixSymbol("H", m, k),
    }


@dataclass(frozen=True)
class Objective:
    """One LAM variant's objective: its free parameters, its parts and their sum."""

    variant: dict
    free: dict  # name -> MatrixSymbol actually optimized
    reconstruction: sympy.Expr
    penalty: sympy.Expr
    action_loss: sympy.Expr
    total: sympy.Expr
    moments: dict = field(repr=False)
    maps: dict = field(repr=False)  # M1, M2 as matrix expressions


def objective(
    *,
    fdm_obs_path: str = "learned",
    idm: str = "free",
    augmentation: bool = False,
    action_head: bool = False,
    n=d_o,
    k=d_z,
    m=d_a,
) -> Objective:
    """The population objective of a LAM variant (docs/theory.md §1.2) as a matrix expression.

    ``augmentation`` adds ``s²‖B(C + D)‖²_F + s²‖A − I‖²_F`` (derived in D3), ``action_head``
    adds ``λ E‖a − Hz‖²``.
    """
    if fdm_obs_path not in ("learned", "identity"):
        raise InputError(f"fdm_obs_path: must be 'learned' or 'identity', got {fdm_obs_path!r}")
    if idm not in ("free", "tied"):
        raise InputError(f"idm: must be 'free' or 'tied', got {idm!r}")
    S = moments(n, m)
    P = parameters(n, k, m)
    I = Identity(n)
    A = P["A"] if fdm_obs_path == "learned" else I
    B, C = P["B"], P["C"]
    D = -C if idm == "tied" else P["D"]
    free = {"B": B, "C": C}
    if fdm_obs_path == "learned":
        free["A"] = A
    if idm == "free":
        free["D"] = D
    M1, M2 = A + B * C, B * D
    recon = (
        Trace(M1 * S["S_oo"] * M1.T)
        + 2 * Trace(M1 * S["S_op"] * (M2 - I).T)
        + Trace((M2 - I) * S["S_pp"] * (M2 - I).T)
    )
    penalty = sympy.Integer(0)
    if augmentation:
        penalty = s**2 * Trace(B * (C + D) * (C + D).T * B.T) + s**2 * Trace((A - I) * (A - I).T)
    action = sympy.Integer(0)
    if action_head:
        H = P["H"]
        free["H"] = H
        Szz = C * S["S_oo"] * C.T + C * S["S_op"] * D.T + D * S["S_op"].T * C.T + D * S["S_pp"] * D.T
        Sza = C * S["S_oa"] + D * S["S_pa"]
        action = Trace(S["S_aa"]) - 2 * Trace(H * Sza) + Trace(H * Szz * H.T)
    total = recon + penalty + (lam * action if action_head else 0)
    variant = {
        "fdm_obs_path": fdm_obs_path,
        "idm": idm,
        "augmentation": augmentation,
        "action_head": action_head,
    }
    return Objective(variant, free, recon, penalty, action, total, S, {"M1": M1, "M2": M2})


def gradient(expr, X: MatrixSymbol):
    """``∂ expr / ∂X`` for a scalar built from traces, by SymPy's matrix calculus, term by term.

    (SymPy 1.14 differentiates a single ``Trace`` correctly but returns 0 for some sums of
    them, so the sum is split here.)
    """
    if not isinstance(X, MatrixSymbol):
        raise InputError(f"X: expected a MatrixSymbol, got {type(X).__name__}")
    parts = []
    for term in Add.make_args(expr):
        coeff, traces = split_traces(term)
        if not traces:
            continue
        if len(traces) != 1:
            raise InputError(f"expr: products of traces are not supported: {term}")
        if X not in traces[0].arg.atoms(MatrixSymbol):
            continue
        d = traces[0].diff(X)
        if d != 0:
            parts.append(coeff * d)
    if not parts:
        return ZeroMatrix(*X.shape)
    return sympy.MatAdd(*parts).doit()


def gradients(obj: Objective) -> dict[str, sympy.MatrixExpr]:
    """The gradient of the total objective with respect to every free parameter (cached per variant)."""
    shape = obj.free["B"].shape + (obj.moments["S_aa"].shape[0],)
    return dict(_gradients(tuple(sorted(obj.variant.items())), shape))


@cache
def _gradients(variant: tuple, shape: tuple) -> tuple:
    n, k, m = shape
    obj = objective(**dict(variant), n=n, k=k, m=m)
    return tuple((name, gradient(obj.total, X)) for name, X in obj.free.items())


def symmetrize(expr):
    """Drop transposes of the symmetric moments (``S_ooᵀ = S_oo``, ``S_{o'o'}ᵀ = S_{o'o'}``), for display."""
    table = {S.T: S for S in expr.atoms(MatrixSymbol) if S.name in SYMMETRIC_NAMES}
    if not table:
        return expr
    out = expr.xreplace(table)
    if isinstance(out, sympy.MatAdd):  # merge the terms that became equal
        counts: dict = {}
        for term in out.args:
            coeff, rest = term.as_coeff_mmul() if isinstance(term, sympy.MatMul) else (1, term)
            counts[rest] = counts.get(rest, 0) + coeff
        out = sympy.MatAdd(*[c * r for r, c in counts.items()])
    return out


SYMMETRIC_NAMES = ("S_{oo}", "S_{o'o'}", "S_{aa}", "S_r", "Lambda")


def stationarity(obj: Objective) -> list[sympy.Eq]:
    """The stationarity equations ``∂ℓ/∂X = 0``, one per free parameter."""
    return [sympy.Eq(g, ZeroMatrix(*g.shape), evaluate=False) for g in gradients(obj).values()]


# -- the canonical optimum and the facts it rests on ---------------------------------------------
@dataclass(frozen=True)
class Candidate:
    """A candidate optimum: substitutions for parameters and moments, and the facts they need."""

    name: str
    substitutions: dict
    rules: Rules
    facts: tuple[str, ...]


def optimum_symbols(n=d_o, k=d_z):
    """Symbols of the closed form: ``L``, the innovation moment ``S_r``, its top eigenvectors
    ``U`` (``UᵀU = I``) and eigenvalues ``Λ`` (``S_r U = U Λ``), a free ``N`` and invertible ``G``."""
    return {
        "L": MatrixSymbol("L", n, n),
        "S_r": MatrixSymbol("S_r", n, n),
        "U": MatrixSymbol("U", n, k),
        "Lambda": MatrixSymbol("Lambda", k, k),
        "N": MatrixSymbol("N", k, n),
        "G": MatrixSymbol("G", k, k),
    }


def _eigen_rules(S_sym, U, Lam, extra_symmetric=()) -> Rules:
    return Rules(
        symmetric=frozenset({S_sym, Lam, *extra_symmetric}),
        rewrites=(((U.T, U), ()), ((S_sym, U), (U, Lam)), ((U.T, S_sym), (Lam, U.T))),
    )


def canonical_candidate(obj: Objective, *, family: bool = False) -> Candidate:
    """The closed-form optimum of a variant without an action head (docs/theory.md §2–§4, R1–R3).

    ``family=True`` (free IDM, learned ``A``) gives the whole optimal family of R2:
    ``B = UG``, ``D = G⁻¹Uᵀ``, ``C = N − DL``, ``A = L − BN`` for any ``N`` and invertible ``G``.
    """
    v = obj.variant
    if v["action_head"]:
        raise InputError("obj: the action head's optimum is reduced-rank regression (D7), not this candidate")
    n, k = obj.free["B"].shape
    X = optimum_symbols(n, k)
    S = obj.moments
    L, S_r, U, Lam, N, G = X["L"], X["S_r"], X["U"], X["Lambda"], X["N"], X["G"]
    I = Identity(n)
    P = parameters(n, k)
    learned, free_idm = v["fdm_obs_path"] == "learned", v["idm"] == "free"
    if v["augmentation"] or not learned:
        # the augmented optimum (L = I) or the fixed FDM path: PCA of Δ = o' − o
        facts = ["S_Δ U = U Λ", "UᵀU = I", "S_{o'o'} = S_Δ + S_{oo'} + S_{oo'}ᵀ − S_{oo}"]
        subs = {S["S_pp"]: S_r + S["S_op"] + S["S_op"].T - S["S_oo"]}
        if v["augmentation"]:
            facts = ["L = I: S_{oo'} = S_{oo}", "S_r U = U Λ", "UᵀU = I", "S_{o'o'} = S_r + S_{oo}"]
            subs = {S["S_op"]: S["S_oo"], S["S_pp"]: S_r + S["S_oo"]}
        subs.update({P["B"]: U, P["C"]: -U.T})
        if learned:
            subs[P["A"]] = I
        if free_idm:
            subs[P["D"]] = U.T
        name = "augmented clean member" if v["augmentation"] else "fixed FDM path, PCA of Δ"
        return Candidate(name, subs, _eigen_rules(S_r, U, Lam, (S["S_oo"],)), tuple(facts))
    facts = ["L S_{oo} = S_{o'o}", "S_{o'o'} = S_r + L S_{oo} Lᵀ", "S_r U = U Λ", "UᵀU = I"]
    subs = {S["S_op"]: S["S_oo"] * L.T, S["S_pp"]: S_r + L * S["S_oo"] * L.T}
    if free_idm and family:
        subs.update(
            {P["B"]: U * G, P["D"]: Inverse(G) * U.T, P["C"]: N - Inverse(G) * U.T * L, P["A"]: L - U * G * N}
        )
        facts.append("G invertible, N arbitrary")
        name = "optimal family (R2)"
    elif free_idm:
        subs.update({P["A"]: L, P["B"]: U, P["C"]: -U.T * L, P["D"]: U.T})
        name = "canonical optimum (R1)"
    else:  # tied IDM with learned A: z = Uᵀ(o' − o), A = (I − P) L + P
        subs.update({P["A"]: (I - U * U.T) * L + U * U.T, P["B"]: U, P["C"]: -U.T})
        name = "tied IDM optimum"
    return Candidate(name, subs, _eigen_rules(S_r, U, Lam, (S["S_oo"],)), tuple(facts))


@dataclass(frozen=True)
class StationarityCheck:
    candidate: str
    facts: tuple[str, ...]
    vanishing: dict  # parameter -> bool
    residuals: dict  # parameter -> text of what is left ("0" when it vanishes)

    @property
    def holds(self) -> bool:
        return all(self.vanishing.values())


def check_optimum(obj: Objective, candidate: Candidate | None = None) -> StationarityCheck:
    """Substitute ``candidate`` into every gradient and decide exactly that each vanishes."""
    candidate = canonical_candidate(obj) if candidate is None else candidate
    vanishing, residuals = {}, {}
    for name, g in gradients(obj).items():
        substituted = g.xreplace(candidate.substitutions)
        vanishing[name] = is_zero_matrix(substituted, candidate.rules)
        residuals[name] = residual_text(substituted, candidate.rules)
    return StationarityCheck(candidate.name, candidate.facts, vanishing, residuals)


def loss_decomposition(n=d_o, k=d_z):
    """R1's decomposition: ``(loss, rhs, loss_substituted, rules)``, ``loss_substituted − rhs`` ≡ 0.

    ``ℓ = tr((M₁ + M₂L − L) S_oo (M₁ + M₂L − L)ᵀ) + tr((M₂ − I) S_r (M₂ − I)ᵀ)`` once
    ``S_{oo'} = S_oo Lᵀ`` and ``S_{o'o'} = S_r + L S_oo Lᵀ`` (the definition of ``L`` and ``S_r``).
    """
    obj = objective(n=n, k=k)
    X = optimum_symbols(n, k)
    S = obj.moments
    L, S_r = X["L"], X["S_r"]
    M1, M2 = obj.maps["M1"], obj.maps["M2"]
    I = Identity(n)
    subs = {S["S_op"]: S["S_oo"] * L.T, S["S_pp"]: S_r + L * S["S_oo"] * L.T}
    lhs = obj.reconstruction.xreplace(subs)
    E = M1 + M2 * L - L
    rhs = Trace(E * S["S_oo"] * E.T) + Trace((M2 - I) * S_r * (M2 - I).T)
    rules = Rules(symmetric=frozenset({S["S_oo"], S_r}))
    return obj.reconstruction, rhs, lhs, rules


def check_decomposition(n=d_o, k=d_z) -> bool:
    _, rhs, lhs, rules = loss_decomposition(n, k)
    return is_zero_scalar(lhs - rhs, rules)


# -- numeric evaluation of matrix expressions (lambdify) -----------------------------------------
class _Printer(NumPyPrinter):
    def _print_Trace(self, expr):
        return f"numpy.trace({self._print(expr.arg)})"


def lambdify_matrix(expr, args: list):
    """``f(*arrays)`` evaluating a matrix (or trace) expression with NumPy, by ``sympy.lambdify``.

    One compiled function serves every size: dimension symbols are bound from the arrays'
    shapes, identities are supplied as ``numpy.eye`` of the bound size, and an array whose shape
    disagrees with its symbol's (or with a size bound by an earlier argument) raises
    ``ValueError`` naming the argument.
    """
    for a in args:
        if not isinstance(a, (MatrixSymbol, sympy.Symbol)):
            raise InputError(f"args: expected matrix or scalar symbols, got {type(a).__name__}")
    renamed = {
        a: (MatrixSymbol(f"x{i}", *a.shape) if isinstance(a, MatrixSymbol) else sympy.Symbol(f"x{i}"))
        for i, a in enumerate(args)
    }
    expr_r = expr.xreplace(renamed)
    identities = sorted(expr_r.atoms(Identity), key=str)
    eyes = {I: MatrixSymbol(f"eye{j}", *I.shape) for j, I in enumerate(identities)}
    expr_r = expr_r.xreplace(eyes)
    shape_symbols = set()
    for a in args:
        for dim in getattr(a, "shape", ()):
            shape_symbols |= dim.free_symbols
    scalars = sorted((expr_r.free_symbols & shape_symbols) - set(renamed.values()), key=str)
    dim_args = [sympy.Symbol(f"n_{i}") for i in range(len(scalars))]
    expr_r = expr_r.xreplace(dict(zip(scalars, dim_args, strict=True)))
    f = sympy.lambdify(
        [renamed[a] for a in args] + list(eyes.values()) + dim_args, expr_r, modules="numpy", printer=_Printer
    )
    names = [str(a) for a in args]

    def evaluate(*values):
        if len(values) != len(args):
            raise InputError(f"values: expected {len(args)} arrays ({', '.join(names)}), got {len(values)}")
        bound: dict = {}
        checked = []
        for value, a, name in zip(values, args, names, strict=True):
            if not isinstance(a, MatrixSymbol):
                checked.append(float(value))
                continue
            array = np.asarray(value, dtype=np.float64)
            if array.ndim != 2:
                raise InputError(f"{name}: expected a matrix, got an array of shape {array.shape}")
            for axis, dim in enumerate(a.shape):
                size = array.shape[axis]
                if dim.is_Integer:
                    ok = int(dim) == size
                elif dim in bound:
                    ok = bound[dim] == size
                else:
                    bound[dim], ok = size, True
                if not ok:
                    want = tuple(int(d) if d.is_Integer else bound.get(d, str(d)) for d in a.shape)
                    raise InputError(f"{name}: expected shape {want}, got {array.shape}")
            checked.append(array)
        eye_values = []
        for I in eyes:
            n = I.shape[0]
            n = int(n) if n.is_Integer else int(n.xreplace(bound))
            eye_values.append(np.eye(n))
        dim_values = [int(s.xreplace(bound)) for s in scalars]
        return f(*checked, *eye_values, *dim_values)

    return evaluate


def innovation_moment(S_oo, S_op, S_pp) -> np.ndarray:
    """``S_r = S_{o'o'} − S_{o'o} S_oo⁻¹ S_{oo'}``, lambdified from its symbolic definition.

    Refuses non-square or inconsistent blocks with a ``ValueError`` naming the argument.
    """
    arrays = {}
    for name, value in (("S_oo", S_oo), ("S_op", S_op), ("S_pp", S_pp)):
        a = np.asarray(value, dtype=np.float64)
        if a.ndim != 2 or a.shape[0] != a.shape[1]:
            raise InputError(f"{name}: expected a square matrix, got shape {a.shape}")
        arrays[name] = a
    n = arrays["S_oo"].shape[0]
    for name in ("S_op", "S_pp"):
        if arrays[name].shape[0] != n:
            raise InputError(f"{name}: expected shape ({n}, {n}) to match S_oo, got {arrays[name].shape}")
    return _innovation_function()(arrays["S_oo"], arrays["S_op"], arrays["S_pp"])


@cache
def _innovation_function():
    M = moments()
    expr = M["S_pp"] - M["S_op"].T * Inverse(M["S_oo"]) * M["S_op"]
    return lambdify_matrix(expr, [M["S_oo"], M["S_op"], M["S_pp"]])
