"""The pilot on one machine: a throwaway PKI, the VTN, one VEN gateway per household, one clock.

Everything is the real thing over real HTTPS on 127.0.0.1: the VTN (`vtn.app.build_app`,
SQLite, mutual TLS, XML signatures required, HTTP push) and each household's gateway
(`ven.gateway.build_gateway`: session, policy, control, telemetry) with its simulated devices on
an in-process home bus. Only the clock is simulated (`SimClock`, shared by all). The VENs enrol
before midnight in `ENROL_BATCHES` batches, the clock held at a later minute of one telemetry
period for each: each VEN's hourly report then falls due at its batch's minute, as in a real
fleet, instead of a hundred signed reports arriving in the same instant, and however long
registration takes on a slow machine, it costs no simulated time. Then the clock runs at `speed`
times real time.

The day: the DSO's forecast (`forecast.plan`) finds each feeder's evening overload; at
`notice` before each window the DSO asks for flexibility (`MODES[mode]`): a direct event
(`dso`), which the VTN pushes, each VEN opting in or out and driving its devices; or a flex
request on the local market (`marketplace`), where the VTN runs the market, an in-process
aggregator (same clock) bids, and its award is shared across the households, which are then the
aggregator's VENs, not the DSO's. Telemetry comes back as the VTN's report requests ask
(15-minute means). After the day, delivery is measured from the stored readings of the VTN the
households report to (`results.measure`), and in market mode the request is measured and
settled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
import shutil
import socket
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from certs import fingerprint
from certs.dev import DevPki, make_dev_pki
from certs.files import IdentityFiles
from flex4grid.demo import dso, forecast, marketplace, profiles, results, scenario
from flex4grid.demo.clock import SimClock
from flex4grid.demo.forecast import FeederPlan
from flex4grid.demo.marketplace import MarketRun, Settled
from flex4grid.demo.profiles import LJUBLJANA, DayProfiles, Site
from flex4grid.demo.scenario import HouseholdSpec
from market.http import MARKET, MarketExtension
from oadr.enums import OptType
from oadr.model import Event, EventId, VenId
from oadr.signing import SigningKey
from ven.gateway import GatewayConfig, build_gateway
from ven.han.household import Household
from ven.reporting import ResourceSpec
from ven.runner import Runner
from ven.session import Phase
from vtn.app import CONTEXT, VtnConfig, build_app
from vtn.config import TelemetryDefaults, VtnSettings
from vtn.push import PushConfig
from vtn.services.context import Context
from vtn.store.events import Delivery

log = logging.getLogger("flex4grid.demo")

# A flexibility request for one feeder: (VTN context, the feeder's plan, its VENs, now) -> the
# events created.
Requester = Callable[[Context, FeederPlan, Sequence[VenId], datetime], Awaitable[list[EventId]]]
# "market": the flex request only; `marketplace.MarketRun` does the rest (bids, gate, award).
MODES: dict[str, Requester] = {"event": dso.request, "market": marketplace.request}

REPLAY_TOLERANCE_S = 30.0  # real seconds a signed message may be off (scaled to the clock)
REGISTRATION_TIMEOUT_S = 300.0
STOP_WITHIN_S = 10.0  # real seconds the VENs and the VTN get to stop once the demo ends
WARMUP = timedelta(hours=2)  # before midnight: the VENs enrol (one report period), then settle
ENROL_BATCHES = 20
STALLED_S = 2.0  # a batch waiting this long in real time moves the held clock on a minute


@dataclass(frozen=True, slots=True)
class PilotConfig:
    households: int = 100
    feeders: int = 2
    speed: float = 900.0  # one simulated day in 96 s
    seed: int = 1
    mode: str = "event"
    site: Site = LJUBLJANA
    day: date | None = None  # default: tomorrow at the site
    capacity_kw: float | None = None  # default: sized from the forecast (forecast.CAPACITY_SHARE)
    notice: timedelta = timedelta(hours=4)  # the event is created this long before its window
    sample_period: timedelta = timedelta(minutes=5)  # each VEN reads its devices
    granularity: timedelta = timedelta(minutes=15)  # telemetry the VTN asks for
    report_back: timedelta = timedelta(hours=1)


@dataclass
class Live:
    """What the status line shows; updated while the pilot runs."""

    clock: SimClock
    start: datetime
    end: datetime
    plans: list[FeederPlan]
    runners: dict[str, Runner] = field(default_factory=dict)  # household name -> gateway
    specs: dict[str, HouseholdSpec] = field(default_factory=dict)
    events: dict[str, EventId] = field(default_factory=dict)  # feeder -> its event
    acknowledged: int = 0
    targeted: int = 0
    phase: str = "starting"
    market: MarketRun | None = None  # --mode market: the households answer the aggregator

    def online(self) -> int:
        return sum(r.session.state.phase == Phase.REGISTERED for r in self.runners.values())

    def reporting(self) -> int:
        """VENs registered that hold the VTN's telemetry request: ready for the day."""
        return sum(
            r.session.state.phase == Phase.REGISTERED and bool(r.session.state.reports)
            for r in self.runners.values()
        )

    def feeder_load_kw(self, feeder: str) -> float:
        """Live: what the feeder's households draw now (their devices' latest telemetry)."""
        total = 0.0
        for name, runner in self.runners.items():
            if self.specs[name].feeder == feeder:
                total += sum(s.power_kw for s in runner.bus.states().values())
        return total


