"""Settlement: pay delivered energy up to the award, penalize shortfall beyond the tolerance."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.model import AggregatorId, Award, BidId, Delivery, NodeId
from market.settlement import settle
from tests.factories import make_flex_request

D = Decimal
METHOD = "10-of-10(days=10)"
REQUEST = make_flex_request(needed_kw=(D(20),) * 4)  # 15-minute blocks: 1 kW for a block = 0.25 kWh


def award(agg: str, bid: str, kw: tuple[str, ...], price: str) -> Award:
    return Award(
        request_id=REQUEST.request_id,
        bid_id=BidId(bid),
        node_id=NodeId(f"node-{bid}"),
        aggregator_id=AggregatorId(agg),
        awarded_kw=tuple(D(v) for v in kw),
        price_eur_per_kwh=D(price),
        activation_factor=D(1),
    )


def delivery(bid: str, block: int, baseline: str, actual: str) -> Delivery:
    return Delivery(
        bid_id=BidId(bid),
        node_id=NodeId(f"node-{bid}"),
        block=block,
        baseline_kw=D(baseline),
        actual_kw=D(actual),
        method=METHOD,
    )


# Hand-computed case, 15-minute blocks (x 0.25 h), tolerance 10 %:
# agg-1, bid a, 0.20 EUR/kWh, awarded 8, 8, 0, 4 kW = 2, 2, -, 1 kWh
#   block 0: 20 - 12 = 8 kW -> 2 kWh, paid 2 kWh = 0.40 EUR
#   block 1: 20 - 14 = 6 kW -> 1.5 kWh, paid 0.30 EUR; short 0.5 kWh, 0.2 tolerated,
#            0.3 kWh x 0.20 = 0.06 EUR penalty
#   block 3: 20 - 10 = 10 kW -> 2.5 kWh, paid only the 1 kWh awarded = 0.20 EUR
#   totals: awarded 5, delivered 6, paid 4.5 kWh; payment 0.90, penalty 0.06, net 0.84 EUR
# agg-2, bid b, 0.125 EUR/kWh, awarded 2, 2, 0, 0 kW = 0.5, 0.5 kWh
#   block 0: 10 - 9.9 = 0.1 kW -> 0.025 kWh, paid 0.003125 EUR; short 0.475, 0.05 tolerated,
#            0.425 kWh x 0.125 = 0.053125 EUR
#   block 1: no telemetry -> nothing delivered; short 0.5, 0.45 x 0.125 = 0.05625 EUR
#   totals: payment 0.003125 -> 0.00, penalty 0.109375 -> 0.11, net -0.11 EUR
AWARDS = [
    award("agg-2", "b", ("2", "2", "0", "0"), "0.125"),
    award("agg-1", "a", ("8", "8", "0", "4"), "0.2"),
]
DELIVERIES = [
    delivery("a", 0, "20", "12"),
    delivery("a", 1, "20", "14"),
    delivery("a", 2, "20", "20"),  # nothing awarded in block 2: not settled
    delivery("a", 3, "20", "10"),
    delivery("b", 0, "10", "9.9"),
]


def test_the_hand_computed_case() -> None:
    first, second = settle(REQUEST, AWARDS, DELIVERIES, period="2026-01-15")
    assert first.aggregator_id == "agg-1"
    assert [(ln.block, ln.awarded_kwh, ln.delivered_kwh, ln.paid_kwh) for ln in first.lines] == [
        (0, D(2), D(2), D(2)),
        (1, D(2), D("1.5"), D("1.5")),
        (3, D(1), D("2.5"), D(1)),
    ]
    assert [ln.penalty_eur for ln in first.lines] == [0, D("0.06"), 0]
    assert (first.awarded_kwh, first.delivered_kwh, first.paid_kwh) == (D(5), D(6), D("4.5"))
    assert (first.payment_eur, first.penalty_eur, first.net_eur) == (
        D("0.90"),
        D("0.06"),
        D("0.84"),
    )
    assert first.methods == (METHOD,)

    assert second.aggregator_id == "agg-2"
    assert [ln.payment_eur for ln in second.lines] == [D("0.003125"), 0]
    assert [ln.penalty_eur for ln in second.lines] == [D("0.053125"), D("0.05625")]
    assert (second.payment_eur, second.penalty_eur, second.net_eur) == (
        D("0.00"),
        D("0.11"),
        D("-0.11"),
    )


def test_a_penalty_price_replaces_the_award_price_for_shortfall_only() -> None:
    first, _ = settle(REQUEST, AWARDS, DELIVERIES, penalty_eur_per_kwh=D("0.5"), period="p")
    assert first.payment_eur == D("0.90")
    assert first.penalty_eur == D("0.15")  # 0.3 kWh x 0.5


def test_within_tolerance_there_is_no_penalty_and_at_zero_tolerance_there_is() -> None:
    awards = [award("agg-1", "a", ("8",), "0.2")]
    short = [delivery("a", 0, "20", "12.8")]  # 7.2 of 8 kW: exactly 10 % short
    (tolerant,) = settle(REQUEST, awards, short, period="p")
    (strict,) = settle(REQUEST, awards, short, tolerance=D(0), period="p")
    assert tolerant.penalty_eur == 0
    assert strict.penalty_eur == D("0.04")  # 0.2 kWh x 0.2


def test_load_that_went_up_is_paid_nothing_and_penalized_in_full_beyond_tolerance() -> None:
    (statement,) = settle(
        REQUEST, [award("agg-1", "a", ("4",), "0.3")], [delivery("a", 0, "10", "11")], period="p"
    )
    (line,) = statement.lines
    assert line.delivered_kwh == D("-0.25")
    assert (line.paid_kwh, line.payment_eur) == (D(0), D(0))
    assert line.shortfall_kwh == 1
    assert line.penalty_eur == D("0.27")  # 0.9 kWh x 0.3


def test_totals_round_half_even_once_not_per_line() -> None:
    # two lines of 0.0625 EUR each: rounded per line 0.06 + 0.06 = 0.12; exact sum 0.125 -> 0.12
    # three lines of 0.0625: 0.1875 -> 0.19 (per line it would be 0.18)
    awards = [award("agg-1", "a", ("1", "1", "1"), "0.25")]
    deliveries = [delivery("a", block, "1", "0") for block in range(3)]
    (statement,) = settle(REQUEST, awards, deliveries, period="p")
    assert statement.payment_eur == D("0.19")
    (two,) = settle(REQUEST, awards, deliveries[:2], tolerance=D(1), period="p")
    assert two.payment_eur == D("0.12")  # half-even: 0.125 -> 0.12


def test_json_and_csv_carry_the_same_figures() -> None:
    first, _ = settle(REQUEST, AWARDS, DELIVERIES, period="2026-01-15")
    document = json.loads(json.dumps(first.to_json()))
    assert document["totals"] == {
        "awarded_kwh": "5.00",
        "delivered_kwh": "6.00",
        "paid_kwh": "4.50",
        "shortfall_kwh": "0.50",
        "payment_eur": "0.90",
        "penalty_eur": "0.06",
        "net_eur": "0.84",
    }
    assert document["period"] == "2026-01-15" and document["methods"] == [METHOD]
    assert [line["block_start"] for line in document["lines"]] == [
        "2026-01-15T14:00:00+00:00",
        "2026-01-15T14:15:00+00:00",
        "2026-01-15T14:45:00+00:00",
    ]
    rows = list(csv.DictReader(io.StringIO(first.to_csv())))
    assert [row["bid_id"] for row in rows] == ["a", "a", "a", "TOTAL"]
    assert D(rows[1]["penalty_eur"]) == D("0.06")
    assert rows[-1]["payment_eur"] == "0.90"
    assert sum(D(row["payment_eur"]) for row in rows[:-1]) == D(rows[-1]["payment_eur"])


def test_no_awards_no_statements_and_a_bad_tolerance_is_refused() -> None:
    assert settle(REQUEST, [], DELIVERIES, period="p") == []
    with pytest.raises(ValueError, match="tolerance"):
        settle(REQUEST, AWARDS, DELIVERIES, tolerance=D("1.5"), period="p")


volumes = st.integers(0, 20_000).map(lambda n: D(n) / 1000)


@settings(max_examples=200, deadline=None)
@given(
    awarded=st.lists(volumes, min_size=1, max_size=4),
    measured=st.lists(st.integers(-5_000, 25_000).map(lambda n: D(n) / 1000), max_size=4),
    price=st.integers(0, 10_000).map(lambda n: D(n) / 10_000),
    tolerance=st.integers(0, 100).map(lambda n: D(n) / 100),
)
def test_settlement_properties(
    awarded: list[Decimal], measured: list[Decimal], price: Decimal, tolerance: Decimal
) -> None:
    awards = [award("agg-1", "a", tuple(str(kw) for kw in awarded), str(price))]
    deliveries = [delivery("a", block, str(kw), "0") for block, kw in enumerate(measured)]
    statements = settle(REQUEST, awards, deliveries, tolerance, period="p")
    if all(kw == 0 for kw in awarded):
        assert statements == []
        return
    (statement,) = statements
    for line in statement.lines:
        assert 0 <= line.paid_kwh <= line.awarded_kwh  # never negative, never beyond the award
        assert line.payment_eur == line.paid_kwh * price
        assert line.shortfall_kwh == line.awarded_kwh - line.paid_kwh
        assert (line.penalty_eur > 0) == (
            price > 0 and line.shortfall_kwh > tolerance * line.awarded_kwh
        )
    assert statement.awarded_kwh == sum(awarded) * D("0.25")
    assert statement.net_eur == statement.payment_eur - statement.penalty_eur
    assert abs(statement.payment_eur - sum(ln.payment_eur for ln in statement.lines)) <= D("0.005")
    # delivering more never earns less
    more = [delivery("a", block, "25", "0") for block in range(len(awarded))]
    (full,) = settle(REQUEST, awards, more, tolerance, period="p")
    assert full.net_eur >= statement.net_eur
    assert full.penalty_eur == 0
