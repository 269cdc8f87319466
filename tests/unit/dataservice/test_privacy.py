"""Privacy budget accounting and the discrete Laplace noise it pays for."""

from __future__ import annotations

import statistics
from datetime import timedelta

import pytest

from dataservice import noise, privacy
from dataservice.privacy import BadEpsilon, Budget, BudgetExhausted

QUARTER = timedelta(minutes=15)


def test_a_budget_runs_out() -> None:
    budget = Budget(total=1.0, spent=0.0)
    budget = privacy.charge(budget, 0.5)
    budget = privacy.charge(budget, 0.5)
    assert budget.remaining == 0
    with pytest.raises(BudgetExhausted, match="exhausted"):
        privacy.charge(budget, 0.1)


def test_a_refused_charge_spends_nothing() -> None:
    budget = Budget(total=1.0, spent=0.8)
    with pytest.raises(BudgetExhausted):
        privacy.charge(budget, 0.5)
    assert privacy.charge(budget, 0.2).spent == pytest.approx(1.0)


@pytest.mark.parametrize("epsilon", [0.0, -1.0, float("nan"), float("inf"), 50.0])
def test_nonsense_epsilons_are_refused(epsilon: float) -> None:
    with pytest.raises(BadEpsilon):
        privacy.charge(Budget(10.0, 0.0), epsilon)


def test_sensitivity_is_the_sum_of_bucket_bounds() -> None:
    assert privacy.bound_wh(QUARTER) == 5000  # 20 kW for a quarter-hour
    assert privacy.sensitivity_wh([QUARTER] * 4) == 20_000
    assert privacy.noise_scale_wh([timedelta(days=1)], 2.0) == 240_000


def test_noise_is_unbiased_with_the_planned_spread() -> None:
    totals = [1_000_000] * 2000
    noisy = noise.discrete_laplace(totals, sensitivity_wh=5000, epsilon=1.0)
    errors = [n - t for n, t in zip(noisy, totals, strict=True)]
    assert noisy != totals
    assert abs(statistics.mean(errors)) < 5000 * 0.2  # mean 0: 2000 samples of scale 5000
    # Laplace(b) has standard deviation b * sqrt(2).
    assert statistics.pstdev(errors) == pytest.approx(5000 * 2**0.5, rel=0.15)
