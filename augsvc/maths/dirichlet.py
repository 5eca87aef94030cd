"""Gamma, Beta and Dirichlet variates from counter-based uniforms.

Marsaglia and Tsang's method turns a normal and a uniform into a Gamma(a >= 1) variate
or rejects them; with counter-based draws there is no stream to keep reading from, so
each variate owns a fixed block of slots: ``ATTEMPTS`` tries of three uniforms (two for
a Box-Muller normal, one to accept) and one more uniform for the a < 1 boost
(Gamma(a) = Gamma(a + 1) * U^(1/a)). A try is accepted with probability above 0.95
for every a, so all sixteen fail with probability below 1e-20; such a sample would
take the mean. A variate is therefore still a function of its sample's key alone.
"""

from __future__ import annotations

import numpy as np

from augsvc.maths.rng import Draws

ATTEMPTS = 16
SLOTS_PER_VARIATE = 3 * ATTEMPTS + 1


def gamma(draws: Draws, first_slot: int, alpha: float) -> np.ndarray:
    """One Gamma(alpha, 1) variate per sample from slots ``first_slot`` onwards."""
    a = alpha if alpha >= 1 else alpha + 1.0
    d = a - 1.0 / 3.0
    c = 1.0 / np.sqrt(9.0 * d)
    out = np.full(draws.n, np.nan)
    for t in range(ATTEMPTS):
        s = first_slot + 3 * t
        u1, u2, u3 = (1.0 - draws.uniform(s + i) for i in range(3))  # in (0, 1]
        z = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
        v = (1.0 + c * z) ** 3
        with np.errstate(invalid="ignore", divide="ignore"):
            ok = (v > 0) & (np.log(u3) < 0.5 * z * z + d - d * v + d * np.log(v))
        take = np.isnan(out) & ok
        out[take] = d * v[take]
    out[np.isnan(out)] = a
    if alpha < 1:
        u = 1.0 - draws.uniform(first_slot + 3 * ATTEMPTS)
        out = out * u ** (1.0 / alpha)
    return out


def dirichlet(draws: Draws, first_slot: int, alpha: float, k: int) -> np.ndarray:
    """(N, k) Dirichlet(alpha, ..., alpha) weights; each variate takes its own slots."""
    g = np.stack(
        [gamma(draws, first_slot + j * SLOTS_PER_VARIATE, alpha) for j in range(k)], axis=1
    )
    total = g.sum(axis=1, keepdims=True)
    return np.where(total > 0, g / np.where(total > 0, total, 1.0), 1.0 / k)
