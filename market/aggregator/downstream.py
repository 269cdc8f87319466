"""Downstream: the aggregator's own VTN for its prosumers' gateways, and what it reads there.

The VTN is ours (`vtn.app.build_app`) on its own SQLite database, serving mutual TLS with the
aggregator's certificate and accepting only gateways whose certificates chain to the CAs in
its `ca_file` (the aggregator's own CA: VENs only). It asks every member for telemetry at the
configured granularity (`TelemetryDefaults`), as it asks any VEN that registers.

The reads here decide nothing: which member is which venID (by the venName it registered),
members' recent power per device (every numeric TELEMETRY reading, by the resourceID its
metadata gave it, else by its rID less `.power`; in kW, as our gateways send it), and what each
member answered to its event. Events go through the VTN's own operator service, so delivery,
opt tracking and the audit log are the VTN's.
"""

from __future__ import annotations

import math
import ssl
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web

from certs import tls
from market.aggregator.config import DownstreamConfig
from oadr.model import EventId, VenId, VtnId
from ven.gateway import push_trust
from vtn.app import CONTEXT, VtnConfig, build_app
from vtn.config import TelemetryDefaults, VtnSettings
from vtn.services.context import Context, utc_now
from vtn.store.events import Delivery

Clock = Callable[[], datetime]

POWER_SUFFIX = ".power"


@dataclass(frozen=True, slots=True)
class MemberPower:
    """One member's recent power: per device, the mean over the window and the latest."""

    mean_kw: dict[str, float]
    latest_kw: dict[str, float]
    latest_at: datetime  # when the stalest of the latest readings was taken

    def fresh_since(self, at: datetime) -> bool:
        """Every device's latest reading was taken at or after `at`."""
        return self.latest_at >= at

    @property
    def total_mean_kw(self) -> float:
        return math.fsum(self.mean_kw.values())

    @property
    def total_latest_kw(self) -> float:
        return math.fsum(self.latest_kw.values())


@dataclass
class DownstreamVtn:
    url: str
    app: web.Application

    @property
    def context(self) -> Context:
        return self.app[CONTEXT]


def server_tls(config: DownstreamConfig) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.verify_mode = ssl.CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(tls.TLS12_CIPHERS)
    context.load_verify_locations(cafile=config.ca_file)
    context.load_cert_chain(config.cert, config.key)
    return context


@asynccontextmanager
async def running(
    config: DownstreamConfig, *, vtn_id: str = "flex4grid-aggregator", clock: Clock = utc_now
) -> AsyncIterator[DownstreamVtn]:
    """The downstream VTN, serving until the block ends."""
    settings = VtnSettings(
        vtn_id=VtnId(vtn_id),
        poll_interval=config.poll_interval,
        telemetry=TelemetryDefaults(
            granularity=config.telemetry_granularity, report_back=config.report_back
        ),
    )
    app = build_app(
        VtnConfig(
            settings=settings,
            database_url=config.database_url,
            trust=push_trust(config.ca_file),
            clock=clock,
        )
    )
    config.database.parent.mkdir(parents=True, exist_ok=True)
    await app[CONTEXT].store.create_all()
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, config.host, config.port, ssl_context=server_tls(config)).start()
    host, port = runner.addresses[0][:2]
    try:
        yield DownstreamVtn(url=f"https://{host}:{port}", app=app)
    finally:
        await runner.cleanup()


# --- reads ----------------------------------------------------------------------------------------


async def members_by_name(context: Context) -> dict[str, VenId]:
    """venName -> venID of every registered VEN."""
    async with context.store.transaction() as tx:
        return {r.ven_name: r.ven_id for r in await tx.vens.registered()}


async def recent_power(
    context: Context, since: datetime, limit: int = 100_000
) -> dict[VenId, MemberPower]:
    """Each VEN's power readings since `since`: mean and latest per device."""
    async with context.store.transaction() as tx:
        rows = await tx.readings.query(start=since, limit=limit)
    values: dict[VenId, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    latest: dict[VenId, dict[str, tuple[datetime, float]]] = defaultdict(dict)
    for row in rows:
        if row.value is None or row.start is None:  # a status, not a power reading
            continue
        device = row.resource_id or row.r_id.removesuffix(POWER_SUFFIX)
        values[row.ven_id][device].append(row.value)
        seen = latest[row.ven_id].get(device)
        if seen is None or row.start >= seen[0]:
            latest[row.ven_id][device] = (row.start, row.value)
    return {
        ven: MemberPower(
            mean_kw={d: math.fsum(v) / len(v) for d, v in by_device.items()},
            latest_kw={d: kw for d, (_, kw) in latest[ven].items()},
            latest_at=min(at for at, _ in latest[ven].values()),
        )
        for ven, by_device in values.items()
    }


async def deliveries_of(
    context: Context, event_ids: Iterable[str]
) -> dict[tuple[EventId, VenId], Delivery]:
    """What each VEN these events went to was sent (and when), and what it answered."""
    async with context.store.transaction() as tx:
        sent = await tx.deliveries.for_events(list(event_ids))
    return {(d.event_id, d.ven_id): d for d in sent}


def window_start(now: datetime, window: timedelta) -> datetime:
    return now - window
