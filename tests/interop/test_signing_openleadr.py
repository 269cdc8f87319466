"""oadr.signing against OpenLEADR 0.5.36 (signxml 4.5): each side verifies the other's signatures.

OpenLEADR reads the real clock and keeps a module-global 5 s nonce cache, so these tests sign at
the real current time with fresh nonces. Run as a script to rewrite the golden signed messages:

    .venv/bin/python tests/interop/test_signing_openleadr.py --regenerate

(keys are generated on the spot and thrown away; only the public certificates end up in files).
"""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from openleadr import messaging, utils
from signxml.exceptions import InvalidSignature

from oadr import codec, signing
from oadr.errors import ReplayDetected, SignatureInvalid
from oadr.exchanges import ok_response
from oadr.model import RequestId, Response
from oadr.signing import ReplayGuard, SigningKey

PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, remove_blank_text=False
)
EI = "{http://docs.oasis-open.org/ns/energyinterop/201110}"
DSP = "{http://openadr.org/oadr-2.0b/2012/07/xmldsig-properties}"
SIGNED_FIXTURES = Path(__file__).parents[1] / "fixtures" / "xml" / "signed"
GOLDEN_NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class PemKeys:
    name: str
    signing_key: SigningKey
    key_pem: bytes
    cert_pem: bytes


def make_pem_keys(name: str) -> PemKeys:
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if name == "rsa2048":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"interop-{name}")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2024, 1, 1, tzinfo=UTC))  # covers GOLDEN_NOW too
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return PemKeys(
        name,
        SigningKey(key, certificate),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        certificate.public_bytes(serialization.Encoding.PEM),
    )


@pytest.fixture(scope="module", params=["rsa2048", "p256"])
def pem_keys(request: pytest.FixtureRequest) -> PemKeys:
    return make_pem_keys(str(request.param))


def report_intervals(count: int) -> list[dict[str, Any]]:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return [
        {
            "dtstart": start + timedelta(minutes=15 * i),
            "duration": timedelta(minutes=15),
            "report_payload": {"r_id": "rid1", "value": 1.5 * i},
        }
        for i in range(count)
    ]


# (message type, OpenLEADR create_message arguments): what a VEN and a VTN send
MESSAGES: dict[str, tuple[str, dict[str, Any]]] = {
    "oadrPoll": ("oadrPoll", {"ven_id": "ven-1"}),
    "oadrRequestEvent": ("oadrRequestEvent", {"ven_id": "ven-1", "request_id": "req-1"}),
    "oadrUpdateReport": (
        "oadrUpdateReport",
        {
            "request_id": "req-1",
            "ven_id": "ven-1",
            "reports": [
                {
                    "report_id": "r1",
                    "report_request_id": "rr1",
                    "report_specifier_id": "rs1",
                    "report_name": "TELEMETRY_USAGE",
                    "created_date_time": datetime(2024, 1, 1, tzinfo=UTC),
                    "dtstart": datetime(2024, 1, 1, tzinfo=UTC),
                    "intervals": report_intervals(24),
                }
            ],
        },
    ),
}


def unsigned(message: str) -> etree._Element:
    message_type, arguments = MESSAGES[message]
    return etree.fromstring(messaging.create_message(message_type, **arguments).encode(), PARSER)


def sign_ours(message: str, keys: PemKeys, *, now: datetime, nonce: str) -> bytes:
    payload = unsigned(message)
    signing.sign(payload, keys.signing_key, now=now, nonce=nonce)
    return etree.tostring(payload, xml_declaration=True, encoding="utf-8")


def sign_openleadr(message: str, keys: PemKeys) -> bytes:
    message_type, arguments = MESSAGES[message]
    signed: str = messaging.create_message(
        message_type, cert=keys.cert_pem, key=keys.key_pem, **arguments
    )
    return signed.encode()


@pytest.mark.parametrize("message", list(MESSAGES))
def test_openleadr_verifies_our_signature(pem_keys: PemKeys, message: str) -> None:
    data = sign_ours(message, pem_keys, now=datetime.now(UTC), nonce=uuid.uuid4().hex)

    tree = messaging.validate_xml_schema(data)
    messaging.validate_xml_signature(tree)

    message_type, payload = messaging.parse_message(data)
    assert message_type == MESSAGES[message][0]
    assert payload["ven_id"] == "ven-1"
    assert utils.extract_pem_cert(tree).encode().strip() == pem_keys.cert_pem.strip()


def test_openleadr_refuses_our_signature_on_a_tampered_message(pem_keys: PemKeys) -> None:
    """Shows the test above can fail: OpenLEADR really checks what we produce."""
    data = sign_ours("oadrPoll", pem_keys, now=datetime.now(UTC), nonce=uuid.uuid4().hex)
    tampered = data.replace(b">ven-1<", b">ven-2<")
    with pytest.raises(InvalidSignature):
        messaging.validate_xml_signature(messaging.validate_xml_schema(tampered))