@dataclass(frozen=True, slots=True)
class Collected:
    """What the pilot leaves for the measurement, read from the VTN's database after the day
    (and the households' answers' reasons from their gateways' journals)."""

    profiles: DayProfiles
    specs: list[HouseholdSpec]
    plans: list[FeederPlan]
    outcome: results.Outcome
    events: dict[str, EventId]  # feeder -> event
    registration_s: float  # real time until every VEN was registered
    runtime_s: float  # real time of the whole run
    trades: tuple[Settled, ...] = ()  # --mode market: each feeder's request, award, statement


def _ephemeral_ports() -> range:
    """The ports the kernel hands out for outgoing connections (Linux; else the IANA range)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(49152, 65536)


def free_port(rng: random.Random, taken: set[int]) -> int:
    """A free port for a VEN's push endpoint, outside the ephemeral range.

    The VEN announces its address when it registers, before its server binds, so the port is
    chosen ahead; a port from the ephemeral range could meanwhile become the local end of one of
    the hundreds of connections the pilot opens.
    """
    ephemeral = _ephemeral_ports()
    for _ in range(1000):
        port = rng.randrange(20000, 32768)
        if port in ephemeral or port in taken:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise RuntimeError("no free port for the VENs' push endpoints")


def tomorrow(site: Site) -> date:
    return (datetime.now(site.zone) + timedelta(days=1)).date()


def certificates_from(simulated_start: datetime, now: datetime) -> datetime:
    """When the pilot's certificates start to be valid: at the earlier of the real time and the
    simulated clock's start. Issued at the real time, a day whose warm-up starts before it
    (tomorrow, asked for late in the evening; any past day) had every VEN refused as
    'not-yet-valid' and the pilot waited for registrations that never came."""
    return min(simulated_start, now)


def _hot_dir() -> Path:
    """Where the databases live while the pilot runs: memory-backed when the machine has it.

    Every VEN saves its state durably (fsync) before each acknowledgement and each telemetry
    sample; a hundred of them on a simulated clock would wait on the disk, not on the protocol.
    The files are copied to the work directory when the pilot ends.
    """
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return Path(tempfile.mkdtemp(prefix="flex4grid-demo-", dir=shm))
    return Path(tempfile.mkdtemp(prefix="flex4grid-demo-"))


def _vtn_config(pki: DevPki, workdir: Path, clock: SimClock, config: PilotConfig) -> VtnConfig:
    replay_window = timedelta(seconds=REPLAY_TOLERANCE_S * config.speed)
    market = config.mode == "market"
    settings = VtnSettings(
        # In market mode the DSO's only VENs are the aggregator's nodes, which do not sign
        # (market.aggregator.upstream); the households sign nothing at the aggregator's VTN.
        require_signatures=not market,
        signing_key=SigningKey.from_pem(pki.vtn.key.read_bytes(), pki.vtn.chain.read_bytes()),
        replay_window=replay_window,
        telemetry=TelemetryDefaults(granularity=config.granularity, report_back=config.report_back),
    )
    return VtnConfig(
        settings=settings,
        database_url=f"sqlite+aiosqlite:///{workdir / 'vtn.db'}",
        trust=pki.trust_store(),
        push=PushConfig(tls=pki.client_context(pki.vtn)),
        extensions=(MarketExtension(),) if market else (),
        clock=clock,
    )


def _gateway_config(
    spec: HouseholdSpec,
    home: Household,
    identity: IdentityFiles,
    vtn: Vtn,
    state_dir: Path,
    push_port: int,
    config: PilotConfig,
) -> GatewayConfig:
    # The aggregator's VTN pushes nothing (no client certificate of its own) and takes
    # unsigned messages; its members poll it.
    market = config.mode == "market"
    return GatewayConfig(
        vtn_url=vtn.url,
        ven_name=spec.name,
        state_dir=state_dir,
        cert=identity.chain,
        key=identity.key,
        ca_file=vtn.ca_file,
        vtn_fingerprint=vtn.fingerprint,
        push_port=None if market else push_port,
        sign=not market,
        sample_period=config.sample_period,
        preferences=spec.preferences,
        # Power only: status points would double the telemetry for nothing the demo shows.
        devices=tuple(
            ResourceSpec(
                resource_id=device.device_id,
                kind=device.kind,
                min_period=timedelta(minutes=1),
                status=False,
            )
            for device in home.devices
        ),
        replay_window=timedelta(seconds=REPLAY_TOLERANCE_S * config.speed),
    )


@dataclass(frozen=True, slots=True)
class Vtn:
    """What a gateway needs to know of the VTN."""

    url: str
    ca_file: Path
    fingerprint: str


async def _wait_ready(
    live: Live,
    tasks: Sequence[asyncio.Task[None]],
    clock: SimClock,
    stop: asyncio.Event,
    deadline: float,
) -> None:
    """Until every VEN started so far is registered and holds the VTN's telemetry request.

    The clock is held meanwhile; a VEN waiting on a timer (a retry after a refused attempt)
    would wait for ever, so a batch that makes no progress for STALLED_S moves it a minute on.
    """
    loop = asyncio.get_running_loop()
    progress, since = live.reporting(), loop.time()
    while live.reporting() < len(live.runners) and not stop.is_set():
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise RuntimeError(f"{task.get_name()} failed: {task.exception()}")
        if loop.time() > deadline:
            raise RuntimeError(
                f"only {live.reporting()} of {len(live.runners)} VENs registered"
                f" within {REGISTRATION_TIMEOUT_S:.0f} s"
            )
        if live.reporting() != progress:
            progress, since = live.reporting(), loop.time()
        elif loop.time() - since > STALLED_S:
            clock.advance(timedelta(minutes=1))
            since = loop.time()
        await asyncio.sleep(0.05)


async def _acknowledged(context: Context, live: Live) -> None:
    """How many targeted VENs answered their feeder's event (for the status line)."""
    if live.market is not None:
        live.acknowledged, live.targeted = await live.market.member_answers(live.events)
        return
    acknowledged = targeted = 0
    async with context.store.transaction() as tx:
        for event_id in live.events.values():
            deliveries = await tx.deliveries.for_event(event_id)
            acknowledged += sum(d.responded_at is not None for d in deliveries)
    for feeder in live.events:
        targeted += sum(1 for s in live.specs.values() if s.feeder == feeder)
    live.acknowledged, live.targeted = acknowledged, targeted


