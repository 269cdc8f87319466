"""Hostile and broken input: each case is refused with the response code a VTN/VEN answers.

Files under tests/fixtures/xml/hostile/ are attacks as they would arrive; the generated cases
mutate a valid message so they stay valid in every other respect. Attacks on XML signatures go
through `codec.receive`, signed with a VEN key of the development PKI, and all get 463.
"""

from __future__ import annotations

import base64
import re
import resource
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from certs.dev import DevPki
from oadr import codec
from oadr.enums import ResponseCode
from oadr.errors import (
    HostileInput,
    MalformedMessage,
    OadrError,
    ReplayDetected,
    SignalNotSupported,
    SignatureInvalid,
)
from oadr.model import DistributeEvent, Poll, RequestId, VenId, VtnId
from oadr.signing import ReplayGuard, SigningKey
from tests.factories import NOW, make_event

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


# --- attacks on XML signatures, through codec.receive --------------------------------------------


@dataclass(frozen=True)
class Keys:
    ven: SigningKey
    other_ven: SigningKey


@pytest.fixture(scope="module")
def keys(pki: DevPki) -> Keys:
    ven, other = (
        SigningKey.from_pem(v.key.read_bytes(), v.cert.read_bytes()) for v in pki.vens[:2]
    )
    return Keys(ven, other)


def _signed(keys: Keys, *, seconds: float = 0, nonce: str = "nonce-1") -> bytes:
    """The VEN's signed poll, signed `seconds` after NOW."""
    poll = Poll(ven_id=VenId("ven-victim"))
    return codec.encode(
        poll, signing_key=keys.ven, now=NOW + timedelta(seconds=seconds), nonce=nonce
    )


_SIGNED_OBJECT = re.compile(rb"<oadr:oadrSignedObject\b.*</oadr:oadrSignedObject>", re.DOTALL)
_CERTIFICATE = re.compile(rb"(<ds:X509Certificate>)[^<]*(</ds:X509Certificate>)")


def _wrapped(keys: Keys) -> tuple[bytes, ...]:
    """Signature wrapping: the signed oadrSignedObject is hidden in the signature's ds:Object,
    where the reference still resolves, and the attacker's takes its place where a naive decoder
    reads. (With the same Id the schema would refuse the duplicate xs:ID already, with 454.)"""
    signed = _signed(keys)
    original = _SIGNED_OBJECT.search(signed)
    forged = _SIGNED_OBJECT.search(codec.encode(Poll(ven_id=VenId("ven-attacker"))))
    assert original is not None and forged is not None
    theirs = forged.group().replace(b'oadr:Id="oadrSignedObject"', b'oadr:Id="attacker"', 1)
    head = signed[: original.start()].replace(b"</ds:Object>", original.group() + b"</ds:Object>")
    wrapped = head + theirs + signed[original.end() :]
    assert codec.decode(wrapped) == Poll(ven_id=VenId("ven-attacker"))  # schema-valid forgery
    return (wrapped,)


def _with_certificate(keys: Keys, der: bytes) -> tuple[bytes, ...]:
    text = base64.b64encode(der)
    forged = _CERTIFICATE.sub(lambda m: m.group(1) + text + m.group(2), _signed(keys))
    assert forged != _signed(keys)
    return (forged,)


@dataclass(frozen=True)
class SignedCase:
    """Messages received in order through one ReplayGuard at NOW: the last one is refused."""

    make: Callable[[Keys], tuple[bytes, ...]]
    error: type[SignatureInvalid]
    reason: str  # part of the error message: refused for this reason, not some other
    require_signature: bool = False


SIGNED_CASES: dict[str, SignedCase] = {
    "signature-wrapping": SignedCase(_wrapped, SignatureInvalid, "more than one oadrSignedObject"),
    "replayed-nonce": SignedCase(
        lambda k: (_signed(k), _signed(k)), ReplayDetected, "nonce was used before"
    ),
    "same-nonce-new-message": SignedCase(
        lambda k: (_signed(k), _signed(k, seconds=1)), ReplayDetected, "nonce was used before"
    ),
    "stale-timestamp": SignedCase(
        lambda k: (_signed(k, seconds=-60),), ReplayDetected, "signed more than 5 s ago"
    ),
    "future-timestamp": SignedCase(
        lambda k: (_signed(k, seconds=60),), ReplayDetected, "more than 5 s in the future"
    ),
    "tampered-payload": SignedCase(
        lambda k: (_signed(k).replace(b">ven-victim<", b">ven-attacker<"),),
        SignatureInvalid,
        "digest of oadrSignedObject does not match",
    ),
    "unsigned-where-required": SignedCase(
        lambda k: (codec.encode(Poll(ven_id=VenId("ven-victim"))),),
        SignatureInvalid,
        "signatures are required",
        require_signature=True,
    ),
    "another-vens-certificate": SignedCase(
        lambda k: _with_certificate(k, k.other_ven.certificate.public_bytes(Encoding.DER)),
        SignatureInvalid,
        "does not verify with the KeyInfo certificate",
    ),
    "garbage-certificate": SignedCase(
        lambda k: _with_certificate(k, b"not a DER certificate"),
        SignatureInvalid,
        "unusable signing certificate",
    ),
}


@pytest.mark.parametrize("case", SIGNED_CASES.values(), ids=SIGNED_CASES.keys())
def test_signature_attack_is_refused_with_463(keys: Keys, case: SignedCase) -> None:
    *accepted, attack = case.make(keys)
    guard = ReplayGuard()
    for data in accepted:
        codec.receive(data, now=NOW, replay_guard=guard)
    with pytest.raises(case.error, match=case.reason) as raised:
        codec.receive(attack, now=NOW, replay_guard=guard, require_signature=case.require_signature)
    assert raised.value.code == ResponseCode.NOT_REGISTERED_OR_AUTHORIZED


def test_the_signed_message_the_attacks_start_from_is_accepted(keys: Keys) -> None:
    received = codec.receive(
        _signed(keys), now=NOW, replay_guard=ReplayGuard(), require_signature=True
    )
    assert received.payload == Poll(ven_id=VenId("ven-victim"))
    assert received.signature is not None
    assert received.signature.certificate == keys.ven.certificate
