"""XML signatures on oadrPayload with ReplayProtect (OpenADR 2.0b profile, "high security").

The wire form is what OpenLEADR (signxml) produces and what the profile describes: `ds:Signature`
is the first child of `oadrPayload`; it is detached and has two references, one to the
`oadrSignedObject` by its `oadr:Id`, one to the `ds:Object` whose SignatureProperty holds
`dsp:ReplayProtect` (timestamp, nonce); inclusive C14N 1.0, SHA-256 digests, rsa-sha256 or
ecdsa-sha256, the signer's certificate in KeyInfo/X509Data.

`verify()` checks that shape by hand before any cryptography and returns the element that was
actually digested (re-parsed from its canonical bytes), so a caller that decodes only that element
cannot be fooled by signature wrapping. It is lxml's C14N plus `cryptography`, chosen over signxml
and python-xmlsec by the figures in `benchmarks/signing.py` and because every accepted shape is
spelled out here. Pure: callers pass `now` and the nonce.
"""

from __future__ import annotations

import base64
import binascii
import copy
import functools
import hashlib
import heapq
import hmac
import re
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from lxml import etree

from oadr import templates
from oadr.errors import ReplayDetected, SignatureInvalid

OADR_NS: Final = "http://openadr.org/oadr-2.0b/2012/07"
DS_NS: Final = "http://www.w3.org/2000/09/xmldsig#"
DSP_NS: Final = "http://openadr.org/oadr-2.0b/2012/07/xmldsig-properties"

C14N: Final = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
EXC_C14N: Final = "http://www.w3.org/2001/10/xml-exc-c14n#"
RSA_SHA256: Final = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ECDSA_SHA256: Final = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
SHA256: Final = "http://www.w3.org/2001/04/xmlenc#sha256"

# C14N 1.0 without comments, inclusive (what the profile names) or exclusive; value: exclusive?
# The #WithComments variants, C14N 1.1, XPath/XSLT and enveloped transforms are refused.
_C14N_ALGORITHMS: Final = {C14N: False, EXC_C14N: True}

DEFAULT_WINDOW: Final = timedelta(seconds=5)  # OpenLEADR's REPLAY_PROTECT_MAX_TIME_DELTA
MAX_NONCE_LENGTH: Final = 256  # bounds ReplayGuard memory; OpenLEADR sends 32 hex digits
PROPERTIES_ID: Final = "oadrReplayProtect"  # Id of the ds:Object we sign; any unique value works

_OADR_PAYLOAD: Final = f"{{{OADR_NS}}}oadrPayload"
_SIGNED_OBJECT: Final = f"{{{OADR_NS}}}oadrSignedObject"
_OADR_ID: Final = f"{{{OADR_NS}}}Id"
_REPLAY_PROTECT: Final = f"{{{DSP_NS}}}ReplayProtect"
_TIMESTAMP: Final = f"{{{DSP_NS}}}timestamp"
_NONCE: Final = f"{{{DSP_NS}}}nonce"


def _ds(name: str) -> str:
    return f"{{{DS_NS}}}{name}"


_SIGNATURE: Final = _ds("Signature")

# Every attribute a resolver (signxml, xmlsec, ours) might take for an Id: Id, ID, xml:id, gml:id.
_ID_NAMES: Final = frozenset({"Id", "ID", "id"})
_WITH_ID: Final = etree.XPath(
    "//*[@*[local-name()='Id' or local-name()='ID' or local-name()='id']]"
)
_DATETIME: Final = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)\Z",
    re.ASCII,
)


@dataclass(frozen=True)
class SigningKey:
    """A private key and the certificate that goes into KeyInfo: RSA >= 2048 bits or P-256."""

    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    def __post_init__(self) -> None:
        _check_public_key(self.key.public_key())
        own = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        certified = self.certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if own != certified:
            raise ValueError("the certificate is not for this private key")

    @functools.cached_property
    def certificate_text(self) -> str:
        """The certificate as KeyInfo carries it (base64 in 64-character lines)."""
        return _base64_lines(self.certificate.public_bytes(serialization.Encoding.DER))

    @classmethod
    def from_pem(
        cls, key_pem: bytes, cert_pem: bytes, passphrase: bytes | None = None
    ) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(key_pem, passphrase)
        except (ValueError, TypeError):
            # `from None`: the library's message must not travel with key bytes attached
            raise ValueError("cannot load the private key (not PEM, or wrong passphrase)") from None
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ValueError("the private key must be RSA or ECDSA")
        return cls(key, x509.load_pem_x509_certificate(cert_pem))


