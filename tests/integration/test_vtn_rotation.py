"""A VEN renews its certificate and keeps its venID; old and new certificates both work during
the CA's overlap window, then the old one is refused. Real mutual TLS, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from certs.ca import CertificateAuthority
from certs.dev import make_dev_pki
from certs.files import IdentityFiles
from oadr.enums import ResponseCode
from oadr.model import (
    CreatedPartyRegistration,
    CreatePartyRegistration,
    Poll,
    RegisterReport,
    RequestId,
    Response,
)
from tests.integration.vtn_harness import running_vtn


async def test_rotation_keeps_the_ven_id_then_cuts_the_old_certificate_off(
    tmp_path: Path, database_url: str
) -> None:
    pki = make_dev_pki(tmp_path / "pki")
    old_identity = pki.vens[0]
    async with running_vtn(pki, database_url) as vtn:
        old_client = vtn.client(old_identity)
        first = await old_client.send(
            CreatePartyRegistration(request_id=RequestId("r1"), ven_name="house-1")
        )
        assert isinstance(first, CreatedPartyRegistration) and first.ven_id is not None

        # The DSO CA renews ven-1's certificate with a short overlap.
        dso = CertificateAuthority.open(pki.dso_ca)
        renewed = dso.rotate(
            old_identity.load_certificate(), datetime.now(UTC), overlap=timedelta(seconds=3)
        )
        new_identity = IdentityFiles(tmp_path / "ven-1-renewed")
        renewed.write(new_identity)
        new_client = vtn.client(new_identity)

        again = await new_client.send(
            CreatePartyRegistration(
                request_id=RequestId("r2"), ven_name="house-1", ven_id=first.ven_id
            )
        )
        assert isinstance(again, CreatedPartyRegistration)
        assert again.response.code == 200 and again.ven_id == first.ven_id
        assert again.registration_id == first.registration_id

        # During the overlap both certificates act for the same VEN.
        assert isinstance(await new_client.send(Poll(ven_id=first.ven_id)), RegisterReport)
        during = await old_client.send(Poll(ven_id=first.ven_id))
        assert isinstance(during, Response) and during.response.code == 200

        # After it, the CA's published rotation list makes the old certificate superseded.
        await asyncio.sleep(3.5)
        dso.publish(datetime.now(UTC))
        after = await old_client.send(Poll(ven_id=first.ven_id))
        assert isinstance(after, Response)
        assert after.response.code == ResponseCode.NOT_REGISTERED_OR_AUTHORIZED
        assert "superseded" in (after.response.description or "")
        still = await new_client.send(Poll(ven_id=first.ven_id))
        assert isinstance(still, Response) and still.response.code == 200


async def test_another_identity_cannot_take_over_a_ven_id(
    tmp_path: Path, database_url: str
) -> None:
    pki = make_dev_pki(tmp_path / "pki")
    async with running_vtn(pki, database_url) as vtn:
        victim = await vtn.client(pki.vens[0]).send(
            CreatePartyRegistration(request_id=RequestId("r1"), ven_name="house-1")
        )
        assert isinstance(victim, CreatedPartyRegistration) and victim.ven_id is not None
        claim = await vtn.client(pki.vens[1]).send(
            CreatePartyRegistration(request_id=RequestId("r2"), ven_name="x", ven_id=victim.ven_id)
        )
    assert isinstance(claim, CreatedPartyRegistration)
    assert claim.response.code == ResponseCode.NOT_REGISTERED_OR_AUTHORIZED
    assert claim.ven_id is None
