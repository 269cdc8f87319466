"""An award as the OpenADR event that orders it (market.dispatch.event_for)."""

from __future__ import annotations

from decimal import Decimal

from market.dispatch import event_for, event_id_for
from market.model import Award, BidId, RequestId
from oadr import events
from oadr.enums import ItemKind, SignalName, SignalType
from oadr.model import VenId
from tests.factories import NOW, make_flex_request, make_node

CONTEXT = "http://flex4grid.org/market/default"


def make_award(**overrides: object) -> Award:
    fields: dict[str, object] = {
        "request_id": RequestId("mreq-1"),
        "bid_id": BidId("bid-1"),
        "node_id": make_node().node_id,
        "aggregator_id": make_node().aggregator_id,
        "awarded_kw": (Decimal("5"), Decimal("2.5"), Decimal(0), Decimal("0.125")),
        "price_eur_per_kwh": Decimal("0.2"),
        "activation_factor": Decimal("0.5"),
    }
    return Award(**(fields | overrides))  # type: ignore[arg-type]


def test_the_event_orders_minus_the_awarded_kw_per_block_from_the_node_only() -> None:
    request = make_flex_request()

    event = event_for(request, make_award(), make_node(), VenId("ven-n"), market_context=CONTEXT,
                      now=NOW)  # fmt: skip

    events.validate(event)  # a valid OpenADR event, by the VTN's own rules
    (signal,) = event.signals
    assert (signal.signal_name, signal.signal_type) == (SignalName.LOAD_DISPATCH, SignalType.DELTA)
    assert signal.item_base is not None and signal.item_base.kind is ItemKind.POWER_REAL
    assert [i.value for i in signal.intervals] == [-5.0, -2.5, -0.0, -0.125]
    assert {i.duration for i in signal.intervals} == {request.isp}
    assert event.active_period.start == request.start
    assert event.active_period.duration == request.end - request.start
    assert event.target.ven_ids == (VenId("ven-n"),) and event.market_context == CONTEXT


def test_the_event_id_is_stable_per_award_and_differs_between_awards() -> None:
    first = event_id_for(make_award())

    assert first == event_id_for(make_award(awarded_kw=(Decimal(1),) * 4))
    assert first != event_id_for(make_award(bid_id=BidId("bid-2")))
    assert first != event_id_for(make_award(request_id=RequestId("mreq-2")))
    assert len(first) <= 64
