"""oadr.opts: CreateOpt shape, which opt decides an event, CancelOpt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from oadr import opts
from oadr.enums import OptType
from oadr.errors import InvalidData, InvalidId, OadrError
from oadr.model import CancelOpt, CreateOpt, Event, EventId, OptId, Target, VenId
from tests.factories import (
    HOUR,
    MINUTE,
    VEN_ID,
    make_cancel_opt,
    make_create_opt,
    make_event,
    make_event_opt,
    make_window,
)

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
ZERO = timedelta(0)
OUT, IN = OptType.OPT_OUT, OptType.OPT_IN
EVENT = make_event(start=NOW + HOUR, duration=HOUR)  # 13:00-14:00, modification 0


def _schedule(
    start: datetime = NOW + HOUR,
    duration: timedelta = HOUR,
    opt_type: OptType = OUT,
    created: datetime = NOW - MINUTE,
    **overrides: Any,
) -> CreateOpt:
    return make_create_opt(
        availability=(make_window(start, duration),),
        opt_type=opt_type,
        created=created,
        **overrides,
    )


# --- validate -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "opt",
    [
        pytest.param(make_create_opt(), id="schedule"),
        pytest.param(_schedule(duration=ZERO), id="open-ended-window"),
        pytest.param(
            make_create_opt(availability=(make_window(), make_window(NOW + 3 * HOUR))),
            id="two-windows",
        ),
        pytest.param(make_event_opt(), id="tied-to-an-event"),
        pytest.param(make_event_opt(modification_number=3), id="event-opt-later-modification"),
    ],
)
def test_valid_opts_pass(opt: CreateOpt) -> None:
    opts.validate(opt)


INVALID_OPTS: list[tuple[str, CreateOpt, type[OadrError]]] = [
    ("event-opt-with-market-context", make_event_opt(market_context="http://m"), InvalidData),
    ("event-opt-with-windows", make_event_opt(availability=(make_window(),)), InvalidData),
    ("event-opt-without-modification", make_event_opt(modification_number=None), InvalidData),
    ("event-opt-negative-modification", make_event_opt(modification_number=-1), InvalidData),
    ("event-opt-empty-event-id", make_event_opt(event_id=EventId("")), InvalidId),
    ("schedule-without-market-context", make_create_opt(market_context=None), InvalidData),
    ("schedule-without-windows", make_create_opt(availability=None), InvalidData),
    ("schedule-with-empty-windows", make_create_opt(availability=()), InvalidData),
    ("negative-window", _schedule(duration=-MINUTE), InvalidData),
    ("modification-without-event", make_create_opt(modification_number=0), InvalidData),
    ("no-opt-id", make_create_opt(opt_id=OptId("")), InvalidId),
    ("no-ven-id", make_create_opt(ven_id=VenId("")), InvalidId),
]


@pytest.mark.parametrize(("opt", "error"), [pytest.param(o, e, id=i) for i, o, e in INVALID_OPTS])
def test_invalid_opts_raise_the_matching_code(opt: CreateOpt, error: type[OadrError]) -> None:
    with pytest.raises(OadrError) as caught:
        opts.validate(opt)
    assert type(caught.value) is error


# --- which opt applies --------------------------------------------------------------------------

OTHER_VEN = VenId("ven-2")
PRECEDENCE_CASES: list[tuple[str, list[CreateOpt], Event, OptType | None]] = [
    ("no-opts", [], EVENT, None),
    ("overlapping-schedule", [_schedule()], EVENT, OUT),
    ("window-covers-only-the-last-minute", [_schedule(NOW + 2 * HOUR - MINUTE)], EVENT, OUT),
    ("window-ends-at-event-start", [_schedule(NOW, HOUR)], EVENT, None),
    ("window-starts-at-event-end", [_schedule(NOW + 2 * HOUR)], EVENT, None),
    ("open-ended-window-before-event", [_schedule(NOW - HOUR, ZERO)], EVENT, OUT),
    ("open-ended-window-after-event", [_schedule(NOW + 3 * HOUR, ZERO)], EVENT, None),
    (
        "open-ended-event-late-window",
        [_schedule(NOW + 50 * HOUR)],
        make_event(start=NOW + HOUR, duration=ZERO),
        OUT,
    ),
    ("other-market-context", [_schedule(market_context="http://other")], EVENT, None),
    ("other-vens-opt", [_schedule(ven_id=OTHER_VEN)], EVENT, None),
    (
        "later-schedule-wins",
        [_schedule(created=NOW - HOUR), _schedule(opt_type=IN, created=NOW - MINUTE)],
        EVENT,
        IN,
    ),
    (
        "later-schedule-wins-whatever-the-order",
        [_schedule(opt_type=IN, created=NOW - MINUTE), _schedule(created=NOW - HOUR)],
        EVENT,
        IN,
    ),
    (
        "equal-time-later-received-wins",
        [_schedule(opt_type=IN), _schedule(opt_type=OUT)],
        EVENT,
        OUT,
    ),
    (
        "event-opt-beats-newer-schedule",
        [make_event_opt(opt_type=IN, created=NOW - HOUR), _schedule(created=NOW - MINUTE)],
        EVENT,
        IN,
    ),
    (
        "later-event-opt-wins",
        [make_event_opt(opt_type=OUT, created=NOW - MINUTE), make_event_opt(created=NOW - HOUR)],
        EVENT,
        OUT,
    ),
    ("event-opt-for-another-event", [make_event_opt(event_id=EventId("other"))], EVENT, None),
    (
        "event-opt-holds-for-later-modifications",
        [make_event_opt(modification_number=0)],
        make_event(modification_number=2),
        OUT,
    ),
    ("event-opt-for-a-future-modification", [make_event_opt(modification_number=1)], EVENT, None),
    ("opt-created-after-now", [_schedule(created=NOW + MINUTE)], EVENT, None),
    (
        "resource-opt-not-for-the-whole-ven",
        [_schedule(target=Target(resource_ids=("pump",)))],
        EVENT,
        None,
    ),
]


@pytest.mark.parametrize(
    ("given", "event", "expected"),
    [pytest.param(g, e, x, id=i) for i, g, e, x in PRECEDENCE_CASES],
)
def test_opted_out_picks_the_opt_that_decides_the_event(
    given: list[CreateOpt], event: Event, expected: OptType | None
) -> None:
    assert opts.opted_out(given, event, VEN_ID, NOW) == expected


def test_resource_opt_applies_to_that_resource_only() -> None:
    given = [_schedule(target=Target(resource_ids=("pump",)))]
    assert opts.opted_out(given, EVENT, VEN_ID, NOW, resource_id="pump") == OUT
    assert opts.opted_out(given, EVENT, VEN_ID, NOW, resource_id="boiler") is None


def test_applicable_returns_the_deciding_opt() -> None:
    winner = make_event_opt(opt_type=IN)
    assert opts.applicable([_schedule(), winner], EVENT, VEN_ID, NOW) is winner


# --- cancel ---------------------------------------------------------------------------------------


def test_cancel_removes_that_opt_only() -> None:
    first = make_create_opt(opt_id=OptId("opt-1"))
    second = make_create_opt(opt_id=OptId("opt-2"))
    assert opts.cancel([first, second], make_cancel_opt(opt_id=OptId("opt-1"))) == (second,)


@pytest.mark.parametrize(
    "cancel",
    [
        pytest.param(make_cancel_opt(opt_id=OptId("nope")), id="unknown-opt-id"),
        pytest.param(make_cancel_opt(ven_id=OTHER_VEN), id="another-vens-opt"),
    ],
)
def test_cancel_of_an_unknown_opt_is_invalid_id(cancel: CancelOpt) -> None:
    with pytest.raises(InvalidId):
        opts.cancel([make_create_opt()], cancel)
