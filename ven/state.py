"""The VEN session's values: its configuration, its persisted state, its actions and status.

Everything here is a frozen value; `SessionState` is what the runner saves (JSON through
`ven.jsonform`: dataclasses of `oadr.model` values, tuples, enums, datetimes).
`ven.session` re-exports all of it; the state machine itself lives there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from oadr.enums import EventStatus, OptType
from oadr.model import CreateOpt, EventId, RegistrationId, ReportRequestId, VenId, VtnId
from ven.model import ActiveSignal, Decision
from ven.outbox import Queued
from ven.reporting import PendingReport, Reading, ResourceSpec
from ven.schedule import EventRecord

SKEW_LIMIT = timedelta(seconds=30)  # a larger gap to the VTN's clock is flagged in status()


class Phase(StrEnum):
    """Where registration stands; what `next_request` sends when nothing is queued."""

    QUERYING = "querying"  # QueryRegistration
    REGISTERING = "registering"  # CreatePartyRegistration (again, keeping venID, if known)
    REGISTERED = "registered"  # Poll when due (pull)
    CANCELLING = "cancelling"  # our CancelPartyRegistration is on its way
    CANCELLED = "cancelled"  # we left; `register()` starts again


@dataclass(frozen=True, slots=True, kw_only=True)
class Retry:
    """Backoff after a failure: base * 2^(n-1), capped, half of it fixed and half drawn."""

    base: timedelta = timedelta(seconds=5)
    maximum: timedelta = timedelta(minutes=5)

    def delay(self, failures: int, draw: float) -> timedelta:
        full = min(self.maximum, self.base * (1 << min(max(failures, 1) - 1, 30)))
        return full / 2 + full * (draw / 2)  # jitter spreads a fleet's retries apart


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionConfig:
    ven_name: str
    http_pull_model: bool = True
    transport_address: str | None = None  # push: where the VTN posts to
    xml_signature: bool = False
    poll_interval: timedelta = timedelta(seconds=10)  # until the VTN requests another
    market_contexts: frozenset[str] | None = None  # None: accept all
    resources: tuple[ResourceSpec, ...] = ()
    report_only: bool = False
    retry: Retry = Retry()
    ven_id: VenId | None = None  # a pre-allocated venID (N1_0025)
    group_ids: tuple[str, ...] = ()
    party_ids: tuple[str, ...] = ()
    max_readings: int = 10_000  # buffered readings; the oldest are dropped beyond this
    max_queued_reports: int = 1_000  # UpdateReports held while the VTN is unreachable


@dataclass(frozen=True, slots=True, kw_only=True)
class OptRecord:
    """A manual opt-out we sent, and the VTN's answer code once it came."""

    opt: CreateOpt
    answer_code: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionState:
    """Everything that must survive a restart (JSON-friendly: see tests)."""

    phase: Phase = Phase.QUERYING
    vtn_id: VtnId | None = None
    ven_id: VenId | None = None
    registration_id: RegistrationId | None = None
    requested_poll_interval: timedelta | None = None  # oadrRequestedOadrPollFreq
    events: tuple[EventRecord, ...] = ()
    opts: tuple[OptRecord, ...] = ()
    reports: tuple[PendingReport, ...] = ()
    readings: tuple[Reading, ...] = ()
    outbox: tuple[Queued, ...] = ()
    signals: tuple[ActiveSignal, ...] = ()  # the set last applied to devices
    next_poll: datetime | None = None
    register_at: datetime | None = None  # registration waits until then after a refusal
    refusals: int = 0  # registration refusals in a row
    retry_at: datetime | None = None  # nothing is sent before then after a delivery failure
    failures: int = 0  # delivery failures in a row
    serial: int = 0  # numbers requestIDs, optIDs and reportIDs
    dropped_readings: int = 0
    dropped_reports: int = 0
    last_contact: datetime | None = None
    clock_skew: timedelta | None = None  # VTN clock minus ours, last measured
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class ApplySignals:
    """The signals in force changed: drive the devices by exactly these (empty: release)."""

    signals: tuple[ActiveSignal, ...]


@dataclass(frozen=True, slots=True)
class DecisionMade:
    """The household answered an event modification (for the log)."""

    event_id: EventId
    modification_number: int
    decision: Decision


Action = ApplySignals | DecisionMade


@dataclass(frozen=True, slots=True, kw_only=True)
class EventLine:
    event_id: EventId
    modification_number: int
    status: EventStatus
    start_at: datetime
    end_at: datetime | None
    opt: OptType | None
    reason: str | None
    drives: bool
    test_event: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionStatus:
    """What `flex4grid ven status` shows."""

    phase: Phase
    ven_id: VenId | None
    vtn_id: VtnId | None
    registration_id: RegistrationId | None
    poll_interval: timedelta
    events: tuple[EventLine, ...]
    signals: tuple[ActiveSignal, ...]
    opts: tuple[OptRecord, ...]
    pending_reports: tuple[ReportRequestId, ...]
    buffered_readings: int
    dropped_readings: int
    queued: tuple[str, ...]
    dropped_reports: int
    last_contact: datetime | None
    clock_skew: timedelta | None
    clock_skew_flagged: bool
    retry_at: datetime | None
    last_error: str | None
