"""The UFTP adapter: our requests, bids, awards and statements as Shapeshifter messages and back."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from shapeshifter_uftp.uftp import FlexOffer, FlexOrder, FlexRequest, FlexSettlement

from market import uftp
from market.clearing import clear
from market.errors import BidRefused, MarketError
from market.model import AggregatorId, BidId, CongestionPointId, Delivery, NodeId
from market.settlement import settle
from market.uftp import Envelope, UftpContext
from tests.factories import HOUR, NOW, make_bid, make_flex_request

D = Decimal
CTX = UftpContext(dso_domain="dso.flex4grid.example", ea_prefix="ea1.2026-01.example.flex4grid")
AGR = "agr.example.com"
MSG = "6f1c0a52-3f2e-4b8e-9a55-0d7f6a3c2b10"
CONV = "0b7d4a9e-1c2f-4e3a-8b6d-5f4e3d2c1b0a"
DSO_TO_AGR = Envelope(
    sender_domain=CTX.dso_domain,
    recipient_domain=AGR,
    message_id=MSG,
    conversation_id=CONV,
    time_stamp=NOW,
)
AGR_TO_DSO = replace(DSO_TO_AGR, sender_domain=AGR, recipient_domain=CTX.dso_domain)


def test_a_flex_request_survives_uftp_xml_and_reads_back_as_our_blocks() -> None:
    request = make_flex_request(needed_kw=(D(10), D("2.5"), D(0), D("0.001")))
    message = uftp.to_flex_request(request, DSO_TO_AGR, CTX)
    xml = uftp.to_xml(message)
    parsed = uftp.from_xml(xml)
    assert isinstance(parsed, FlexRequest)
    assert parsed == message
    # 14:00 UTC is 15:00 in Amsterdam (CET): the 61st quarter hour of the local day
    assert [(i.start, i.min_power, str(i.disposition)) for i in parsed.isps] == [
        (61, -10_000, "Requested"),
        (62, -2_500, "Requested"),
        (63, 0, "Available"),
        (64, -1, "Requested"),
    ]
    assert 'CongestionPoint="ea1.2026-01.example.flex4grid:cp-1"' in xml
    assert parsed.expiration_date_time == "2026-01-15T13:00:00+00:00"  # gate closure
    blocks = uftp.request_blocks(parsed, CTX)
    assert (blocks.point_id, blocks.start, blocks.isp, blocks.kw) == (
        request.point_id,
        request.start,
        request.isp,
        request.needed_kw,
    )


def test_isp_numbers_count_real_quarter_hours_on_a_dst_day() -> None:
    # 2026-03-29: clocks go from 02:00 to 03:00 CET->CEST; 12:00 UTC is 14:00 local, but only
    # 13 hours have passed since local midnight (23:00 UTC the day before): ISP 53, not 57.
    request = make_flex_request(start=datetime(2026, 3, 29, 12, tzinfo=UTC))
    assert uftp.placement(request, CTX).first_isp == 53
    message = uftp.to_flex_request(request, DSO_TO_AGR, CTX)
    assert uftp.request_blocks(message, CTX).start == request.start


def test_a_request_across_local_midnight_or_off_the_isp_grid_is_refused() -> None:
    with pytest.raises(MarketError, match="midnight"):
        uftp.placement(make_flex_request(start=datetime(2026, 1, 15, 22, 45, tzinfo=UTC)), CTX)
    with pytest.raises(MarketError, match="ISP boundary"):
        uftp.placement(make_flex_request(start=NOW + timedelta(minutes=7)), CTX)


@pytest.mark.parametrize("divisible", [True, False], ids=["divisible", "all-or-nothing"])
def test_a_flex_offer_becomes_the_bid_it_was_made_from(divisible: bool) -> None:
    request = make_flex_request()
    bid = make_bid(
        offered_kw=(D(5), D("2.5"), D(0), D(4)), price_eur_per_kwh=D("0.2"), divisible=divisible
    )
    offer = uftp.to_flex_offer(bid, request, AGR_TO_DSO, CTX, request_message_id=MSG)
    # 11.5 kW x 0.25 h = 2.875 kWh at 0.2 EUR/kWh: the option costs 0.5750 EUR in total
    assert offer.offer_options[0].price == D("0.5750")
    parsed = uftp.from_xml(uftp.to_xml(offer))
    assert isinstance(parsed, FlexOffer)
    (back,) = uftp.bids_from_offer(
        parsed,
        request,
        CTX,
        node_id=bid.node_id,
        aggregator_id=bid.aggregator_id,
        submitted_at=bid.submitted_at,
    )
    assert back == replace(bid, bid_id=BidId(f"{MSG}/bid-1"))


def test_an_offer_price_that_is_not_a_whole_price_per_kwh_rounds_half_even() -> None:
    request = make_flex_request()
    offer = uftp.to_flex_offer(make_bid(), request, AGR_TO_DSO, CTX, request_message_id=MSG)
    offer.offer_options[0].price = D("1.00015")  # over 5 kWh: 0.20003 -> 0.2000
    (bid,) = uftp.bids_from_offer(
        offer, request, CTX, node_id=NodeId("n"), aggregator_id=AggregatorId("a"),
        submitted_at=NOW,
    )  # fmt: skip
    assert bid.price_eur_per_kwh == D("0.2000")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda o: setattr(o, "congestion_point", "ea1.2026-01.example.flex4grid:cp-9"), "cp-9"),
        (
            lambda o: setattr(o.offer_options[0].isps[0], "start", 60),
            "ISPs 60\\+1 are not requested",
        ),
        (
            lambda o: setattr(
                o.offer_options[0], "isps", [replace(o.offer_options[0].isps[0], power=0)]
            ),
            "no reduction",
        ),
        (
            lambda o: setattr(o.offer_options[0].isps[0], "duration", 10**9),
            "ISPs 61\\+1000000000 are not requested",
        ),
        (lambda o: setattr(o, "expiration_date_time", "2026-01-15T18:00:00"), "no UTC offset"),
        (lambda o: setattr(o, "expiration_date_time", "tomorrow"), "not a date-time"),
    ],
    ids=[
        "other-point",
        "isp-outside-request",
        "nothing-offered",
        "hostile-duration",
        "naive-expiry",
        "bad-expiry",
    ],
)
def test_offers_that_do_not_answer_the_request_are_refused(change: object, reason: str) -> None:
    request = make_flex_request()
    offer = uftp.to_flex_offer(make_bid(), request, AGR_TO_DSO, CTX, request_message_id=MSG)
    change(offer)  # type: ignore[operator]
    with pytest.raises(BidRefused, match=reason):
        uftp.bids_from_offer(
            offer, request, CTX, node_id=NodeId("n"), aggregator_id=AggregatorId("a"),
            submitted_at=NOW,
        )  # fmt: skip


def test_an_award_becomes_a_flex_order_with_its_activation_factor() -> None:
    request = make_flex_request(needed_kw=(D(10), D(4), D(10), D(10)))
    bids = [
        make_bid(bid_id=BidId("a"), offered_kw=(D(6),) * 4, price_eur_per_kwh=D("0.1")),
        make_bid(bid_id=BidId("b"), offered_kw=(D(6),) * 4, price_eur_per_kwh=D("0.3")),
    ]
    award = clear(request, bids, NOW + HOUR).awards[1]  # b: 4, 0, 4, 4 of 6 kW each
    assert award.activation_factor == D("0.5")
    order = uftp.to_flex_order(
        award, request, DSO_TO_AGR, CTX, offer_message_id=MSG, option_reference="b"
    )
    parsed = uftp.from_xml(uftp.to_xml(order))
    assert isinstance(parsed, FlexOrder)
    assert parsed == order
    assert parsed.activation_factor == D("0.50")
    assert parsed.price == D("0.9000")  # 12 kW x 0.25 h x 0.3 EUR/kWh
    assert parsed.order_reference == "mreq-1/b"
    assert uftp.order_blocks(parsed, CTX).kw == award.awarded_kw


def test_a_small_activation_factor_rounds_up_never_to_zero() -> None:
    request = make_flex_request(needed_kw=(D("0.001"),))
    bid = make_bid(offered_kw=(D(500),))
    award = clear(request, [bid], NOW + HOUR).awards[0]
    order = uftp.to_flex_order(
        award, request, DSO_TO_AGR, CTX, offer_message_id=MSG, option_reference="x"
    )
    assert order.activation_factor == D("0.01")


def test_a_statement_becomes_a_flex_settlement_with_the_same_money() -> None:
    request = make_flex_request(needed_kw=(D(8), D(8)))
    award = clear(request, [make_bid(offered_kw=(D(8), D(8)))], NOW + HOUR).awards[0]
    deliveries = [
        Delivery(bid_id=award.bid_id, node_id=award.node_id, block=0, baseline_kw=D(20),
                 actual_kw=D(12), method="meter-before-meter-after(readings=1)"),
        Delivery(bid_id=award.bid_id, node_id=award.node_id, block=1, baseline_kw=D(20),
                 actual_kw=D(14), method="meter-before-meter-after(readings=1)"),
    ]  # fmt: skip
    # block 0: 2 kWh paid 0.40; block 1: 1.5 kWh paid 0.30, short 0.5 (0.2 tolerated): 0.06
    (statement,) = settle(request, [award], deliveries, period="2026-01-15")
    message = uftp.to_flex_settlement(statement, request, [award], DSO_TO_AGR, CTX)
    parsed = uftp.from_xml(uftp.to_xml(message))
    assert isinstance(parsed, FlexSettlement)
    assert parsed == message
    (order,) = parsed.flex_order_settlements
    assert (order.price, order.penalty, order.net_settlement) == (
        D("0.7000"),
        D("0.0600"),
        D("0.6400"),
    )
    assert order.net_settlement == statement.net_eur
    assert [
        (i.start, i.baseline_power, i.actual_power, i.ordered_flex_power,
         i.delivered_flex_power, i.power_deficiency)
        for i in order.isps
    ] == [
        (61, 20_000, 12_000, -8_000, -8_000, 0),
        (62, 20_000, 14_000, -8_000, -6_000, -2_000),
    ]  # fmt: skip
    assert order.baseline_reference == "meter-before-meter-after(readings=1)"
    assert parsed.contract_settlements[0].contract_id == "market:mreq-1"


def test_envelopes_are_fresh_and_garbage_is_not_a_message() -> None:
    one, two = (Envelope.new(CTX.dso_domain, AGR, NOW) for _ in range(2))
    assert one.message_id != two.message_id and one.conversation_id != two.conversation_id
    assert Envelope.new(CTX.dso_domain, AGR, NOW, one.conversation_id).conversation_id == (
        one.conversation_id
    )
    with pytest.raises(MarketError, match="not a UFTP payload message: NotUftp"):
        uftp.from_xml("<NotUftp/>")
    with pytest.raises(MarketError, match="DOCTYPE"):
        uftp.from_xml('<!DOCTYPE x [<!ENTITY a "a">]><FlexRequest/>')
    with pytest.raises(MarketError, match="not a valid UFTP message"):
        uftp.from_xml("<FlexRequest")
    with pytest.raises(MarketError, match="not one of ours"):
        CTX.point_id("ean.123456789012")
    assert CTX.point_id(CTX.congestion_point(CongestionPointId("cp-7"))) == "cp-7"


def test_a_peer_cannot_name_isps_beyond_a_day() -> None:
    message = uftp.to_flex_request(make_flex_request(), DSO_TO_AGR, CTX)
    message.isps[0].duration = 10**9
    with pytest.raises(MarketError, match="not within one day"):
        uftp.request_blocks(message, CTX)
