"""Hostile and broken input: each case is refused with the response code a VTN/VEN answers.

Files under tests/fixtures/xml/hostile/ are attacks as they would arrive; the generated cases
mutate a valid message so they stay valid in every other respect.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from oadr import codec
from oadr.enums import ResponseCode
from oadr.errors import HostileInput, MalformedMessage, OadrError, SignalNotSupported
from oadr.model import DistributeEvent, Poll, RequestId, VenId, VtnId
from tests.factories import make_event

HOSTILE = Path(__file__).parents[2] / "fixtures" / "xml" / "hostile"


def _poll() -> bytes:
    return codec.encode(Poll(ven_id=VenId("ven-1")))


def _distribute() -> bytes:
    event = make_event()
    return codec.encode(
        DistributeEvent(request_id=RequestId("req-1"), vtn_id=VtnId("dso"), events=(event,))
    )


def _replace(make: Callable[[], bytes], old: bytes, new: bytes) -> Callable[[], bytes]:
    def mutated() -> bytes:
        data = make()
        assert old in data, f"{old!r} not in the base message"
        return data.replace(old, new, 1)

    return mutated


def _deep() -> bytes:
    nest = b"<a>" * 200 + b"</a>" * 200
    return _poll().replace(b"<ei:venID>", nest + b"<ei:venID>")


def _oversize() -> bytes:
    return _poll().replace(b"ven-1", b"v" * (codec.DEFAULT_LIMITS.max_bytes + 1))


@dataclass(frozen=True)
class Case:
    make: Callable[[], bytes]
    error: type[OadrError]
    code: ResponseCode


def _file(name: str) -> Callable[[], bytes]:
    return lambda: (HOSTILE / name).read_bytes()


CASES: dict[str, Case] = {
    "billion-laughs": Case(_file("billion-laughs.xml"), HostileInput, ResponseCode.INVALID_DATA),
    "xxe-file": Case(_file("xxe-file.xml"), HostileInput, ResponseCode.INVALID_DATA),
    "xxe-network-dtd": Case(_file("xxe-network.xml"), HostileInput, ResponseCode.INVALID_DATA),
    "undeclared-entity": Case(
        _file("undeclared-entity.xml"), MalformedMessage, ResponseCode.INVALID_DATA
    ),
    "latin1-declared": Case(_file("latin1-declared.xml"), HostileInput, ResponseCode.INVALID_DATA),
    "invalid-utf8": Case(_file("invalid-utf8.xml"), MalformedMessage, ResponseCode.INVALID_DATA),
    "utf16": Case(
        lambda: _poll().decode().replace("UTF-8", "UTF-16").encode("utf-16"),
        HostileInput,
        ResponseCode.INVALID_DATA,
    ),
    "oversize": Case(_oversize, HostileInput, ResponseCode.INVALID_DATA),
    "too-deep": Case(_deep, HostileInput, ResponseCode.INVALID_DATA),
    "wrong-root": Case(_file("wrong-root.xml"), MalformedMessage, ResponseCode.INVALID_DATA),
    "not-xml": Case(_file("not-xml.xml"), MalformedMessage, ResponseCode.INVALID_DATA),
    "empty-body": Case(lambda: b"", MalformedMessage, ResponseCode.INVALID_DATA),
    "truncated": Case(_file("truncated.xml"), MalformedMessage, ResponseCode.INVALID_DATA),
    "schema-invalid": Case(
        _file("schema-invalid-poll-without-venid.xml"),
        MalformedMessage,
        ResponseCode.INVALID_DATA,
    ),
    "unknown-payload": Case(
        _file("unknown-payload.xml"), MalformedMessage, ResponseCode.INVALID_DATA
    ),
    # Certification E1_1070: a custom signal name is schema-valid (x- token) but unsupported.
    "custom-signal-name": Case(
        _replace(_distribute, b"<ei:signalName>SIMPLE<", b"<ei:signalName>x-myCustomSignal<"),
        SignalNotSupported,
        ResponseCode.SIGNAL_NOT_SUPPORTED,
    ),
    # Certification E1_1080: enumerations are case sensitive.
    "signal-name-wrong-case": Case(
        _replace(_distribute, b"<ei:signalName>SIMPLE<", b"<ei:signalName>Simple<"),
        MalformedMessage,
        ResponseCode.INVALID_DATA,
    ),
    "event-status-wrong-case": Case(
        _replace(_distribute, b"<ei:eventStatus>far<", b"<ei:eventStatus>FAR<"),
        MalformedMessage,
        ResponseCode.INVALID_DATA,
    ),
    "duration-in-years": Case(
        _replace(_distribute, b"<xcal:duration>PT1H<", b"<xcal:duration>P1Y<"),
        OadrError,
        ResponseCode.INVALID_DATA,
    ),
    "nan-signal-value": Case(
        _replace(_distribute, b"<ei:value>1.0<", b"<ei:value>NaN<"),
        OadrError,
        ResponseCode.INVALID_DATA,
    ),
    "impossible-date": Case(
        _replace(_distribute, b"2026-01-15T13:00:00Z", b"2026-02-30T13:00:00Z"),
        OadrError,
        ResponseCode.INVALID_DATA,
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_hostile_input_is_refused_with_its_code(case: Case) -> None:
    data = case.make()
    with pytest.raises(case.error) as raised:
        codec.decode(data)
    assert raised.value.code == case.code


def test_billion_laughs_is_refused_without_expanding() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(HostileInput):
        codec.decode((HOSTILE / "billion-laughs.xml").read_bytes())
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 10_000


def test_a_refused_message_still_names_its_payload_and_request_id() -> None:
    """So the edge can answer with the right reply type and echo the requestID."""
    data = _replace(_distribute, b"<ei:signalName>SIMPLE<", b"<ei:signalName>x-custom<")()
    with pytest.raises(SignalNotSupported) as raised:
        codec.decode(data)
    assert raised.value.payload_name == "oadrDistributeEvent"
    assert raised.value.request_id == "req-1"


def test_limits_are_configurable() -> None:
    data = _poll()
    with pytest.raises(HostileInput):
        codec.decode(data, limits=codec.Limits(max_bytes=len(data) - 1))
    with pytest.raises(HostileInput):
        codec.decode(data, limits=codec.Limits(max_depth=3))
    assert codec.decode(data, limits=codec.Limits(max_bytes=len(data), max_depth=5)) == Poll(
        ven_id=VenId("ven-1")
    )
