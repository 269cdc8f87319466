"""Opt rules of OpenADR 2.0b (EiOpt): what a CreateOpt may say and which opt decides an event.

An opt is either a schedule (availability windows in one marketContext, optIn or optOut) or
tied to one event (qualifiedEventID = eventID + modificationNumber, and no marketContext: the
certification validator checks "no marketContext when eventID present").

Readings (see README.md):
- A window of duration 0 is open-ended (P1_2015 "Open-Ended Opt Schedule").
- A schedule applies to an event of its own marketContext whose active period its window
  overlaps; an event opt applies to the modification it names and every later one (until the
  VEN says otherwise), never to an earlier one.
- Precedence: an event opt beats any schedule; within each kind the later createdDateTime wins,
  and on equal createdDateTime the one received later (later in the sequence).
- Opts created after `now` are not in force yet (a VEN clock running ahead cannot pre-date).
- An opt whose target lists resourceIDs covers only those resources.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from oadr.enums import OptType
from oadr.errors import InvalidData, InvalidId
from oadr.model import CancelOpt, CreateOpt, Event, TimeWindow, VenId

_ZERO = timedelta(0)


def validate(create_opt: CreateOpt) -> None:
    """Raise InvalidData/InvalidId for a CreateOpt that is neither kind of opt cleanly."""
    opt = create_opt
    if not opt.opt_id:
        raise InvalidId("optID is missing")
    if not opt.ven_id:
        raise InvalidId("venID is missing")
    if opt.event_id is not None:
        if opt.market_context is not None:
            raise InvalidData("an opt naming an event must not carry a marketContext")
        if opt.availability:
            raise InvalidData("an opt naming an event must not carry availability windows")
        if opt.modification_number is None or opt.modification_number < 0:
            raise InvalidData("an opt naming an event needs its modificationNumber (>= 0)")
        if not opt.event_id:
            raise InvalidId("qualifiedEventID has an empty eventID")
        return
    if opt.modification_number is not None:
        raise InvalidData("a modificationNumber without an eventID")
    if not opt.market_context:
        raise InvalidData("an opt schedule needs a marketContext")
    if not opt.availability:
        raise InvalidData("an opt schedule needs at least one availability window")
    for window in opt.availability:
        if window.duration < _ZERO:
            raise InvalidData("an availability window has a negative duration")


def _overlaps(window: TimeWindow, event: Event) -> bool:
    # Both half-open; duration 0 is open-ended on either side.
    period = event.active_period
    window_open = window.duration == _ZERO
    event_open = period.duration == _ZERO
    starts_before_event_ends = event_open or window.start < period.start + period.duration
    ends_after_event_starts = window_open or period.start < window.start + window.duration
    return starts_before_event_ends and ends_after_event_starts


def _covers_resource(opt: CreateOpt, resource_id: str | None) -> bool:
    if not opt.target.resource_ids:
        return True
    return resource_id is not None and resource_id in opt.target.resource_ids


def _applies_to(opt: CreateOpt, event: Event) -> bool:
    if opt.event_id is not None:
        return (
            opt.event_id == event.event_id
            and opt.modification_number is not None
            and opt.modification_number <= event.modification_number
        )
    return opt.market_context == event.market_context and any(
        _overlaps(window, event) for window in opt.availability or ()
    )


def applicable(
    opts: Sequence[CreateOpt],
    event: Event,
    ven_id: VenId,
    now: datetime,
    resource_id: str | None = None,
) -> CreateOpt | None:
    """The opt that decides this VEN's (or one of its resources') participation, if any."""
    best: CreateOpt | None = None
    best_key: tuple[bool, datetime] | None = None
    for opt in opts:
        if opt.ven_id != ven_id or opt.created > now:
            continue
        if not _covers_resource(opt, resource_id) or not _applies_to(opt, event):
            continue
        key = (opt.event_id is not None, opt.created)
        if best_key is None or key >= best_key:  # >=: the later of equals wins
            best, best_key = opt, key
    return best


def opted_out(
    opts: Sequence[CreateOpt],
    event: Event,
    ven_id: VenId,
    now: datetime,
    resource_id: str | None = None,
) -> OptType | None:
    """optIn / optOut of the opt that applies to this event, or None when no opt does."""
    opt = applicable(opts, event, ven_id, now, resource_id)
    return None if opt is None else opt.opt_type


def cancel(opts: Sequence[CreateOpt], cancel_opt: CancelOpt) -> tuple[CreateOpt, ...]:
    """The opts left after a CancelOpt; 452 InvalidId when that VEN has no such optID."""
    remaining = tuple(
        o for o in opts if not (o.opt_id == cancel_opt.opt_id and o.ven_id == cancel_opt.ven_id)
    )
    if len(remaining) == len(opts):
        raise InvalidId(f"optID {cancel_opt.opt_id!r} is not known for this VEN")
    return remaining
