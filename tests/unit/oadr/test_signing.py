"""oadr.signing: XML signatures with ReplayProtect, and everything verify() must refuse.

Structural attacks are built with `resign()`, an independent signer that recomputes every digest
and the SignatureValue for whatever shape a test made, so the cryptography is valid and only the
structure rules can (and must) refuse the message.
"""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from lxml import etree

from oadr import signing
from oadr.errors import ReplayDetected, SignatureInvalid
from oadr.signing import ReplayGuard, SigningKey

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
DS = "{http://www.w3.org/2000/09/xmldsig#}"
DSP = "{http://openadr.org/oadr-2.0b/2012/07/xmldsig-properties}"
OADR = "{http://openadr.org/oadr-2.0b/2012/07}"
EI = "{http://docs.oasis-open.org/ns/energyinterop/201110}"
PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, remove_blank_text=False
)
SIGNED_FIXTURES = Path(__file__).parents[2] / "fixtures" / "xml" / "signed"

UNSIGNED_POLL = b"""<?xml version="1.0" encoding="utf-8"?>
<oadr:oadrPayload xmlns:oadr="http://openadr.org/oadr-2.0b/2012/07">
<oadr:oadrSignedObject oadr:Id="oadrSignedObject">
  <oadr:oadrPoll
      xmlns:ei="http://docs.oasis-open.org/ns/energyinterop/201110" ei:schemaVersion="2.0b">
    <ei:venID>ven-1</ei:venID>
  </oadr:oadrPoll>
</oadr:oadrSignedObject>
</oadr:oadrPayload>"""


# --- factories -------------------------------------------------------------------------------


def make_certificate(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, name: str
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )


def make_signing_key(kind: str) -> SigningKey:
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if kind == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    return SigningKey(key, make_certificate(key, f"test-{kind}"))


@dataclass(frozen=True)
class Keys:
    rsa: SigningKey
    ecdsa: SigningKey
    other_rsa: SigningKey

    def by_kind(self, kind: str) -> SigningKey:
        return self.rsa if kind == "rsa" else self.ecdsa


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(make_signing_key("rsa"), make_signing_key("ecdsa"), make_signing_key("rsa"))


def make_payload(xml: bytes = UNSIGNED_POLL) -> etree._Element:
    return etree.fromstring(xml, PARSER)


def make_signed(
    key: SigningKey, *, now: datetime = NOW, nonce: str = "nonce-1", xml: bytes = UNSIGNED_POLL
) -> etree._Element:
    payload = make_payload(xml)
    signing.sign(payload, key, now=now, nonce=nonce)
    return payload


def on_the_wire(payload: etree._Element) -> etree._Element:
    """Serialize and parse again, as the peer would."""
    return etree.fromstring(etree.tostring(payload), PARSER)


def c14n(element: etree._Element) -> bytes:
    return etree.tostring(element, method="c14n")


def find(payload: etree._Element, path: str) -> etree._Element:
    element = payload.find(path)
    assert element is not None, path
    return element


def resign(payload: etree._Element, key: SigningKey, *, hash_name: str = "sha256") -> None:
    """Recompute each resolvable digest and the SignatureValue over the tree as it stands."""
    ids: dict[str, etree._Element] = {}
    for element in payload.iter():
        if isinstance(element.tag, str):
            for name, value in element.attrib.items():
                if str(name).rpartition("}")[2] in ("Id", "ID", "id"):
                    ids.setdefault(str(value), element)
    signature = next(payload.iter(f"{DS}Signature"))
    for reference in signature.iter(f"{DS}Reference"):
        uri = reference.get("URI", "")
        target = ids.get(uri[1:]) if uri.startswith("#") else None
        if target is None:
            continue
        transform = reference.find(f"{DS}Transforms/{DS}Transform")
        exclusive = transform is not None and "exc-c14n" in transform.get("Algorithm", "")
        digest = hashlib.sha256(etree.tostring(target, method="c14n", exclusive=exclusive))
        find(reference, f"{DS}DigestValue").text = base64.b64encode(digest.digest()).decode()
    signed_info = find(signature, f"{DS}SignedInfo")
    c14n_method = find(signed_info, f"{DS}CanonicalizationMethod").get("Algorithm", "")
    data = etree.tostring(signed_info, method="c14n", exclusive="exc-c14n" in c14n_method)
    algorithm = hashes.SHA1() if hash_name == "sha1" else hashes.SHA256()
    if isinstance(key.key, rsa.RSAPrivateKey):
        raw = key.key.sign(data, padding.PKCS1v15(), algorithm)
    else:
        r, s = decode_dss_signature(key.key.sign(data, ec.ECDSA(algorithm)))
        raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    find(signature, f"{DS}SignatureValue").text = base64.b64encode(raw).decode()


