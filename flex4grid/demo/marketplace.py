"""The DSO buys flexibility on the local market (`--mode market`): request, bid, clear, settle.

The DSO's VTN runs with `market.http.MarketExtension` on the pilot's simulated clock. Its grid
model has one congestion point per feeder (the feeder's capacity) with the feeder's households
as resources; one aggregator (`market.aggregator.service.Aggregator`, in-process, same clock)
has one virtual end node per feeder, whose members are that feeder's households (each with a
consent reference), and its own downstream VTN and CA: the households' gateways register there,
not at the DSO's VTN.

Where the forecast overloads a feeder the DSO publishes a `FlexRequest` `NOTICE` ahead: one
15-minute block per ISP of the window, kW per block = the forecast's excess over capacity, a
price cap, gate closure `GATE_LEAD` before the window. The aggregator bids what its members can
give; the gate-closure task (`market.gate`) clears and dispatches the award as a LOAD_DISPATCH
event to the node's VEN; the aggregator shares it across its members. After the window the DSO
measures the node's telemetry (`market.measurement`) against `SimulatedBaseline` (the no-flex
simulation of the node's households: the DSO's counterfactual here is exact, and recorded by
name with every delivery) and settles (`market.service.settle_request`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

from certs import fingerprint
from certs.dev import DevPki
from certs.files import IdentityFiles
from certs.roles import Role
from certs.trust import TrustedCa, TrustStore
from flex4grid.demo.clock import SimClock
from flex4grid.demo.forecast import FeederPlan
from flex4grid.demo.profiles import STEP
from flex4grid.demo.scenario import HouseholdSpec
from market import accounts, measurement, service
from market.accounts import Actor
from market.aggregator import service as aggregator_service
from market.aggregator.bidding import Strategy
from market.aggregator.config import (
    AggregatorConfig,
    ControlConfig,
    DownstreamConfig,
    MarketConfig,
    MemberConfig,
    NodeConfig,
    UpstreamConfig,
)
from market.aggregator.disaggregation import DeviceInfo
from market.aggregator.service import Aggregator
from market.baseline import DayReadings, EventBlocks, History
from market.gate import GateKeeper
from market.model import (
    KW_QUANTUM,
    AggregatorId,
    CongestionPoint,
    CongestionPointId,
    FlexRequest,
    NodeId,
    ProsumerId,
    RequestId,
    RequestStatus,
    VirtualEndNode,
)
from market.model import (
    Aggregator as AggregatorAccount,
)
from market.store import Market, PointResource
from oadr.model import EventId, VenId
from ven.model import DeviceKind
from vtn.services.context import Context

log = logging.getLogger("flex4grid.demo.market")

DSO = Actor(name="dso-operator")
AGGREGATOR_ID = AggregatorId("agg-1")
NOTICE = timedelta(hours=1)  # the request is published this long before its window
GATE_LEAD = timedelta(minutes=30)  # bids close this long before the window
PRICE_CAP_EUR_PER_KWH = Decimal("0.30")
PRICE_FLOOR_EUR_PER_KWH = Decimal("0.05")  # what the aggregator promises its members
# Simulated spans of the aggregator's links: the members poll and report often enough for the
# aggregator to see their power within one telemetry window, and no more (2 cores, 3 tiers).
POLL = timedelta(minutes=10)
GRANULARITY = timedelta(minutes=15)
REPORT_BACK = timedelta(minutes=15)
TELEMETRY_WINDOW = timedelta(minutes=45)
TICK = timedelta(minutes=5)
NODE_SAMPLE = timedelta(minutes=5)
NODE_TIMEOUT_S = 60.0


def node_id(feeder: str) -> NodeId:
    return NodeId(f"{AGGREGATOR_ID}-{feeder}")


def request_id(plan: FeederPlan) -> RequestId:
    assert plan.window is not None
    return RequestId(f"congestion-{plan.name}-{plan.window[0].strftime('%Y%m%d-%H%M')}")


def flex_request(plan: FeederPlan, now: datetime) -> FlexRequest:
    """The feeder's request: per ISP of its window, the forecast's excess over capacity."""
    assert plan.window is not None
    start, end = plan.window
    first = round((start - plan.start) / STEP)
    blocks = round((end - start) / STEP)
    needed = tuple(
        Decimal(repr(max(0.0, plan.forecast_kw[first + i] - plan.capacity_kw))).quantize(
            KW_QUANTUM, rounding=ROUND_DOWN
        )
        for i in range(blocks)
    )
    return FlexRequest(
        request_id=request_id(plan),
        point_id=CongestionPointId(plan.name),
        start=start.astimezone(UTC),
        isp=STEP,
        needed_kw=needed,
        price_cap_eur_per_kwh=PRICE_CAP_EUR_PER_KWH,
        gate_closure=max(start - GATE_LEAD, now + STEP).astimezone(UTC),
        created_at=now,
    )


async def request(
    context: Context, plan: FeederPlan, ven_ids: Sequence[VenId], now: datetime
) -> list[EventId]:
    """Publish the feeder's flex request (a `pilot.Requester`): no event yet, the award's comes
    at dispatch. The DSO names no VENs: the market knows the nodes under the point."""
    await service.create_request(context.store, flex_request(plan, now), actor=DSO, now=now)
    return []


def member_event_id(spec: HouseholdSpec, upstream: EventId | None) -> EventId | None:
    """The household's share of the award's event, at the aggregator's VTN."""
    if upstream is None:
        return None
    return aggregator_service.member_event_id(node_id(spec.feeder), upstream, spec.name)


