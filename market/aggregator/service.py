"""The aggregator: upstream node VENs, the downstream VTN, and the loop that joins them (issue 9).

Every `control.tick` the loop reads the downstream VTN (which member is which venID, members'
recent power, their answers) and, per node:

1. sums the members' latest power into the node's one device (`upstream.NodeBus`): the node's
   VEN reports it upstream at the granularity the DSO asked for;
2. works out what each member can give now (`disaggregation.member_available_kw`), which the
   node's opt policy uses for the next upstream event;
3. for each upstream event the node opted into, shares the ask across the members
   (`disaggregation.plan`) and gives each member with a share its own LOAD_DISPATCH delta event
   (same start and intervals as the DSO's, targeted at its venID); a new modification upstream
   is shared again and the members' events modified; a cancellation cancels theirs;
4. watches each member: one that opts out, or whose readings taken `control.grace` after its
   share last changed show it delivering less than its share (its power before the event less
   its latest power, `under_delivers`), counts for what it delivers, and what is missing is
   re-dispatched to the others (their events modified).
   When the others cannot make up for it within the tolerance, the node opts out upstream.

With a `[market]` section it also bids, once per open flex request and node under that
request's congestion point, what the members can give (`bidding.bid`, through `market_api`).
An award comes back as an ordinary upstream event (`market.dispatch`) and is shared as above.

The shares and the availability they were planned on live in memory: after a restart the
events in flight are planned again and their member events modified (not doubled: member
eventIDs are derived from the node, the upstream eventID and the member).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from market.aggregator import bidding, disaggregation, downstream
from market.aggregator.bidding import BidPlan, MemberOffer
from market.aggregator.config import AggregatorConfig, MarketConfig, NodeConfig
from market.aggregator.disaggregation import MemberFlex
from market.aggregator.downstream import DownstreamVtn, MemberPower
from market.aggregator.market_api import MarketApiError, MarketClient
from market.aggregator.upstream import NodeBus, NodePolicy, Outlook, build_node_runner
from market.dispatch import KW
from market.model import KW_QUANTUM, NodeId, RequestId
from oadr.enums import EventStatus, OptType, ResponseRequired, SignalName, SignalType
from oadr.model import (
    ActivePeriod,
    Event,
    EventId,
    EventInterval,
    EventSignal,
    Target,
    VenId,
)
from ven.runner import Clock, Runner, utc_now
from ven.schedule import EventRecord
from vtn.services import operator

log = logging.getLogger("flex4grid.aggregator")
ACTOR = "aggregator"
HISTORY = 100  # finished dispatches kept for inspection
_CHANGE_KW = 0.05  # a share moving less than this is not worth a modification


@dataclass
class _Dispatch:
    """One upstream event modification as shared across a node's members."""

    needed_kw: tuple[float, ...]
    durations: tuple[timedelta, ...]
    modification: int
    flexes: tuple[MemberFlex, ...]  # what members could give when it was planned
    baselines_kw: dict[str, float]  # each member's power when it was planned
    shares: dict[str, tuple[float, ...]] = field(default_factory=dict)
    events: dict[str, EventId] = field(default_factory=dict)  # member -> its eventID
    changed_at: dict[str, datetime] = field(default_factory=dict)
    failing: dict[str, float] = field(default_factory=dict)  # member -> kW it delivers
    opted_out: bool = False


@dataclass
class NodeLink:
    """One virtual end node: its VEN upstream and what the loop last learnt of its members."""

    config: NodeConfig
    bus: NodeBus
    runner: Runner
    outlook: Outlook
    dispatches: dict[EventId, _Dispatch] = field(default_factory=dict)
    history: dict[EventId, _Dispatch] = field(default_factory=dict)  # the last few, when over

    @property
    def flexes(self) -> tuple[MemberFlex, ...]:
        return self.outlook.flexes


def member_event_id(node_id: str, upstream_id: str, member: str) -> EventId:
    digest = hashlib.sha256(f"{node_id}\0{upstream_id}\0{member}".encode()).hexdigest()
    return EventId(f"agg-{digest[:24]}")


def _dispatch_signal(event: Event) -> EventSignal | None:
    return next((s for s in event.signals if s.signal_name == SignalName.LOAD_DISPATCH), None)


def interval_index(start: datetime, durations: tuple[timedelta, ...], now: datetime) -> int | None:
    """Which interval runs at `now`; None before the start and after the end."""
    if now < start:
        return None
    at = start
    for index, duration in enumerate(durations):
        at += duration
        if now < at:
            return index
    return None