def set_cert(payload: etree._Element, key: SigningKey) -> None:
    der = key.certificate.public_bytes(serialization.Encoding.DER)
    find(payload, f".//{DS}X509Certificate").text = base64.b64encode(der).decode()


# --- what a good signature gives -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rsa", "ecdsa"])
def test_verify_returns_what_was_signed(keys: Keys, kind: str) -> None:
    original = c14n(find(make_payload(), f"{OADR}oadrSignedObject"))
    payload = on_the_wire(make_signed(keys.by_kind(kind), nonce="abc123"))

    verified = signing.verify(payload, now=NOW, replay_guard=ReplayGuard())

    assert c14n(verified.signed_object) == original
    assert verified.signed_object.findtext(f".//{EI}venID") == "ven-1"
    assert verified.certificate == keys.by_kind(kind).certificate
    assert verified.timestamp == NOW
    assert verified.nonce == "abc123"


@pytest.mark.parametrize("kind", ["rsa", "ecdsa"])
def test_signature_has_the_openadr_shape(keys: Keys, kind: str) -> None:
    payload = make_signed(keys.by_kind(kind), now=NOW + timedelta(microseconds=250))
    signature = payload[0]
    assert signature.tag == f"{DS}Signature"
    assert payload[1].tag == f"{OADR}oadrSignedObject"
    assert find(signature, f"{DS}SignedInfo/{DS}CanonicalizationMethod").get("Algorithm") == (
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
    )
    method = find(signature, f"{DS}SignedInfo/{DS}SignatureMethod").get("Algorithm")
    assert method == (
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
        if kind == "rsa"
        else "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
    )
    uris = [reference.get("URI") for reference in signature.iter(f"{DS}Reference")]
    assert uris == ["#oadrSignedObject", f"#{find(signature, f'{DS}Object').get('Id')}"]
    replay = f"{DS}Object/{DS}SignatureProperties/{DS}SignatureProperty/{DSP}ReplayProtect"
    assert find(signature, f"{replay}/{DSP}timestamp").text == "2024-05-01T12:00:00.000250Z"
    assert find(signature, f"{replay}/{DSP}nonce").text == "nonce-1"
    if kind == "ecdsa":  # XML-DSig ECDSA is raw r || s, not DER
        assert len(base64.b64decode(find(signature, f"{DS}SignatureValue").text or "")) == 64


def test_signed_object_is_read_from_the_signed_bytes_so_comments_cannot_truncate(
    keys: Keys,
) -> None:
    """A comment splitting a text node leaves the digest alone but cuts lxml's `.text` short."""
    payload = on_the_wire(make_signed(keys.rsa))
    ven_id = find(payload, f".//{EI}venID")
    ven_id.text = "ven-"
    comment = etree.Comment(" injected ")
    comment.tail = "1"
    ven_id.append(comment)

    verified = signing.verify(payload, now=NOW, replay_guard=None)

    assert verified.signed_object.findtext(f".//{EI}venID") == "ven-1"
    assert not list(verified.signed_object.iter(etree.Comment))


def test_is_signed_sees_a_signature_wherever_it_is(keys: Keys) -> None:
    assert not signing.is_signed(make_payload())
    signed = make_signed(keys.rsa)
    assert signing.is_signed(signed)
    find(signed, f".//{EI}venID").append(signed[0])  # moved deep inside the payload
    assert signing.is_signed(signed)


def test_resign_helper_makes_valid_signatures(keys: Keys) -> None:
    """The structural tests below rely on resign(); it must not break a good message."""
    payload = make_signed(keys.ecdsa)
    find(payload, f".//{EI}venID").text = "ven-2"
    resign(payload, keys.ecdsa)
    verified = signing.verify(on_the_wire(payload), now=NOW, replay_guard=None)
    assert verified.signed_object.findtext(f".//{EI}venID") == "ven-2"


@pytest.mark.parametrize(
    "timestamp",
    ["2024-05-01T14:00:00+02:00", "2024-05-01T12:00:00Z", "2024-05-01T12:00:00.0000009Z"],
    ids=["offset", "no-fraction", "7-digit-fraction"],
)
def test_timestamps_with_a_zone_are_accepted_and_read_as_utc(keys: Keys, timestamp: str) -> None:
    payload = make_signed(keys.rsa)
    find(payload, f".//{DSP}timestamp").text = timestamp
    resign(payload, keys.rsa)
    assert signing.verify(payload, now=NOW, replay_guard=None).timestamp == NOW


# --- tampering -------------------------------------------------------------------------------


def _tamper_payload(payload: etree._Element, keys: Keys) -> None:
    find(payload, f".//{EI}venID").text = "ven-2"