async def run(
    config: PilotConfig,
    workdir: Path,
    stop: asyncio.Event,
    on_tick: Callable[[Live], None] = lambda live: None,
) -> Collected | None:
    """Run the pilot in `workdir`; None if `stop` was set before the day was over."""
    loop = asyncio.get_running_loop()
    # The gateways' SQLite saves run in threads: enough of them that no VEN waits for another.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=min(64, config.households + 4)))
    started = loop.time()
    requester = MODES[config.mode]
    day = config.day or tomorrow(config.site)
    day_profiles = await asyncio.to_thread(profiles.build, config.site, day)
    specs = scenario.households(config.households, config.feeders, config.seed, day_profiles)
    baseline = await asyncio.to_thread(forecast.household_loads, specs, day_profiles, WARMUP)
    plans = forecast.plan(specs, baseline, day_profiles.start, config.capacity_kw)

    # In market mode the first VEN certificate (from the DSO's CA) is left over: the
    # households' come from the aggregator's own CA, the only one its VTN takes.
    market_mode = config.mode == "market"
    clock = SimClock(start=day_profiles.start - WARMUP, speed=config.speed)
    issued = certificates_from(clock.start, datetime.now(UTC))
    pki = await asyncio.to_thread(
        make_dev_pki, workdir / "pki", issued, ven_count=config.households + market_mode
    )
    identities = pki.vens[1:] if market_mode else pki.vens
    (workdir / "ca-bundle.pem").write_text(pki.trust_store().pem_bundle())
    if stop.is_set():
        return None
    day_end = day_profiles.start + timedelta(days=1)
    live = Live(clock=clock, start=day_profiles.start, end=day_end, plans=plans)
    live.specs = {s.name: s for s in specs}

    hot = _hot_dir()
    site_runner: web.AppRunner | None = None
    market: MarketRun | None = None
    tasks: list[asyncio.Task[None]] = []
    ticker: asyncio.Task[None] | None = None
    try:
        app = build_app(_vtn_config(pki, hot, clock, config))
        context = app[CONTEXT]
        await context.store.create_all()
        # Requests still in flight at the end get a few seconds, not aiohttp's default minute.
        site_runner = web.AppRunner(app, access_log=None, shutdown_timeout=STOP_WITHIN_S / 2)
        await site_runner.setup()
        await web.TCPSite(site_runner, "127.0.0.1", 0, ssl_context=pki.server_context()).start()
        host, port = site_runner.addresses[0][:2]
        vtn_url = f"https://{host}:{port}"
        log.info("VTN at %s", vtn_url)
        ticker = asyncio.create_task(_tick(live, context, on_tick, stop))
        live.phase = "registering"
        registering = loop.time()
        ports, taken = random.Random(os.urandom(8)), set[int]()
        vtn = Vtn(
            url=vtn_url,
            ca_file=workdir / "ca-bundle.pem",
            fingerprint=fingerprint.of_certificate(pki.vtn.load_certificate()),
        )
        if market_mode:
            market = MarketRun(
                context=context, gate=app[MARKET].gate, pki=pki, clock=clock,
                ca_file=workdir / "ca-bundle.pem", hot=hot, specs=specs, plans=plans,
            )  # fmt: skip
            live.market = market
            vtn = Vtn(
                url=await market.start(vtn_url, config.speed),
                ca_file=workdir / "ca-bundle.pem",
                fingerprint=fingerprint.of_certificate(pki.aggregator.load_certificate()),
            )
        deadline = registering + REGISTRATION_TIMEOUT_S
        batch = math.ceil(len(specs) / ENROL_BATCHES)
        slot = config.report_back / math.ceil(len(specs) / batch)
        enrolling = list(zip(identities, specs, strict=True))
        for number, first in enumerate(range(0, len(enrolling), batch)):
            for identity, spec in enrolling[first : first + batch]:
                # Every household starts at the clock's start, whenever its VEN enrols: the
                # home bus steps it to now, as the forecast did.
                home = scenario.household(spec, day_profiles, clock.start)
                port = free_port(ports, taken)
                state_dir = hot / "vens" / spec.name
                gateway = _gateway_config(spec, home, identity, vtn, state_dir, port, config)
                runner = build_gateway(gateway, clock=clock, clock_speed=config.speed, home=home)
                live.runners[spec.name] = runner
                tasks.append(asyncio.create_task(runner.run(), name=f"ven-{spec.name}"))
            await _wait_ready(live, tasks, clock, stop, deadline)
            if stop.is_set():
                return None
            next_slot = clock.start + (number + 1) * slot
            if clock() < next_slot:
                clock.advance(next_slot - clock())
        registration_s = loop.time() - registering
        clock.release()
        ven_of = {name: _ven_id(r) for name, r in live.runners.items()}
        live.phase = "day"
        published: dict[str, datetime] = {}
        notice = marketplace.NOTICE if market_mode else config.notice
        # Each VEN's report covering midnight is due within one report period after it.
        finish = day_end + config.report_back + config.granularity
        while clock() < finish and not stop.is_set():
            now = clock()
            for plan in plans:
                if plan.window is None or plan.name in published:
                    continue
                if now >= plan.window[0] - notice:
                    members = [ven_of[name] for name in plan.households]
                    event_ids = await requester(context, plan, members, now)
                    if event_ids:
                        live.events[plan.name] = event_ids[0]
                    published[plan.name] = now
                    log.info("%s: asked for flexibility, events %s", plan.name, event_ids)
            if market is not None:
                # The gate task sleeps in real time: on a fast clock, have it look each turn.
                market.gate.wake()
                live.events.update(await market.events())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await stop.wait()
        if stop.is_set():
            return None
        live.phase = "measuring"
        ticker.cancel()
        on_tick(live)
        trades: tuple[Settled, ...] = ()
        events: dict[str, EventId | None]  # household -> the event it was asked by
        if market is not None:
            trades = tuple(await market.settle(clock()))
            events = {
                spec.name: marketplace.member_event_id(spec, live.events.get(spec.feeder))
                for spec in specs
            }
            outcome = await _measure(market.downstream, live, specs, ven_of, published, config,
                                     events)  # fmt: skip
        else:
            events = {spec.name: live.events.get(spec.feeder) for spec in specs}
            outcome = await _measure(context, live, specs, ven_of, published, config, events)
        return Collected(
            profiles=day_profiles,
            specs=specs,
            plans=plans,
            outcome=outcome,
            events=dict(live.events),
            registration_s=registration_s,
            runtime_s=loop.time() - started,
            trades=trades,
        )
    finally:
        if ticker is not None:
            ticker.cancel()
        live.phase = "stopping"
        for runner in live.runners.values():
            runner.stop()
        await _stop_within(tasks, STOP_WITHIN_S)
        if market is not None:
            await market.stop()
        if site_runner is not None:
            await site_runner.cleanup()
        await asyncio.to_thread(_keep, hot, workdir)


