"""The three-tier chain on real mutual TLS: the DSO's VTN, one aggregator (one node upstream,
its own VTN downstream), and 21 prosumer gateways with simulated EVs.

The DSO asks the node for a reduction with a LOAD_DISPATCH delta event. The aggregator opts
in and shares the ask across its members by what each EV draws. One member (whose EV may not
give way) opts out, and another's oven comes on just after the start, so its telemetry shows
it under-delivering: what they do not give is re-dispatched to the others. The EVs are held
back, and the node's telemetry at the DSO's VTN shows the reduction asked for, within 10 %.

Also: the aggregator bids on the DSO's flex request what its members can give, shares the
award's event across them and cancels their events when the DSO cancels it; it opts out of an
event asking more than its members can give; and `aggregator run` serves from a TOML file.
"""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from certs.dev import DevPki, make_dev_pki
from market.aggregator.bidding import Strategy
from market.aggregator.config import MarketConfig
from market.http import MarketExtension
from oadr.enums import EventStatus, OptType, ResponseCode
from oadr.model import CreatedPartyRegistration, VenId
from tests.factories import make_query_registration
from tests.integration.aggregator_chain import (
    FAST_DSO,
    SECOND,
    Api,
    Kettle,
    Prosumer,
    aggregator_config,
    dispatch_event,
    issue_node_identity,
    mean,
    node_readings,
    running_aggregator,
    running_gateways,
    wait_for,
)
from tests.integration.vtn_harness import VenClient, running_vtn
from ven.policy import Preferences
from vtn.admin import tokens
from vtn.admin.tokens import TokenRole
from vtn.services import operator

MEMBERS = 21
ASKED_KW = 60.0
TOLERANCE = 0.10  # of the reduction asked
NODE = "node-1"


@pytest.fixture(scope="module")
def chain_pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return make_dev_pki(tmp_path_factory.mktemp("chain-pki"), ven_count=MEMBERS + 1)


def prosumers(pki: DevPki) -> list[Prosumer]:
    found = [
        Prosumer(ven_name=f"house-{n}", identity=pki.vens[n], ev_kw=(7.4, 11.0)[n % 2])
        for n in range(1, MEMBERS + 1)  # vens[0] is the DSO's own VEN; the rest are ours
    ]
    # This household's EV must stay above 50 %: it cannot give way, so it opts out.
    found[0] = replace(found[0], preferences=Preferences(ev_min_soc=0.5))
    # This one's oven comes on (4 kW) once the event has begun: it under-delivers.
    found[1] = replace(found[1], kettle=Kettle(kw=4.0))
    return found


async def test_a_dso_event_is_shared_across_members_and_delivered(
    chain_pki: DevPki, tmp_path: Path
) -> None:
    members = prosumers(chain_pki)
    dso_db = f"sqlite+aiosqlite:///{tmp_path / 'dso.db'}"
    async with running_vtn(chain_pki, dso_db, FAST_DSO) as dso:
        config = aggregator_config(chain_pki, dso.url, tmp_path, members, NODE)
        async with running_aggregator(config) as aggregator:
            assert aggregator.downstream is not None
            async with running_gateways(
                chain_pki, aggregator.downstream.url, tmp_path, members
            ) as runners:
                link = aggregator.nodes[NODE]

                async def node_ven() -> VenId | None:
                    return link.runner.session.state.ven_id

                ven_id: VenId = await wait_for("the node's registration", node_ven)

                ratings = {p.ven_name: p.ev_kw for p in members}

                async def everyone_steady() -> bool:
                    # Each EV seen at its rating over the whole window: the baselines the
                    # aggregator takes hold no readings from before the EVs were charging.
                    flexes = link.flexes
                    return len(flexes) == MEMBERS and all(
                        f.available_kw >= 0.999 * ratings[f.member] for f in flexes
                    )

                await wait_for("steady telemetry from every member", everyone_steady)
                await wait_for(
                    "the node's telemetry at the DSO", lambda: node_readings(dso, ven_id, NODE)
                )
                start = datetime.now(UTC) + 4 * SECOND
                duration = 40 * SECOND
                assert members[1].kettle is not None
                members[1].kettle.on_at = start + 2 * SECOND
                event = await operator.create_event(
                    dso.context,
                    dispatch_event(ven_id, start, duration, ASKED_KW),
                    actor="dso",
                    now=datetime.now(UTC),
                )

                async def node_opt() -> OptType | None:
                    async with dso.context.store.transaction() as tx:
                        sent = await tx.deliveries.for_event(event.event_id)
                    return sent[0].opt_type if sent else None

                assert await wait_for("the node's answer", node_opt) == OptType.OPT_IN

                # The members' devices act: every EV but the one that opted out is held back.
                async def evs_limited() -> list[str]:
                    limited = [
                        r.session.config.ven_name
                        for r in runners
                        if r.bus.states()["ev-charger"].power_limit_kw is not None
                    ]
                    return limited if len(limited) == MEMBERS - 1 else []

                limited = await wait_for("the members' EVs held back", evs_limited)
                assert "house-1" not in limited

                end = start + duration

                async def over() -> bool:
                    rows = await node_readings(dso, ven_id, NODE)
                    return any(r.start >= end for r in rows)

                await wait_for("the node's telemetry after the event", over, timeout_s=55)
                found = aggregator.dispatch_of(NODE, event.event_id)
                assert found is not None
                # house-1 opted out; house-2's oven ate up its share and more.
                assert set(found.failing) == {"house-1", "house-2"}
                assert found.failing["house-1"] == 0.0 and found.failing["house-2"] < 0.5

    rows = await node_readings(dso, ven_id, NODE)
    assert {r.duration for r in rows} == {SECOND}  # the granularity the DSO's VTN asked for
    before = [r.value for r in rows if start - 5 * SECOND <= r.start < start]
    # house-2 is judged from start + grace (6 s) and re-dispatched by start + ~9 s, which the
    # node's readings show ~3 s later (telemetry lag); more under load.
    during = [r.value for r in rows if start + 20 * SECOND <= r.start < end - SECOND]
    reduction_kw = mean(before) - mean(during)
    print(f"node reduction {reduction_kw:.2f} kW of {ASKED_KW} kW asked; failing {found.failing}")
    assert reduction_kw == pytest.approx(ASKED_KW, rel=TOLERANCE), (mean(before), mean(during))
    # The others' shares make up the ask and what house-2 failed to give.
    others = [s[0] for m, s in found.shares.items() if m not in found.failing]
    assert len(others) == MEMBERS - 2
    assert math.fsum(others) == pytest.approx(ASKED_KW - found.failing["house-2"], rel=1e-3)


