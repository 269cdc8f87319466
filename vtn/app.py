"""build_app: the only place the VTN is wired together (store, services, HTTP edges)."""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from aiohttp import web

from certs.trust import TrustStore
from oadr.signing import ReplayGuard
from vtn import http
from vtn.admin import routes as admin
from vtn.admin.openapi import Route
from vtn.config import VtnSettings
from vtn.groupcommit import GroupCommit
from vtn.metrics import VtnMetrics
from vtn.push import PushConfig, Pusher
from vtn.quiet import QuietPolls
from vtn.replay import NonceLog
from vtn.services import ei_report
from vtn.services.context import Context, utc_now
from vtn.store.db import Store
from vtn.wakeups import Wakeups, for_store

CONTEXT = web.AppKey("flex4grid.vtn.context", Context)
WAKEUPS = web.AppKey("flex4grid.vtn.wakeups", Wakeups)


@dataclass(frozen=True)
class VtnConfig:
    settings: VtnSettings
    database_url: str
    trust: TrustStore | None  # None only with --insecure-http
    # HTTP push to VENs (vtn/push.py): client TLS with the VTN's identity, retry policy.
    push: PushConfig = field(default_factory=PushConfig)
    # Parts built on the VTN (market, forecast, data service) plug in here: imports point from
    # them to the VTN, never back.
    extensions: tuple[Extension, ...] = ()
    # Where every `now` comes from (aware UTC): real time, or `flex4grid demo`'s simulated clock.
    clock: Callable[[], datetime] = utc_now


class Extension(Protocol):
    """A part that adds admin API routes (same auth, errors, OpenAPI document) and app hooks."""

    @property
    def routes(self) -> Sequence[Route]: ...

    def setup(self, app: web.Application, context: Context) -> None:
        """Add app keys, startup/cleanup hooks; called once, after the VTN's own wiring."""


async def _metrics(request: web.Request) -> web.Response:
    edge = request.app[http.EDGE]
    async with edge.context.store.transaction() as tx:
        counts = await tx.vens.count_by_status()
        seen = await tx.vens.count_seen_since(edge.context.clock() - timedelta(minutes=5))
    return edge.metrics.render(counts, seen)


async def _healthz(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    async with context.store.transaction() as tx:
        await tx.vens.count()
    return web.json_response({"status": "ok", "vtn_id": context.settings.vtn_id})


def build_app(config: VtnConfig, *, store: Store | None = None) -> web.Application:
    """The VTN as an aiohttp application; the caller runs it (TLS is the site's business)."""
    context = Context(
        store=store or Store(config.database_url), settings=config.settings, clock=config.clock
    )
    app = web.Application(client_max_size=config.settings.limits.max_bytes + 1024)
    app[CONTEXT] = context
    # Quiet polls from memory, last-seen times in batches (vtn/quiet.py).
    quiet = context.quiet = QuietPolls(context.store)
    # Report readings in group commits (vtn/groupcommit.py).
    context.updates = GroupCommit(
        context.store.transaction,
        functools.partial(ei_report.store_updates, context),
        name="vtn-report-ingest",
    )
    app[http.EDGE] = http.Edge(
        context=context,
        trust=config.trust,
        replay_guard=ReplayGuard(window=config.settings.replay_window),
        metrics=VtnMetrics(),
        nonces=NonceLog(context.store, keep_for=2 * config.settings.replay_window),
    )
    http.add_routes(app)
    # /admin/v1: JSON, bearer tokens
    admin.setup(app, context, [r for ext in config.extensions for r in ext.routes])
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", _metrics)

    # HTTP push (vtn/push.py): services publish wake-ups after commit (vtn/wakeups.py). On
    # SQLite they call the pusher directly and it starts with the app; on PostgreSQL they reach
    # every worker by LISTEN/NOTIFY and each worker pushes to the VENs of the shards it holds
    # (taking a shard pushes whatever is still due there). All of it stops before the store
    # closes.
    pusher = Pusher(context, config.push, config.trust, random.Random())
    wakeups = for_store(
        context.store, wake=pusher.wake, leader=pusher, retry=config.push.leader_retry
    )
    context.notify = wakeups.publish
    app[WAKEUPS] = wakeups  # which shards this worker pushes, for tests and operators

    async def _start_push(app: web.Application) -> None:
        await quiet.start()
        await wakeups.start()

    async def _stop_push(app: web.Application) -> None:
        await wakeups.stop()  # stops the pusher and releases this worker's shard locks
        await quiet.stop()  # writes the last-seen times still queued

    app.on_startup.append(_start_push)
    app.on_shutdown.append(_stop_push)

    async def _close(app: web.Application) -> None:
        await context.store.close()

    for extension in config.extensions:
        extension.setup(app, context)
    app.on_cleanup.append(_close)  # after the extensions' own cleanups
    return app