@dataclass(frozen=True)
class VerifiedSignature:
    """What a valid signature vouches for. Decode `signed_object` and nothing else."""

    signed_object: etree._Element
    certificate: x509.Certificate
    timestamp: datetime
    nonce: str
    certificate_der: bytes  # the certificate as KeyInfo carried it (for its fingerprint)


class ReplayGuard:
    """Remembers ReplayProtect nonces; refuses reuse and timestamps outside now ± window.

    A nonce is kept until its timestamp falls out of the window, or until `max_entries` newer
    ones push it out. Either way the guard then refuses every timestamp at or before the newest
    one it has forgotten, so forgetting never lets a replay through, even if `now` steps back.
    """

    def __init__(self, window: timedelta = DEFAULT_WINDOW, max_entries: int = 100_000) -> None:
        if window < timedelta(0) or max_entries < 1:
            raise ValueError("window must be >= 0 and max_entries >= 1")
        self.window = window
        self.max_entries = max_entries
        self._nonces: set[str] = set()
        self._by_age: list[tuple[datetime, str]] = []  # heap, oldest timestamp first
        self._forgotten_up_to: datetime | None = None

    def __len__(self) -> int:
        return len(self._nonces)

    def check(self, *, timestamp: datetime, nonce: str, now: datetime) -> None:
        _check_window(timestamp, now, self.window)
        if not nonce or len(nonce) > MAX_NONCE_LENGTH:
            raise ReplayDetected(f"the nonce must be 1 to {MAX_NONCE_LENGTH} characters")
        while self._by_age and self._by_age[0][0] < now - self.window:
            self._forget_oldest()
        if nonce in self._nonces:
            raise ReplayDetected("this ReplayProtect nonce was used before")
        if self._forgotten_up_to is not None and timestamp <= self._forgotten_up_to:
            raise ReplayDetected("the timestamp is older than the nonces still remembered")
        self._nonces.add(nonce)
        heapq.heappush(self._by_age, (timestamp, nonce))
        while len(self._nonces) > self.max_entries:
            self._forget_oldest()

    def _forget_oldest(self) -> None:
        timestamp, nonce = heapq.heappop(self._by_age)
        self._nonces.discard(nonce)
        if self._forgotten_up_to is None or timestamp > self._forgotten_up_to:
            self._forgotten_up_to = timestamp


def is_signed(payload: etree._Element) -> bool:
    """True if a ds:Signature appears anywhere, so a misplaced one is refused, not ignored."""
    return next(payload.iter(_SIGNATURE), None) is not None


def claimed_timestamp(payload: etree._Element) -> datetime | None:
    """The ReplayProtect timestamp a message claims, unverified (None if there is none).

    For tools that check a stored message's integrity at the time it was signed; live traffic
    goes through `verify()` with the real clock.
    """
    found = next(payload.iter(_TIMESTAMP), None)
    if found is None:
        return None
    try:
        return _parse_datetime(found.text or "")
    except SignatureInvalid:
        return None


def sign(payload: etree._Element, signing_key: SigningKey, *, now: datetime, nonce: str) -> None:
    """Insert ds:Signature as the first child of `payload`, the oadrPayload root.

    `now` (aware) becomes the ReplayProtect timestamp; `nonce` must be fresh for every message.
    """
    _require_aware(now, "now")
    if not nonce or len(nonce) > MAX_NONCE_LENGTH or nonce != nonce.strip():
        raise ValueError(f"the nonce must be 1 to {MAX_NONCE_LENGTH} characters, no outer spaces")
    if payload.tag != _OADR_PAYLOAD:
        raise ValueError("sign() takes the oadrPayload root")
    if is_signed(payload):
        raise ValueError("the payload is already signed")
    signed_objects = [child for child in payload if child.tag == _SIGNED_OBJECT]
    signed_id = signed_objects[0].get(_OADR_ID) if len(signed_objects) == 1 else None
    if not signed_id:
        raise ValueError("the payload needs exactly one oadrSignedObject with an oadr:Id")
    if PROPERTIES_ID in _ids(payload, ValueError):
        raise ValueError(f"the payload already uses the Id {PROPERTIES_ID!r}")

    algorithm = RSA_SHA256 if isinstance(signing_key.key, rsa.RSAPrivateKey) else ECDSA_SHA256
    signature = copy.deepcopy(
        _signature_template(algorithm, signed_id, signing_key.certificate_text)
    )
    signed_info, signature_value, _key_info, properties = signature
    object_digest = signed_info[2][2]
    properties_digest = signed_info[3][2]
    replay_protect = properties[0][0][0]
    replay_protect[0].text = _format_datetime(now)
    replay_protect[1].text = nonce

    # Digest in place: inclusive C14N carries the namespaces in scope, so it must see the
    # Signature where the verifier will.
    payload.insert(0, signature)
    object_digest.text = _digest_b64(_c14n(signed_objects[0], exclusive=False))
    properties_digest.text = _digest_b64(_c14n(properties, exclusive=False))
    signed_bytes = _c14n(signed_info, exclusive=False)
    signature_value.text = base64.b64encode(_sign_bytes(signing_key.key, signed_bytes)).decode()


