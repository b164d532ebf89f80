"""Every tolerance the solver and the probes decide with, in one place, with its reason.

lamproof decides ranks, ties and vanishing quantities from float64 numbers. Each decision
compares a computed quantity with the *scale of what it was computed from* (its ingredients), so
the verdict does not change with units (every second moment scaled by ``c``) or with an
orthogonal change of coordinates. Work happens on square-root factors (``S = X Xᵀ``), whose
round-off is about ``eps`` times the size of their ingredients, so squared quantities keep
their small eigenvalues (a covariance ``diag(1, 1e-12)`` is full rank, and is treated as such).

A decision has three outcomes:

- below ``ROUNDOFF_RTOL`` of its scale a quantity is round-off of an exact zero (a tie, a
  dependent direction, a vanishing residual);
- above ``DECISION_RTOL`` it is real;
- in between float64 cannot tell. lamproof then checks whether the choice changes the answer
  (the two candidate answers differ by more than ``MATTERS_RTOL``); if it does, it refuses with
  :class:`lamproof.errors.IllConditioned`, naming the quantity, rather than print a number it
  cannot vouch for.
"""

from __future__ import annotations

#: Float64 round-off of a factor built from a handful of products is a few ``eps`` (2.2e-16)
#: times its ingredients (1e-16 to 1e-14 relative in practice); horizons, regressions on
#: ill-conditioned moments and products of several matrices multiply that. 1e-12 leaves two to
#: four orders of margin above round-off while keeping every direction a user can meaningfully
#: type (a policy gain of 1e-10 relative is an effect, not round-off).
ROUNDOFF_RTOL = 1e-12

#: A singular value, gap or residual above this fraction of its scale is certainly real: it is
#: a thousand times the round-off bound.
DECISION_RTOL = 1e-9

#: Two answers computed with the undecidable direction kept and dropped are "the same answer"
#: when they differ by less than this fraction of their scale.
MATTERS_RTOL = 1e-8

#: A probe score is a fraction of variance (dimensionless, in [0, 1] on the data it was fitted
#: on); a proved interval narrower than this is a point: ``identified``.
IDENTIFIED_ATOL = 1e-9

#: A witnessed member whose score lies within this of a proved bound attains it: the bound is
#: then ``exact``. Members approaching an infimum that is not attained (observation leakage
#: grows without bound) are built close enough to land within it.
WITNESS_ATOL = 1e-8

#: The weight of the auxiliary action loss, in units of the reconstruction term
#: (``λ · ‖S_aa‖ / ‖S_r‖``), above which float64 cannot resolve the reconstruction part of the
#: objective next to the action part: eigenvalues of ``S_r + λ·(action term)`` carry an error of
#: ``eps·λ·‖action term‖``, which must stay below ``DECISION_RTOL`` of ``‖S_r‖``.
ACTION_WEIGHT_RATIO_MAX = 1e6

#: Probing parameters found numerically (the population minimizer, the stochastic trainer):
#: feature directions weaker than this fraction of the strongest are optimizer noise and are
#: dropped (``probe_errors(..., rtol=NUMERIC_FEATURE_RTOL)``). Such parameters are accurate to
#: about the square root of the objective's accuracy (it is flat to second order at a minimum),
#: 1e-6 relative at best; an exact probe would read their noise as signal.
NUMERIC_FEATURE_RTOL = 1e-5