def _tamper_nonce(payload: etree._Element, keys: Keys) -> None:
    find(payload, f".//{DSP}nonce").text = "nonce-2"


def _tamper_timestamp(payload: etree._Element, keys: Keys) -> None:
    find(payload, f".//{DSP}timestamp").text = "2024-05-01T12:00:01.000000Z"


def _tamper_signature_value(payload: etree._Element, keys: Keys) -> None:
    value = find(payload, f".//{DS}SignatureValue")
    raw = bytearray(base64.b64decode(value.text or ""))
    raw[10] ^= 1
    value.text = base64.b64encode(bytes(raw)).decode()


def _tamper_signed_info(payload: etree._Element, keys: Keys) -> None:
    find(payload, f".//{DS}Reference").set("Type", "urn:x")


def _swap_certificate(payload: etree._Element, keys: Keys) -> None:
    """Signed by one key, KeyInfo names another: the signature must not verify."""
    set_cert(payload, keys.other_rsa)


TAMPERING: list[tuple[str, Callable[[etree._Element, Keys], None], str]] = [
    ("payload", _tamper_payload, "digest of oadrSignedObject"),
    ("nonce", _tamper_nonce, "digest of Object"),
    ("timestamp", _tamper_timestamp, "digest of Object"),
    ("signature-value", _tamper_signature_value, "does not verify"),
    ("signed-info", _tamper_signed_info, "does not verify"),
    ("key-info-certificate", _swap_certificate, "does not verify"),
]


@pytest.mark.parametrize(
    ("tamper", "error"), [t[1:] for t in TAMPERING], ids=[t[0] for t in TAMPERING]
)
def test_tampering_is_refused(keys: Keys, tamper: Callable[..., None], error: str) -> None:
    payload = on_the_wire(make_signed(keys.rsa))
    tamper(payload, keys)
    with pytest.raises(SignatureInvalid, match=error) as raised:
        signing.verify(payload, now=NOW, replay_guard=ReplayGuard())
    assert type(raised.value) is SignatureInvalid
    assert int(raised.value.code) == 463


def test_ecdsa_signature_by_another_key_is_refused(keys: Keys) -> None:
    other = make_signing_key("ecdsa")
    payload = make_signed(keys.ecdsa)
    set_cert(payload, other)
    with pytest.raises(SignatureInvalid, match="does not verify"):
        signing.verify(payload, now=NOW, replay_guard=None)


def test_unsigned_message_is_refused() -> None:
    with pytest.raises(SignatureInvalid, match="not signed"):
        signing.verify(make_payload(), now=NOW, replay_guard=ReplayGuard())


# --- wrapping and other structural attacks (cryptographically valid, see resign) --------------


def _move_original_into_object(payload: etree._Element, keys: Keys) -> None:
    """Classic wrapping: the signed original hides in ds:Object, a forged one takes its place."""
    original = payload[1]
    find(payload, f"{DS}Signature/{DS}Object").append(original)
    forged = etree.SubElement(payload, f"{OADR}oadrSignedObject", {f"{OADR}Id": "forged"})
    forged.append(etree.fromstring(f'<oadr:oadrPoll xmlns:oadr="{OADR[1:-1]}"/>'.encode()))


def _duplicate_signed_object(payload: etree._Element, keys: Keys) -> None:
    payload.append(etree.fromstring(etree.tostring(payload[1])))


def _second_signed_object_other_id(payload: etree._Element, keys: Keys) -> None:
    second = etree.fromstring(etree.tostring(payload[1]))
    second.set(f"{OADR}Id", "second")
    find(second, f".//{EI}venID").text = "ven-evil"
    payload.append(second)


def _signed_object_first(payload: etree._Element, keys: Keys) -> None:
    payload.append(payload[0])  # Signature after oadrSignedObject


def _signature_inside_payload(payload: etree._Element, keys: Keys) -> None:
    find(payload, f".//{OADR}oadrPoll").append(payload[0])


def _second_signature(payload: etree._Element, keys: Keys) -> None:
    extra = etree.fromstring(etree.tostring(payload[0]))
    find(payload, f".//{OADR}oadrPoll").append(extra)


def _id_collision_elsewhere(payload: etree._Element, keys: Keys) -> None:
    find(payload, f".//{DS}KeyInfo").set("Id", "oadrSignedObject")


def _id_collision_namespaced(payload: etree._Element, keys: Keys) -> None:
    find(payload, f".//{EI}venID").set("{http://www.opengis.net/gml/3.2}id", "oadrSignedObject")


def _reference_inside_signed_object(payload: etree._Element, keys: Keys) -> None:
    find(payload, f".//{OADR}oadrPoll").set("Id", "inner")
    find(payload, f".//{DS}Reference").set("URI", "#inner")


