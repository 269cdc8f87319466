"""The DSO asks for flexibility directly: one OpenADR event per overloaded feeder (`--mode event`).

The event targets the feeder's VENs by venID (the DSO knows which connection is on which
feeder; a VEN does not know the VTN's groups, so it would refuse a group target). It covers the
forecast overload window and is created through the VTN's operator service, the same path as
`POST /admin/v1/events`, well ahead of its start (its notification period). It carries one SIMPLE
signal (OpenADR 2.0b's basic shed levels: 1 moderate, 2 high, 3 special), which every VEN
understands; each household decides by its own policy whether to opt in.

The market mode (`--mode market`: a flexibility request that an aggregator bids on, cleared and
dispatched as an event) is beside this: `flex4grid.demo.marketplace`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from flex4grid.demo.forecast import FeederPlan
from oadr.enums import EventStatus, ResponseRequired, SignalName, SignalType
from oadr.model import ActivePeriod, Event, EventId, EventInterval, EventSignal, Target, VenId
from vtn.services import operator
from vtn.services.context import Context

MARKET_CONTEXT = "http://flex4grid.example/dso/congestion"
# SIMPLE "moderate": heat pumps 1 °C lower, EVs at half their rate, batteries cover the house.
# Enough for a feeder a few ten percent over; "high" (2) pauses EVs and rebounds harder after.
SHED_LEVEL = 1.0
# Each VEN starts (and so ends) at a random moment up to this late (xcal:tolerance startafter):
# a feeder's heat pumps and EVs then do not all catch up in the same minute after the event.
RANDOMIZATION = timedelta(minutes=30)
ACTOR = "dso-operator"


def feeder_event(plan: FeederPlan, ven_ids: Sequence[VenId], now: datetime) -> Event:
    """The congestion event for `plan`'s overload window (which it must have)."""
    assert plan.window is not None
    start, end = plan.window
    duration = end - start
    # Whole seconds: xCal durations carry no fractions, and `now` is any instant.
    notice = timedelta(seconds=int((start - now).total_seconds()))
    return Event(
        event_id=EventId(f"congestion-{plan.name}-{start.strftime('%Y%m%d-%H%M')}"),
        modification_number=0,
        market_context=MARKET_CONTEXT,
        created=now,
        status=EventStatus.FAR,
        active_period=ActivePeriod(
            start=start, duration=duration, notification=notice, start_after=RANDOMIZATION
        ),
        signals=(
            EventSignal(
                signal_name=SignalName.SIMPLE,
                signal_type=SignalType.LEVEL,
                signal_id="shed",
                intervals=(EventInterval(uid=0, duration=duration, value=SHED_LEVEL),),
            ),
        ),
        target=Target(ven_ids=tuple(ven_ids)),
        response_required=ResponseRequired.ALWAYS,
        vtn_comment=(
            f"{plan.name}: forecast {plan.peak_kw:.0f} kW over its {plan.capacity_kw:.0f} kW"
        ),
    )


async def request(
    context: Context, plan: FeederPlan, ven_ids: Sequence[VenId], now: datetime
) -> list[EventId]:
    """Create the feeder's event at `now`; the VTN pushes it to the feeder's VENs."""
    event = feeder_event(plan, ven_ids, now)
    created = await operator.create_event(context, event, actor=ACTOR, now=now)
    return [created.event_id]
