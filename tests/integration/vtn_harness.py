"""A real VTN on 127.0.0.1 (port 0, mutual TLS from the dev PKI, a real database) and a
minimal VEN-side client that posts OpenADR payloads to it. Shared by the integration tests."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
from aiohttp import web

from certs.dev import DevPki
from certs.files import IdentityFiles
from oadr import codec, exchanges
from oadr.model import Payload
from vtn.app import CONTEXT, Extension, VtnConfig, build_app
from vtn.config import VtnSettings
from vtn.services.context import Context
from vtn.store import migrate as migrations


@dataclass
class RunningVtn:
    url: str
    app: web.Application
    pki: DevPki

    @property
    def context(self) -> Context:
        return self.app[CONTEXT]

    def client(self, identity: IdentityFiles | None = None) -> VenClient:
        return VenClient(self.url, self.pki.client_context(identity))


@dataclass
class VenClient:
    base_url: str
    ssl_context: ssl.SSLContext | None
    sent: list[bytes] = field(default_factory=list)

    async def post_bytes(self, service: exchanges.Service, body: bytes) -> tuple[int, bytes]:
        connector = aiohttp.TCPConnector(ssl=self.ssl_context if self.ssl_context else False)
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.post(
                self.base_url + service.path,
                data=body,
                headers={"Content-Type": "application/xml"},
            ) as response,
        ):
            return response.status, await response.read()

    async def send(self, payload: Payload, service: exchanges.Service | None = None) -> Payload:
        """Post one payload to its service and decode the reply (which must be valid XML)."""
        service = service or exchanges.service_for(payload)
        body = codec.encode(payload)
        self.sent.append(body)
        status, reply = await self.post_bytes(service, body)
        assert status == 200, reply
        return codec.decode(reply)


@asynccontextmanager
async def running_vtn(
    pki: DevPki,
    database_url: str,
    settings: VtnSettings | None = None,
    *,
    tls: bool = True,
    migrate: bool = False,
    extensions: tuple[Extension, ...] = (),
) -> AsyncIterator[RunningVtn]:
    """create_all() by default, for speed (test_migrations holds it equal to the migrations);
    `migrate=True` prepares the database the way a deployment does."""
    config = VtnConfig(
        settings=settings or VtnSettings(),
        database_url=database_url,
        trust=pki.trust_store() if tls else None,
        extensions=extensions,
    )
    app = build_app(config)
    if migrate:
        await migrations.upgrade(database_url)
    else:
        await app[CONTEXT].store.create_all()
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=pki.server_context() if tls else None)
    await site.start()
    host, port = runner.addresses[0][:2]
    scheme = "https" if tls else "http"
    try:
        yield RunningVtn(url=f"{scheme}://{host}:{port}", app=app, pki=pki)
    finally:
        await runner.cleanup()


def utc_now() -> datetime:
    return datetime.now(UTC)
