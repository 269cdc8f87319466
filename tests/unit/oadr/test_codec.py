"""oadr.codec: every valid payload survives encode/decode; signed messages go through `receive`,
which decodes only what the signature covers; encode refuses what the wire cannot carry."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from flex4grid import cli
from oadr import codec, schema
from oadr.enums import ItemKind, ResponseCode
from oadr.errors import MalformedMessage, ReplayDetected, SignatureInvalid
from oadr.model import Payload, Poll, VenId
from oadr.signing import ReplayGuard, SigningKey
from tests.factories import NOW, make_distribute_event, make_event, make_item_base, make_signal
from tests.payload_examples import REPRESENTATIVE_PAYLOADS
from tests.strategies import PAYLOAD_STRATEGIES, payloads

GOLDEN_DISPATCH = (
    Path(__file__).parents[2] / "fixtures/xml/oadrDistributeEvent/flex4grid-load-dispatch.xml"
)
_SIGNED_OBJECT = re.compile(rb"<oadr:oadrSignedObject\b.*</oadr:oadrSignedObject>", re.DOTALL)


# --- keys -----------------------------------------------------------------------------------------


def make_signing_key(kind: str, name: str = "ven-under-test") -> SigningKey:
    """A self-signed RSA-2048 or P-256 key, the two 2.0b signature profiles."""
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if kind == "rsa2048":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return SigningKey(key, certificate)


@pytest.fixture(scope="module", params=["p256", "rsa2048"])
def signing_key(request: pytest.FixtureRequest) -> SigningKey:
    return make_signing_key(str(request.param))


def _nonces() -> Iterator[str]:
    n = 0
    while True:
        n += 1
        yield f"nonce-{n:06d}"


NONCES = _nonces()


def sign(payload: Payload, key: SigningKey, now: datetime = NOW) -> bytes:
    return codec.encode(payload, signing_key=key, now=now, nonce=next(NONCES))


# --- round trips ----------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payloads())
def test_any_payload_survives_encode_then_decode(payload: Payload) -> None:
    assert codec.decode(codec.encode(payload)) == payload


@pytest.mark.parametrize("payload_type", list(PAYLOAD_STRATEGIES), ids=lambda t: t.__name__)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_each_payload_type_survives_encode_then_decode(
    payload_type: type[Payload], data: st.DataObject
) -> None:
    payload = data.draw(PAYLOAD_STRATEGIES[payload_type]())
    assert codec.decode(codec.encode(payload)) == payload


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payloads())
def test_encoded_messages_are_schema_valid(payload: Payload) -> None:
    # Checked on a plain parse, not codec.parse, so the check does not lean on the codec.
    schema.validate(etree.fromstring(codec.encode(payload, validate=False)))


# --- signed messages through receive --------------------------------------------------------------


@pytest.mark.parametrize("key", list(REPRESENTATIVE_PAYLOADS))
def test_signed_message_is_received_with_its_signer(signing_key: SigningKey, key: str) -> None:
    payload = REPRESENTATIVE_PAYLOADS[key]
    data = codec.encode(payload, signing_key=signing_key, now=NOW, nonce=f"nonce-{key}")
    received = codec.receive(data, now=NOW + timedelta(seconds=1), replay_guard=ReplayGuard())
    assert received.payload == payload
    assert received.signature is not None
    assert received.signature.certificate == signing_key.certificate
    assert received.signature.nonce == f"nonce-{key}"
    assert received.signature.timestamp == NOW


def test_unsigned_message_is_received_without_a_signature() -> None:
    payload = Poll(ven_id=VenId("ven-1"))
    received = codec.receive(codec.encode(payload), now=NOW, replay_guard=ReplayGuard())
    assert received == codec.Received(payload, None)


def test_unsigned_message_is_refused_where_signatures_are_required() -> None:
    data = codec.encode(Poll(ven_id=VenId("ven-1")))
    with pytest.raises(SignatureInvalid) as raised:
        codec.receive(data, now=NOW, replay_guard=ReplayGuard(), require_signature=True)
    assert raised.value.code == ResponseCode.NOT_REGISTERED_OR_AUTHORIZED  # 463
    assert raised.value.payload_name == "oadrPoll"


def test_signed_message_passes_where_signatures_are_required(signing_key: SigningKey) -> None:
    payload = Poll(ven_id=VenId("ven-1"))
    received = codec.receive(
        sign(payload, signing_key), now=NOW, replay_guard=ReplayGuard(), require_signature=True
    )
    assert received.payload == payload


def wrap(signed: bytes, attacker: Payload) -> bytes:
    """Signature wrapping: the signed oadrSignedObject moves into the signature's ds:Object,
    where a verifier resolving the reference by Id still finds it, and the attacker's unsigned
    one takes its place, where a naive decoder reads."""
    original = _SIGNED_OBJECT.search(signed)
    theirs = _SIGNED_OBJECT.search(codec.encode(attacker))
    assert original is not None and theirs is not None
    # Without its Id, so the signed one stays the only element the reference can resolve to.
    forged = theirs.group().replace(b' oadr:Id="oadrSignedObject"', b"", 1)
    head = signed[: original.start()].replace(b"</ds:Object>", original.group() + b"</ds:Object>")
    return head + forged + signed[original.end() :]


def test_a_wrapped_signature_is_refused_and_the_attackers_payload_never_decoded(
    signing_key: SigningKey,
) -> None:
    victim, attacker = Poll(ven_id=VenId("ven-victim")), Poll(ven_id=VenId("ven-attacker"))
    data = wrap(sign(victim, signing_key), attacker)
    # The forgery is schema-valid and a decoder that ignores the signature reads the attacker's.
    assert codec.decode(data) == attacker
    with pytest.raises(SignatureInvalid) as raised:
        codec.receive(data, now=NOW, replay_guard=ReplayGuard())
    assert raised.value.code == ResponseCode.NOT_REGISTERED_OR_AUTHORIZED


def test_a_tampered_payload_is_refused(signing_key: SigningKey) -> None:
    data = sign(Poll(ven_id=VenId("ven-victim")), signing_key)
    tampered = data.replace(b">ven-victim<", b">ven-attacker<")
    assert tampered != data
    with pytest.raises(SignatureInvalid, match="digest"):
        codec.receive(tampered, now=NOW, replay_guard=ReplayGuard())


def test_a_replayed_message_is_refused(signing_key: SigningKey) -> None:
    data = sign(Poll(ven_id=VenId("ven-1")), signing_key)
    guard = ReplayGuard()
    codec.receive(data, now=NOW, replay_guard=guard)
    with pytest.raises(ReplayDetected) as raised:
        codec.receive(data, now=NOW + timedelta(seconds=1), replay_guard=guard)
    assert raised.value.code == ResponseCode.NOT_REGISTERED_OR_AUTHORIZED
    assert raised.value.payload_name == "oadrPoll"


# --- what encode refuses --------------------------------------------------------------------------


def test_encode_refuses_a_naive_datetime() -> None:
    event = make_event(created=NOW.replace(tzinfo=None))
    with pytest.raises(ValueError, match="naive"):
        codec.encode(make_distribute_event(events=(event,)))


def test_encode_refuses_a_fractional_second_duration() -> None:
    half_hour_and_a_bit = timedelta(minutes=30, milliseconds=500)
    event = make_event(
        duration=half_hour_and_a_bit, signals=(make_signal(durations=(half_hour_and_a_bit,)),)
    )
    with pytest.raises(ValueError, match="fraction"):
        codec.encode(make_distribute_event(events=(event,)))


def test_encode_validates_against_the_schema() -> None:
    # The XSD fixes energyReal's unit to Wh: kWh is written as Wh with siScaleCode k.
    kilowatt_hours = make_item_base(ItemKind.ENERGY_REAL, description="RealEnergy", units="kWh")
    event = make_event(signals=(make_signal(item_base=kilowatt_hours),))
    payload = make_distribute_event(events=(event,))
    with pytest.raises(MalformedMessage, match="itemUnits"):
        codec.encode(payload)
    with pytest.raises(MalformedMessage):  # validate=False only skips the check on our side
        codec.decode(codec.encode(payload, validate=False))


def test_signing_needs_a_time_and_a_nonce(signing_key: SigningKey) -> None:
    poll = Poll(ven_id=VenId("ven-1"))
    with pytest.raises(ValueError, match="nonce"):
        codec.encode(poll, signing_key=signing_key, now=NOW)
    with pytest.raises(ValueError, match="now"):
        codec.encode(poll, signing_key=signing_key, nonce="n-1")
    with pytest.raises(ValueError, match="aware"):
        codec.encode(poll, signing_key=signing_key, now=NOW.replace(tzinfo=None), nonce="n-1")


def test_encode_and_decode_of_examples_agree_on_every_type() -> None:
    covered = {type(p) for p in REPRESENTATIVE_PAYLOADS.values()}
    assert covered == set(PAYLOAD_STRATEGIES)
    for payload in REPRESENTATIVE_PAYLOADS.values():
        assert codec.decode(codec.encode(payload)) == payload


# --- `flex4grid oadr check` -----------------------------------------------------------------------


def test_check_prints_the_code_of_a_refused_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = GOLDEN_DISPATCH.read_bytes()
    custom = data.replace(b">LOAD_DISPATCH<", b">x-customSignal<")
    assert custom != data
    path = tmp_path / "custom-signal.xml"
    path.write_bytes(custom)
    assert cli.main(["oadr", "check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "refused with 460 (SIGNAL_NOT_SUPPORTED)" in out
    assert "x-customSignal" in out


def test_check_of_a_missing_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["oadr", "check", str(tmp_path / "absent.xml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_check_shows_who_signed_a_message(
    signing_key: SigningKey, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "signed.xml"
    path.write_bytes(sign(Poll(ven_id=VenId("ven-1")), signing_key))
    assert cli.main(["oadr", "check", str(path)]) == 0
    assert "signature: valid, signed by CN=ven-under-test" in capsys.readouterr().out
