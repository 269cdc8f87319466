"""Clearing at gate closure: merit order per block, divisible and all-or-nothing bids, pricing."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market import clearing
from market.clearing import Clearing, clear, validate_bid
from market.errors import BidRefused
from market.model import (
    Award,
    Bid,
    BidId,
    CongestionPointId,
    FlexRequest,
    NodeId,
    Pricing,
    RequestId,
    RequestStatus,
)
from tests.factories import HOUR, MINUTE, NOW, make_bid, make_flex_request, make_node

D = Decimal
CLEAR_AT = NOW + HOUR  # gate closure of make_flex_request()


def kw(*values: str | int) -> tuple[Decimal, ...]:
    return tuple(D(v) for v in values)


def bid(bid_id: str, offered: tuple[Decimal, ...], price: str, **overrides: object) -> Bid:
    return make_bid(
        bid_id=BidId(bid_id),
        node_id=NodeId(f"node-{bid_id}"),
        offered_kw=offered,
        price_eur_per_kwh=D(price),
        **overrides,
    )


def awarded(result: Clearing) -> dict[str, tuple[Decimal, ...]]:
    return {a.bid_id: a.awarded_kw for a in result.awards}


# --- tables --------------------------------------------------------------------------------


def test_cheapest_bids_are_taken_first_and_the_marginal_one_partially() -> None:
    request = make_flex_request(needed_kw=kw(10, 10))
    bids = [bid("c", kw(6, 6), "0.3"), bid("a", kw(6, 6), "0.1"), bid("b", kw(6, 6), "0.2")]
    result = clear(request, bids, CLEAR_AT)
    assert awarded(result) == {"a": kw(6, 6), "b": kw(4, 4)}
    assert [a.bid_id for a in result.awards] == ["a", "b"]
    assert result.rejected == (("c", "no remaining need in the blocks it offers"),)
    assert result.clearing_price_eur_per_kwh == (D("0.2"), D("0.2"))
    by_id: dict[str, Award] = {a.bid_id: a for a in result.awards}
    # pay-as-bid: each is paid its own price
    assert (by_id["a"].price_eur_per_kwh, by_id["b"].price_eur_per_kwh) == (D("0.1"), D("0.2"))
    # 8 of 12 kWh-equivalents: 0.666666.. rounded up to 6 places
    assert by_id["b"].activation_factor == D("0.666667")
    assert by_id["a"].activation_factor == 1


def test_pay_as_clear_pays_the_volume_weighted_marginal_price_of_the_awards_blocks() -> None:
    # block 0 needs 10: a takes 6, b 4 -> clearing price 0.3; block 1 needs 4: a takes 4 -> 0.1.
    # a is paid (6 x 0.3 + 4 x 0.1) / 10 = 0.22; b, only in block 0, is paid 0.3.
    request = make_flex_request(needed_kw=kw(10, 4), pricing=Pricing.PAY_AS_CLEAR)
    result = clear(request, [bid("a", kw(6, 6), "0.1"), bid("b", kw(6, 6), "0.3")], CLEAR_AT)
    assert awarded(result) == {"a": kw(6, 4), "b": kw(4, 0)}
    assert result.clearing_price_eur_per_kwh == (D("0.3"), D("0.1"))
    prices = {a.bid_id: a.price_eur_per_kwh for a in result.awards}
    assert prices == {"a": D("0.2200"), "b": D("0.3")}


def test_pay_as_clear_quantizes_the_mean_to_four_decimals_half_even() -> None:
    # a: 1 kW at clearing 0.1001 and 2 kW at 0.1000 -> 0.30010/3 = 0.100033.. -> 0.1000
    request = make_flex_request(needed_kw=kw(1, 2), pricing=Pricing.PAY_AS_CLEAR)
    bids = [bid("a", kw(1, 2), "0.1"), bid("b", kw(1, 0), "0.1001")]
    result = clear(request, bids, CLEAR_AT)
    assert awarded(result) == {"a": kw(1, 2)}
    assert result.awards[0].price_eur_per_kwh == D("0.1000")


def test_an_all_or_nothing_bid_that_does_not_fit_every_block_is_skipped_not_cut() -> None:
    request = make_flex_request(needed_kw=kw(10, 5))
    bids = [
        bid("cheap-aon", kw(4, 6), "0.05", divisible=False),  # 6 > 5 in block 1
        bid("div", kw(8, 3), "0.2"),
        bid("fits-aon", kw(2, 2), "0.3", divisible=False),  # exactly what is left
        bid("late-aon", kw(1, 0), "0.4", divisible=False),  # nothing left in block 0
    ]
    result = clear(request, bids, CLEAR_AT)
    assert awarded(result) == {"div": kw(8, 3), "fits-aon": kw(2, 2)}
    assert dict(result.rejected) == {
        "cheap-aon": "all-or-nothing bid exceeds the remaining need in block 1",
        "late-aon": "all-or-nothing bid exceeds the remaining need in block 0",
    }
    assert result.clearing_price_eur_per_kwh == (D("0.3"), D("0.3"))


def test_equal_prices_go_to_the_earlier_bid_then_the_smaller_id() -> None:
    request = make_flex_request(needed_kw=kw(5))
    bids = [
        bid("z-early", kw(3), "0.2", submitted_at=NOW),
        bid("b-late", kw(3), "0.2", submitted_at=NOW + MINUTE),
        bid("a-late", kw(3), "0.2", submitted_at=NOW + MINUTE),
    ]
    result = clear(request, bids, CLEAR_AT)
    assert awarded(result) == {"z-early": kw(3), "a-late": kw(2)}


def test_only_the_latest_revision_of_a_bid_counts() -> None:
    request = make_flex_request(needed_kw=kw(10))
    first = bid("a", kw(6), "0.1", revision=1)
    revised = replace(first, price_eur_per_kwh=D("0.4"), revision=2, submitted_at=NOW + MINUTE)
    result = clear(request, [revised, bid("b", kw(10), "0.2"), first], CLEAR_AT)
    assert awarded(result) == {"b": kw(10)}
    assert result.rejected == (("a", "no remaining need in the blocks it offers"),)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"request_id": RequestId("other")}, "bid is for request other, not mreq-1"),
        ({"submitted_at": NOW + HOUR}, "submitted after gate closure"),
        ({"valid_until": CLEAR_AT - MINUTE}, "expired at 2026-01-15T12:59:00+00:00"),
        ({"price_eur_per_kwh": D("0.5001")}, "price above the cap"),
        ({"offered_kw": kw(5, 5, 5)}, "bid has 3 blocks, request has 4"),
        ({"offered_kw": kw(5, -1, 5, 5)}, "negative volume"),
        ({"offered_kw": kw(0, 0, 0, 0)}, "no volume offered"),
        ({"offered_kw": kw(5, "NaN", 5, 5)}, "invalid volume"),
        ({"price_eur_per_kwh": D("NaN")}, "invalid price"),
    ],
    ids=[
        "other-request",
        "after-gate",
        "expired",
        "above-cap",
        "block-count",
        "negative",
        "zero",
        "nan-volume",
        "nan-price",
    ],
)
def test_ineligible_bids_are_rejected_with_their_reason(
    overrides: dict[str, object], reason: str
) -> None:
    bad = make_bid(bid_id=BidId("bad"), **overrides)
    good = make_bid(bid_id=BidId("good"), node_id=NodeId("node-2"))
    result = clear(make_flex_request(), [bad, good], CLEAR_AT)
    assert result.rejected == (("bad", reason),)
    assert awarded(result) == {"good": kw(5, 5, 5, 5)}


def test_bids_from_nodes_outside_the_congestion_point_are_rejected_when_nodes_are_given() -> None:
    nodes = {
        NodeId("node-in"): make_node(node_id=NodeId("node-in")),
        NodeId("node-out"): make_node(node_id=NodeId("node-out"), point_id=CongestionPointId("x")),
    }
    bids = [
        make_bid(bid_id=BidId(name), node_id=NodeId(f"node-{name}"))
        for name in ("in", "out", "ghost")
    ]
    result = clear(make_flex_request(), bids, CLEAR_AT, nodes=nodes)
    assert awarded(result) == {"in": kw(5, 5, 5, 5)}
    assert dict(result.rejected) == {
        "out": "node node-out is not under congestion point cp-1",
        "ghost": "unknown node node-ghost",
    }


def test_nothing_bought_leaves_the_clearing_price_empty() -> None:
    result = clear(make_flex_request(needed_kw=kw(0, 5)), [bid("a", kw(3, 0), "0.1")], CLEAR_AT)
    assert result.awards == ()
    assert result.clearing_price_eur_per_kwh == (None, None)


# --- validate_bid ----------------------------------------------------------------------------


def test_a_good_bid_passes_validation() -> None:
    validate_bid(make_flex_request(), make_bid(), make_node(), NOW)


@pytest.mark.parametrize(
    ("request_changes", "bid_changes", "node_changes", "now", "reason"),
    [
        ({}, {}, {}, NOW + HOUR, "gate closure for request mreq-1 was 2026-01-15T13:00:00+00:00"),
        ({"status": RequestStatus.CANCELLED}, {}, {}, NOW, "request mreq-1 is cancelled, not open"),
        ({}, {"request_id": RequestId("r2")}, {}, NOW, "bid is for request r2, not mreq-1"),
        ({}, {}, {"node_id": NodeId("n9")}, NOW, "bid names node node-1 but node n9 was given"),
        (
            {},
            {},
            {"point_id": CongestionPointId("cp-9")},
            NOW,
            "node node-1 is not under congestion point cp-1",
        ),
        ({}, {}, {"aggregator_id": "agg-2"}, NOW, "node node-1 belongs to another aggregator"),
        ({}, {"offered_kw": kw(1, -2, 1, 1)}, {}, NOW, "negative volume -2 kW in block 1"),
        ({}, {"offered_kw": kw(0, 0, 0, 0)}, {}, NOW, "bid offers no volume in any block"),
        ({}, {"offered_kw": kw(1, 1)}, {}, NOW, "bid has 2 blocks, request has 4"),
        ({}, {"offered_kw": kw(1, "NaN", 1, 1)}, {}, NOW, "volume in block 1 is not a number"),
        (
            {},
            {"offered_kw": kw(1, 1, "1.0005", 1)},
            {},
            NOW,
            "volume 1.0005 kW in block 2 has more than 3 decimals",
        ),
        (
            {},
            {"price_eur_per_kwh": D("0.12345")},
            {},
            NOW,
            "price 0.12345 EUR/kWh has more than 4 decimals",
        ),
        ({}, {"price_eur_per_kwh": D("-0.1")}, {}, NOW, "negative price -0.1 EUR/kWh"),
        (
            {},
            {"price_eur_per_kwh": D("0.6")},
            {},
            NOW,
            "price 0.6 EUR/kWh is above the cap 0.5 EUR/kWh",
        ),
        (
            {},
            {"valid_until": NOW + 2 * HOUR},
            {},
            NOW,
            "bid valid until 2026-01-15T14:00:00+00:00, before the request ends at "
            "2026-01-15T15:00:00+00:00",
        ),
    ],
    ids=[
        "after-gate",
        "not-open",
        "other-request",
        "other-node",
        "foreign-point",
        "foreign-aggregator",
        "negative-volume",
        "all-zero",
        "block-count",
        "nan-volume",
        "volume-decimals",
        "price-decimals",
        "negative-price",
        "above-cap",
        "valid-until",
    ],
)
def test_bad_bids_are_refused_with_a_422_and_the_reason(
    request_changes: dict[str, object],
    bid_changes: dict[str, object],
    node_changes: dict[str, object],
    now: datetime,
    reason: str,
) -> None:
    with pytest.raises(BidRefused) as caught:
        validate_bid(
            make_flex_request(**request_changes),
            make_bid(**bid_changes),
            make_node(**node_changes),
            now,
        )
    assert caught.value.status == 422
    assert caught.value.message == reason


def test_trailing_zeros_are_not_extra_decimals() -> None:
    validate_bid(
        make_flex_request(),
        make_bid(price_eur_per_kwh=D("0.123400"), offered_kw=kw("1.5000", 1, 1, 1)),
        make_node(),
        NOW,
    )


# --- properties ------------------------------------------------------------------------------


@st.composite
def markets(draw: st.DrawFn) -> tuple[FlexRequest, list[Bid]]:
    blocks = draw(st.integers(1, 4))
    volume = st.integers(0, 30_000).map(lambda n: D(n) / 1000)
    request = make_flex_request(
        needed_kw=tuple(draw(st.lists(volume, min_size=blocks, max_size=blocks))),
        price_cap_eur_per_kwh=D(draw(st.integers(0, 10_000))) / 10_000,
        pricing=draw(st.sampled_from(Pricing)),
    )
    count = draw(st.integers(0, 8))
    bids = [
        make_bid(
            bid_id=BidId(f"b{n}"),
            node_id=NodeId(f"n{n}"),
            offered_kw=tuple(draw(st.lists(volume, min_size=blocks, max_size=blocks))),
            price_eur_per_kwh=D(draw(st.integers(0, 10_000))) / 10_000,
            divisible=draw(st.booleans()),
            submitted_at=NOW + MINUTE * draw(st.integers(0, 3)),
        )
        for n in range(count)
    ]
    return request, bids


def _awards_before(result: Clearing, bids: dict[BidId, Bid], key: object) -> list[int]:
    return [
        i
        for i, a in enumerate(result.awards)
        if clearing.merit_key(bids[a.bid_id]) < key  # type: ignore[operator]
    ]


@settings(max_examples=300, deadline=None)
@given(markets())
def test_clearing_properties(market: tuple[FlexRequest, list[Bid]]) -> None:
    request, bid_list = market
    result = clear(request, bid_list, CLEAR_AT)
    bids = {b.bid_id: b for b in bid_list}
    blocks = range(len(request.needed_kw))

    # every bid is accounted for exactly once: awarded or rejected
    ids = [a.bid_id for a in result.awards] + [b for b, _ in result.rejected]
    assert sorted(ids) == sorted(bids)

    for award in result.awards:
        source = bids[award.bid_id]
        # the cap is respected, for the bid and for the price paid
        assert source.price_eur_per_kwh <= request.price_cap_eur_per_kwh
        assert award.price_eur_per_kwh <= request.price_cap_eur_per_kwh
        if request.pricing is Pricing.PAY_AS_BID:
            assert award.price_eur_per_kwh == source.price_eur_per_kwh
        else:  # the marginal price is never below one's own
            assert award.price_eur_per_kwh >= source.price_eur_per_kwh
        assert all(0 <= a <= o for a, o in zip(award.awarded_kw, source.offered_kw, strict=True))
        assert any(a > 0 for a in award.awarded_kw)
        if not source.divisible:  # all or nothing: whole
            assert award.awarded_kw == source.offered_kw
        exact = sum(award.awarded_kw, D(0)) / sum(source.offered_kw, D(0))
        assert 0 < award.activation_factor <= 1
        assert abs(award.activation_factor - exact) < D("0.000001")

    for i in blocks:
        # never more than requested; per-block totals add up
        total = sum((a.awarded_kw[i] for a in result.awards), D(0))
        assert result.awarded_kw(i) == total <= max(request.needed_kw[i], D(0))
        in_block = [bids[a.bid_id].price_eur_per_kwh for a in result.awards if a.awarded_kw[i]]
        assert result.clearing_price_eur_per_kwh[i] == (max(in_block) if in_block else None)

    # merit order: a bid rejected for volume could not fit what cheaper bids left over
    eligible = [b for b in bid_list if clearing.rejection(request, b, CLEAR_AT) is None]
    awarded_ids = {a.bid_id for a in result.awards}
    for loser in (b for b in eligible if b.bid_id not in awarded_ids):
        before = _awards_before(result, bids, clearing.merit_key(loser))
        left = [
            request.needed_kw[i] - sum((result.awards[n].awarded_kw[i] for n in before), D(0))
            for i in blocks
        ]
        if loser.divisible:
            assert all(o == 0 or r <= 0 for o, r in zip(loser.offered_kw, left, strict=True))
        else:
            assert any(o > r for o, r in zip(loser.offered_kw, left, strict=True))
    # a divisible bid cut short in a block leaves nothing there for pricier bids
    for award in result.awards:
        source = bids[award.bid_id]
        for i in blocks:
            if award.awarded_kw[i] < source.offered_kw[i]:
                later = [
                    a
                    for a in result.awards
                    if clearing.merit_key(bids[a.bid_id]) > clearing.merit_key(source)
                ]
                assert all(a.awarded_kw[i] == 0 for a in later)
    # unmet need means every eligible divisible bid gave all it offered there
    for i in blocks:
        if result.awarded_kw(i) < request.needed_kw[i]:
            for b in eligible:
                if b.divisible and b.offered_kw[i] > 0:
                    assert b.bid_id in awarded_ids
                    got = next(a for a in result.awards if a.bid_id == b.bid_id)
                    assert got.awarded_kw[i] == b.offered_kw[i]


@settings(max_examples=100, deadline=None)
@given(markets(), st.randoms(use_true_random=False))
def test_clearing_does_not_depend_on_the_order_bids_arrive_in(
    market: tuple[FlexRequest, list[Bid]], rnd: object
) -> None:
    request, bid_list = market
    shuffled = list(bid_list)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert clear(request, shuffled, CLEAR_AT) == clear(request, bid_list, CLEAR_AT)