@dataclass(frozen=True, slots=True)
class SimulatedBaseline:
    """M&V baseline: the node's households simulated without commands (the DSO's forecast).

    A `market.baseline.Baseline`: its name and parameters are recorded with each delivery.
    """

    forecast_kw: tuple[float, ...]  # the node's load per STEP from `start`
    start: datetime

    @property
    def name(self) -> str:
        return "no-flex-simulation"

    def params(self) -> dict[str, object]:
        return {"source": "flex4grid demo forecast", "step_s": int(STEP.total_seconds())}

    def estimate(
        self, history: History, event_day_readings: DayReadings, blocks: EventBlocks
    ) -> tuple[Decimal, ...]:
        midnight = datetime.combine(blocks.day, datetime.min.time(), UTC)
        found = []
        for isp in blocks.isps:
            slot = round((midnight + isp * blocks.isp - self.start) / STEP)
            found.append(Decimal(repr(self.forecast_kw[slot])).quantize(KW_QUANTUM))
        return tuple(found)


@dataclass(frozen=True, slots=True)
class Settled:
    """One feeder's trade: the request, what was bought, and the aggregator's statement."""

    feeder: str
    request_id: str
    bids: int
    cleared_kw: tuple[Decimal, ...]  # per block
    cleared_kwh: Decimal
    cost_eur: Decimal  # what the awards cost at their prices if fully delivered
    event_id: str | None
    node_opt: str | None  # the node's answer at the DSO's VTN
    statement: dict[str, Any] | None


def devices_of(spec: HouseholdSpec) -> tuple[DeviceInfo, ...]:
    """A household's devices as the aggregator knows them (kind and rating)."""
    found = [DeviceInfo(device_id="base-load", kind=DeviceKind.BASE_LOAD, rating_kw=0.0)]
    if spec.heat_pump_kw is not None:
        found.append(
            DeviceInfo(
                device_id="heat-pump", kind=DeviceKind.HEAT_PUMP, rating_kw=spec.heat_pump_kw
            )
        )
    if spec.ev is not None:
        found.append(
            DeviceInfo(
                device_id="ev-charger", kind=DeviceKind.EV_CHARGER, rating_kw=spec.ev.max_power_kw
            )
        )
    if spec.battery_kwh is not None:
        found.append(
            DeviceInfo(
                device_id="battery",
                kind=DeviceKind.BATTERY,
                rating_kw=min(5.0, spec.battery_kwh / 2),
            )
        )
    return tuple(found)


def _node_identity(pki: DevPki, name: str) -> IdentityFiles:
    """The node's certificate from the DSO's CA (role aggregator), as the DSO issues it."""
    identity = IdentityFiles(pki.directory / name)
    if not identity.chain.exists():
        identity = pki.issue(pki.dso_ca, Role.AGGREGATOR, name)
    return identity


def _members_bundle(pki: DevPki, path: Path) -> Path:
    """The root and the aggregator's own CA (VENs only): the only gateways it takes."""
    cas = [TrustedCa.from_dir(pki.root), TrustedCa.from_dir(pki.aggregator_ca, [Role.VEN])]
    path.write_text(TrustStore(cas).pem_bundle())
    return path


