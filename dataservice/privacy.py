"""Differential privacy for aggregates: contribution bounds, noise scale, per-recipient budget.

Optional per query. A household's contribution to each bucket is clamped to what a household
connection can draw in that bucket (`MAX_POWER_KW` times its length, either sign), so adding or
removing one household changes the vector of bucket totals by at most the sum of those bounds
(its L1 sensitivity). Discrete Laplace noise of scale sensitivity / epsilon on integer Wh totals
then gives epsilon-DP for the whole answer (`dataservice.noise` samples it with OpenDP; integer
noise avoids the floating-point attacks on textbook Laplace). Each recipient has a lifetime
budget; each noisy answer spends its epsilon (sequential composition) and a recipient whose
budget is spent gets no more noisy answers. Exact (un-noised) aggregates spend nothing and rely
on the 15/15 and differencing rules alone.

Pure: numbers in, numbers out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

# A residential connection (3 x 25 A at 230 V is 17 kW); heavier loads are clamped to this.
MAX_POWER_KW = 20.0
DEFAULT_BUDGET = 10.0
MAX_EPSILON_PER_QUERY = 5.0


class BudgetExhausted(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadEpsilon(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Budget:
    total: float
    spent: float

    @property
    def remaining(self) -> float:
        return max(self.total - self.spent, 0.0)


def check_epsilon(epsilon: float) -> float:
    if not math.isfinite(epsilon) or not 0 < epsilon <= MAX_EPSILON_PER_QUERY:
        raise BadEpsilon(f"epsilon must be in (0, {MAX_EPSILON_PER_QUERY}]")
    return epsilon


def charge(budget: Budget, epsilon: float) -> Budget:
    """The budget after spending `epsilon`, or BudgetExhausted (nothing spent)."""
    check_epsilon(epsilon)
    # A tiny tolerance so that spending exactly the rest is not refused by rounding.
    if budget.spent + epsilon > budget.total + 1e-9:
        raise BudgetExhausted(
            f"privacy budget exhausted: {budget.remaining:.3g} of {budget.total:.3g} left, "
            f"{epsilon:.3g} asked"
        )
    return Budget(total=budget.total, spent=budget.spent + epsilon)


def bound_wh(bucket: timedelta) -> int:
    """The most one household can contribute to a bucket of this length, in Wh."""
    return math.ceil(MAX_POWER_KW * 1000 * bucket.total_seconds() / 3600)


def sensitivity_wh(buckets: list[timedelta]) -> int:
    """L1 sensitivity of the vector of bucket totals when one household joins or leaves."""
    return sum(bound_wh(b) for b in buckets)


def noise_scale_wh(buckets: list[timedelta], epsilon: float) -> float:
    return sensitivity_wh(buckets) / check_epsilon(epsilon)
