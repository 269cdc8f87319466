"""The service's own input rules: what a flex request must be, and baselines by name."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from market.baseline import HighXOfY, MeterBeforeMeterAfter, TenOfTen
from market.errors import MarketError
from market.measurement import baseline_method
from market.service import check_request
from tests.factories import HOUR, NOW, make_flex_request


def test_a_sound_request_passes() -> None:
    check_request(make_flex_request(), NOW)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        pytest.param({"needed_kw": ()}, "at least one block", id="no-blocks"),
        pytest.param({"needed_kw": (Decimal(0),) * 4}, "some kW", id="all-zero"),
        pytest.param({"needed_kw": (Decimal(1), Decimal(-1))}, "block 1", id="negative"),
        pytest.param({"needed_kw": (Decimal("0.0001"),)}, "3 decimals", id="sub-watt"),
        pytest.param({"price_cap_eur_per_kwh": Decimal("0.12345")}, "4 decimals", id="cap-5dp"),
        pytest.param({"price_cap_eur_per_kwh": Decimal(0)}, "positive", id="cap-zero"),
        pytest.param({"gate_closure": NOW}, "not in the future", id="gate-now"),
        pytest.param({"gate_closure": NOW + 3 * HOUR}, "before the first block", id="gate-late"),
        pytest.param({"isp": timedelta(minutes=7)}, "divide a day", id="odd-isp"),
    ],
)
def test_a_bad_request_is_refused_with_the_reason(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(MarketError, match=reason):
        check_request(replace(make_flex_request(), **changes), NOW)


def test_baselines_are_built_by_name_with_their_parameters() -> None:
    assert baseline_method("10-of-10", {}) == TenOfTen()
    assert baseline_method("high-x-of-y", {"x": 3, "y": 5}) == HighXOfY(x=3, y=5)
    assert baseline_method("10-of-10", {"adjustment_cap": "0.1", "adjust": False}) == TenOfTen(
        adjustment_cap=Decimal("0.1"), adjust=False
    )
    assert baseline_method("meter-before-meter-after", {"readings": 2}) == MeterBeforeMeterAfter(
        readings=2
    )


@pytest.mark.parametrize(
    ("name", "params", "reason"),
    [
        pytest.param("5-of-5", {}, "unknown baseline", id="unknown"),
        pytest.param("high-x-of-y", {"x": "five"}, "positive integer", id="not-int"),
        pytest.param("high-x-of-y", {"x": 0}, "positive integer", id="zero"),
        pytest.param("10-of-10", {"adjust": 1}, "true or false", id="not-bool"),
        pytest.param("10-of-10", {"colour": 1}, "unexpected keyword", id="unknown-param"),
        pytest.param("10-of-10", {"adjustment_cap": "lots"}, "adjustment_cap", id="bad-cap"),
    ],
)
def test_a_bad_baseline_choice_is_refused(name: str, params: dict[str, Any], reason: str) -> None:
    with pytest.raises(MarketError, match=reason):
        baseline_method(name, params)