def _reference_to_key_info(payload: etree._Element, keys: Keys) -> None:
    find(payload, f".//{DS}KeyInfo").set("Id", "keyinfo")
    find(payload, f".//{DS}SignedInfo")[3].set("URI", "#keyinfo")


def _both_references_to_signed_object(payload: etree._Element, keys: Keys) -> None:
    find(payload, f".//{DS}SignedInfo")[3].set("URI", "#oadrSignedObject")


def _whole_document_reference(payload: etree._Element, keys: Keys) -> None:
    find(payload, f".//{DS}Reference").set("URI", "")


def _external_reference(payload: etree._Element, keys: Keys) -> None:
    find(payload, f".//{DS}Reference").set("URI", "https://example.com/payload.xml")


def _xpointer_reference(payload: etree._Element, keys: Keys) -> None:
    find(payload, f".//{DS}Reference").set("URI", "#xpointer(id('oadrSignedObject'))")


def _third_reference(payload: etree._Element, keys: Keys) -> None:
    signed_info = find(payload, f".//{DS}SignedInfo")
    signed_info.append(etree.fromstring(etree.tostring(signed_info[2])))


def _one_reference(payload: etree._Element, keys: Keys) -> None:
    signed_info = find(payload, f".//{DS}SignedInfo")
    signed_info.remove(signed_info[3])


def _missing_replay_protect(payload: etree._Element, keys: Keys) -> None:
    signature = payload[0]
    signature.remove(find(signature, f"{DS}Object"))
    signed_info = find(signature, f"{DS}SignedInfo")
    signed_info.remove(signed_info[3])


def _replay_protect_in_second_object(payload: etree._Element, keys: Keys) -> None:
    """The referenced Object keeps a decoy; the ReplayProtect read would be unreferenced."""
    signature = payload[0]
    second = etree.fromstring(etree.tostring(find(signature, f"{DS}Object")))
    second.set("Id", "second")
    signature.append(second)
    find(signature, f"{DS}Object/{DS}SignatureProperties/{DS}SignatureProperty").remove(
        find(signature, f"{DS}Object//{DSP}ReplayProtect")
    )


def _replay_protect_without_nonce(payload: etree._Element, keys: Keys) -> None:
    nonce = find(payload, f".//{DSP}nonce")
    find(payload, f".//{DSP}ReplayProtect").remove(nonce)


def _replay_protect_naive_timestamp(payload: etree._Element, keys: Keys) -> None:
    find(payload, f".//{DSP}timestamp").text = "2024-05-01T12:00:00"


def _signed_object_without_id(payload: etree._Element, keys: Keys) -> None:
    del payload[1].attrib[f"{OADR}Id"]


def _unqualified_id(payload: etree._Element, keys: Keys) -> None:
    """`Id` without the oadr: prefix is not the schema's attribute: nothing to reference."""
    del payload[1].attrib[f"{OADR}Id"]
    payload[1].set("Id", "oadrSignedObject")


def _reference_by_another_id(payload: etree._Element, keys: Keys) -> None:
    """Same element, reached through a second Id: the profile says by its oadr:Id."""
    payload[1].set("Id", "alias")
    find(payload, f".//{DS}Reference").set("URI", "#alias")


def _algorithm(path: str, uri: str) -> Callable[[etree._Element, Keys], None]:
    def change(payload: etree._Element, keys: Keys) -> None:
        for element in payload.iterfind(path):
            element.set("Algorithm", uri)

    return change


def _inclusive_namespaces(payload: etree._Element, keys: Keys) -> None:
    transform = find(payload, f".//{DS}Transform")
    transform.set("Algorithm", "http://www.w3.org/2001/10/xml-exc-c14n#")
    etree.SubElement(
        transform,
        "{http://www.w3.org/2001/10/xml-exc-c14n#}InclusiveNamespaces",
        PrefixList="oadr",
    )


def _xpath_transform(payload: etree._Element, keys: Keys) -> None:
    transforms = find(payload, f".//{DS}Transforms")
    xpath = etree.SubElement(
        transforms, f"{DS}Transform", Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"
    )
    etree.SubElement(xpath, f"{DS}XPath").text = "not(ancestor-or-self::ei:venID)"


def _certificate_in_second_x509_data(payload: etree._Element, keys: Keys) -> None:
    x509_data = find(payload, f".//{DS}X509Data")
    x509_data.addnext(etree.fromstring(etree.tostring(x509_data)))


def _too_many_certificates(payload: etree._Element, keys: Keys) -> None:
    certificate = find(payload, f".//{DS}X509Certificate")
    for _ in range(4):
        certificate.addnext(etree.fromstring(etree.tostring(certificate)))


def _no_key_info(payload: etree._Element, keys: Keys) -> None:
    payload[0].remove(find(payload, f".//{DS}KeyInfo"))


