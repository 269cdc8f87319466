"""The VEN's protocol session: one pure state machine over all five 2.0b services.

Registration (query, create, re-registration, cancellation by either side), polling, the event
schedule (`ven.schedule`), opt-outs, and reports (`ven.reporting`). No I/O, clock or randomness:
`receive(message, now)`, `handle_timer(now)`, `record_reading(...)` and `opt_out(...)` go in;
`next_request(now)`, `reply_to_push()`, `next_action()` and `timer()` come out.

`state` is a frozen value replaced on every change; it holds everything that must survive a
restart (registration, events and opt decisions, pending reports, buffered readings, queued
messages). Anything the VEN acknowledges is in `state` when `receive` returns, and
`next_request` does not change it, so a runner that saves `state` at the top of its loop never
loses what it acknowledged; at worst a message goes out twice (same requestID) after a crash.

Readings (README.md, "our readings"):
- A VTN-initiated payload that arrives while no oadrPoll/oadrRequestEvent is in flight was
  pushed: its answer is `reply_to_push()`; otherwise it was pulled and its answer is queued,
  and the VEN polls again at once (G1_4015: drain the VTN's queue).
- Messages go out oldest first, one at a time; a refused one (non-200 answer) is dropped with
  `last_error` set, an undelivered one stays first in line behind an exponential backoff.
- The VTN cancelling our registration ends its events and report requests; a 463 answer to a
  poll means the VTN lost us: we re-register keeping venID and schedule.
- Each (re-)registration re-sends our METADATA reports and asks for events (oadrRequestEvent).
- An oadrRequestReregistration that arrived by poll is answered with an oadrResponse (as
  OpenLEADR's VEN does) before the new CreatePartyRegistration.
- A DistributeEvent from another vtnID than the one we registered with is refused whole (452).
- A VTN answering a request with an empty body: the runner passes an oadrResponse 200.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from oadr import exchanges, reports
from oadr.enums import OptReason, OptType, ResponseCode
from oadr.errors import InvalidData, InvalidId, NotRegistered, OadrError
from oadr.model import (
    CanceledPartyRegistration,
    CanceledReport,
    CancelPartyRegistration,
    CancelReport,
    CreatedEvent,
    CreatedOpt,
    CreatedPartyRegistration,
    CreatedReport,
    CreateOpt,
    CreatePartyRegistration,
    CreateReport,
    DistributeEvent,
    EiResponse,
    Event,
    EventId,
    OptId,
    Payload,
    Poll,
    QueryRegistration,
    RegisteredReport,
    RegisterReport,
    Report,
    ReportRequest,
    ReportRequestId,
    RequestEvent,
    RequestId,
    RequestReregistration,
    ResourceStatus,
    Response,
    RId,
    Target,
    UpdatedReport,
    UpdateReport,
    VenId,
    VtnId,
)
from ven import outbox, reporting, schedule
from ven.model import Decision
from ven.reporting import PendingReport, Reading
from ven.schedule import EventRecord
from ven.state import (
    SKEW_LIMIT,
    Action,
    ApplySignals,
    DecisionMade,
    EventLine,
    OptRecord,
    Phase,
    Retry,
    SessionConfig,
    SessionState,
    SessionStatus,
)

__all__ = [
    "SKEW_LIMIT",
    "Action",
    "ApplySignals",
    "DecisionMade",
    "EventLine",
    "OptRecord",
    "Phase",
    "Retry",
    "Session",
    "SessionConfig",
    "SessionState",
    "SessionStatus",
]

# Where a payload takes registration, by the phase it arrives in; an unlisted pair is refused.
_NEXT: dict[tuple[Phase, type[Payload]], Phase] = {
    (Phase.QUERYING, CreatedPartyRegistration): Phase.REGISTERING,
    (Phase.REGISTERING, CreatedPartyRegistration): Phase.REGISTERED,
    (Phase.CANCELLING, CanceledPartyRegistration): Phase.CANCELLED,
    (Phase.REGISTERED, RequestReregistration): Phase.REGISTERING,
    (Phase.REGISTERED, CancelPartyRegistration): Phase.QUERYING,
    **{
        (Phase.REGISTERED, t): Phase.REGISTERED
        for t in (DistributeEvent, RegisterReport, CreateReport, CancelReport, UpdateReport)
    },
}

_OK = int(ResponseCode.OK)


def _code(payload: Payload) -> tuple[int, str]:
    response = getattr(payload, "response", None)
    if not isinstance(response, EiResponse):
        return _OK, ""
    return response.code, response.description or ""


class Session:
    """One VEN's session with one VTN; see the module docstring."""

    def __init__(
        self,
        config: SessionConfig,
        policy: Callable[[Event, datetime], Decision],
        state: SessionState | None = None,
    ) -> None:
        self.config = config
        self.state = state if state is not None else SessionState(ven_id=config.ven_id)
        self._policy = policy
        self._offered = reporting.offered_rids(config.resources)
        self._actions: deque[Action] = deque()
        self._in_flight: Payload | None = None
        self._push_reply: Payload | None = None
        self._now: datetime | None = None
        if state is not None:
            # After a restart the devices hear the schedule again (applying is idempotent).
            self._actions.append(ApplySignals(state.signals))

    # --- outputs ----------------------------------------------------------------------------------

    def next_request(self, now: datetime) -> Payload | None:
        """The next message to POST to the VTN, or None; does not change `state`."""
        self._now = now
        self._in_flight = self._choose_request(now)
        return self._in_flight

    def reply_to_push(self) -> Payload | None:
        """The answer to the VTN-initiated payload `receive` just took by push, if any."""
        return self._push_reply

    def next_action(self) -> Action | None:
        return self._actions.popleft() if self._actions else None

    def timer(self) -> datetime | None:
        """When `handle_timer` (or `next_request`) has something to do next."""
        s = self.state
        sending: list[datetime | None] = []  # when next_request may have something to send
        if s.phase in (Phase.QUERYING, Phase.REGISTERING):
            sending.append(s.register_at or s.retry_at)
        elif self._polling():
            sending.append(s.next_poll)
        if s.outbox:
            sending.append(s.retry_at)
        if s.retry_at is not None:  # nothing goes out before the backoff is over
            sending = [max(m, s.retry_at) for m in sending if m is not None]
        moments = [
            *sending,
            reporting.next_due(s.reports),
            schedule.next_change(s.events, self._now),
        ]
        return min((m for m in moments if m is not None), default=None)

    def status(self) -> SessionStatus:
        s, now = self.state, self._now or self.state.last_contact
        return SessionStatus(
            phase=s.phase,
            ven_id=s.ven_id,
            vtn_id=s.vtn_id,
            registration_id=s.registration_id,
            poll_interval=self._poll_interval(),
            events=tuple(self._event_line(r, now) for r in s.events),
            signals=s.signals,
            opts=s.opts,
            pending_reports=tuple(p.request_id for p in s.reports),
            buffered_readings=len(s.readings),
            dropped_readings=s.dropped_readings,
            queued=tuple(q.kind for q in s.outbox),
            dropped_reports=s.dropped_reports,
            last_contact=s.last_contact,
            clock_skew=s.clock_skew,
            clock_skew_flagged=s.clock_skew is not None and abs(s.clock_skew) > SKEW_LIMIT,
            retry_at=s.retry_at,
            last_error=s.last_error,
        )

    # --- inputs -----------------------------------------------------------------------------------

    def receive(
        self,
        message: Payload,
        now: datetime,
        draw: float = 0.5,
        vtn_time: datetime | None = None,
    ) -> None:
        """A reply to our last request, or a payload the VTN initiated (by poll or push).

        `draw` in [0, 1) randomizes events this message brings; `vtn_time` is the VTN's clock
        (HTTP Date header) when the runner knows it.
        """
        self._now = now
        self._push_reply = None
        request, self._in_flight = self._in_flight, None
        skew = self.state.clock_skew if vtn_time is None else vtn_time - now
        self._set(last_contact=now, clock_skew=skew, failures=0, retry_at=None)
        if request is not None and (
            exchanges.is_reply_to(request, message)
            or isinstance(message, Response)
            or isinstance(request, Poll)  # whatever answers a poll is its reply
        ):
            self._on_reply(request, message, now, draw)
        else:
            answers = self._on_initiated(message, now, draw)
            self._push_reply = answers[0] if answers else None
            self._enqueue(*answers[1:])
        self._refresh(now)

    def failed(self, request: Payload, now: datetime, draw: float = 0.5) -> None:
        """`request` was not delivered: it stays first in line, behind a growing backoff."""
        self._in_flight = None
        failures = self.state.failures + 1
        self._set(
            failures=failures,
            retry_at=now + self.config.retry.delay(failures, draw),
            last_error=f"{type(request).__name__} not delivered ({failures} in a row)",
        )

    def handle_timer(self, now: datetime) -> None:
        """Time passed: reports fall due, signals start, change and end, old events go."""
        self._now = now
        self._send_due_reports(now)
        events = schedule.forget_finished(self.state.events, now)
        known = {r.event_id for r in events}
        self._set(
            events=events,
            opts=tuple(o for o in self.state.opts if o.opt.event_id in known),
            readings=reporting.keep_readings(self.state.readings, self.state.reports),
        )
        self._refresh(now)

    def record_reading(self, r_id: str, value: float | ResourceStatus, at: datetime) -> None:
        """Telemetry from a device, kept until the reports that want it have gone out.

        Readings of data points we did not register are ignored.
        """
        if r_id not in self._offered:
            return
        readings = [*self.state.readings, Reading(r_id=RId(r_id), value=value, at=at)]
        if len(readings) > 1 and readings[-2].at > at:
            readings.sort(key=lambda r: r.at)  # stable: equal times keep arrival order
        excess = max(0, len(readings) - self.config.max_readings)
        self._set(
            readings=tuple(readings[excess:]),
            dropped_readings=self.state.dropped_readings + excess,
        )

    def opt_out(self, event_id: EventId, now: datetime, reason: str) -> None:
        """Manual override: the event stops driving devices and the VTN gets a CreateOpt."""
        ven_id = self.state.ven_id
        if ven_id is None:
            raise ValueError("not registered: there is no venID to opt out with")
        events = schedule.opt_out(self.state.events, event_id, reason)
        record = next(r for r in events if r.event_id == event_id)
        opt = CreateOpt(
            request_id=self._new_request_id(),
            opt_id=OptId(f"opt-{self._serial()}"),
            opt_type=OptType.OPT_OUT,
            opt_reason=OptReason.OVERRIDE_STATUS,
            ven_id=ven_id,
            created=now,
            target=Target(ven_ids=(ven_id,)),
            event_id=event_id,
            modification_number=record.event.modification_number,
        )
        self._set(events=events, opts=(*self.state.opts, OptRecord(opt=opt)))
        self._enqueue(opt)
        assert record.decision is not None
        self._actions.append(
            DecisionMade(event_id, record.event.modification_number, record.decision)
        )
        self._refresh(now)

    def cancel_registration(self) -> None:
        """Leave the VTN (N1_0030): send CancelPartyRegistration; stay away until `register()`."""
        s = self.state
        if s.phase != Phase.REGISTERED or s.registration_id is None:
            raise ValueError(f"cannot cancel a registration while {s.phase}")
        self._enqueue(
            CancelPartyRegistration(
                request_id=self._new_request_id(),
                registration_id=s.registration_id,
                ven_id=s.ven_id,
            )
        )
        self._set(phase=Phase.CANCELLING)

    def register(self) -> None:
        """Register again after we cancelled our registration."""
        if self.state.phase == Phase.CANCELLED:
            self._set(phase=Phase.QUERYING, register_at=None, refusals=0)

    # --- what goes out ----------------------------------------------------------------------------

    def _choose_request(self, now: datetime) -> Payload | None:
        s = self.state
        if s.retry_at is not None and now < s.retry_at:
            return None
        if s.outbox:
            return s.outbox[0].payload
        if s.phase in (Phase.QUERYING, Phase.REGISTERING):
            if s.register_at is not None and now < s.register_at:
                return None
            if s.phase == Phase.QUERYING:
                return QueryRegistration(request_id=self._request_id())
            return self._create_party_registration()
        if self._polling() and s.next_poll is not None and s.next_poll <= now:
            assert s.ven_id is not None
            return Poll(ven_id=s.ven_id)
        return None

    def _create_party_registration(self) -> CreatePartyRegistration:
        c, s = self.config, self.state
        return CreatePartyRegistration(
            request_id=self._request_id(),
            report_only=c.report_only,
            xml_signature=c.xml_signature,
            transport_address=None if c.http_pull_model else c.transport_address,
            ven_name=c.ven_name,
            http_pull_model=c.http_pull_model,
            registration_id=s.registration_id,
            ven_id=s.ven_id,
        )

    def _polling(self) -> bool:
        return self.state.phase == Phase.REGISTERED and self.config.http_pull_model

    def _poll_interval(self) -> timedelta:
        return self.state.requested_poll_interval or self.config.poll_interval

    def _request_id(self) -> RequestId:
        return RequestId(f"ven-{self.state.serial}")

    def _serial(self) -> int:
        serial = self.state.serial
        self._set(serial=serial + 1)
        return serial

    def _new_request_id(self) -> RequestId:
        return RequestId(f"ven-{self._serial()}")

    def _enqueue(self, *payloads: Payload) -> None:
        queue = [*self.state.outbox, *(outbox.wrap(p) for p in payloads)]
        dropped = 0
        while sum(q.kind == "UpdateReport" for q in queue) > self.config.max_queued_reports:
            # a long outage: give up the oldest data report first (not the one in flight)
            oldest = next(i for i, q in enumerate(queue) if q.kind == "UpdateReport")
            del queue[oldest]
            dropped += 1
        self._set(outbox=tuple(queue), dropped_reports=self.state.dropped_reports + dropped)

    def _pop(self, request: Payload) -> None:
        if self.state.outbox and self.state.outbox[0].payload == request:
            self._set(outbox=self.state.outbox[1:])

    def _ven_id(self) -> VenId:
        return self.state.ven_id or VenId("")

    def _register_report(self, now: datetime, report_request_id: str | None) -> RegisterReport:
        return RegisterReport(
            request_id=self._new_request_id(),
            reports=reporting.metadata(self.config.resources, now),
            ven_id=self._ven_id(),
            report_request_id=ReportRequestId(report_request_id) if report_request_id else None,
        )

    def _send_due_reports(self, now: datetime) -> None:
        still: list[PendingReport] = []
        for pending in self.state.reports:
            for due_at in reporting.due(pending, now):
                report = reporting.build(pending, self.state.readings, due_at, now, self._serial())
                self._enqueue(self._update_report(report))
                pending = reporting.advance(pending, due_at)
            if not reporting.finished(pending):
                still.append(pending)
        self._set(reports=tuple(still))

    def _update_report(self, report: Report) -> UpdateReport:
        return UpdateReport(
            request_id=self._new_request_id(), reports=(report,), ven_id=self._ven_id()
        )

    # --- replies to our requests ------------------------------------------------------------------

    def _on_reply(self, request: Payload, reply: Payload, now: datetime, draw: float) -> None:
        if isinstance(request, Poll):
            self._on_poll_reply(reply, now, draw)
            return
        if isinstance(request, QueryRegistration | CreatePartyRegistration):
            self._on_registration_reply(reply, now, draw)
            return
        self._pop(request)
        code, description = _code(reply)
        if isinstance(reply, CreatedOpt):
            self._set(
                opts=tuple(
                    dataclasses.replace(o, answer_code=code) if o.opt.opt_id == reply.opt_id else o
                    for o in self.state.opts
                )
            )
        if isinstance(request, CancelPartyRegistration):
            self._on_cancelled(code, description, now)
            return
        if code != _OK:
            self._set(last_error=f"{type(request).__name__} answered {code} {description}".strip())
            return
        if isinstance(reply, DistributeEvent):  # our RequestEvent
            self._enqueue(*self._on_initiated(reply, now, draw))
        elif isinstance(reply, RegisteredReport) and reply.report_requests:  # R1_3060
            self._enqueue(*self._accept_reports(reply.report_requests, RequestId(""), now))
        elif isinstance(reply, UpdatedReport) and reply.cancel_report is not None:  # R1_3050
            self._enqueue(*self._on_cancel_report(reply.cancel_report, now))

    def _on_poll_reply(self, reply: Payload, now: datetime, draw: float) -> None:
        if type(reply) not in exchanges.POLL_REPLIES:
            self._set(
                last_error=f"poll answered with {type(reply).__name__}",
                next_poll=now + self._poll_interval(),
            )
            return
        if not isinstance(reply, Response):
            self._enqueue(*self._on_initiated(reply, now, draw))
            self._set(next_poll=now)  # G1_4015: more may be queued at the VTN
            return
        code, description = _code(reply)
        if code == NotRegistered.code:  # the VTN lost us: register again, keeping our ids
            self._set(phase=Phase.REGISTERING, last_error=f"poll answered {code} {description}")
        elif code != _OK:
            self._set(last_error=f"poll answered {code} {description}".strip())
        self._set(next_poll=now + self._poll_interval())

    def _on_registration_reply(self, reply: Payload, now: datetime, draw: float) -> None:
        s = self.state
        next_phase = _NEXT.get((s.phase, type(reply)))
        if not isinstance(reply, CreatedPartyRegistration) or next_phase is None:
            self._set(last_error=f"unexpected {type(reply).__name__} while {s.phase}")
            return
        code, description = _code(reply)
        if (
            code == _OK
            and next_phase == Phase.REGISTERED
            and not (reply.ven_id and reply.registration_id)
        ):
            code, description = InvalidData.code, "no venID or registrationID"
        if code != _OK:  # e.g. 463 awaiting approval: try again later
            refusals = s.refusals + 1
            self._set(
                refusals=refusals,
                register_at=now + self.config.retry.delay(refusals, draw),
                last_error=f"registration answered {code} {description}".strip(),
            )
            return
        self._serial()
        if next_phase == Phase.REGISTERING:
            self._set(phase=next_phase, vtn_id=reply.vtn_id)
            return
        self._set(
            phase=next_phase,
            vtn_id=reply.vtn_id,
            ven_id=reply.ven_id,
            registration_id=reply.registration_id,
            requested_poll_interval=reply.requested_poll_freq,
            refusals=0,
            register_at=None,
            next_poll=now if self.config.http_pull_model else None,
            last_error=None,
        )
        if self.config.resources:  # N1_0020: our METADATA reports
            self._enqueue(self._register_report(now, None))
        assert reply.ven_id is not None
        self._enqueue(RequestEvent(request_id=self._new_request_id(), ven_id=reply.ven_id))

    def _on_cancelled(self, code: int, description: str, now: datetime) -> None:
        if code != _OK:
            self._set(phase=Phase.REGISTERED, last_error=f"cancel answered {code} {description}")
            return
        self._forget_registration(Phase.CANCELLED, now)

    def _forget_registration(self, phase: Phase, now: datetime) -> None:
        self._set(
            phase=phase,
            ven_id=self.config.ven_id,
            registration_id=None,
            requested_poll_interval=None,
            events=(),
            opts=(),
            reports=(),
            outbox=(),
            next_poll=None,
        )
        self._refresh(now)

    # --- what the VTN initiates (by poll or push) -------------------------------------------------

    def _on_initiated(self, message: Payload, now: datetime, draw: float) -> list[Payload]:
        """The answers to a VTN-initiated payload, the direct answer first."""
        s = self.state
        if (s.phase, type(message)) not in _NEXT:
            self._set(last_error=f"unexpected {type(message).__name__} while {s.phase}")
            if isinstance(message, Response) or type(message) not in exchanges.POLL_REPLIES:
                return []  # a reply nobody waits for: nothing to answer
            return [self._error(message, NotRegistered(f"not registered ({s.phase})"))]
        if isinstance(message, DistributeEvent):
            return self._on_distribute(message, now, draw)
        if isinstance(message, RequestReregistration):
            self._set(phase=Phase.REGISTERING)
            return [Response(response=exchanges.ok_response(RequestId("")), ven_id=s.ven_id)]
        if isinstance(message, CancelPartyRegistration):
            return self._on_cancel_party_registration(message, now, draw)
        if isinstance(message, RegisterReport):  # the VTN's own METADATA: we ask for none
            return [RegisteredReport(response=self._ok(message.request_id), ven_id=s.ven_id)]
        if isinstance(message, CreateReport):
            return self._accept_reports(message.report_requests, message.request_id, now)
        if isinstance(message, CancelReport):
            return self._on_cancel_report(message, now)
        return [self._error(message, InvalidId("we requested no reports from the VTN"))]

    def _ok(self, request_id: RequestId) -> EiResponse:
        return exchanges.ok_response(request_id)

    def _error(self, message: Payload, err: OadrError) -> Payload:
        return exchanges.error_reply(
            message, err, vtn_id=self.state.vtn_id or VtnId(""), ven_id=self.state.ven_id
        )

    def _on_distribute(self, message: DistributeEvent, now: datetime, draw: float) -> list[Payload]:
        s = self.state
        if s.vtn_id is not None and message.vtn_id != s.vtn_id:  # A_E1_0390
            return [self._error(message, InvalidId(f"vtnID {message.vtn_id!r} is not ours"))]
        identity = schedule.Identity(
            ven_id=self._ven_id(),
            resource_ids=tuple(r.resource_id for r in self.config.resources),
            group_ids=self.config.group_ids,
            party_ids=self.config.party_ids,
            market_contexts=self.config.market_contexts,
        )
        outcome = schedule.distribute(s.events, message, identity, self._policy, now, draw)
        self._set(events=outcome.records)
        self._actions.extend(DecisionMade(*d) for d in outcome.decisions)
        if not outcome.responses:  # E1_1010, responseRequired=never: no answer at all
            return []
        created = CreatedEvent(
            response=self._ok(message.request_id),
            ven_id=self._ven_id(),
            event_responses=outcome.responses,
        )
        return [created]

    def _on_cancel_party_registration(
        self, message: CancelPartyRegistration, now: datetime, draw: float
    ) -> list[Payload]:
        if message.registration_id != self.state.registration_id:
            return [self._error(message, InvalidId("registrationID is not ours"))]
        answer = CanceledPartyRegistration(
            response=self._ok(message.request_id),
            registration_id=message.registration_id,
            ven_id=self.state.ven_id,
        )
        self._forget_registration(Phase.QUERYING, now)
        self._set(register_at=now + self.config.retry.delay(1, draw))
        return [answer]

    def _accept_reports(
        self, requests: tuple[ReportRequest, ...], request_id: RequestId, now: datetime
    ) -> list[Payload]:
        try:
            pending = reporting.accept(requests, self.state.reports, self.config.resources, now)
        except OadrError as err:
            response = EiResponse(
                code=int(err.code), request_id=request_id, description=err.message
            )
        else:
            self._set(reports=pending)
            response = self._ok(request_id)
        created = CreatedReport(
            response=response,
            pending_reports=tuple(p.request_id for p in self.state.reports),
            ven_id=self._ven_id(),
        )
        metadata = [  # R1_3170: a METADATA request is answered with our RegisterReport
            self._register_report(now, r.report_request_id)
            for r in requests
            if response.code == _OK and reports.is_metadata_request(r)
        ]
        return [created, *metadata]

    def _on_cancel_report(self, message: CancelReport, now: datetime) -> list[Payload]:
        try:
            kept, gone = reporting.cancel(self.state.reports, message)
        except OadrError as err:
            return [self._error(message, err)]
        finals = []
        if message.report_to_follow:  # R1_3045: one last report of what was gathered
            finals = [
                self._update_report(
                    reporting.build(p, self.state.readings, now, now, self._serial())
                )
                for p in gone
            ]
        self._set(reports=kept)
        canceled = CanceledReport(
            response=self._ok(message.request_id),
            pending_reports=tuple(p.request_id for p in kept),
            ven_id=self.state.ven_id,
        )
        return [canceled, *finals]

    # --- bookkeeping ------------------------------------------------------------------------------

    def _set(self, **changes: Any) -> None:
        self.state = dataclasses.replace(self.state, **changes)

    def _refresh(self, now: datetime) -> None:
        signals = schedule.signals_in_force(self.state.events, now)
        if signals != self.state.signals:
            self._set(signals=signals)
            self._actions.append(ApplySignals(signals))

    def _event_line(self, record: EventRecord, now: datetime | None) -> EventLine:
        decision = record.decision
        return EventLine(
            event_id=record.event_id,
            modification_number=record.event.modification_number,
            status=record.event.status if now is None else schedule.status_of(record, now),
            start_at=record.start_at,
            end_at=record.end_at(),
            opt=decision.opt if decision else None,
            reason=record.excluded or (decision.reason if decision else None),
            drives=record.drives(),
            test_event=bool(record.event.test_event),
        )