# --- the market: a bid from the members' flexibility, an award shared across them --------------


@dataclass
class MarketClock:
    """The market's clock: real time plus whatever the test skips ahead."""

    skipped: timedelta = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.skipped


async def test_the_aggregator_bids_shares_the_award_and_opts_out_of_what_it_cannot_give(
    chain_pki: DevPki, tmp_path: Path
) -> None:
    members = [
        Prosumer(ven_name=f"house-{n}", identity=chain_pki.vens[n], ev_kw=11.0) for n in range(1, 5)
    ]
    clock = MarketClock()
    market = MarketExtension(clock=clock, auto_clear=False)
    dso_db = f"sqlite+aiosqlite:///{tmp_path / 'dso.db'}"
    async with running_vtn(chain_pki, dso_db, FAST_DSO, extensions=(market,)) as dso:
        now = datetime.now(UTC)
        dso_token = await tokens.create(
            dso.context.store, "dso", TokenRole.OPERATOR, actor="test", now=now
        )
        api = Api(dso.url, chain_pki, dso_token)
        await api.ok("POST", "/points", json={"point_id": "cp-1", "name": "feeder",
                                              "capacity_kw": "250"})  # fmt: skip
        made = await api.ok("POST", "/aggregators", json={"aggregator_id": "agg", "name": "A"})
        config = aggregator_config(chain_pki, dso.url, tmp_path, members, NODE)
        node = config.nodes[0]
        config = replace(
            config,
            market=MarketConfig(
                url=dso.url,
                token=made["token"],
                strategy=Strategy(price_floor_eur_per_kwh=Decimal("0.10")),
                ca_file=config.upstream.ca_file,
                cert=node.cert,
                key=node.key,
            ),
        )
        async with running_aggregator(config) as aggregator:
            assert aggregator.downstream is not None
            # Downstream, only certificates from the aggregator's own CA: not the DSO's VEN.
            outsider = VenClient(aggregator.downstream.url, chain_pki.client_context())
            refused = await outsider.send(make_query_registration())
            assert isinstance(refused, CreatedPartyRegistration)
            assert refused.response.code == ResponseCode.NOT_REGISTERED_OR_AUTHORIZED
            assert "client certificate refused" in (refused.response.description or "")
            async with running_gateways(chain_pki, aggregator.downstream.url, tmp_path, members):
                link = aggregator.nodes[NODE]

                async def node_ven() -> VenId | None:
                    return link.runner.session.state.ven_id

                ven_id = await wait_for("the node's registration", node_ven)
                agg = Api(dso.url, chain_pki, made["token"])
                await agg.ok("POST", "/nodes", json={"node_id": NODE, "point_id": "cp-1",
                                                     "name": NODE, "ven_id": ven_id})  # fmt: skip

                async def everyone_heard() -> bool:
                    return all(f.available_kw > 10 for f in link.flexes)

                await wait_for("telemetry from every member", everyone_heard)
                start = datetime.now(UTC) + timedelta(minutes=2)
                await api.ok("POST", "/requests", json={
                    "request_id": "req-1", "point_id": "cp-1", "start": start.isoformat(),
                    "needed_kw": ["30", "60"], "price_cap_eur_per_kwh": "0.5",
                    "gate_closure": (start - timedelta(minutes=1)).isoformat(),
                })  # fmt: skip

                async def bid() -> list[Any]:
                    found: list[Any] = await api.ok("GET", "/requests/req-1/bids")
                    return found

                (submitted,) = await wait_for("the aggregator's bid", bid)
                # 4 EVs at 11 kW, derated by 0.9: 39.6 kW at most; the DSO needs only 30 in
                # the first block. Priced at 0.9 of the 0.5 cap.
                offered = [Decimal(kw) for kw in submitted["offered_kw"]]
                assert offered[0] == Decimal(30)
                assert Decimal(36) <= offered[1] <= Decimal("39.6")  # each heard > 10 kW
                assert Decimal(submitted["price_eur_per_kwh"]) == Decimal("0.45")

                clock.skipped = timedelta(minutes=1, seconds=5)  # past gate closure
                await api.ok("POST", "/requests/req-1/close")
                await api.ok("POST", "/requests/req-1/clear")
                (award,) = await api.ok("POST", "/requests/req-1/dispatch")
                event_id = award["event_id"]

                async def shared() -> Any:
                    found = aggregator.dispatch_of(NODE, event_id)
                    return found if found is not None and len(found.events) == 4 else None

                found = await wait_for("the award shared across the members", shared)
                for index, kw in enumerate(offered):
                    assert sum(s[index] for s in found.shares.values()) == pytest.approx(
                        float(kw), abs=0.01
                    )
                assert len(found.events) == len(members)

                # The DSO withdraws the order: the members' events are cancelled too.
                await operator.cancel_event(
                    dso.context, event_id, actor="dso", now=datetime.now(UTC)
                )
                downstream_context = aggregator.downstream.context

                async def members_cancelled() -> bool:
                    async with downstream_context.store.transaction() as tx:
                        made = [await tx.events.get(e) for e in found.events.values()]
                    return all(e is not None and e.status is EventStatus.CANCELLED for e in made)

                await wait_for("the members' events cancelled", members_cancelled)

                # More than the members can give: the node opts out, and says why.
                too_much = await operator.create_event(
                    dso.context,
                    dispatch_event(ven_id, datetime.now(UTC) + timedelta(minutes=5), SECOND * 60,
                                   1000.0),
                    actor="dso",
                    now=datetime.now(UTC),
                )  # fmt: skip

                async def answered() -> OptType | None:
                    async with dso.context.store.transaction() as tx:
                        sent = await tx.deliveries.for_event(too_much.event_id)
                    return sent[0].opt_type if sent else None

                assert await wait_for("the node's answer", answered) == OptType.OPT_OUT
                (line,) = [
                    e for e in link.runner.session.status().events
                    if e.event_id == too_much.event_id
                ]  # fmt: skip
                assert line.reason is not None and line.reason.startswith("optOut (capacity)")
                assert aggregator.dispatch_of(NODE, too_much.event_id) is None