SIGNATURE_METHOD = f".//{DS}SignatureMethod"
TRANSFORM = f".//{DS}Transform"
C14N_METHOD = f".//{DS}CanonicalizationMethod"
XMLDSIG_MORE = "http://www.w3.org/2001/04/xmldsig-more#"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
XSLT = "http://www.w3.org/TR/1999/REC-xslt-19991116"
C14N11 = "http://www.w3.org/2006/12/xml-c14n11"
WITH_COMMENTS = signing.C14N + "#WithComments"


def _object_without_replay_protect(payload: etree._Element, keys: Keys) -> None:
    replay_protect = find(payload, f".//{DSP}ReplayProtect")
    replay_protect.getparent().remove(replay_protect)  # type: ignore[union-attr]


STRUCTURAL: list[tuple[str, Callable[[etree._Element, Keys], None], str]] = [
    ("wrap-original-in-object", _move_original_into_object, "oadrSignedObject"),
    ("duplicate-signed-object", _duplicate_signed_object, "oadrSignedObject"),
    ("second-signed-object", _second_signed_object_other_id, "oadrSignedObject"),
    ("signed-object-first", _signed_object_first, "Signature, then oadrSignedObject"),
    ("signature-deep-inside", _signature_inside_payload, "Signature, then oadrSignedObject"),
    ("second-signature", _second_signature, "more than one ds:Signature"),
    ("id-collision-keyinfo", _id_collision_elsewhere, "used more than once"),
    ("id-collision-gml-id", _id_collision_namespaced, "used more than once"),
    ("reference-inside-signed-object", _reference_inside_signed_object, "neither"),
    ("reference-to-keyinfo", _reference_to_key_info, "neither"),
    ("reference-by-another-id", _reference_by_another_id, "by its oadr:Id"),
    ("both-references-signed-object", _both_references_to_signed_object, "neither"),
    ("whole-document-reference", _whole_document_reference, "not an Id"),
    ("external-reference", _external_reference, "not an Id"),
    ("xpointer-reference", _xpointer_reference, "not an Id"),
    ("three-references", _third_reference, "must hold exactly"),
    ("one-reference", _one_reference, "must hold exactly"),
    ("missing-replay-protect", _missing_replay_protect, "must hold exactly"),
    ("replay-protect-unreferenced", _replay_protect_in_second_object, "must hold exactly"),
    ("replay-protect-without-nonce", _replay_protect_without_nonce, "timestamp, then nonce"),
    ("timestamp-without-zone", _replay_protect_naive_timestamp, "with a zone"),
    ("signed-object-without-id", _signed_object_without_id, "no oadr:Id"),
    ("unqualified-id", _unqualified_id, "no oadr:Id"),
    ("object-without-replay-protect", _object_without_replay_protect, "exactly one ReplayProtect"),
    ("rsa-sha1", _algorithm(SIGNATURE_METHOD, RSA_SHA1), "refused"),
    ("hmac-sha256", _algorithm(SIGNATURE_METHOD, XMLDSIG_MORE + "hmac-sha256"), "refused"),
    ("ecdsa-with-rsa-key", _algorithm(SIGNATURE_METHOD, signing.ECDSA_SHA256), "does not fit"),
    ("digest-sha1", _algorithm(f".//{DS}DigestMethod", SHA1), "refused"),
    ("c14n-with-comments", _algorithm(TRANSFORM, WITH_COMMENTS), "refused"),
    ("c14n-1.1", _algorithm(TRANSFORM, C14N11), "refused"),
    ("xslt-transform", _algorithm(TRANSFORM, XSLT), "refused"),
    ("enveloped-transform", _algorithm(TRANSFORM, ENVELOPED), "refused"),
    ("xpath-transform", _xpath_transform, "must hold exactly"),
    ("inclusive-namespaces", _inclusive_namespaces, "refused"),
    ("signed-info-c14n-with-comments", _algorithm(C14N_METHOD, WITH_COMMENTS), "refused"),
    ("certificate-in-second-x509data", _certificate_in_second_x509_data, "one X509Data"),
    ("too-many-certificates", _too_many_certificates, "one X509Data"),
    ("no-key-info", _no_key_info, "must hold exactly"),
]


@pytest.mark.parametrize(
    ("attack", "error"), [s[1:] for s in STRUCTURAL], ids=[s[0] for s in STRUCTURAL]
)
def test_structural_attacks_are_refused(
    keys: Keys, attack: Callable[[etree._Element, Keys], None], error: str
) -> None:
    payload = on_the_wire(make_signed(keys.rsa))
    attack(payload, keys)
    resign(payload, keys.rsa)
    guard = ReplayGuard()
    with pytest.raises(SignatureInvalid, match=error):
        signing.verify(on_the_wire(payload), now=NOW, replay_guard=guard)
    assert len(guard) == 0  # nothing unverified reaches the nonce memory


