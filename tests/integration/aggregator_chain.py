"""The three-tier chain for the aggregator tests: the DSO's VTN, one aggregator, and its
prosumers' gateways with simulated households, all on 127.0.0.1 over real mutual TLS.

Each prosumer's household is an EV charging at its rating (plugged in at 30 %, target 80 %)
and a base load; the gateway lets the EV give way down to 20 % SoC unless told otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from certs import fingerprint
from certs.dev import LOCAL_SANS, DevPki
from certs.files import IdentityFiles
from certs.roles import Role
from certs.templates import parse_san
from certs.trust import TrustedCa, TrustStore
from market.aggregator.config import (
    AggregatorConfig,
    ControlConfig,
    DownstreamConfig,
    MemberConfig,
    NodeConfig,
    UpstreamConfig,
)
from market.aggregator.disaggregation import DeviceInfo
from market.aggregator.service import Aggregator
from market.dispatch import KW
from oadr.enums import SignalName, SignalType
from oadr.model import Event, EventId, EventInterval, EventSignal, Target, VenId
from tests.factories import make_event
from tests.integration.vtn_harness import RunningVtn
from ven.gateway import GatewayConfig, build_gateway, make_config
from ven.han import household
from ven.han.devices import BaseLoad, EvCharger, EvChargerParams
from ven.han.household import Household
from ven.model import DeviceKind
from ven.policy import Preferences
from ven.runner import Runner
from ven.session import Retry
from vtn.config import TelemetryDefaults, VtnSettings

SECOND = timedelta(seconds=1)
# The DSO's VTN asks for polls every second and 1 s telemetry every 2 s.
FAST_DSO = VtnSettings(
    poll_interval=SECOND, telemetry=TelemetryDefaults(granularity=SECOND, report_back=2 * SECOND)
)


def dispatch_event(ven_id: VenId, start: datetime, duration: timedelta, kw: float) -> Event:
    """The DSO's ask of a node: LOAD_DISPATCH delta, minus `kw`, over one interval."""
    signal = EventSignal(
        signal_name=SignalName.LOAD_DISPATCH,
        signal_type=SignalType.DELTA,
        signal_id="dso",
        intervals=(EventInterval(uid=0, duration=duration, value=-kw),),
        item_base=KW,
    )
    return replace(
        make_event(start=start, duration=duration),
        event_id=EventId(f"dso-{uuid.uuid4().hex[:8]}"),
        signals=(signal,),
        target=Target(ven_ids=(ven_id,)),
    )


async def node_readings(dso: RunningVtn, ven_id: VenId, node_id: str) -> list[Any]:
    """The node's power at the DSO's VTN, as its upstream VEN reported it."""
    async with dso.context.store.transaction() as tx:
        return await tx.readings.query(ven_id=ven_id, r_id=f"{node_id}.power", limit=100_000)


def mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


