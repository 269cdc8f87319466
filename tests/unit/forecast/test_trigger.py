"""The OpenADR event a red window becomes when the policy acts by event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from forecast import trigger
from oadr import events
from oadr.enums import SignalName, SignalType
from oadr.model import VenId

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
START = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
ISP = timedelta(minutes=15)
VENS = (VenId("ven-1"), VenId("ven-2"))


def test_the_event_covers_the_window_isp_by_isp_for_the_points_vens() -> None:
    event = trigger.congestion_event(
        "fc-cp-1-x", START, (5.0, 20.0, 40.0), isp=ISP, capacity_kw=100.0, ven_ids=VENS, now=NOW
    )

    events.validate(event)  # what the operator's event service checks too
    assert event.event_id == "fc-cp-1-x"
    assert event.active_period.start == START
    assert event.active_period.duration == 3 * ISP
    assert event.target.ven_ids == VENS
    (signal,) = event.signals
    assert (signal.signal_name, signal.signal_type) == (SignalName.SIMPLE, SignalType.LEVEL)
    assert [(i.uid, i.duration, i.value) for i in signal.intervals] == [
        (0, ISP, 1.0),
        (1, ISP, 2.0),
        (2, ISP, 3.0),
    ]


@pytest.mark.parametrize(
    ("needed_kw", "level"), [(0.0, 1), (10.0, 1), (10.1, 2), (25.0, 2), (25.1, 3), (500.0, 3)]
)
def test_the_level_grows_with_the_excess(needed_kw: float, level: int) -> None:
    assert trigger.level(needed_kw, 100.0) == level


def test_no_event_for_a_point_without_vens() -> None:
    # An event with no target would reach every VEN of the VTN.
    with pytest.raises(ValueError, match="no VENs"):
        trigger.congestion_event(
            "fc", START, (5.0,), isp=ISP, capacity_kw=100.0, ven_ids=(), now=NOW
        )
