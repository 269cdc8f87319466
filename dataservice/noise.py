"""Discrete Laplace noise on integer totals, sampled by OpenDP (`opendp.measurements`).

Not pure (it draws randomness), so it sits apart from `dataservice.privacy`, which decides the
scale. OpenDP's privacy map is asked what the measurement guarantees for our sensitivity, and we
refuse to release if that is worse than the epsilon that was charged.
"""

from __future__ import annotations

from collections.abc import Sequence

import opendp.prelude as dp

dp.enable_features("contrib")


class NoiseError(RuntimeError):
    pass


def discrete_laplace(totals_wh: Sequence[int], sensitivity_wh: int, epsilon: float) -> list[int]:
    space = dp.vector_domain(dp.atom_domain(T="i64")), dp.l1_distance(T="i64")
    measurement = space >> dp.m.then_laplace(scale=sensitivity_wh / epsilon)
    guaranteed = float(measurement.map(sensitivity_wh))
    if guaranteed > epsilon * (1 + 1e-9):
        raise NoiseError(f"the mechanism guarantees epsilon {guaranteed}, not {epsilon}")
    return [int(v) for v in measurement([int(v) for v in totals_wh])]