# --- templates: the same signature, computed over byte pieces --------------------------------


@dataclass(frozen=True)
class SignedTemplate:
    """A signed oadrPayload cut into byte pieces around what changes from message to message:
    the ReplayProtect timestamp and nonce, the venID, and the two digests and the signature
    value they lead to. `fill()` computes those exactly as `sign()` does (SHA-256 over the
    canonical Object and oadrSignedObject, then the key's signature over the canonical
    SignedInfo), with no tree, no C14N and no schema check per message: the pieces are what
    `sign()`, C14N and lxml produced once, for sentinel values (`template()`). A fresh timestamp
    and nonce go into every message, as the profile requires."""

    signing_key: SigningKey
    document: templates.Cut  # the document as sent
    signed_object: templates.Cut  # canonical oadrSignedObject
    properties: templates.Cut  # canonical ds:Object (ReplayProtect)
    signed_info: templates.Cut  # canonical ds:SignedInfo

    def fill(self, *, ven_id: str, now: datetime, nonce: str) -> bytes:
        """The signed document for this venID, timestamp and nonce. ValueError for a venID or
        nonce that is not plain text (`templates.verbatim`): use `sign` for those."""
        _require_aware(now, "now")
        if len(nonce) > MAX_NONCE_LENGTH or not (
            templates.verbatim(nonce) and templates.verbatim(ven_id)
        ):
            raise ValueError("a templated venID and nonce are plain text: letters, digits, ._:+/=-")
        values = {"ven_id": ven_id.encode(), "timestamp": _format_datetime(now).encode()}
        values["nonce"] = nonce.encode()
        values["object_digest"] = _digest_b64(self.signed_object.join(values)).encode()
        values["properties_digest"] = _digest_b64(self.properties.join(values)).encode()
        signed = _sign_bytes(self.signing_key.key, self.signed_info.join(values))
        values["signature"] = base64.b64encode(signed)
        return self.document.join(values)


def template(payload: etree._Element, signing_key: SigningKey, ven_id: str) -> SignedTemplate:
    """Sign `payload` (the oadrPayload root, its venID text `ven_id` wherever a venID goes, a
    value found nowhere else) with sentinel ReplayProtect values, and cut the result into a
    `SignedTemplate`. ValueError if a sentinel does not appear exactly where expected (then
    sign message by message)."""
    salt = uuid.uuid4().hex
    sentinel_time = datetime(2999, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(salt[:5], 16))
    sentinel_nonce = f"nonce{salt}"
    sign(payload, signing_key, now=sentinel_time, nonce=sentinel_nonce)
    signature = payload[0]
    signed_info, signature_value, _key_info, properties = signature
    slots = {
        "ven_id": ven_id,
        "timestamp": _format_datetime(sentinel_time),
        "nonce": sentinel_nonce,
        "object_digest": signed_info[2][2].text or "",
        "properties_digest": signed_info[3][2].text or "",
        "signature": signature_value.text or "",
    }
    document = etree.tostring(payload, xml_declaration=True, encoding="UTF-8")
    cut = functools.partial(templates.cut, sentinels=slots, free="ven_id")
    return SignedTemplate(
        signing_key=signing_key,
        document=cut(
            document,
            expect=("object_digest", "properties_digest", "signature", "timestamp", "nonce"),
        ),
        signed_object=cut(_c14n(payload[1], exclusive=False), expect=()),
        properties=cut(_c14n(properties, exclusive=False), expect=("timestamp", "nonce")),
        signed_info=cut(
            _c14n(signed_info, exclusive=False), expect=("object_digest", "properties_digest")
        ),
    )


