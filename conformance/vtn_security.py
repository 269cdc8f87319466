"""VTN cases, security group (test plan G1_4010 and the negative cases of the issue).

TLS: the Alliance's TLS 1.2 suites must work; a VEN without a client certificate, or with one
from a CA the VTN does not trust (the harness makes a throwaway one), gets no service. Identity:
a registered VEN cannot speak for another venID (463). Messages: schema-invalid and hostile
XML are refused, the VTN still serves afterwards; an XML signature is verified (a tampered
message is refused) and its ReplayProtect nonce is single-use; a VTN that requires signatures
refuses an unsigned message.
"""

from __future__ import annotations

import asyncio
import ssl
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from lxml import etree

from certs.ca import CertificateAuthority
from certs.dev import LOCAL_SANS
from certs.files import IdentityFiles
from certs.roles import Role
from certs.templates import parse_san
from certs.tls import OPENADR_CIPHERS
from conformance.model import Case, Group, Wire, check, skip
from conformance.vtn_peer import OK, Identity, VtnUnderTest, new_id, refused, response_code, utc_now
from oadr import codec
from oadr.exchanges import Service
from oadr.model import Poll, QueryRegistration, RequestEvent, RequestId, Response, VenId
from oadr.xmlvalues import EI

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<oadrPayload xmlns="http://openadr.org/oadr-2.0b/2012/07"><lolz>&lol3;</lolz></oadrPayload>"""


async def alliance_cipher(vtn: VtnUnderTest, wire: Wire) -> None:
    parts = urlsplit(vtn.url)
    if parts.scheme != "https":
        skip("the VTN URL is not https")
    ven = vtn.ven()
    context = ven.ssl_context
    assert context is not None
    strict = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    strict.maximum_version = strict.minimum_version = ssl.TLSVersion.TLSv1_2
    strict.set_ciphers(":".join(OPENADR_CIPHERS))
    if vtn.ca_file is not None:
        strict.load_verify_locations(cafile=str(vtn.ca_file))
    if ven.identity is not None:
        strict.load_cert_chain(ven.identity.cert, ven.identity.key)
    try:
        _, writer = await asyncio.open_connection(
            parts.hostname, parts.port or 443, ssl=strict, server_hostname=parts.hostname
        )
    except (ssl.SSLError, OSError) as exc:
        check(False, f"no TLS 1.2 session with {', '.join(OPENADR_CIPHERS)}: {exc}")
        return
    cipher = writer.get_extra_info("ssl_object").cipher()
    writer.close()
    wire.note(f"negotiated {cipher}")
    check(cipher[0] in OPENADR_CIPHERS and cipher[1] == "TLSv1.2", f"negotiated {cipher}")


async def no_client_certificate(vtn: VtnUnderTest, wire: Wire) -> None:
    if not vtn.url.startswith("https"):
        skip("the VTN URL is not https")
    anonymous = vtn.anonymous()
    query = QueryRegistration(request_id=RequestId(new_id("query")))
    how = await refused(anonymous, wire, Service.EI_REGISTER_PARTY, anonymous.encode(query))
    wire.note(f"refused: {how}")


def _stranger_identity(directory: Path) -> Identity:
    """A VEN certificate from a root nobody trusts (same names and SANs as the dev PKI's)."""
    now = datetime.now(UTC)
    ca = CertificateAuthority.create_root(directory / "root", "Conformance Stranger Root", now)
    files = IdentityFiles(directory / "ven")
    sans = [parse_san(s) for s in LOCAL_SANS]
    ca.issue(Role.VEN, "ven-stranger", now, sans=sans).write(files)
    return Identity(cert=files.chain, key=files.key)


async def unknown_certificate(vtn: VtnUnderTest, wire: Wire) -> None:
    if not vtn.url.startswith("https"):
        skip("the VTN URL is not https")
    with tempfile.TemporaryDirectory(prefix="conformance-") as directory:
        stranger = vtn.stranger(_stranger_identity(Path(directory)))
        query = QueryRegistration(request_id=RequestId(new_id("query")))
        how = await refused(stranger, wire, Service.EI_REGISTER_PARTY, stranger.encode(query))
    wire.note(f"refused: {how}")


async def wrong_ven_id(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    await ven.ensure_registered(wire)
    made_up = Poll(ven_id=VenId(new_id("not-my-ven")))
    await refused(ven, wire, Service.OADR_POLL, ven.encode(made_up))
    if len(vtn.vens) > 1:
        other = vtn.ven(1)
        other_id = await other.ensure_registered(wire)
        await refused(ven, wire, Service.OADR_POLL, ven.encode(Poll(ven_id=other_id)))
        request = RequestEvent(request_id=RequestId(new_id("req")), ven_id=other_id)
        await refused(ven, wire, Service.EI_EVENT, ven.encode(request))


async def _still_serves(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    probe = QueryRegistration(request_id=RequestId(new_id("alive")))
    status, _ = await ven.exchange(wire, Service.EI_REGISTER_PARTY, ven.encode(probe))
    check(status is not None, "the VTN no longer answers after the refused payload (crashed?)")
    reply = await ven.poll(wire)
    check(response_code(reply) in (None, OK), f"afterwards a valid Poll got {reply}")
    if not isinstance(reply, Response):
        await ven.answer(wire, reply)


async def schema_invalid(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    ven_id = await ven.ensure_registered(wire)
    document = etree.fromstring(codec.encode(Poll(ven_id=ven_id)))
    for element in document.iter(f"{{{EI}}}venID"):
        element.getparent().remove(element)  # type: ignore[union-attr]
    await refused(ven, wire, Service.OADR_POLL, etree.tostring(document))
    text = codec.encode(Poll(ven_id=ven_id)).replace(b"oadrPoll ", b"oadrPolll ", 1)
    text = text.replace(b"</oadr:oadrPoll>", b"</oadr:oadrPolll>")
    await refused(ven, wire, Service.OADR_POLL, text)
    await _still_serves(vtn, wire)


async def hostile_xml(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    await ven.ensure_registered(wire)
    await refused(ven, wire, Service.OADR_POLL, BILLION_LAUGHS)
    await _still_serves(vtn, wire)


def _signed(vtn: VtnUnderTest, payload: Poll | RequestEvent) -> bytes:
    return codec.encode(
        payload, signing_key=vtn.signing_key(0), now=utc_now(), nonce=new_id("nonce")
    )


async def replayed(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    ven_id = await ven.ensure_registered(wire)
    await ven.drain(wire)
    body = _signed(vtn, Poll(ven_id=ven_id))
    status, reply = await ven.exchange(wire, Service.OADR_POLL, body)
    if status != OK or response_code(codec.decode(reply)) not in (None, OK):
        skip("the VTN does not accept XML-signed messages (optional in 2.0b)")
    await refused(ven, wire, Service.OADR_POLL, body)


async def tampered(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    ven_id = await ven.ensure_registered(wire)
    request_id = new_id("req-aaaa")
    body = _signed(vtn, RequestEvent(request_id=RequestId(request_id), ven_id=ven_id))
    status, reply = await ven.exchange(wire, Service.EI_EVENT, body)
    if status != OK or response_code(codec.decode(reply)) not in (None, OK):
        skip("the VTN does not accept XML-signed messages (optional in 2.0b)")
    fresh = _signed(vtn, RequestEvent(request_id=RequestId(request_id), ven_id=ven_id))
    forged = fresh.replace(request_id.encode(), request_id.replace("aaaa", "bbbb").encode())
    await refused(ven, wire, Service.EI_EVENT, forged)


async def unsigned_when_required(vtn: VtnUnderTest, wire: Wire) -> None:
    if not vtn.requires_signatures:
        skip("only for a VTN that requires XML signatures: say so with --requires-signatures")
    ven = vtn.ven()
    ven_id = await ven.ensure_registered(wire)
    await refused(ven, wire, Service.OADR_POLL, codec.encode(Poll(ven_id=ven_id)))


def _c(
    case_id: str, plan: tuple[str, ...], title: str, clause: str, run: object
) -> Case[VtnUnderTest]:
    return Case(case_id, plan, title, clause, Group.SECURITY, run)  # type: ignore[arg-type]


CASES: list[Case[VtnUnderTest]] = [
    _c(
        "VTN-SEC-01",
        ("G1_4010", "STLS12"),
        "Alliance TLS 1.2 cipher",
        (
            "a TLS 1.2 session with ECDHE-ECDSA-AES128-SHA256 or AES128-SHA256 and a client "
            "certificate"
        ),
        alliance_cipher,
    ),
    _c(
        "VTN-SEC-02",
        ("G1_4010",),
        "No client certificate",
        "a VEN without a client certificate is refused (VTN_needClientAuth)",
        no_client_certificate,
    ),
    _c(
        "VTN-SEC-03",
        ("G1_4010",),
        "Unknown certificate",
        "a certificate from an untrusted CA is refused",
        unknown_certificate,
    ),
    _c(
        "VTN-SEC-04",
        ("A_E3_0780",),
        "Wrong venID",
        "a VEN naming a venID not its own (made up, or another VEN's) is refused (463)",
        wrong_ven_id,
    ),
    _c(
        "VTN-SEC-05",
        ("R1_3190", "N1_0070"),
        "Schema-invalid payload",
        "a payload failing the 2.0b XSD is refused; the VTN serves on",
        schema_invalid,
    ),
    _c(
        "VTN-SEC-06",
        ("G1_4010",),
        "Replayed signed message",
        "a ReplayProtect nonce is single-use: the same signed message twice is refused",
        replayed,
    ),
    _c(
        "VTN-SEC-07",
        ("G1_4010",),
        "Tampered signed message",
        "a signed message altered after signing is refused",
        tampered,
    ),
    _c(
        "VTN-SEC-08",
        ("G1_4010",),
        "Unsigned when signatures are required",
        "an unsigned message to a VTN that requires signatures is refused",
        unsigned_when_required,
    ),
    _c(
        "VTN-SEC-09",
        ("G1_4010",),
        "Hostile XML",
        "a DOCTYPE/entity expansion is refused; the VTN serves on",
        hostile_xml,
    ),
]