async def wait_for(what: str, check: Callable[[], Awaitable[Any]], timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (result := await check()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(0.2)
    return result


def issue_node_identity(pki: DevPki, name: str) -> IdentityFiles:
    """A node's own certificate from the DSO's CA (role aggregator), as the DSO would issue."""
    identity = IdentityFiles(pki.directory / name)
    if not identity.chain.exists():
        sans = [parse_san(s) for s in LOCAL_SANS]
        ca = pki.open_ca(pki.dso_ca)
        ca.issue(Role.AGGREGATOR, name, datetime.now(UTC), sans=sans).write(identity)
    return identity


def bundle(pki: DevPki, directory: Path) -> Path:
    """Every CA of the dev PKI: what gateways and the node VENs check their VTN against."""
    path = directory / "ca-bundle.pem"
    path.write_text(pki.trust_store().pem_bundle())
    return path


def members_bundle(pki: DevPki, directory: Path) -> Path:
    """The root and the aggregator's own CA: the only client certificates it takes downstream."""
    path = directory / "members-ca.pem"
    cas = [TrustedCa.from_dir(pki.root), TrustedCa.from_dir(pki.aggregator_ca, [Role.VEN])]
    path.write_text(TrustStore(cas).pem_bundle())
    return path


@dataclass
class Kettle:
    """A load that comes on when the test says so (a household that then under-delivers)."""

    kw: float
    on_at: datetime | None = None

    def load_kw(self, at: datetime) -> float:
        return self.kw if self.on_at is not None and at >= self.on_at else 0.0


@dataclass(frozen=True)
class Prosumer:
    ven_name: str
    identity: IdentityFiles
    ev_kw: float
    preferences: Preferences = field(default_factory=lambda: Preferences(ev_min_soc=0.2))
    kettle: Kettle | None = None


def home(prosumer: Prosumer, now: datetime) -> Household:
    source = household.synthetic_source()
    kettle = prosumer.kettle
    if kettle is not None:
        base = source.base_load_kw
        source = replace(source, base_load_kw=lambda at: base(at) + kettle.load_kw(at))
    return Household(
        devices=(
            EvCharger(
                device_id="ev-charger",
                params=EvChargerParams(max_power_kw=prosumer.ev_kw),
                soc=0.3,
                arrival=now - timedelta(minutes=1),
                departure=now + timedelta(hours=12),
            ),
            BaseLoad(device_id="base-load"),
        ),
        source=source,
        now=now,
    )


def aggregator_config(
    pki: DevPki, dso_url: str, directory: Path, prosumers: Sequence[Prosumer], node_id: str
) -> AggregatorConfig:
    ca_file = bundle(pki, directory)
    node = issue_node_identity(pki, node_id)
    return AggregatorConfig(
        upstream=UpstreamConfig(
            vtn_url=dso_url,
            state_dir=directory / "aggregator-state",
            ca_file=ca_file,
            vtn_fingerprint=fingerprint.of_certificate(pki.vtn.load_certificate()),
            poll_interval=SECOND,
            sample_period=SECOND,
        ),
        downstream=DownstreamConfig(
            database=directory / "aggregator.db",
            cert=pki.aggregator.chain,
            key=pki.aggregator.key,
            ca_file=members_bundle(pki, directory),
            poll_interval=SECOND,
            telemetry_granularity=SECOND,
            report_back=2 * SECOND,
        ),
        nodes=(NodeConfig(node_id=node_id, ven_name=node_id, cert=node.chain, key=node.key),),
        members=tuple(
            MemberConfig(
                ven_name=p.ven_name,
                node_id=node_id,
                devices=(
                    DeviceInfo(
                        device_id="ev-charger", kind=DeviceKind.EV_CHARGER, rating_kw=p.ev_kw
                    ),
                    DeviceInfo(device_id="base-load", kind=DeviceKind.BASE_LOAD, rating_kw=0.0),
                ),
            )
            for p in prosumers
        ),
        control=ControlConfig(
            tick=SECOND / 2,
            tolerance=0.1,
            # A member's time to act on a (new) share: a gateway on a busy box (here 23 parties
            # share one process and the test suite's other workers the cores) may take seconds.
            grace=6 * SECOND,
            telemetry_window=5 * SECOND,
        ),
    )


def gateway_config(pki: DevPki, url: str, directory: Path, prosumer: Prosumer) -> GatewayConfig:
    return make_config(
        vtn_url=url,
        ven_name=prosumer.ven_name,
        state_dir=directory / prosumer.ven_name,
        cert=prosumer.identity.chain,
        key=prosumer.identity.key,
        ca_file=bundle(pki, directory),
        vtn_fingerprint=fingerprint.of_certificate(pki.aggregator.load_certificate()),
        poll_interval=SECOND,
        sample_period=SECOND,
        retry=Retry(base=timedelta(milliseconds=200), maximum=SECOND),
        preferences=prosumer.preferences,
    )


@asynccontextmanager
async def running_aggregator(config: AggregatorConfig) -> AsyncIterator[Aggregator]:
    service = Aggregator(config)
    task = asyncio.create_task(service.run())
    try:
        async with asyncio.timeout(10):
            await service.ready.wait()
        yield service
    finally:
        service.stop()
        async with asyncio.timeout(15):
            await task


@asynccontextmanager
async def running_gateways(
    pki: DevPki, url: str, directory: Path, prosumers: Sequence[Prosumer]
) -> AsyncIterator[list[Runner]]:
    now = datetime.now(UTC)
    runners = [
        build_gateway(gateway_config(pki, url, directory, p), home=home(p, now)) for p in prosumers
    ]
    tasks = [asyncio.create_task(r.run()) for r in runners]
    try:
        yield runners
    finally:
        for runner in runners:
            runner.stop()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(15):
                await asyncio.gather(*tasks, return_exceptions=True)


@dataclass
class Api:
    """The DSO's market API (/admin/v1/market) with one bearer token, over mutual TLS."""

    url: str
    pki: DevPki
    token: str

    async def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                method,
                self.url + "/admin/v1/market" + path,
                headers=headers,
                ssl=self.pki.client_context(),
                **kwargs,
            ) as response,
        ):
            body = await response.json(content_type=None)
            assert response.status in (200, 201), (method, path, response.status, body)
            return body
