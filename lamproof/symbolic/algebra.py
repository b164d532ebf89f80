"""A small normal form for polynomials in non-commuting matrix symbols, and their traces.

SymPy expands matrix expressions (``MatAdd`` of ``MatMul``) but does not decide whether two of
them are equal once structural facts are known (``UᵀU = I``, ``S_r U = U Λ``, ``S`` symmetric)
or once traces may be rotated. This module does exactly that and nothing more:

- :func:`terms` expands a matrix expression into ``{factors: coefficient}`` where ``factors`` is a
  tuple of atoms (a ``MatrixSymbol``, its ``Transpose`` or its ``Inverse``);
- :class:`Rules` rewrites factor sequences (``(Uᵀ, U) → ()``, ``(S_r, U) → (U, Λ)``, …) to a fixed
  point, and knows which symbols are symmetric;
- :func:`trace_terms` does the same for a scalar built from traces, with each trace rotated and
  transposed into a canonical representative (``tr(XY) = tr(YX) = tr(Yᵀ Xᵀ)``);
- :func:`is_zero_matrix` / :func:`is_zero_scalar` decide that such an expression vanishes.

Every decision is exact: coefficients are SymPy scalars, simplified with ``sympy.simplify``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy
from sympy import (
    Add,
    Identity,
    Inverse,
    MatAdd,
    MatMul,
    MatrixSymbol,
    Mul,
    Trace,
    Transpose,
    ZeroMatrix,
)

from lamproof.errors import InputError

Atom = sympy.Basic
Factors = tuple


@dataclass(frozen=True)
class Rules:
    """Structural facts: symmetric symbols and rewrite rules on factor sequences.

    ``rewrites`` maps a tuple of atoms to its replacement tuple (``()`` is the identity).
    """

    symmetric: frozenset = field(default_factory=frozenset)
    rewrites: tuple = ()

    def atom(self, atom: Atom) -> Atom:
        """An atom with transposes of symmetric symbols (and of inverses of them) removed."""
        if isinstance(atom, Transpose):
            inner = atom.arg
            if inner in self.symmetric:
                return inner
            if isinstance(inner, Inverse) and inner.arg in self.symmetric:
                return inner
            if isinstance(inner, Transpose):
                return self.atom(inner.arg)
        return atom

    def transpose_atom(self, atom: Atom) -> Atom:
        if isinstance(atom, Transpose):
            return self.atom(atom.arg)
        return self.atom(Transpose(atom))

    def reduce(self, factors: Factors) -> Factors:
        """Apply the rewrites (and ``X⁻¹X = XX⁻¹ = I``) until nothing changes."""
        factors = tuple(self.atom(f) for f in factors)
        changed = True
        while changed:
            changed = False
            for i in range(len(factors) - 1):
                a, b = factors[i], factors[i + 1]
                if (isinstance(a, Inverse) and a.arg == b) or (isinstance(b, Inverse) and b.arg == a):
                    factors = factors[:i] + factors[i + 2 :]
                    changed = True
                    break
            if changed:
                continue
            for pattern, replacement in self.rewrites:
                k = len(pattern)
                for i in range(len(factors) - k + 1):
                    if factors[i : i + k] == pattern:
                        factors = factors[:i] + tuple(replacement) + factors[i + k :]
                        changed = True
                        break
                if changed:
                    break
        return factors


NO_RULES = Rules()


def _split(term) -> tuple[sympy.Expr, list]:
    """``(scalar coefficient, matrix factors)`` of one expanded term."""
    if isinstance(term, MatMul):
        coeff, matrices = term.as_coeff_matrices()
        return coeff, list(matrices)
    if isinstance(term, (ZeroMatrix,)):
        return sympy.Integer(0), []
    return sympy.Integer(1), [term]


def _atoms_of(matrices: list) -> list:
    out = []
    for m in matrices:
        if isinstance(m, Identity):
            continue
        if isinstance(m, MatMul):  # nested products after doit()
            c, inner = m.as_coeff_matrices()
            if c != 1:
                raise InputError(f"expression: unexpected scalar inside a product: {m}")
            out.extend(_atoms_of(list(inner)))
            continue
        if isinstance(m, Transpose) and isinstance(m.arg, MatMul):
            out.extend(_atoms_of([t.T for t in reversed(m.arg.args)]))
            continue
        if isinstance(m, (MatrixSymbol, Transpose, Inverse)):
            out.append(m)
            continue
        raise InputError(f"expression: cannot put {type(m).__name__} {m} into normal form")
    return out


def terms(expr, rules: Rules = NO_RULES) -> dict[Factors, sympy.Expr]:
    """``{factors: coefficient}`` of a matrix polynomial, reduced by ``rules``."""
    expanded = expr.doit().expand()
    if isinstance(expanded, ZeroMatrix):
        return {}
    out: dict[Factors, sympy.Expr] = {}
    for term in MatAdd.make_args(expanded):
        if isinstance(term, ZeroMatrix):
            continue
        coeff, matrices = _split(term)
        if isinstance(term, Identity):
            coeff, matrices = sympy.Integer(1), []
        factors = rules.reduce(tuple(_atoms_of(matrices)))
        out[factors] = out.get(factors, sympy.Integer(0)) + coeff
    return {k: v for k, v in out.items() if sympy.expand(v) != 0}


def _canonical_cycle(factors: Factors, rules: Rules) -> Factors:
    if not factors:
        return factors
    transposed = tuple(rules.transpose_atom(f) for f in reversed(factors))
    candidates = []
    for seq in (factors, transposed):
        for i in range(len(seq)):
            candidates.append(seq[i:] + seq[:i])
    return min(candidates, key=lambda seq: tuple(sympy.srepr(a) for a in seq))


def _reduce_cyclic(factors: Factors, rules: Rules) -> Factors:
    """Reduce a trace's factors under every rotation until no rotation reduces further."""
    seq = rules.reduce(factors)
    progress = True
    while progress and seq:
        progress = False
        for i in range(1, len(seq)):
            rotated = seq[i:] + seq[:i]
            reduced = rules.reduce(rotated)
            if reduced != rotated:
                seq, progress = reduced, True
                break
    return seq