@functools.lru_cache(maxsize=64)
def _signature_template(algorithm: str, signed_id: str, certificate_text: str) -> etree._Element:
    """The ds:Signature `sign` inserts, digests, value, timestamp and nonce still empty: built
    once per signer and copied per message (building it was a sixth of signing)."""
    signature = etree.Element(_SIGNATURE, nsmap={"ds": DS_NS})
    signed_info = etree.SubElement(signature, _ds("SignedInfo"))
    etree.SubElement(signed_info, _ds("CanonicalizationMethod"), Algorithm=C14N)
    etree.SubElement(signed_info, _ds("SignatureMethod"), Algorithm=algorithm)
    _add_reference(signed_info, f"#{signed_id}")
    _add_reference(signed_info, f"#{PROPERTIES_ID}")
    etree.SubElement(signature, _ds("SignatureValue"))
    x509_data = etree.SubElement(etree.SubElement(signature, _ds("KeyInfo")), _ds("X509Data"))
    etree.SubElement(x509_data, _ds("X509Certificate")).text = certificate_text
    properties = etree.SubElement(signature, _ds("Object"), Id=PROPERTIES_ID)
    signature_property = etree.SubElement(
        etree.SubElement(properties, _ds("SignatureProperties")),
        _ds("SignatureProperty"),
        Target=f"#{signed_id}",
    )
    replay_protect = etree.SubElement(signature_property, _REPLAY_PROTECT, nsmap={"dsp": DSP_NS})
    etree.SubElement(replay_protect, _TIMESTAMP)
    etree.SubElement(replay_protect, _NONCE)
    return signature


def verify(
    payload: etree._Element, *, now: datetime, replay_guard: ReplayGuard | None
) -> VerifiedSignature:
    """Check the signature of an oadrPayload root and its ReplayProtect.

    Raises SignatureInvalid for anything but exactly the shape described in the module docstring,
    ReplayDetected for a reused nonce or a timestamp outside the window. Without a `replay_guard`
    only the timestamp is checked (default window), and no nonce is remembered.
    """
    _require_aware(now, "now")
    if payload.tag != _OADR_PAYLOAD:
        raise SignatureInvalid("the root element is not oadrPayload")
    signatures = list(payload.iter(_SIGNATURE))
    if not signatures:
        raise SignatureInvalid("the message is not signed")
    if len(signatures) > 1:
        raise SignatureInvalid("the message holds more than one ds:Signature")
    signature = signatures[0]
    children = _elements(payload)
    if len(children) != 2 or children[0] is not signature or children[1].tag != _SIGNED_OBJECT:
        raise SignatureInvalid("oadrPayload must hold ds:Signature, then oadrSignedObject")
    signed_object = children[1]
    if sum(1 for _ in payload.iter(_SIGNED_OBJECT)) != 1:
        raise SignatureInvalid("the message holds more than one oadrSignedObject")
    signed_id = signed_object.get(_OADR_ID)
    if not signed_id:
        raise SignatureInvalid("oadrSignedObject has no oadr:Id to reference")
    ids = _ids(payload, SignatureInvalid)

    signed_info, signature_value, key_info, properties = _expect(
        signature, "SignedInfo", "SignatureValue", "KeyInfo", "Object"
    )
    c14n_method, signature_method, *references = _expect(
        signed_info, "CanonicalizationMethod", "SignatureMethod", "Reference", "Reference"
    )
    signed_info_exclusive = _c14n_algorithm(c14n_method)
    algorithm = _algorithm(signature_method, (RSA_SHA256, ECDSA_SHA256))

    replay_protect = _replay_protect(payload, properties)
    object_bytes: bytes | None = None
    properties_seen = False
    for reference in references:
        target, exclusive = _reference(reference, ids)
        canonical = _c14n(target, exclusive=exclusive)
        if not hmac.compare_digest(_digest_value(reference), hashlib.sha256(canonical).digest()):
            raise SignatureInvalid(f"the digest of {_describe(target)} does not match")
        if target is signed_object and object_bytes is None:
            if reference.get("URI") != f"#{signed_id}":  # not via some other Id it may carry
                raise SignatureInvalid("oadrSignedObject must be referenced by its oadr:Id")
            object_bytes = canonical
        elif _covers(target, properties, replay_protect) and not properties_seen:
            properties_seen = True
        else:
            raise SignatureInvalid("a reference points at neither oadrSignedObject nor Object")
    if object_bytes is None or not properties_seen:
        raise SignatureInvalid("the references must cover oadrSignedObject and ReplayProtect")

    der, certificate, key = _certificate(key_info)
    _verify_bytes(
        key,
        algorithm,
        _base64(signature_value, "SignatureValue"),
        _c14n(signed_info, exclusive=signed_info_exclusive),
    )

    timestamp, nonce = _read_replay_protect(replay_protect)
    if replay_guard is None:
        _check_window(timestamp, now, DEFAULT_WINDOW)
    else:
        replay_guard.check(timestamp=timestamp, nonce=nonce, now=now)
    # Hand back what was hashed, not the live element: comments and anything else C14N dropped
    # cannot reach the decoder (a comment splitting a text node truncates lxml's `.text`).
    return VerifiedSignature(_parse_canonical(object_bytes), certificate, timestamp, nonce, der)