def test_rsa_sha1_is_refused_even_when_signed_with_sha1(keys: Keys) -> None:
    payload = make_signed(keys.rsa)
    find(payload, SIGNATURE_METHOD).set("Algorithm", RSA_SHA1)
    resign(payload, keys.rsa, hash_name="sha1")
    with pytest.raises(SignatureInvalid, match="refused"):
        signing.verify(payload, now=NOW, replay_guard=None)


def test_exclusive_c14n_is_accepted(keys: Keys) -> None:
    payload = make_signed(keys.ecdsa)
    for path in (TRANSFORM, C14N_METHOD):
        for element in payload.iterfind(path):
            element.set("Algorithm", signing.EXC_C14N)
    resign(payload, keys.ecdsa)
    verified = signing.verify(on_the_wire(payload), now=NOW, replay_guard=None)
    assert verified.signed_object.findtext(f".//{EI}venID") == "ven-1"


def test_reference_to_the_signature_property_is_accepted(keys: Keys) -> None:
    """Signers may point the second reference at SignatureProperty rather than at ds:Object."""
    payload = make_signed(keys.rsa)
    find(payload, f".//{DS}SignatureProperty").set("Id", "property")
    find(payload, f".//{DS}SignedInfo")[3].set("URI", "#property")
    resign(payload, keys.rsa)
    assert signing.verify(on_the_wire(payload), now=NOW, replay_guard=None).nonce == "nonce-1"


def test_short_rsa_key_is_refused(keys: Keys) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ValueError, match="2048"):
        SigningKey(small, make_certificate(small, "small"))
    # a peer's 1024-bit signature: reuse the shape, swap in the weak key by hand
    payload = make_signed(keys.rsa)
    weak = object.__new__(SigningKey)
    object.__setattr__(weak, "key", small)
    object.__setattr__(weak, "certificate", make_certificate(small, "small"))
    set_cert(payload, weak)
    resign(payload, weak)
    with pytest.raises(SignatureInvalid, match="2048"):
        signing.verify(payload, now=NOW, replay_guard=None)


def test_every_one_character_change_is_refused_or_harmless(keys: Keys) -> None:
    """Each position, a few replacements: verify() refuses with SignatureInvalid (never another
    exception) or returns exactly the original signed content."""
    signed = make_signed(keys.ecdsa)
    original = c14n(signed[1])
    text = etree.tostring(signed).decode()
    outcomes: Counter[str] = Counter()
    for position in range(len(text)):
        for replacement in " 0/:":
            mutated = text[:position] + replacement + text[position + 1 :]
            try:
                payload = etree.fromstring(mutated.encode(), PARSER)
            except etree.XMLSyntaxError:
                continue
            try:
                verified = signing.verify(payload, now=NOW, replay_guard=ReplayGuard())
            except SignatureInvalid:
                outcomes["refused"] += 1
                continue
            assert c14n(verified.signed_object) == original, (position, replacement)
            outcomes["harmless"] += 1
    assert outcomes["refused"] > 1000
    assert outcomes["harmless"] > 0  # e.g. line breaks inside base64 values


# --- replay ----------------------------------------------------------------------------------


def test_replayed_message_is_refused(keys: Keys) -> None:
    guard = ReplayGuard()
    message = etree.tostring(make_signed(keys.rsa, nonce="once"))
    signing.verify(etree.fromstring(message, PARSER), now=NOW, replay_guard=guard)
    with pytest.raises(ReplayDetected, match="used before"):
        signing.verify(
            etree.fromstring(message, PARSER), now=NOW + timedelta(seconds=1), replay_guard=guard
        )


def test_nonce_is_single_use_whatever_the_timestamp(keys: Keys) -> None:
    guard = ReplayGuard()
    first = make_signed(keys.rsa, nonce="n", now=NOW)
    second = make_signed(keys.ecdsa, nonce="n", now=NOW + timedelta(seconds=2))
    signing.verify(first, now=NOW, replay_guard=guard)
    with pytest.raises(ReplayDetected, match="used before"):
        signing.verify(second, now=NOW + timedelta(seconds=2), replay_guard=guard)