async def _stop_within(tasks: Sequence[asyncio.Task[Any]], seconds: float) -> None:
    """Let the VENs stop by themselves (state saved, last report sent) for `seconds`, then
    cancel whichever has not: Ctrl-C must end the demo promptly even if a VEN is stuck in an
    exchange."""
    if not tasks:
        return
    _, late = await asyncio.wait(tasks, timeout=seconds)
    if late:
        log.warning("%d VENs did not stop within %g s: cancelling them", len(late), seconds)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)


async def _measure(
    context: Context,
    live: Live,
    specs: Sequence[HouseholdSpec],
    ven_of: dict[str, VenId],
    published: dict[str, datetime],
    config: PilotConfig,
    events: dict[str, EventId | None],  # household -> the event it was asked by
) -> results.Outcome:
    """Delivery from the record of the VTN the households are registered at: its stored
    readings and each VEN's answer to its event."""
    reasons = {name: _reasons(runner) for name, runner in live.runners.items()}
    async with context.store.transaction() as tx:
        stored = await tx.readings.query(limit=100_000_000)
        answers = []
        for feeder in live.events:
            for spec in specs:
                event_id = events.get(spec.name)
                if spec.feeder != feeder or event_id is None:
                    continue
                event = await tx.events.get(event_id)
                if event is None:  # market mode: no share for this household, so no event
                    continue
                by_ven = {d.ven_id: d for d in await tx.deliveries.for_event(event_id)}
                delivery = by_ven.get(ven_of[spec.name])
                answers.append(_answer(spec, delivery, event, reasons[spec.name], config.speed))
    name_of = {ven_id: name for name, ven_id in ven_of.items()}
    readings = [
        results.PowerReading(
            household=name_of[r.ven_id],
            start=r.start,
            duration=r.duration or config.granularity,
            power_kw=r.value,
        )
        for r in stored
        if r.value is not None and r.r_id.endswith(".power") and r.start is not None
    ]
    return results.measure(live.plans, readings, answers, published, len(ven_of))