# --- structure -------------------------------------------------------------------------------


def _elements(parent: etree._Element) -> list[etree._Element]:
    """Element children only: comments and processing instructions are not part of the shape."""
    return [child for child in parent if isinstance(child.tag, str)]


def _expect(parent: etree._Element, *names: str) -> list[etree._Element]:
    children = _elements(parent)
    if [child.tag for child in children] != [_ds(name) for name in names]:
        raise SignatureInvalid(f"{_describe(parent)} must hold exactly: {', '.join(names)}")
    return children


def _ids(
    payload: etree._Element, error: type[SignatureInvalid] | type[ValueError]
) -> dict[str, etree._Element]:
    """Id value -> element; a value used twice makes every reference to it ambiguous."""
    found: dict[str, etree._Element] = {}
    elements = _WITH_ID(payload)
    assert isinstance(elements, list)
    for element in elements:
        assert isinstance(element, etree._Element)
        for name, value in element.attrib.items():
            if str(name).rpartition("}")[2] in _ID_NAMES:
                if str(value) in found:
                    raise error(f"the Id {_quote(str(value))} is used more than once")
                found[str(value)] = element
    return found


def _c14n_algorithm(element: etree._Element) -> bool:
    algorithm = _algorithm(element, tuple(_C14N_ALGORITHMS))
    return _C14N_ALGORITHMS[algorithm]


def _algorithm(element: etree._Element, allowed: tuple[str, ...]) -> str:
    algorithm = element.get("Algorithm", "")
    # A child would be a parameter (HMACOutputLength, InclusiveNamespaces, XPath): none allowed.
    if algorithm not in allowed or _elements(element):
        raise SignatureInvalid(f"{_describe(element)} algorithm {_quote(algorithm)} is refused")
    return algorithm


def _reference(
    reference: etree._Element, ids: dict[str, etree._Element]
) -> tuple[etree._Element, bool]:
    """The element a Reference points at, and whether its C14N is exclusive."""
    uri = reference.get("URI", "")
    target = ids.get(uri[1:]) if uri.startswith("#") else None
    if target is None:
        raise SignatureInvalid(f"reference {_quote(uri)} is not an Id in this message")
    children = _elements(reference)
    exclusive = False  # no Transforms: a same-document node-set is hashed as inclusive C14N 1.0
    if children and children[0].tag == _ds("Transforms"):
        (transform,) = _expect(children.pop(0), "Transform")
        exclusive = _c14n_algorithm(transform)
    if [child.tag for child in children] != [_ds("DigestMethod"), _ds("DigestValue")]:
        raise SignatureInvalid("a Reference must hold Transforms?, DigestMethod, DigestValue")
    _algorithm(children[0], (SHA256,))
    return target, exclusive


def _digest_value(reference: etree._Element) -> bytes:
    value = reference.find(_ds("DigestValue"))
    assert value is not None  # _reference() checked the shape
    digest = _base64(value, "DigestValue")
    if len(digest) != hashlib.sha256().digest_size:
        raise SignatureInvalid("DigestValue is not a SHA-256 digest")
    return digest