@pytest.mark.parametrize(
    ("signed_at", "accepted"),
    [
        (NOW - timedelta(seconds=5), True),
        (NOW + timedelta(seconds=5), True),
        (NOW - timedelta(seconds=5, microseconds=1), False),
        (NOW + timedelta(seconds=5, microseconds=1), False),
        (NOW - timedelta(days=1), False),
        (NOW + timedelta(hours=1), False),
    ],
    ids=["5s-old", "5s-ahead", "stale", "future", "a-day-old", "an-hour-ahead"],
)
@pytest.mark.parametrize("with_guard", [True, False], ids=["guard", "no-guard"])
def test_timestamp_window(
    keys: Keys, signed_at: datetime, accepted: bool, with_guard: bool
) -> None:
    payload = make_signed(keys.ecdsa, now=signed_at)
    guard = ReplayGuard() if with_guard else None
    if accepted:
        assert signing.verify(payload, now=NOW, replay_guard=guard).timestamp == signed_at
    else:
        with pytest.raises(ReplayDetected, match=r"ago|future"):
            signing.verify(payload, now=NOW, replay_guard=guard)


def test_window_is_configurable(keys: Keys) -> None:
    payload = make_signed(keys.ecdsa, now=NOW - timedelta(seconds=30))
    verified = signing.verify(payload, now=NOW, replay_guard=ReplayGuard(timedelta(minutes=1)))
    assert verified.timestamp == NOW - timedelta(seconds=30)


def test_guard_forgets_expired_nonces_and_still_refuses_their_replay() -> None:
    guard = ReplayGuard(window=timedelta(seconds=5))
    guard.check(timestamp=NOW, nonce="a", now=NOW)
    guard.check(timestamp=NOW + timedelta(seconds=10), nonce="b", now=NOW + timedelta(seconds=10))
    assert len(guard) == 1  # "a" fell out of the window
    with pytest.raises(ReplayDetected, match="ago"):
        guard.check(timestamp=NOW, nonce="a", now=NOW + timedelta(seconds=10))
    # even if the caller's clock steps back, the forgotten nonce is not accepted again
    with pytest.raises(ReplayDetected, match="older than the nonces still remembered"):
        guard.check(timestamp=NOW, nonce="a", now=NOW)


def test_full_guard_evicts_oldest_and_refuses_anything_that_old() -> None:
    guard = ReplayGuard(window=timedelta(minutes=1), max_entries=2)
    for seconds, nonce in [(1, "a"), (2, "b"), (3, "c")]:
        guard.check(timestamp=NOW + timedelta(seconds=seconds), nonce=nonce, now=NOW)
    assert len(guard) == 2  # "a" evicted
    with pytest.raises(ReplayDetected, match="older than"):
        guard.check(timestamp=NOW + timedelta(seconds=1), nonce="a", now=NOW)
    with pytest.raises(ReplayDetected, match="older than"):
        guard.check(timestamp=NOW, nonce="fresh-but-old", now=NOW)
    with pytest.raises(ReplayDetected, match="used before"):
        guard.check(timestamp=NOW + timedelta(seconds=9), nonce="b", now=NOW)
    guard.check(timestamp=NOW + timedelta(seconds=4), nonce="d", now=NOW)
    assert len(guard) == 2


def test_guard_memory_stays_bounded_under_a_flood() -> None:
    guard = ReplayGuard(window=timedelta(hours=1), max_entries=100)
    for i in range(1000):
        guard.check(timestamp=NOW + timedelta(microseconds=i), nonce=f"n{i}", now=NOW)
    assert len(guard) == 100


@pytest.mark.parametrize("nonce", ["", "x" * (signing.MAX_NONCE_LENGTH + 1)], ids=["empty", "huge"])
def test_guard_refuses_unusable_nonces(nonce: str) -> None:
    with pytest.raises(ReplayDetected, match="nonce"):
        ReplayGuard().check(timestamp=NOW, nonce=nonce, now=NOW)


def test_guard_rejects_bad_settings() -> None:
    with pytest.raises(ValueError):
        ReplayGuard(max_entries=0)
    with pytest.raises(ValueError):
        ReplayGuard(window=timedelta(seconds=-1))


# --- keys and caller mistakes ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rsa", "ecdsa"])
def test_signing_key_from_pem_with_passphrase(keys: Keys, kind: str) -> None:
    key = keys.by_kind(kind)
    key_pem = key.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    cert_pem = key.certificate.public_bytes(serialization.Encoding.PEM)
    loaded = SigningKey.from_pem(key_pem, cert_pem, passphrase=b"secret")
    assert loaded.certificate == key.certificate
    signing.verify(make_signed(loaded), now=NOW, replay_guard=None)

    with pytest.raises(ValueError) as raised:
        SigningKey.from_pem(key_pem, cert_pem, passphrase=b"wrong")
    assert raised.value.__suppress_context__  # the library's exception is not shown with ours
    assert "PRIVATE KEY" not in str(raised.value)
    assert key_pem.decode().splitlines()[1] not in str(raised.value)


def test_signing_key_refuses_a_certificate_for_another_key(keys: Keys) -> None:
    with pytest.raises(ValueError, match="not for this private key"):
        SigningKey(keys.rsa.key, keys.other_rsa.certificate)


