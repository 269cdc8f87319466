"""The VEN's event schedule: the events it knows, what it answered, which signals are in force.

Pure (EiEvent; OPENADR-2.0b-NOTES.md "Events"): `distribute` folds one oadrDistributeEvent into
the records and says what to answer; `signals_in_force` and `next_change` read the records at a
moment. The rules themselves live in `oadr.events`; this module applies them for one VEN.

Our readings (README.md, "our readings"):
- Every DistributeEvent is the full list: a known event missing from it is cancelled (implicit
  cancellation) and stays cancelled; listing it again as not cancelled is 451.
- responseRequired=always: one eventResponse per new or modified event, also for a
  cancellation; a version already answered is never answered again with 200. A stale version
  (lower modificationNumber) is answered 450 each time it is sent, and the newer one stays.
- An event this VEN will not run is still answered (200 optOut) so the VTN need not resend it:
  a marketContext outside the configured ones ("a VEN ignores contexts it does not know").
  An event-level target naming other VENs/resources/groups/parties is answered 462 optOut; an
  invalid event (e.g. a signal type its name does not allow) with its code (454, 460) optOut.
- A test event (testEvent true) is answered as the policy says but never drives devices.
- Randomization: each modification brings its own draw; a modification that keeps dtstart and
  startafter keeps the effective start already chosen, so a running event never restarts.
  A cancelled event that has started stops at `oadr.events.effective_stop` (randomized over
  startafter from when the VEN learns of it); one that has not started never starts.
- Overlapping events: per signal name and target the higher priority wins (1 highest, 0 or
  absent lowest), then the earlier effective start, then the lower eventID.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from oadr import events
from oadr.enums import EventStatus, OptType, ResponseCode, ResponseRequired
from oadr.errors import InvalidId, OadrError
from oadr.model import (
    DistributeEvent,
    Event,
    EventId,
    EventResponse,
    EventSignal,
    RequestId,
    VenId,
)
from ven.model import ActiveSignal, Decision

Policy = Callable[[Event, datetime], Decision]

_ZERO = timedelta(0)
# How long an event the VTN stopped listing is remembered once over, so that the VTN listing
# it again (A_E1_0370) finds it cancelled rather than new.
FORGET_AFTER = timedelta(days=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """Who this VEN is, for marketContext and eiTarget matching."""

    ven_id: VenId
    resource_ids: tuple[str, ...] = ()
    group_ids: tuple[str, ...] = ()
    party_ids: tuple[str, ...] = ()
    market_contexts: frozenset[str] | None = None  # None: every marketContext is ours


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRecord:
    """One event as this VEN runs it; survives restarts as part of the session state."""

    event: Event  # the last version accepted (status cancelled once cancelled, even implicitly)
    draw: float  # the randomization draw of the version that set `start_at`
    start_at: datetime  # effective (randomized) start
    stop_at: datetime | None = None  # a cancelled event drives devices until then
    decision: Decision | None = None  # the household's answer for this modification
    answered: int | None = None  # modificationNumber last answered with a CreatedEvent
    excluded: str | None = None  # why it never drives devices (test event, context, target...)
    overridden: bool = False  # a manual opt-out: later modifications stay opted out
    listed: bool = True  # in the VTN's latest list (unlisted and over: forgotten)

    @property
    def event_id(self) -> EventId:
        return self.event.event_id

    @property
    def cancelled(self) -> bool:
        return self.event.status == EventStatus.CANCELLED

    def drives(self) -> bool:
        """Whether this event may put signals in force at all (opted in, not excluded)."""
        return (
            self.excluded is None
            and self.decision is not None
            and self.decision.opt == OptType.OPT_IN
        )

    def end_at(self) -> datetime | None:
        """When it stops driving devices: its randomized end or its stop; None: open-ended."""
        duration = self.event.active_period.duration
        end = None if duration == _ZERO else self.start_at + duration
        if self.stop_at is None:
            return end
        return self.stop_at if end is None else min(end, self.stop_at)

    def is_over(self, now: datetime) -> bool:
        end = self.end_at()
        return end is not None and end <= now

    def forgettable(self, now: datetime) -> bool:
        end = self.end_at()
        return not self.listed and end is not None and end + FORGET_AFTER <= now


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What one DistributeEvent changed: the new records, what to answer, what was decided."""

    records: tuple[EventRecord, ...]
    responses: tuple[EventResponse, ...] = ()
    decisions: tuple[tuple[EventId, int, Decision], ...] = ()


# --- receiving a DistributeEvent ------------------------------------------------------------------


def _exclusion(event: Event, identity: Identity) -> tuple[ResponseCode, str] | None:
    contexts = identity.market_contexts
    if contexts is not None and event.market_context not in contexts:
        return ResponseCode.OK, f"marketContext {event.market_context!r} is not ours"
    if not events.matches_target(
        event.target, identity.ven_id, identity.resource_ids, identity.group_ids, identity.party_ids
    ):
        return ResponseCode.TARGET_MISMATCH, "eiTarget names other VENs or resources"
    return None


