"""A real VTN with the web console on 127.0.0.1 (HTTPS, port 0, the dev PKI, a real database),
as `flex4grid vtn serve` runs it: client certificates optional, so browsers reach /console/ and
VENs still present theirs. Shared by the console's integration and browser tests."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import aiohttp
from aiohttp import web

from certs.dev import DevPki
from console import auth
from console.accounts import Policy, Role
from console.web import ConsoleExtension
from tests.integration.vtn_harness import RunningVtn
from vtn.app import CONTEXT, VtnConfig, build_app
from vtn.config import VtnSettings
from vtn.push import PushConfig
from vtn.serve import server_ssl_context

PASSWORD = "correct horse battery"


@dataclass
class ConsoleSite:
    running: RunningVtn

    @property
    def url(self) -> str:
        return self.running.url

    async def user(self, username: str, role: Role, subject: str | None = None) -> None:
        await auth.create_account(
            self.running.context.store,
            username,
            PASSWORD,
            role,
            subject,
            actor="test",
            now=datetime.now(UTC),
        )

    def client_ssl(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.running.pki.trust_store().pem_bundle())


@asynccontextmanager
async def console_vtn(
    pki: DevPki,
    database_url: str,
    *,
    settings: VtnSettings | None = None,
    policy: Policy | None = None,
    direct_event_rate_eur_per_kwh: Decimal = Decimal(0),
) -> AsyncIterator[ConsoleSite]:
    extension = ConsoleExtension(
        policy=policy or Policy(), direct_event_rate_eur_per_kwh=direct_event_rate_eur_per_kwh
    )
    config = VtnConfig(
        settings=settings or VtnSettings(),
        database_url=database_url,
        trust=pki.trust_store(),
        push=PushConfig(tls=pki.client_context(pki.vtn)),
        extensions=(extension,),
    )
    app = build_app(config)
    await app[CONTEXT].store.create_all()
    runner = web.AppRunner(app)
    await runner.setup()
    context = server_ssl_context(pki.vtn.chain, pki.vtn.key, pki.trust_store())
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
    host, port = runner.addresses[0][:2]
    try:
        yield ConsoleSite(RunningVtn(url=f"https://{host}:{port}", app=app, pki=pki))
    finally:
        await runner.cleanup()


@asynccontextmanager
async def browser_session(site: ConsoleSite) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client that keeps cookies like a browser (IP hosts allowed) and trusts our CA."""
    jar = aiohttp.CookieJar(unsafe=True)
    connector = aiohttp.TCPConnector(ssl=site.client_ssl())
    async with aiohttp.ClientSession(
        base_url=site.url, cookie_jar=jar, connector=connector
    ) as session:
        yield session