def test_error_messages_carry_no_key_material(keys: Keys) -> None:
    payload = make_signed(keys.rsa)
    _tamper_signature_value(payload, keys)
    with pytest.raises(SignatureInvalid) as raised:
        signing.verify(payload, now=NOW, replay_guard=None)
    der = keys.rsa.certificate.public_bytes(serialization.Encoding.DER)
    assert base64.b64encode(der).decode()[:40] not in str(raised.value)
    assert (find(payload, f".//{DS}SignatureValue").text or "")[:40] not in str(raised.value)


def _sign_twice(payload: etree._Element, key: SigningKey) -> None:
    signing.sign(payload, key, now=NOW, nonce="a")
    signing.sign(payload, key, now=NOW, nonce="b")


def _sign_without_id(payload: etree._Element, key: SigningKey) -> None:
    payload[0].attrib.clear()
    signing.sign(payload, key, now=NOW, nonce="n")


def _sign_with_duplicate_id(payload: etree._Element, key: SigningKey) -> None:
    payload[0].set("Id", "x")
    payload[0].set(f"{OADR}Id", "x")
    signing.sign(payload, key, now=NOW, nonce="n")


def _sign_with(**kwargs: object) -> Callable[[etree._Element, SigningKey], None]:
    def call(payload: etree._Element, key: SigningKey) -> None:
        arguments: dict[str, object] = {"now": NOW, "nonce": "n", **kwargs}
        signing.sign(payload, key, **arguments)  # type: ignore[arg-type]

    return call


def _sign_child(payload: etree._Element, key: SigningKey) -> None:
    signing.sign(payload[0], key, now=NOW, nonce="n")


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (_sign_with(now=NOW.replace(tzinfo=None)), "aware"),
        (_sign_with(nonce=""), "nonce"),
        (_sign_with(nonce=" n "), "nonce"),
        (_sign_child, "oadrPayload root"),
        (_sign_twice, "already signed"),
        (_sign_without_id, "oadr:Id"),
        (_sign_with_duplicate_id, "more than once"),
    ],
    ids=["naive-now", "empty-nonce", "padded-nonce", "not-root", "twice", "no-id", "duplicate-id"],
)
def test_sign_refuses_caller_mistakes(
    keys: Keys, change: Callable[[etree._Element, SigningKey], None], error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        change(make_payload(), keys.rsa)


def test_verify_refuses_a_naive_now(keys: Keys) -> None:
    with pytest.raises(ValueError, match="aware"):
        signing.verify(make_signed(keys.rsa), now=NOW.replace(tzinfo=None), replay_guard=None)


# --- golden messages, ours and OpenLEADR's (made by tests/interop/test_signing_openleadr.py) ---


def _golden_files() -> list[Path]:
    return sorted(SIGNED_FIXTURES.glob("*.xml"))


def test_golden_files_cover_both_signers_and_both_key_types() -> None:
    names = {path.stem for path in _golden_files()}
    for signer in ("flex4grid", "openleadr"):
        for kind in ("rsa2048", "p256"):
            assert any(name.startswith(f"{signer}-{kind}-") for name in names), (signer, kind)


@pytest.mark.parametrize("path", _golden_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_golden_signed_message_verifies_at_its_timestamp(path: Path) -> None:
    payload = etree.fromstring(path.read_bytes(), PARSER)
    stamp = find(payload, f".//{DSP}timestamp").text or ""
    signed_at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))

    verified = signing.verify(payload, now=signed_at, replay_guard=ReplayGuard())

    assert verified.timestamp == signed_at
    assert verified.signed_object.get(f"{OADR}Id") == payload[1].get(f"{OADR}Id")
    key = verified.certificate.public_key()
    assert isinstance(
        key, rsa.RSAPublicKey if "-rsa2048-" in path.name else ec.EllipticCurvePublicKey
    )
    with pytest.raises(ReplayDetected):
        signing.verify(payload, now=signed_at + timedelta(seconds=6), replay_guard=None)


def test_a_chain_after_the_signer_certificate_is_accepted(keys: Keys) -> None:
    """OpenLEADR sends signer + intermediates when given a chain file; the signer comes first."""
    payload = on_the_wire(make_signed(keys.rsa))
    certificate = find(payload, f".//{DS}X509Certificate")
    intermediate = etree.fromstring(etree.tostring(certificate))
    intermediate.text = base64.b64encode(
        keys.ecdsa.certificate.public_bytes(serialization.Encoding.DER)
    ).decode()
    certificate.addnext(intermediate)  # KeyInfo is not covered by the signature
    verified = signing.verify(payload, now=NOW, replay_guard=None)
    assert verified.certificate == keys.rsa.certificate
