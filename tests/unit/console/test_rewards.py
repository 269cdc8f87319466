"""A prosumer's reward per event (console.rewards): its pro rata share of the node's settled
payment, an estimate before settlement, or the operator's rate for a direct event."""

from __future__ import annotations

from decimal import Decimal

import pytest

from console import involvement, rewards
from console.rewards import Basis

D = Decimal


@pytest.mark.parametrize(
    ("reduction_kwh", "expected"),
    [
        pytest.param(4.0, D("4.000000"), id="a-reduction"),
        pytest.param(0.1 + 0.2, D("0.300000"), id="float-noise-made-exact"),
        pytest.param(-2.0, D(0), id="more-load-is-nothing-delivered"),
        pytest.param(None, D(0), id="not-measured"),
    ],
)
def test_delivered_kwh_is_never_negative(reduction_kwh: float | None, expected: Decimal) -> None:
    assert rewards.delivered_kwh(reduction_kwh) == expected


def test_a_settled_award_is_shared_pro_rata_to_delivered_kwh() -> None:
    members = [D(4), D("1.5")]
    mine = rewards.market(
        mine_kwh=D(4),
        members_kwh=members,
        settled_payment_eur=D("1.20"),
        awarded_kwh=D(10),
        price_eur_per_kwh=D("0.2"),
    )
    theirs = rewards.market(
        mine_kwh=D("1.5"),
        members_kwh=members,
        settled_payment_eur=D("1.20"),
        awarded_kwh=D(10),
        price_eur_per_kwh=D("0.2"),
    )
    assert (mine.amount_eur, mine.basis) == (D("0.87"), Basis.SETTLED)  # 1.20 x 4/5.5
    assert theirs.amount_eur == D("0.33")  # 1.20 x 1.5/5.5
    assert not mine.estimated


def test_before_settlement_the_estimate_pays_at_most_what_was_ordered() -> None:
    reward = rewards.market(
        mine_kwh=D(6),
        members_kwh=[D(6), D(6)],
        settled_payment_eur=None,
        awarded_kwh=D(10),
        price_eur_per_kwh=D("0.25"),
    )
    # The node: min(12, 10) kWh x 0.25 = 2.50 EUR; mine half of it.
    assert (reward.amount_eur, reward.estimated) == (D("1.25"), True)


def test_nobody_delivering_shares_nothing() -> None:
    reward = rewards.market(
        mine_kwh=D(0),
        members_kwh=[D(0), D(0)],
        settled_payment_eur=D("3.00"),
        awarded_kwh=D(10),
        price_eur_per_kwh=D("0.2"),
    )
    assert reward.amount_eur == D("0.00")


@pytest.mark.parametrize(
    ("rate", "amount", "basis"),
    [
        pytest.param(D("0.15"), D("0.45"), Basis.DIRECT, id="operator-rate"),
        pytest.param(D(0), D("0.00"), Basis.UNPAID, id="no-payment-for-direct-events"),
    ],
)
def test_a_direct_event_pays_the_operators_rate(
    rate: Decimal, amount: Decimal, basis: Basis
) -> None:
    reward = rewards.direct(mine_kwh=D(3), rate_eur_per_kwh=rate)
    assert (reward.amount_eur, reward.basis) == (amount, basis)


def test_the_node_payment_is_the_sum_of_the_awards_statement_lines() -> None:
    statement = {
        "lines": [
            {"bid_id": "bid-a", "payment_eur": "0.3"},
            {"bid_id": "bid-b", "payment_eur": "9.99"},
            {"bid_id": "bid-a", "payment_eur": "0.125"},
        ]
    }
    assert rewards.node_payment(statement, "bid-a") == D("0.425")
    assert rewards.node_payment({"totals": {}}, "bid-a") == D(0)


def test_only_never_excludes_a_prosumer_from_events() -> None:
    stored = {
        "ven-1": {"involvement": "never"},
        "ven-2": {"involvement": "automatic"},
        "ven-3": {"involvement": "ask"},  # an older console's choice: included
    }
    assert involvement.excluded(stored) == {"ven-1"}
    assert involvement.check({"involvement": "sometimes"})[1] == {
        "involvement": "choose one of the options"
    }
    assert involvement.check({"involvement": "never"}) == ({"involvement": "never"}, {})