def _keep(hot: Path, workdir: Path) -> None:
    """Move the databases from the memory-backed directory to the work directory."""
    for item in hot.iterdir():
        shutil.move(item, workdir / item.name)
    hot.rmdir()


def _reasons(runner: Runner) -> dict[str, str]:
    """Each event's latest opt decision reason, from the gateway's journal (event -> text)."""
    found: dict[str, str] = {}
    for entry in runner.store.recent(200, "decision"):  # newest first
        found.setdefault(str(entry.detail.get("event_id")), entry.text)
    return found


def _answer(
    spec: HouseholdSpec,
    delivery: Delivery | None,
    event: Event | None,
    reasons: dict[str, str],
    speed: float,
) -> results.Answer:
    if delivery is None or delivery.opt_type is None or delivery.responded_at is None:
        return results.Answer(spec.name, spec.feeder, None, None)
    latency = None
    if event is not None:
        latency = (delivery.responded_at - event.created) / speed  # simulated -> real time
    return results.Answer(
        household=spec.name,
        feeder=spec.feeder,
        opted_in=delivery.opt_type == OptType.OPT_IN,
        latency=latency,
        reason=results.rule_of(reasons.get(delivery.event_id)),
    )


def _ven_id(runner: Runner) -> VenId:
    ven_id = runner.session.state.ven_id
    assert ven_id is not None
    return ven_id


async def _tick(
    live: Live, context: Context, on_tick: Callable[[Live], None], stop: asyncio.Event
) -> None:
    turns = 0
    while not stop.is_set():
        if turns % 4 == 0 and live.events:
            await _acknowledged(context, live)
        on_tick(live)
        turns += 1
        await asyncio.sleep(0.25)