def _market_client(config: MarketConfig) -> MarketClient:
    context = None
    if config.url.startswith("https:"):
        context = ssl.create_default_context(
            cafile=str(config.ca_file) if config.ca_file is not None else None
        )
        if config.cert is not None and config.key is not None:
            context.load_cert_chain(config.cert, config.key)
    return MarketClient(config.url, config.token, context)


class Aggregator:
    """The aggregator service; `run()` until `stop()`."""

    def __init__(
        self, config: AggregatorConfig, *, clock: Clock = utc_now, clock_speed: float = 1.0
    ) -> None:
        self.config = config
        self._clock = clock
        self._speed = clock_speed  # a simulated clock (flex4grid demo): waits shrink by it
        self._stop = asyncio.Event()
        self.ready = asyncio.Event()  # set once the downstream VTN serves
        self.downstream: DownstreamVtn | None = None
        self.nodes: dict[str, NodeLink] = {}
        self.bids: dict[tuple[RequestId, NodeId], BidPlan] = {}  # submitted, per request and node
        self._market = _market_client(config.market) if config.market is not None else None
        for node in config.nodes:
            bus, outlook = NodeBus(node.node_id, clock), Outlook()
            policy = NodePolicy(outlook, config.control.tolerance)
            runner = build_node_runner(
                node, config.upstream, bus, policy, clock=clock, clock_speed=clock_speed
            )
            self.nodes[node.node_id] = NodeLink(
                config=node, bus=bus, runner=runner, outlook=outlook
            )

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        async with downstream.running(self.config.downstream, clock=self._clock) as vtn:
            self.downstream = vtn
            self.ready.set()
            tasks = [asyncio.create_task(link.runner.run()) for link in self.nodes.values()]
            try:
                while not self._stop.is_set():
                    try:
                        await self.tick()
                    except Exception:  # a bug must not stop the aggregator: log, carry on
                        log.exception("an aggregator tick failed; carrying on")
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(
                            self.config.control.tick.total_seconds() / self._speed
                        ):
                            await self._stop.wait()
            finally:
                for link in self.nodes.values():
                    link.runner.stop()
                await asyncio.gather(*tasks, return_exceptions=True)
                if self._market is not None:
                    await self._market.close()

    # --- one tick ---------------------------------------------------------------------------------

    async def tick(self) -> None:
        assert self.downstream is not None
        context = self.downstream.context
        now = self._clock()
        names = await downstream.members_by_name(context)
        power = await downstream.recent_power(context, now - self.config.control.telemetry_window)
        for link in self.nodes.values():
            self._observe(link, names, power, now)
            await self._steer(link, names, power, now)
        if self._market is not None:
            try:
                await self._bid(self._market, now)
            except MarketApiError as err:
                log.warning("bidding failed this round: %s", err)

    # --- bidding ----------------------------------------------------------------------------------

    async def _bid(self, market: MarketClient, now: datetime) -> None:
        """Bid once on each open request under a congestion point one of our nodes is under."""
        assert self.config.market is not None
        requests = [r for r in await market.open_requests() if r.gate_closure > now]
        if not requests:
            return
        points = {n.node_id: n.point_id for n in await market.nodes()}
        for request in requests:
            for node_id, link in self.nodes.items():
                key = (request.request_id, NodeId(node_id))
                if key in self.bids or points.get(NodeId(node_id)) != request.point_id:
                    continue
                plan = bidding.bid(
                    request, NodeId(node_id), self.offers(link), self.config.market.strategy
                )
                if plan is None:
                    continue
                await market.submit(request, plan)
                self.bids[key] = plan
                log.info(
                    "node %s bid on %s: %s kW at %s EUR/kWh",
                    node_id, request.request_id, [str(k) for k in plan.offered_kw],
                    plan.price_eur_per_kwh,
                )  # fmt: skip

    def offers(self, link: NodeLink) -> list[MemberOffer]:
        """What each member of the node can give now, with its preference for how long."""
        shifts = {m.ven_name: m.max_shift for m in self.config.members_of(link.config.node_id)}
        return [
            MemberOffer(
                member=f.member,
                available_kw=Decimal(str(f.available_kw)).quantize(KW_QUANTUM),
                max_shift=shifts[f.member],
            )
            for f in link.flexes
            if not f.opted_out
        ]

    def _observe(
        self, link: NodeLink, names: dict[str, VenId], power: dict[VenId, MemberPower],
        now: datetime,
    ) -> None:  # fmt: skip
        flexes, latest, mean = [], [], []
        for member in self.config.members_of(link.config.node_id):
            ven = names.get(member.ven_name)
            seen = power.get(ven) if ven is not None else None
            if seen is None:
                flexes.append(MemberFlex(member=member.ven_name, available_kw=0.0))
                continue
            available = disaggregation.member_available_kw(member.devices, seen.mean_kw)
            flexes.append(MemberFlex(member=member.ven_name, available_kw=available))
            latest.append(seen.total_latest_kw)
            mean.append(seen.total_mean_kw)
        link.outlook.flexes = tuple(flexes)
        link.outlook.baseline_kw = math.fsum(mean)
        if latest:
            link.bus.set_power(math.fsum(latest), now)

    async def _steer(
        self, link: NodeLink, names: dict[str, VenId], power: dict[VenId, MemberPower],
        now: datetime,
    ) -> None:  # fmt: skip
        live: set[EventId] = set()
        for record in link.runner.session.state.events:
            event = record.event
            signal = _dispatch_signal(event)
            taking_part = (
                record.decision is not None
                and record.decision.opt == OptType.OPT_IN
                and not record.overridden
                and not record.cancelled
                and record.excluded is None
            )
            found = link.dispatches.get(record.event_id)
            if not taking_part or signal is None:
                if found is not None:
                    await self._release(found, now)
                    link.dispatches.pop(record.event_id)
                continue
            live.add(record.event_id)
            if found is None or found.modification != event.modification_number:
                await self._plan(link, record, signal, names, power, now, found)
            else:
                await self._follow(link, record, found, names, power, now)
        known = {r.event_id for r in link.runner.session.state.events}
        for gone in set(link.dispatches) - live - known:  # over upstream, and forgotten there
            link.history[gone] = link.dispatches.pop(gone)
            while len(link.history) > HISTORY:
                link.history.pop(next(iter(link.history)))

    def dispatch_of(self, node_id: str, event_id: str) -> _Dispatch | None:
        """How an upstream event is (or was) shared across the node's members."""
        link = self.nodes[node_id]
        return link.dispatches.get(EventId(event_id)) or link.history.get(EventId(event_id))

    async def _plan(
        self, link: NodeLink, record: EventRecord, signal: EventSignal,
        names: dict[str, VenId], power: dict[VenId, MemberPower], now: datetime,
        previous: _Dispatch | None,
    ) -> None:  # fmt: skip
        needed = disaggregation.requested_kw(record.event, link.outlook.baseline_kw)
        if needed is None:
            return
        baselines = {}
        for member in self.config.members_of(link.config.node_id):
            ven = names.get(member.ven_name)
            seen = power.get(ven) if ven is not None else None
            baselines[member.ven_name] = 0.0 if seen is None else seen.total_mean_kw
        found = _Dispatch(
            needed_kw=needed,
            durations=tuple(i.duration for i in signal.intervals),
            modification=record.event.modification_number,
            flexes=previous.flexes if previous is not None else link.flexes,
            baselines_kw=previous.baselines_kw if previous is not None else baselines,
            events=dict(previous.events) if previous is not None else {},
            shares=dict(previous.shares) if previous is not None else {},
        )
        link.dispatches[record.event_id] = found
        result = disaggregation.plan(needed, found.flexes)
        log.info(
            "node %s: event %s asks %s kW; shared across %d members",
            link.config.node_id, record.event_id, [round(k, 3) for k in needed],
            sum(1 for s in result.shares_kw.values() if any(s)),
        )  # fmt: skip
        await self._issue(link, record, found, result.shares_kw, names, now)

    async def _follow(
        self, link: NodeLink, record: EventRecord, found: _Dispatch,
        names: dict[str, VenId], power: dict[VenId, MemberPower], now: datetime,
    ) -> None:  # fmt: skip
        assert self.downstream is not None
        control = self.config.control
        index = interval_index(record.start_at, found.durations, now)
        newly: dict[str, float] = {}
        sent = await downstream.deliveries_of(self.downstream.context, found.events.values())
        for member, event_id in found.events.items():
            if member in found.failing:
                continue
            ven = names.get(member)
            got = sent.get((event_id, ven)) if ven is not None else None
            if got is not None and got.opt_type == OptType.OPT_OUT:
                newly[member] = 0.0
                log.info("member %s opted out of %s: re-dispatching", member, event_id)
                continue
            since = disaggregation.judged_from(
                start=record.start_at,
                changed_at=found.changed_at.get(member),
                delivered_at=got.delivered_at if got is not None else None,
                grace=control.grace,
            )
            seen = power.get(ven) if ven is not None else None
            if index is None or since is None or seen is None or not seen.fresh_since(since):
                continue
            delivered = found.baselines_kw.get(member, 0.0) - seen.total_latest_kw
            assigned = found.shares.get(member, ())[index : index + 1]
            if assigned and disaggregation.under_delivers(
                assigned[0], delivered, control.tolerance
            ):
                newly[member] = delivered
                log.info(
                    "member %s delivers %.3f of %.3f kW: re-dispatching",
                    member, delivered, assigned[0],
                )  # fmt: skip
        if not newly:
            return
        found.failing.update(newly)
        result = disaggregation.redispatch(found.needed_kw, found.flexes, found.failing)
        await self._issue(link, record, found, result.shares_kw, names, now)
        if not found.opted_out and not disaggregation.can_deliver(
            result, found.needed_kw, control.tolerance
        ):
            found.opted_out = True
            short = max(result.shortfall_kw, default=0.0)
            try:
                link.runner.session.opt_out(
                    record.event_id, now, f"members cannot deliver: {short:.3f} kW short"
                )
            except (KeyError, ValueError) as err:
                log.warning("could not opt out of %s: %s", record.event_id, err)

    # --- member events ----------------------------------------------------------------------------

    async def _issue(
        self, link: NodeLink, record: EventRecord, found: _Dispatch,
        shares: Mapping[str, tuple[float, ...]], names: dict[str, VenId], now: datetime,
    ) -> None:  # fmt: skip
        """Create or modify each member's event to its share (cancel one whose share is gone),
        all in one transaction: the members get their shares together, however many they are."""
        assert self.downstream is not None
        issued: dict[str, tuple[float, ...]] = {}
        async with operator.event_batch(self.downstream.context, actor=ACTOR, now=now) as batch:
            for member, kws in shares.items():
                ven = names.get(member)
                event_id = member_event_id(link.config.node_id, record.event_id, member)
                old = found.shares.get(member)
                has_share = any(kw > disaggregation.EPS_KW for kw in kws)
                if ven is None:
                    continue
                if member not in found.events:
                    if not has_share:
                        continue
                    if await batch.has_event(event_id):  # made before a restart: to this share
                        await batch.modify_event(event_id, signals=(self._signal(found, kws),))
                    else:
                        await batch.create_event(
                            self._member_event(record, found, event_id, ven, kws, now)
                        )
                elif old is not None and not disaggregation.changed(old, kws, _CHANGE_KW):
                    continue
                elif has_share:
                    await batch.modify_event(event_id, signals=(self._signal(found, kws),))
                else:
                    await batch.cancel_event(event_id)
                issued[member] = kws
        for member, kws in issued.items():  # committed
            found.events.setdefault(
                member, member_event_id(link.config.node_id, record.event_id, member)
            )
            found.shares[member] = kws
            found.changed_at[member] = now

    def _signal(self, found: _Dispatch, kws: tuple[float, ...]) -> EventSignal:
        return EventSignal(
            signal_name=SignalName.LOAD_DISPATCH,
            signal_type=SignalType.DELTA,
            signal_id="aggregator-share",
            intervals=tuple(
                EventInterval(uid=i, duration=d, value=-round(kw, 3))
                for i, (d, kw) in enumerate(zip(found.durations, kws, strict=True))
            ),
            item_base=KW,
        )

    def _member_event(
        self, record: EventRecord, found: _Dispatch, event_id: EventId, ven: VenId,
        kws: tuple[float, ...], now: datetime,
    ) -> Event:  # fmt: skip
        upstream = record.event
        return Event(
            event_id=event_id,
            modification_number=0,
            market_context=upstream.market_context,
            created=now,
            status=EventStatus.FAR,
            active_period=ActivePeriod(
                start=record.start_at, duration=sum(found.durations, timedelta(0))
            ),
            signals=(self._signal(found, kws),),
            target=Target(ven_ids=(ven,)),
            response_required=ResponseRequired.ALWAYS,
            vtn_comment=f"share of {upstream.event_id} (node event)",
        )

    async def _release(self, found: _Dispatch, now: datetime) -> None:
        assert self.downstream is not None
        async with operator.event_batch(self.downstream.context, actor=ACTOR, now=now) as batch:
            for event_id in found.events.values():
                if await batch.has_event(event_id):
                    await batch.cancel_event(event_id)
