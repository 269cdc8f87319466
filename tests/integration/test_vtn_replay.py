"""A signed message is accepted once: replaying its exact bytes is refused, also by another
VTN process on the same database (restart, or a second worker)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from certs import fingerprint
from certs.dev import DevPki
from oadr import codec, exchanges
from oadr.enums import ResponseCode
from oadr.exchanges import ok_response
from oadr.model import CreatePartyRegistration, Poll, RegisterReport, RequestId, Response
from oadr.signing import ReplayGuard, SigningKey
from tests.integration.vtn_harness import running_vtn, utc_now
from vtn.config import VtnSettings


def _signing_key(pki: DevPki) -> SigningKey:
    identity = pki.vens[0]
    return SigningKey.from_pem(identity.key.read_bytes(), identity.cert.read_bytes())


async def test_a_replayed_signed_poll_is_refused_even_after_a_restart(
    pki: DevPki, database_url: str
) -> None:
    key = _signing_key(pki)
    async with running_vtn(pki, database_url) as vtn:
        client = vtn.client(pki.vens[0])
        created = await client.send(
            CreatePartyRegistration(request_id=RequestId("r"), ven_name="v", xml_signature=True)
        )
        ven_id = created.ven_id  # type: ignore[union-attr]
        signed_poll = codec.encode(
            Poll(ven_id=ven_id), signing_key=key, now=utc_now(), nonce=uuid.uuid4().hex
        )
        status, first = await client.post_bytes(exchanges.Service.OADR_POLL, signed_poll)
        assert status == 200
        assert isinstance(codec.decode(first), RegisterReport)  # queued at registration
        status, again = await client.post_bytes(exchanges.Service.OADR_POLL, signed_poll)
        replayed = codec.decode(again)
        assert isinstance(replayed, Response)
        assert replayed.response.code == ResponseCode.NOT_REGISTERED_OR_AUTHORIZED

    # A fresh process (empty in-memory replay guard) on the same database.
    async with running_vtn(pki, database_url) as restarted:
        status, body = await restarted.client(pki.vens[0]).post_bytes(
            exchanges.Service.OADR_POLL, signed_poll
        )
    reply = codec.decode(body)
    assert isinstance(reply, Response)
    assert reply.response.code == ResponseCode.NOT_REGISTERED_OR_AUTHORIZED
    assert "nonce" in (reply.response.description or "")


async def test_signed_quiet_polls_get_replies_each_signed_afresh_by_the_vtn(
    pki: DevPki, database_url: str
) -> None:
    """The answer to a signed poll with nothing new comes from a template (vtn/http.py,
    oadr.signing.SignedTemplate): each must still verify, be the VTN's, name the VEN, and carry
    its own ReplayProtect, so a VEN's replay guard takes every one."""
    key = _signing_key(pki)
    vtn_certificate = pki.vtn.cert.read_bytes()
    vtn_key = SigningKey.from_pem(pki.vtn.key.read_bytes(), vtn_certificate)
    settings = VtnSettings(signing_key=vtn_key)
    async with running_vtn(pki, database_url, settings) as vtn:
        client = vtn.client(pki.vens[0])
        created = await client.send(
            CreatePartyRegistration(request_id=RequestId("r"), ven_name="v", xml_signature=True)
        )
        ven_id = created.ven_id  # type: ignore[union-attr]
        guard = ReplayGuard(window=timedelta(seconds=30))
        replies = []
        for _ in range(4):
            poll = codec.encode(
                Poll(ven_id=ven_id), signing_key=key, now=utc_now(), nonce=uuid.uuid4().hex
            )
            status, body = await client.post_bytes(exchanges.Service.OADR_POLL, poll)
            assert status == 200
            replies.append(codec.receive(body, now=utc_now(), replay_guard=guard))
    quiet = [r for r in replies if isinstance(r.payload, Response)]
    assert len(quiet) >= 2, "after the queued RegisterReport, nothing new"
    for received in quiet:
        assert received.payload == Response(response=ok_response(RequestId("")), ven_id=ven_id)
        assert received.signature is not None
        assert fingerprint.of_der(received.signature.certificate_der) == fingerprint.of_pem(
            vtn_certificate
        )
    assert len({r.signature.nonce for r in quiet if r.signature}) == len(quiet)