def test_openleadr_refuses_our_message_replayed(pem_keys: PemKeys) -> None:
    data = sign_ours("oadrPoll", pem_keys, now=datetime.now(UTC), nonce=uuid.uuid4().hex)
    messaging.validate_xml_signature(messaging.validate_xml_schema(data))
    with pytest.raises(ValueError, match="already used"):
        messaging.validate_xml_signature(messaging.validate_xml_schema(data))


@pytest.mark.parametrize("message", list(MESSAGES))
def test_we_verify_openleadr_signature(pem_keys: PemKeys, message: str) -> None:
    payload = etree.fromstring(sign_openleadr(message, pem_keys), PARSER)
    guard = ReplayGuard()

    verified = signing.verify(payload, now=datetime.now(UTC), replay_guard=guard)

    assert etree.tostring(verified.signed_object, method="c14n") == etree.tostring(
        payload[1], method="c14n"
    )
    assert verified.signed_object.findtext(f".//{EI}venID") == "ven-1"
    assert verified.certificate == pem_keys.signing_key.certificate
    assert len(verified.nonce) == 32
    with pytest.raises(ReplayDetected):
        signing.verify(payload, now=datetime.now(UTC), replay_guard=guard)


def test_we_refuse_openleadr_signature_on_a_tampered_message(pem_keys: PemKeys) -> None:
    data = sign_openleadr("oadrPoll", pem_keys).replace(b">ven-1<", b">ven-2<")
    with pytest.raises(SignatureInvalid, match="digest of oadrSignedObject"):
        signing.verify(etree.fromstring(data, PARSER), now=datetime.now(UTC), replay_guard=None)


@pytest.mark.parametrize(
    "path", sorted(SIGNED_FIXTURES.glob("*.xml")), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_golden_signed_messages_are_schema_valid(path: Path) -> None:
    messaging.validate_xml_schema(path.read_bytes())


# --- regenerating the golden files ------------------------------------------------------------


def regenerate() -> None:
    """Two of ours at GOLDEN_NOW and two of OpenLEADR's at the real current time."""
    SIGNED_FIXTURES.mkdir(parents=True, exist_ok=True)
    rsa_keys, p256_keys = make_pem_keys("rsa2048"), make_pem_keys("p256")
    files = {
        "flex4grid-rsa2048-oadrPoll.xml": sign_ours(
            "oadrPoll", rsa_keys, now=GOLDEN_NOW, nonce="5f1d6a3c9b2e4f7a8c0d1e2f3a4b5c6d"
        ),
        "flex4grid-p256-oadrUpdateReport.xml": sign_ours(
            "oadrUpdateReport", p256_keys, now=GOLDEN_NOW, nonce="0e9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"
        ),
        "openleadr-rsa2048-oadrPoll.xml": sign_openleadr("oadrPoll", rsa_keys),
        "openleadr-p256-oadrRequestEvent.xml": sign_openleadr("oadrRequestEvent", p256_keys),
    }
    for name, data in files.items():
        payload = etree.fromstring(data, PARSER)
        stamp = datetime.fromisoformat((payload.findtext(f".//{DSP}timestamp") or "")[:-1])
        signing.verify(payload, now=stamp.replace(tzinfo=UTC), replay_guard=None)
        (SIGNED_FIXTURES / name).write_bytes(data if data.endswith(b"\n") else data + b"\n")
        print(f"wrote {SIGNED_FIXTURES / name}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--regenerate"]:
        sys.exit(__doc__)
    regenerate()


def test_openleadr_verifies_a_reply_filled_in_from_our_signed_template(pem_keys: PemKeys) -> None:
    """The VTN answers signed polls from a template (oadr.signing.SignedTemplate): what it sends
    must verify with OpenLEADR's signxml as the tree-signed replies do."""
    empty = Response(response=ok_response(RequestId("")))
    template = codec.signed_template(empty, pem_keys.signing_key)
    data = template.fill(ven_id="ven-1", now=datetime.now(UTC), nonce=uuid.uuid4().hex)

    tree = messaging.validate_xml_schema(data)
    messaging.validate_xml_signature(tree)
    message_type, payload = messaging.parse_message(data)
    assert message_type == "oadrResponse" and payload["ven_id"] == "ven-1"
    with pytest.raises(InvalidSignature):  # and the check is real
        messaging.validate_xml_signature(
            messaging.validate_xml_schema(data.replace(b">ven-1<", b">ven-2<"))
        )