# --- the command line -----------------------------------------------------------------------------


def test_aggregator_run_serves_from_a_toml_file_until_sigterm(
    chain_pki: DevPki, tmp_path: Path
) -> None:
    node = issue_node_identity(chain_pki, NODE)
    ca = tmp_path / "ca.pem"
    ca.write_text(chain_pki.trust_store().pem_bundle())
    path = tmp_path / "aggregator.toml"
    path.write_text(
        f'''[upstream]
vtn_url = "https://127.0.0.1:9"
ca_file = "{ca}"
[downstream]
cert = "{chain_pki.aggregator.chain}"
key = "{chain_pki.aggregator.key}"
ca_file = "{ca}"
[[nodes]]
id = "{NODE}"
cert = "{node.chain}"
key = "{node.key}"
[[members]]
ven_name = "house-1"
node = "{NODE}"
devices = [{{ id = "ev-charger", kind = "ev_charger", rating_kw = 11 }}]
'''
    )
    code = "import sys; from market.aggregator import cli; " + (
        "import argparse; p = argparse.ArgumentParser(); "
        "cli.register(p.add_subparsers(required=True)); a = p.parse_args(sys.argv[1:]); "
        "sys.exit(a.handler(a))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, "aggregator", "run", "--config", str(path)],
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 30
        for line in process.stderr:
            if "downstream VTN at https://127.0.0.1:" in line or time.monotonic() > deadline:
                break
        else:
            pytest.fail("the aggregator ended before serving")
        assert "downstream VTN at" in line, line
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
    assert (tmp_path / "aggregator.db").exists()
    assert (tmp_path / "state" / NODE / "gateway.db").exists()
