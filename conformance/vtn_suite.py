"""The VTN suite: every case that drives a VTN, in the order a run takes them."""

from __future__ import annotations

from conformance import vtn_events, vtn_registration, vtn_reports, vtn_security
from conformance.model import Case
from conformance.vtn_peer import VtnUnderTest

CASES: list[Case[VtnUnderTest]] = [
    *vtn_registration.CASES,
    *vtn_events.CASES,
    *vtn_reports.CASES,
    *vtn_security.CASES,
]