def _replay_protect(payload: etree._Element, properties: etree._Element) -> etree._Element:
    """The one ReplayProtect, at Object/SignatureProperties/SignatureProperty/ReplayProtect."""
    found = list(payload.iter(_REPLAY_PROTECT))
    if len(found) != 1:
        raise SignatureInvalid("the signature needs exactly one ReplayProtect")
    replay_protect = found[0]
    signature_property = replay_protect.getparent()
    signature_properties = None if signature_property is None else signature_property.getparent()
    if (
        signature_property is None
        or signature_property.tag != _ds("SignatureProperty")
        or signature_properties is None
        or signature_properties.tag != _ds("SignatureProperties")
        or signature_properties.getparent() is not properties
    ):
        raise SignatureInvalid("ReplayProtect must sit in this signature's SignatureProperty")
    return replay_protect


def _covers(
    target: etree._Element, properties: etree._Element, replay_protect: etree._Element
) -> bool:
    """The reference hashes the Object, its SignatureProperties or the SignatureProperty."""
    return target in (properties, *replay_protect.iterancestors()) and target.tag in (
        _ds("Object"),
        _ds("SignatureProperties"),
        _ds("SignatureProperty"),
    )


def _read_replay_protect(replay_protect: etree._Element) -> tuple[datetime, str]:
    children = _elements(replay_protect)
    if [child.tag for child in children] != [_TIMESTAMP, _NONCE]:
        raise SignatureInvalid("ReplayProtect must hold timestamp, then nonce")
    timestamp_element, nonce_element = children
    nonce = (nonce_element.text or "").strip()
    if not nonce or len(nonce) > MAX_NONCE_LENGTH:
        raise SignatureInvalid(
            f"the ReplayProtect nonce must be 1 to {MAX_NONCE_LENGTH} characters"
        )
    return _parse_datetime(timestamp_element.text or ""), nonce


def _describe(element: etree._Element) -> str:
    return etree.QName(element).localname


def _quote(text: str) -> str:
    """Attacker-chosen text, shortened before it goes into an error message or a log."""
    return repr(text if len(text) <= 80 else text[:77] + "...")


# --- bytes and cryptography ------------------------------------------------------------------


def _c14n(element: etree._Element, *, exclusive: bool) -> bytes:
    try:
        return etree.tostring(element, method="c14n", exclusive=exclusive, with_comments=False)
    except etree.C14NError:  # e.g. a relative namespace URI, which C14N 1.0 refuses
        raise SignatureInvalid(f"{_describe(element)} cannot be canonicalized") from None


def _parse_canonical(canonical: bytes) -> etree._Element:
    # C14N output has no DOCTYPE and no entity references left; safe settings all the same.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.fromstring(canonical, parser)


def _digest_b64(canonical: bytes) -> str:
    return base64.b64encode(hashlib.sha256(canonical).digest()).decode()


def _add_reference(signed_info: etree._Element, uri: str) -> etree._Element:
    """Append a Reference (C14N transform, SHA-256); returns its DigestValue, to fill later."""
    reference = etree.SubElement(signed_info, _ds("Reference"), URI=uri)
    transforms = etree.SubElement(reference, _ds("Transforms"))
    etree.SubElement(transforms, _ds("Transform"), Algorithm=C14N)
    etree.SubElement(reference, _ds("DigestMethod"), Algorithm=SHA256)
    return etree.SubElement(reference, _ds("DigestValue"))


def _base64(element: etree._Element, name: str) -> bytes:
    text = "".join((element.text or "").split())  # base64Binary allows line breaks
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise SignatureInvalid(f"{name} is not base64") from None


def _base64_lines(data: bytes) -> str:
    """Base64 in 64-character lines, as in PEM: OpenLEADR pastes this text between PEM armour.
    (`SigningKey.certificate_text` keeps it: a signer puts the same certificate in every
    message.)"""
    text = base64.b64encode(data).decode()
    return "".join(text[i : i + 64] + "\n" for i in range(0, len(text), 64))


_MAX_CHAIN: Final = 4
_PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


def _certificate(key_info: etree._Element) -> tuple[bytes, x509.Certificate, _PublicKey]:
    """The signer's certificate: the first X509Certificate of the one KeyInfo/X509Data.

    A peer may send its chain after it (OpenLEADR does when given a chain file); those are not
    used here, the caller checks the signer against its trust store and the venID.
    Other KeyInfo content is ignored, not trusted.
    """
    x509_data = key_info.findall(_ds("X509Data"))
    found = [] if len(x509_data) != 1 else x509_data[0].findall(_ds("X509Certificate"))
    everywhere = len(list(key_info.iter(_ds("X509Certificate"))))
    if not 1 <= len(found) <= _MAX_CHAIN or everywhere != len(found):
        raise SignatureInvalid(
            f"KeyInfo must carry one X509Data with 1 to {_MAX_CHAIN} X509Certificate (signer first)"
        )
    der = _base64(found[0], "X509Certificate")
    return (der, *_load_certificate(der))


