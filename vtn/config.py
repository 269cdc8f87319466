"""What one VTN deployment is configured with (CLI flags and tests build this)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from oadr.codec import DEFAULT_LIMITS, Limits
from oadr.model import VtnId
from oadr.signing import SigningKey
from vtn.vens import Policy

DEFAULT_VTN_ID = VtnId("flex4grid-vtn")


@dataclass(frozen=True, slots=True)
class TelemetryDefaults:
    """The report requests the VTN makes when a VEN registers TELEMETRY reports."""

    granularity: timedelta = timedelta(minutes=1)
    report_back: timedelta = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class VtnSettings:
    vtn_id: VtnId = DEFAULT_VTN_ID
    registration: Policy = Policy.AUTO
    poll_interval: timedelta = timedelta(seconds=10)
    require_signatures: bool = False  # refuse unsigned messages (463)
    signing_key: SigningKey | None = None  # sign replies to VENs that registered signatures
    replay_window: timedelta = timedelta(seconds=30)
    limits: Limits = DEFAULT_LIMITS
    telemetry: TelemetryDefaults = field(default_factory=TelemetryDefaults)
    # Plain HTTP without client certificates: VENs are then known by the venID they claim.
    insecure: bool = False
