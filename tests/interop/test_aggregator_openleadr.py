"""The three-tier chain with OpenLEADR in the member tier: an `openleadr.OpenADRClient` is one of
the aggregator's prosumers, beside three of our gateways, all over real mutual TLS.

The DSO asks the node for 20 kW. The aggregator shares it across its four members by what each
draws (each an 11 kW EV): OpenLEADR's VEN gets a LOAD_DISPATCH delta event of its own with its
share (a quarter), opts in, and its telemetry (kW, resourceID `ev-charger`) shows it shedding;
the node's telemetry at the DSO's VTN shows the 20 kW reduction within 10 %.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openleadr import OpenADRClient

from certs.dev import DevPki, make_dev_pki
from certs.files import IdentityFiles
from market.aggregator.config import MemberConfig
from market.aggregator.disaggregation import DeviceInfo
from oadr import exchanges
from oadr.enums import OptType
from oadr.model import VenId
from tests.integration.aggregator_chain import (
    FAST_DSO,
    SECOND,
    Prosumer,
    aggregator_config,
    dispatch_event,
    mean,
    node_readings,
    running_aggregator,
    running_gateways,
    wait_for,
)
from tests.integration.vtn_harness import running_vtn
from ven.model import DeviceKind
from vtn.services import operator

pytestmark = [
    # OpenLEADR's own code stores plain-string keys on aiohttp apps; aiohttp warns about that.
    pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning"),
]

NODE = "node-1"
ASKED_KW = 20.0
EV_KW = 11.0
OPENLEADR_MEMBER = "openleadr-member"


class OpenLeadrHousehold:
    """An EV behind OpenLEADR's VEN: it draws 11 kW, less its share while its event runs."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def on_event(self, event: dict[str, Any]) -> str:
        self.events.append(event)
        return "optIn"

    def share_kw(self) -> float:
        if not self.events:
            return 0.0
        event = self.events[-1]
        start = event["active_period"]["dtstart"]
        interval = event["event_signals"][0]["intervals"][0]
        end = start + interval["duration"]
        now = datetime.now(UTC)
        return -float(interval["signal_payload"]) if start <= now < end else 0.0

    def measure(self) -> float:
        return EV_KW - self.share_kw()


@asynccontextmanager
async def openleadr_member(
    url: str, identity: IdentityFiles, home: OpenLeadrHousehold
) -> AsyncIterator[OpenADRClient]:
    client = OpenADRClient(
        ven_name=OPENLEADR_MEMBER,
        vtn_url=url + exchanges.PATH_PREFIX.rstrip("/"),
        cert=str(identity.chain),
        key=str(identity.key),
        ca_file=str(identity.root),
        disable_signature=True,
        show_fingerprint=False,
    )
    client.add_handler("on_event", home.on_event)
    client.add_report(
        callback=home.measure,
        resource_id="ev-charger",
        measurement="power_real",
        unit="W",
        scale="k",
        report_duration=timedelta(hours=1),
        sampling_rate=timedelta(seconds=1),
    )
    try:
        async with asyncio.timeout(20):
            await client.run()
        yield client
    finally:
        if client.client_session is not None:
            async with asyncio.timeout(20):
                await client.stop()


async def test_an_openleadr_member_takes_its_share_and_the_node_delivers(tmp_path: Path) -> None:
    pki: DevPki = make_dev_pki(tmp_path / "pki", ven_count=5)
    ours = [Prosumer(ven_name=f"house-{n}", identity=pki.vens[n], ev_kw=EV_KW) for n in (1, 2, 3)]
    home = OpenLeadrHousehold()
    dso_db = f"sqlite+aiosqlite:///{tmp_path / 'dso.db'}"
    async with running_vtn(pki, dso_db, FAST_DSO) as dso:
        config = aggregator_config(pki, dso.url, tmp_path, ours, NODE)
        member = MemberConfig(
            ven_name=OPENLEADR_MEMBER,
            node_id=NODE,
            devices=(
                DeviceInfo(device_id="ev-charger", kind=DeviceKind.EV_CHARGER, rating_kw=EV_KW),
            ),
        )
        config = replace(config, members=(*config.members, member))
        async with running_aggregator(config) as aggregator:
            assert aggregator.downstream is not None
            url = aggregator.downstream.url
            async with (
                running_gateways(pki, url, tmp_path, ours),
                openleadr_member(url, pki.vens[4], home),
            ):
                link = aggregator.nodes[NODE]

                async def node_ven() -> VenId | None:
                    return link.runner.session.state.ven_id

                ven_id: VenId = await wait_for("the node's registration", node_ven)

                async def everyone_steady() -> bool:  # every EV seen at 11 kW all window long
                    return sum(f.available_kw >= 0.999 * EV_KW for f in link.flexes) == 4

                await wait_for(
                    "steady telemetry from every member, OpenLEADR's too", everyone_steady
                )
                await wait_for("the node's telemetry", lambda: node_readings(dso, ven_id, NODE))
                start = datetime.now(UTC) + 4 * SECOND
                duration = 20 * SECOND
                event = await operator.create_event(
                    dso.context,
                    dispatch_event(ven_id, start, duration, ASKED_KW),
                    actor="dso",
                    now=datetime.now(UTC),
                )

                async def openleadr_event() -> list[dict[str, Any]]:
                    return home.events

                (received,) = await wait_for("OpenLEADR's event", openleadr_event)
                interval = received["event_signals"][0]["intervals"][0]
                assert received["event_signals"][0]["signal_name"] == "LOAD_DISPATCH"
                assert -interval["signal_payload"] == pytest.approx(ASKED_KW / 4, abs=0.01)

                async def openleadr_opt() -> OptType | None:
                    assert aggregator.downstream is not None
                    context = aggregator.downstream.context
                    async with context.store.transaction() as tx:
                        sent = await tx.deliveries.for_event(
                            received["event_descriptor"]["event_id"]
                        )
                    return sent[0].opt_type if sent else None

                assert await wait_for("OpenLEADR's optIn", openleadr_opt) == OptType.OPT_IN
                end = start + duration

                async def over() -> bool:
                    return any(r.start >= end for r in await node_readings(dso, ven_id, NODE))

                await wait_for("the node's telemetry after the event", over, timeout_s=40)
                found = aggregator.dispatch_of(NODE, event.event_id)
                assert found is not None and found.failing == {}

    rows = await node_readings(dso, ven_id, NODE)
    before = [r.value for r in rows if start - 5 * SECOND <= r.start < start]
    during = [r.value for r in rows if start + 8 * SECOND <= r.start < end - SECOND]
    reduction_kw = mean(before) - mean(during)
    print(f"node reduction {reduction_kw:.2f} kW of {ASKED_KW} kW asked")
    assert reduction_kw == pytest.approx(ASKED_KW, rel=0.10)
