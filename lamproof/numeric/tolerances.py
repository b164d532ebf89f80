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

#: Ranks of PSD matrices that *square* a factor (Gramians ``W = 𝒦𝒦ᵀ``, second moments that are
#: inverted, covariances of features): an eigenvalue counts as zero below this fraction of the
#: largest. A squared quantity holds half the digits of its factor, and its eigenvalues carry an
#: absolute error of about ``n·eps·λ_max`` from the sums and products that built it; 1e-10 is
#: ``(1e-5)²``, i.e. a direction counts when the factor's singular value exceeds 1e-5 relative.
#: Used by :func:`lamproof.numeric.linalg.pinv_psd`, the capture conditions, the Gramian rank of
#: :mod:`lamproof.control`, the exogenous loadings and the inverse models.
PSD_RANK_RTOL = 1e-10

#: The same rule stated for the singular values of the factor itself (Kalman matrices, the
#: staircase of reachable directions, inverse-model encoders): ``√PSD_RANK_RTOL``.
FACTOR_RANK_RTOL = PSD_RANK_RTOL**0.5

#: Probing a *trajectory* of the learning dynamics: feature directions with less than this fraction
#: of the representation's largest variance are dropped (:func:`lamproof.trajectory.resolved`).
#: Parameters after finitely many steps keep residuals of any size where the optimum's features
#: vanish; an exact, scale-free probe would read the observation from them (a probe trained on
#: samples cannot). Gradient-based parameters are resolved to about 1e-6 relative, like
#: :data:`NUMERIC_FEATURE_RTOL`'s minimizer parameters, one order tighter because the dynamics'
#: gradients are exact.
TRAJECTORY_FEATURE_RTOL = 1e-6

# Tolerances that stay in their modules, and why:
#
# - ``lamproof.control``'s default Kalman/PBH rank rule is ``max(shape)·eps`` relative (NumPy's
#   ``matrix_rank`` convention), scaled by the eigenvalue condition number for PBH; these depend
#   on the matrix at hand, so they are formulas, not constants. Its eigenvalue clustering and
#   stability margin are control-theoretic facts about eigenvalue error, documented there.
# - ``lamproof.numeric.dynamics``: ``TIE_RTOL`` and ``LOW_RANK_FRACTION`` choose how a moment block
#   is *stored* (``αI + UVᵀ`` or dense); either choice represents the block exactly, so they decide
#   speed, never a verdict. Its round-off rank rule is :data:`ROUNDOFF_RTOL`. ``FLOW_RTOL`` and
#   ``FLOW_ATOL`` are ``solve_ivp``'s integration accuracy.
# - ``lamproof.trajectory``: ``HOLDS_RTOL`` and ``ZERO_RTOL`` only *label* eigen-groups of the
#   innovation (action or not, anything to learn) for the acquisition order; ``HALF`` defines
#   "acquired". None of them decides a number lamproof reports as proved.
# - Derivation checks (:mod:`lamproof.derivations._framework`) compare two routes with tolerances
#   set by the independent route's accuracy (the minimizer's, Monte Carlo's); they are the
#   checks' own and stay with them.
