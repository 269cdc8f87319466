"""build_app: the only place the VTN is wired together (store, services, HTTP edges)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from certs.trust import TrustStore
from oadr.signing import ReplayGuard
from vtn import http
from vtn.config import VtnSettings
from vtn.services.context import Context
from vtn.store.db import Store

CONTEXT = web.AppKey("flex4grid.vtn.context", Context)


@dataclass(frozen=True)
class VtnConfig:
    settings: VtnSettings
    database_url: str
    trust: TrustStore | None  # None only with --insecure-http


async def _healthz(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    async with context.store.transaction() as tx:
        await tx.vens.count()
    return web.json_response({"status": "ok", "vtn_id": context.settings.vtn_id})


def build_app(config: VtnConfig, *, store: Store | None = None) -> web.Application:
    """The VTN as an aiohttp application; the caller runs it (TLS is the site's business)."""
    context = Context(store=store or Store(config.database_url), settings=config.settings)
    app = web.Application(client_max_size=config.settings.limits.max_bytes + 1024)
    app[CONTEXT] = context
    app[http.EDGE] = http.Edge(
        context=context,
        trust=config.trust,
        replay_guard=ReplayGuard(window=config.settings.replay_window),
    )
    http.add_routes(app)
    app.router.add_get("/healthz", _healthz)

    async def _close(app: web.Application) -> None:
        await context.store.close()

    app.on_cleanup.append(_close)
    return app