_CERTIFICATE_CACHE: Final[OrderedDict[bytes, tuple[x509.Certificate, _PublicKey]]] = OrderedDict()
_CERTIFICATE_CACHE_SIZE: Final = 4096


def _load_certificate(der: bytes) -> tuple[x509.Certificate, _PublicKey]:
    """Parse (and check the key of) a signer certificate, remembering the last few thousand:
    a VTN sees the same VEN certificates over and over. Only the parse is cached; the
    signature is verified against it every time."""
    cached = _CERTIFICATE_CACHE.get(der)
    if cached is not None:
        _CERTIFICATE_CACHE.move_to_end(der)
        return cached
    try:
        certificate = x509.load_der_x509_certificate(der)
        key = certificate.public_key()
        _check_public_key(key)
    except (ValueError, x509.InvalidVersion, UnsupportedAlgorithm) as exc:
        raise SignatureInvalid(f"unusable signing certificate: {exc}") from None
    assert isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)  # _check_public_key
    _CERTIFICATE_CACHE[der] = (certificate, key)
    if len(_CERTIFICATE_CACHE) > _CERTIFICATE_CACHE_SIZE:
        _CERTIFICATE_CACHE.popitem(last=False)
    return certificate, key


def _check_public_key(key: object) -> None:
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise ValueError("RSA keys must have at least 2048 bits")
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("ECDSA keys must be on P-256")
    else:
        raise ValueError("only RSA and ECDSA keys are accepted")


# Algorithm objects, made once (each construction cost a few microseconds per message).
_PKCS1V15: Final = padding.PKCS1v15()
_SHA256_HASH: Final = hashes.SHA256()
_ECDSA_SHA256: Final = ec.ECDSA(_SHA256_HASH)


def _sign_bytes(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, _PKCS1V15, _SHA256_HASH)
    # XML-DSig wants ECDSA as raw r || s, each the curve size (RFC 4050), not DER
    r, s = decode_dss_signature(key.sign(data, _ECDSA_SHA256))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _verify_bytes(key: _PublicKey, algorithm: str, signature: bytes, data: bytes) -> None:
    try:
        if algorithm == RSA_SHA256 and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, _PKCS1V15, _SHA256_HASH)
        elif algorithm == ECDSA_SHA256 and isinstance(key, ec.EllipticCurvePublicKey):
            if len(signature) != 64:
                raise SignatureInvalid("an ecdsa-sha256 P-256 SignatureValue has 64 bytes")
            r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            key.verify(encode_dss_signature(r, s), data, _ECDSA_SHA256)
        else:
            raise SignatureInvalid("the SignatureMethod does not fit the certificate's key")
    except InvalidSignature:
        raise SignatureInvalid(
            "the signature does not verify with the KeyInfo certificate"
        ) from None


# --- time ------------------------------------------------------------------------------------


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime")


def _format_datetime(value: datetime) -> str:
    """Microseconds and Z: the form OpenLEADR's parse_datetime reads."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _parse_datetime(text: str) -> datetime:
    """xs:dateTime with a zone (a ReplayProtect time without one means nothing); UTC out."""
    match = _DATETIME.match(text.strip())
    if match is None:
        raise SignatureInvalid("the ReplayProtect timestamp is not an xs:dateTime with a zone")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        tz = UTC
        if zone != "Z":
            sign_ = -1 if zone[0] == "-" else 1
            tz = timezone(sign_ * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        microsecond = int((fraction or "0")[:6].ljust(6, "0"))
        value = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), microsecond, tz
        )
        return value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise SignatureInvalid("the ReplayProtect timestamp is not a valid time") from None


def _check_window(timestamp: datetime, now: datetime, window: timedelta) -> None:
    _require_aware(timestamp, "timestamp")
    _require_aware(now, "now")
    if timestamp < now - window:
        raise ReplayDetected(f"the message was signed more than {window.total_seconds():g} s ago")
    if timestamp > now + window:
        raise ReplayDetected(
            f"the message is signed more than {window.total_seconds():g} s in the future"
        )