def _start(previous: EventRecord | None, event: Event, draw: float) -> tuple[float, datetime]:
    if previous is not None:
        old, new = previous.event.active_period, event.active_period
        if (old.start, old.start_after) == (new.start, new.start_after):
            return previous.draw, previous.start_at
    return draw, events.effective_start(event, draw)


def _stop(record: EventRecord, now: datetime, draw: float) -> datetime:
    if record.start_at > now:
        return now  # not started: it never starts
    return events.effective_stop(record.event, now, draw)


class _Fold:
    """Accumulates one DistributeEvent's effect; `outcome()` freezes it."""

    def __init__(self, records: Sequence[EventRecord], request_id: RequestId) -> None:
        self.known = {r.event_id: r for r in records}
        self.request_id = request_id
        self.listed: list[EventRecord] = []
        self.seen: set[EventId] = set()
        self.responses: list[EventResponse] = []
        self.decisions: list[tuple[EventId, int, Decision]] = []

    def answer(self, event: Event, code: int, opt: OptType, description: str | None) -> None:
        if event.response_required != ResponseRequired.ALWAYS:
            return
        self.responses.append(
            EventResponse(
                code=int(code),
                request_id=self.request_id,
                event_id=event.event_id,
                modification_number=event.modification_number,
                opt_type=opt,
                description=description,
            )
        )

    def keep(self, record: EventRecord) -> None:
        self.listed.append(dataclasses.replace(record, listed=True))
        self.seen.add(record.event_id)

    def outcome(self, now: datetime, draw: float) -> Outcome:
        unlisted = []
        for record in self.known.values():
            if record.event_id in self.seen:
                continue
            if not record.cancelled:  # implicit cancellation: the VTN no longer lists it
                record = dataclasses.replace(
                    record,
                    event=dataclasses.replace(record.event, status=EventStatus.CANCELLED),
                    stop_at=_stop(record, now, draw),
                )
            record = dataclasses.replace(record, listed=False)
            if not record.forgettable(now):
                unlisted.append(record)
        return Outcome(
            records=(*self.listed, *unlisted),
            responses=tuple(self.responses),
            decisions=tuple(self.decisions),
        )


def _cancelled(
    fold: _Fold, previous: EventRecord | None, event: Event, now: datetime, draw: float
) -> None:
    opt = OptType.OPT_IN
    if previous is None:  # never seen: nothing to undo, and never an error (A_E1_0345)
        record = EventRecord(
            event=event,
            draw=draw,
            start_at=events.effective_start(event, draw),
            stop_at=now,
            excluded="cancelled before this VEN saw it",
        )
    else:
        if previous.decision is not None:
            opt = previous.decision.opt
        stop_at = previous.stop_at if previous.cancelled else _stop(previous, now, draw)
        record = dataclasses.replace(previous, event=event, stop_at=stop_at)
    if record.answered != event.modification_number:
        fold.answer(event, ResponseCode.OK, opt, "cancelled")
        if event.response_required == ResponseRequired.ALWAYS:
            record = dataclasses.replace(record, answered=event.modification_number)
    fold.keep(record)


def _new_version(
    fold: _Fold,
    previous: EventRecord | None,
    event: Event,
    identity: Identity,
    policy: Policy,
    now: datetime,
    draw: float,
) -> None:
    draw, start_at = _start(previous, event, draw)
    code: int = ResponseCode.OK
    excluded: str | None
    try:
        events.validate(event)
    except OadrError as err:
        code, excluded = int(err.code), f"refused ({int(err.code)}): {err.message}"
        decision = Decision(opt=OptType.OPT_OUT, reason=excluded)
    else:
        exclusion = _exclusion(event, identity)
        if exclusion is not None:
            code, excluded = int(exclusion[0]), exclusion[1]
            decision = Decision(opt=OptType.OPT_OUT, reason=excluded)
        else:
            excluded = "test event" if event.test_event else None
            if previous is not None and previous.overridden and previous.decision is not None:
                decision = previous.decision
            else:
                decision = policy(event, now)
    fold.decisions.append((event.event_id, event.modification_number, decision))
    fold.answer(event, code, decision.opt, decision.reason)
    answered = previous.answered if previous is not None else None
    if event.response_required == ResponseRequired.ALWAYS:
        answered = event.modification_number
    fold.keep(
        EventRecord(
            event=event,
            draw=draw,
            start_at=start_at,
            decision=decision,
            answered=answered,
            excluded=excluded,
            overridden=previous.overridden if previous is not None else False,
        )
    )