@dataclass
class MarketRun:
    """The market side of one pilot: the grid model, the aggregator, each feeder's trade."""

    context: Context  # the DSO's VTN
    gate: GateKeeper  # its gate-closure task
    pki: DevPki
    clock: SimClock
    ca_file: Path
    hot: Path
    specs: Sequence[HouseholdSpec]
    plans: Sequence[FeederPlan]
    aggregator: Aggregator | None = None
    task: asyncio.Task[None] | None = None

    def aggregator_config(self, dso_url: str, token: str) -> AggregatorConfig:
        vtn_pin = fingerprint.of_certificate(self.pki.vtn.load_certificate())
        nodes = []
        for plan in self.plans:
            identity = _node_identity(self.pki, node_id(plan.name))
            nodes.append(
                NodeConfig(
                    node_id=node_id(plan.name),
                    ven_name=node_id(plan.name),
                    cert=identity.chain,
                    key=identity.key,
                )
            )
        return AggregatorConfig(
            upstream=UpstreamConfig(
                vtn_url=dso_url,
                state_dir=self.hot / "aggregator" / "state",
                ca_file=self.ca_file,
                vtn_fingerprint=vtn_pin,
                poll_interval=POLL,
                sample_period=NODE_SAMPLE,
            ),
            downstream=DownstreamConfig(
                database=self.hot / "aggregator" / "aggregator.db",
                cert=self.pki.aggregator.chain,
                key=self.pki.aggregator.key,
                ca_file=_members_bundle(self.pki, self.ca_file.with_name("members-ca.pem")),
                poll_interval=POLL,
                telemetry_granularity=GRANULARITY,
                report_back=REPORT_BACK,
            ),
            nodes=tuple(nodes),
            members=tuple(
                MemberConfig(
                    ven_name=spec.name,
                    node_id=node_id(spec.feeder),
                    devices=devices_of(spec),
                    max_shift=spec.preferences.max_shift,
                )
                for spec in self.specs
            ),
            control=ControlConfig(
                tick=TICK, tolerance=0.1, grace=2 * GRANULARITY, telemetry_window=TELEMETRY_WINDOW
            ),
            market=MarketConfig(
                url=dso_url,
                token=token,
                strategy=Strategy(price_floor_eur_per_kwh=PRICE_FLOOR_EUR_PER_KWH),
                ca_file=self.ca_file,
                cert=nodes[0].cert,
                key=nodes[0].key,
            ),
        )

    async def start(self, dso_url: str, speed: float) -> str:
        """Grid model, aggregator account, the aggregator running and its nodes registered at
        the DSO's VTN with their members; the URL the households' gateways connect to."""
        now = self.clock()
        store = self.context.store
        for plan in self.plans:
            point = CongestionPoint(
                point_id=CongestionPointId(plan.name),
                name=plan.name,
                capacity_kw=Decimal(repr(plan.capacity_kw)).quantize(KW_QUANTUM),
            )
            await accounts.create_point(store, point, actor=DSO, now=now)
        for spec in self.specs:
            resource = PointResource(
                prosumer_id=ProsumerId(spec.name),
                point_id=CongestionPointId(spec.feeder),
                ven_id=None,  # its gateway is the aggregator's: the node's VEN meters it here
                added_at=now,
            )
            await accounts.add_resource(store, resource, actor=DSO, now=now)
        account = AggregatorAccount(aggregator_id=AGGREGATOR_ID, name="Demo aggregator")
        token = await accounts.create_aggregator(store, account, actor=DSO, now=now)
        self.aggregator = Aggregator(
            self.aggregator_config(dso_url, token), clock=self.clock, clock_speed=speed
        )
        self.task = asyncio.create_task(self.aggregator.run(), name="aggregator")
        async with asyncio.timeout(NODE_TIMEOUT_S):
            await self.aggregator.ready.wait()
        assert self.aggregator.downstream is not None
        agg = Actor(name=f"aggregator:{AGGREGATOR_ID}", aggregator_id=AGGREGATOR_ID)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + NODE_TIMEOUT_S
        for plan in self.plans:
            link = self.aggregator.nodes[node_id(plan.name)]
            while (ven_id := link.runner.session.state.ven_id) is None:
                if self.task.done() or loop.time() > deadline:
                    raise RuntimeError(
                        f"the aggregator's node {node_id(plan.name)} did not register"
                    )
                await asyncio.sleep(0.05)
            node = VirtualEndNode(
                node_id=node_id(plan.name),
                aggregator_id=AGGREGATOR_ID,
                point_id=CongestionPointId(plan.name),
                name=f"{plan.name} households",
                ven_id=ven_id,
            )
            await accounts.create_node(store, node, actor=agg, now=now)
            for name in plan.households:
                await accounts.add_member(
                    store, node.node_id, ProsumerId(name), f"consent/{name}/demo-2026",
                    actor=agg, now=now,
                )  # fmt: skip
        return self.aggregator.downstream.url

    @property
    def downstream(self) -> Context:
        assert self.aggregator is not None and self.aggregator.downstream is not None
        return self.aggregator.downstream.context

    async def requests(self) -> dict[str, FlexRequest]:
        """Feeder -> its flex request, once published."""
        found: dict[str, FlexRequest] = {}
        async with self.context.store.transaction() as tx:
            market = Market.on(tx)
            for plan in self.plans:
                if plan.window is not None:
                    request = await market.requests.get(request_id(plan))
                    if request is not None:
                        found[plan.name] = request
        return found

    async def events(self) -> dict[str, EventId]:
        """Feeder -> the award's event at the DSO's VTN, once dispatched."""
        found: dict[str, EventId] = {}
        requests = await self.requests()
        async with self.context.store.transaction() as tx:
            market = Market.on(tx)
            for feeder, request in requests.items():
                for stored in await market.awards.for_request(request.request_id):
                    if stored.event_id is not None:
                        found[feeder] = EventId(stored.event_id)
        return found

    async def member_answers(self, events: dict[str, EventId]) -> tuple[int, int]:
        """(answered, asked): the households given a share of each feeder's award, and how
        many of them have answered it (for the status line)."""
        answered = asked = 0
        async with self.downstream.store.transaction() as tx:
            for feeder, upstream in events.items():
                for spec in self.specs:
                    member = member_event_id(spec, upstream)
                    if spec.feeder != feeder or member is None:
                        continue
                    deliveries = await tx.deliveries.for_event(member)
                    asked += bool(deliveries)
                    answered += any(d.responded_at is not None for d in deliveries)
        return answered, asked

    async def settle(self, now: datetime) -> list[Settled]:
        """Measure and settle every dispatched request (its window is over by `now`)."""
        settled = []
        for feeder, request in (await self.requests()).items():
            plan = next(p for p in self.plans if p.name == feeder)
            async with self.context.store.transaction() as tx:
                market = Market.on(tx)
                current = await service.load_request(market, request.request_id)
                bids = await market.bids.for_request(request.request_id)
                awards = await market.awards.for_request(request.request_id)
            statement = None
            if current.status is RequestStatus.DISPATCHED:
                method = SimulatedBaseline(forecast_kw=plan.forecast_kw, start=plan.start)
                await measurement.measure_request(
                    self.context.store, request.request_id, method, actor=DSO, now=now
                )
                bodies = await service.settle_request(
                    self.context.store, request.request_id, actor=DSO, now=now
                )
                statement = next(iter(bodies), None)
                log.info("%s settled: %s", request.request_id, [b["totals"] for b in bodies])
            cleared = tuple(
                sum((s.award.awarded_kw[i] for s in awards), Decimal(0))
                for i in range(len(request.needed_kw))
            )
            cost = sum(
                (
                    kw * request.block_hours * s.award.price_eur_per_kwh
                    for s in awards
                    for kw in s.award.awarded_kw
                ),
                Decimal(0),
            )
            event_id = next((s.event_id for s in awards if s.event_id is not None), None)
            settled.append(
                Settled(
                    feeder=feeder,
                    request_id=request.request_id,
                    bids=len(bids),
                    cleared_kw=cleared,
                    cleared_kwh=sum(cleared, Decimal(0)) * request.block_hours,
                    cost_eur=cost.quantize(Decimal("0.01")),
                    event_id=event_id,
                    node_opt=await self._node_opt(event_id),
                    statement=statement,
                )
            )
        return settled

    async def _node_opt(self, event_id: str | None) -> str | None:
        if event_id is None:
            return None
        async with self.context.store.transaction() as tx:
            deliveries = await tx.deliveries.for_event(event_id)
        answers = [d.opt_type.value for d in deliveries if d.opt_type is not None]
        return answers[0] if answers else None

    async def stop(self) -> None:
        if self.aggregator is not None:
            self.aggregator.stop()
        if self.task is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(15):
                    await self.task


def summary(settled: Sequence[Settled]) -> list[dict[str, Any]]:
    """The trades as JSON-ready data (Decimals as exact strings)."""
    return [
        {
            "feeder": s.feeder,
            "request_id": s.request_id,
            "bids": s.bids,
            "cleared_kw": [str(kw) for kw in s.cleared_kw],
            "cleared_kwh": str(s.cleared_kwh),
            "cost_eur": str(s.cost_eur),
            "event_id": s.event_id,
            "node_opt": s.node_opt,
            "statement": s.statement,
        }
        for s in settled
    ]