def split_traces(term: sympy.Expr) -> tuple[sympy.Expr, list]:
    """A product term as ``(scalar coefficient, [its Trace factors])``."""
    coeff, traces = sympy.Integer(1), []
    for factor in Mul.make_args(term):
        if isinstance(factor, Trace):
            traces.append(factor)
        else:
            coeff *= factor
    return coeff, traces


def trace_terms(expr, rules: Rules = NO_RULES) -> dict[Factors, sympy.Expr]:
    """``{canonical trace factors: coefficient}`` of a scalar built from traces (``()`` for scalars).

    Reductions are applied cyclically as well, so ``tr(Uᵀ X U)`` with ``UᵀU = I`` rules applies
    to rotations; the empty key collects traces of identities and plain scalars, which keep
    their dimension symbols (``tr I_{d} = d``).
    """
    out: dict[Factors, sympy.Expr] = {}
    for term in Add.make_args(sympy.expand(expr)):
        coeff, traces = split_traces(term)
        if not traces:
            out[()] = out.get((), sympy.Integer(0)) + coeff
            continue
        if len(traces) != 1:
            raise InputError(f"expression: products of traces are not supported: {term}")
        inner = terms(traces[0].arg, rules)
        for factors, c in inner.items():
            if not factors:  # trace of an identity block
                dim = traces[0].arg.shape[0]
                out[()] = out.get((), sympy.Integer(0)) + coeff * c * dim
                continue
            seq = _reduce_cyclic(factors, rules)
            key = _canonical_cycle(seq, rules)
            if not key:
                # tr(I) of whatever size the product had: the row count of its first factor
                dim = factors[0].shape[0]
                out[()] = out.get((), sympy.Integer(0)) + coeff * c * dim
                continue
            out[key] = out.get(key, sympy.Integer(0)) + coeff * c
    return {k: v for k, v in out.items() if sympy.expand(v) != 0}


def is_zero_matrix(expr, rules: Rules = NO_RULES) -> bool:
    """Whether a matrix polynomial vanishes identically, given ``rules``."""
    return not terms(expr, rules)


def is_zero_scalar(expr, rules: Rules = NO_RULES) -> bool:
    """Whether a scalar built from traces vanishes identically, given ``rules``."""
    return not trace_terms(expr, rules)


def residual_text(expr, rules: Rules = NO_RULES, *, scalar: bool = False) -> str:
    """What is left of ``expr`` after reduction, for failure messages."""
    left = trace_terms(expr, rules) if scalar else terms(expr, rules)
    if not left:
        return "0"
    return " + ".join(f"({c})·{'·'.join(str(a) for a in k) or '1'}" for k, c in left.items())