def distribute(
    records: Sequence[EventRecord],
    message: DistributeEvent,
    identity: Identity,
    policy: Policy,
    now: datetime,
    draw: float,
) -> Outcome:
    """Fold a DistributeEvent (the full list of pending and active events) into the records."""
    fold = _Fold(records, message.request_id)
    for event in message.events:
        if event.event_id in fold.seen:
            fold.answer(event, InvalidId.code, OptType.OPT_OUT, "eventID listed twice")
            continue
        previous = fold.known.get(event.event_id)
        try:
            change = events.check_modification(
                previous.event if previous is not None else None, event
            )
        except OadrError as err:  # 450 stale, 451 un-cancelled: the version we hold stays
            fold.answer(event, err.code, OptType.OPT_OUT, err.message)
            if previous is not None:
                fold.keep(previous)
            continue
        if change == events.Change.UNCHANGED and previous is not None:
            fold.keep(previous)  # same modification: what we run and answered stands
        elif change == events.Change.CANCELLED:
            _cancelled(fold, previous, event, now, draw)
        else:
            _new_version(fold, previous, event, identity, policy, now, draw)
    return fold.outcome(now, draw)


def opt_out(
    records: Sequence[EventRecord], event_id: EventId, reason: str
) -> tuple[EventRecord, ...]:
    """A manual opt-out: the event stops driving devices, now and in later modifications."""
    if not any(r.event_id == event_id for r in records):
        raise KeyError(f"no event {event_id!r} is known")
    decision = Decision(opt=OptType.OPT_OUT, reason=reason)
    return tuple(
        dataclasses.replace(r, decision=decision, overridden=True) if r.event_id == event_id else r
        for r in records
    )


def forget_finished(records: Iterable[EventRecord], now: datetime) -> tuple[EventRecord, ...]:
    """Drop events the VTN no longer lists a day after they ended (listed ones stay known)."""
    return tuple(r for r in records if not r.forgettable(now))


# --- signals in force -----------------------------------------------------------------------------


def _boundaries(record: EventRecord) -> list[datetime]:
    """Effective start, every interval end and the stop of one record, as instants."""
    moments = [record.start_at]
    for signal in record.event.signals:
        at = record.start_at
        for interval in signal.intervals:
            at += interval.duration
            if interval.duration != _ZERO:
                moments.append(at)
    end = record.end_at()
    if end is not None:
        moments.append(end)
    return moments


def _interval_until(record: EventRecord, signal: EventSignal, now: datetime) -> datetime | None:
    at = record.start_at
    for interval in signal.intervals:
        if interval.duration == _ZERO:
            return None
        at += interval.duration
        if now < at:
            return at
    return None


def _as_run(record: EventRecord) -> Event:
    # The event as this VEN runs it: randomized start, status left to time alone.
    period = dataclasses.replace(
        record.event.active_period, start=record.start_at, start_after=None
    )
    return dataclasses.replace(record.event, active_period=period, status=EventStatus.NONE)


def _signals_of(record: EventRecord, now: datetime) -> list[ActiveSignal]:
    if not record.drives() or (record.stop_at is not None and now >= record.stop_at):
        return []
    run = _as_run(record)
    found = []
    for signal in record.event.signals:
        interval = events.current_interval(signal, run, now)
        if interval is None:
            continue
        until = _interval_until(record, signal, now)
        if record.stop_at is not None:
            until = record.stop_at if until is None else min(until, record.stop_at)
        found.append(
            ActiveSignal(
                event_id=record.event_id,
                modification_number=record.event.modification_number,
                signal_name=signal.signal_name,
                signal_type=signal.signal_type,
                value=interval.value,
                item_base=signal.item_base,
                priority=record.event.priority,
                until=until,
                end_device_assets=signal.target.end_device_assets if signal.target else (),
                resource_ids=record.event.target.resource_ids,
            )
        )
    return found


def _rank(priority: int | None) -> float:
    return math.inf if not priority else float(priority)  # 1 highest; 0/absent lowest


def signals_in_force(records: Sequence[EventRecord], now: datetime) -> tuple[ActiveSignal, ...]:
    """The signals that drive devices at `now`: one winner per signal name and target."""
    starts = {r.event_id: r.start_at for r in records}
    winners: dict[tuple[object, ...], ActiveSignal] = {}
    candidates = [s for r in records for s in _signals_of(r, now)]
    candidates.sort(key=lambda s: (_rank(s.priority), starts[s.event_id], s.event_id))
    for signal in candidates:
        key = (signal.signal_name, signal.end_device_assets, signal.resource_ids)
        winners.setdefault(key, signal)
    return tuple(sorted(winners.values(), key=lambda s: (s.signal_name, s.event_id)))


def next_change(records: Sequence[EventRecord], after: datetime | None) -> datetime | None:
    """The first instant after `after` at which the signals in force may change."""
    moments = [
        m for r in records if r.drives() for m in _boundaries(r) if after is None or m > after
    ]
    return min(moments, default=None)


def status_of(record: EventRecord, now: datetime) -> EventStatus:
    """far / near / active / completed as this VEN runs the event (randomized); cancelled stays."""
    if record.cancelled:
        return EventStatus.CANCELLED
    return events.status(_as_run(record), now)
