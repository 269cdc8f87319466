"""Our gateway (ven.gateway + ven.runner) against our VTN, over real mutual TLS, on SQLite and
PostgreSQL: it registers, takes an event, answers optIn/optOut as the household policy says (and
journals why), drives the simulated devices while the event runs, and its telemetry reaches the
VTN. By pull, by HTTP push, and with the devices behind the real Mosquitto broker."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web

from certs import fingerprint
from certs.dev import DevPki
from certs.files import IdentityFiles
from flex4grid import cli as flex4grid_cli
from oadr import codec
from oadr.enums import OptType
from oadr.model import (
    CreatedEvent,
    Event,
    EventId,
    Payload,
    Poll,
    RequestEvent,
    Target,
    UpdateReport,
    VenId,
)
from tests.factories import make_event
from tests.integration.vtn_harness import RunningVtn
from tests.ports import free_port
from ven.gateway import ConfigError, GatewayConfig, build_gateway, config_file, make_config
from ven.han.bus import InProcessBus
from ven.han.mqtt import Broker
from ven.policy import Preferences
from ven.runner import Runner
from ven.session import Phase, Retry, SessionState
from ven.store import GatewayStore, JournalEntry
from vtn.app import CONTEXT, VtnConfig, build_app
from vtn.config import TelemetryDefaults, VtnSettings
from vtn.push import PushConfig
from vtn.services import operator

P = TypeVar("P")
WAIT_S = 30.0
SECOND = timedelta(seconds=1)
MQTT_URL = os.environ.get("FLEX4GRID_MQTT_URL", "mqtt://127.0.0.1:1883")
REQUIRE_SERVICES = os.environ.get("FLEX4GRID_REQUIRE_SERVICES") == "1"
# Fast enough for a test: the VTN asks for polls every second and 1 s telemetry every 2 s.
FAST_VTN = VtnSettings(
    poll_interval=SECOND,
    telemetry=TelemetryDefaults(granularity=SECOND, report_back=2 * SECOND),
)


async def wait_for(
    what: str, check: Callable[[], Awaitable[Any]], timeout_s: float = WAIT_S
) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (result := await check()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(0.1)
    return result


# --- the VTN, with a record of everything VENs posted to it ---------------------------------------


@dataclass
class Received:
    """Every OpenADR payload the VTN was sent, in arrival order (decoded, unsigned or not)."""

    payloads: list[Payload] = field(default_factory=list)

    def of_type(self, kind: type[P]) -> list[P]:
        return [p for p in self.payloads if isinstance(p, kind)]

    def event_responses(self) -> Counter[tuple[str, int]]:
        return Counter(
            (r.event_id, r.modification_number)
            for created in self.of_type(CreatedEvent)
            for r in created.event_responses
        )

    def intervals(self) -> list[tuple[str, datetime]]:
        """(rID, interval start) of every reading in every UpdateReport, in arrival order."""
        return [
            (payload.r_id, interval.start or report.start)  # type: ignore[misc]
            for update in self.of_type(UpdateReport)
            for report in update.reports
            for interval in report.intervals
            for payload in interval.payloads
        ]


@dataclass
class Vtn:
    running: RunningVtn
    received: Received
    port: int


@asynccontextmanager
async def vtn_server(
    pki: DevPki,
    database_url: str,
    *,
    push: bool = False,
    port: int = 0,
    received: Received | None = None,
    settings: VtnSettings = FAST_VTN,
) -> AsyncIterator[Vtn]:
    """Our VTN on 127.0.0.1 (mutual TLS, `FAST_VTN`), recording what it is posted."""
    record = received if received is not None else Received()
    config = VtnConfig(
        settings=settings,
        database_url=database_url,
        trust=pki.trust_store(),
        push=PushConfig(
            first_retry=timedelta(milliseconds=100),
            max_retry=SECOND,
            tls=pki.client_context(pki.vtn) if push else None,
        ),
    )
    app = build_app(config)

    @web.middleware
    async def recorder(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/OpenADR2/"):
            with contextlib.suppress(Exception):  # a body the VTN must refuse: not recorded
                record.payloads.append(codec.decode(await request.read()))
        response: web.StreamResponse = await handler(request)
        return response

    app.middlewares.append(recorder)
    await app[CONTEXT].store.create_all()  # idempotent: a restarted VTN keeps its data
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=pki.server_context()).start()
    host, bound = runner.addresses[0][:2]
    try:
        yield Vtn(RunningVtn(url=f"https://{host}:{bound}", app=app, pki=pki), record, bound)
    finally:
        await runner.cleanup()


# --- the gateway ----------------------------------------------------------------------------------


def ca_bundle(pki: DevPki, directory: Path) -> Path:
    """The CAs a gateway trusts: our root and the CAs below it (push checks the VTN's issuer)."""
    path = directory / "ca-bundle.pem"
    path.write_text(pki.trust_store().pem_bundle())
    return path


def gateway_config(
    pki: DevPki, vtn_url: str, directory: Path, identity: IdentityFiles, **fields: Any
) -> GatewayConfig:
    settings: dict[str, Any] = {
        "vtn_url": vtn_url,
        "ven_name": f"house-{uuid.uuid4().hex[:6]}",
        "state_dir": directory / "ven-state",
        "cert": identity.chain,
        "key": identity.key,
        "ca_file": ca_bundle(pki, directory),
        "vtn_fingerprint": fingerprint.of_certificate(pki.vtn.load_certificate()),
        "simulate": "typical",
        "poll_interval": SECOND,
        "sample_period": SECOND,
        "retry": Retry(base=timedelta(milliseconds=200), maximum=SECOND),
        # The typical household's EV arrives at 30 %: let it give way above 20 % (default 50 %).
        "preferences": Preferences(ev_min_soc=0.2),
    }
    return make_config(**(settings | fields))


@asynccontextmanager
async def running(config: GatewayConfig) -> AsyncIterator[Runner]:
    runner = build_gateway(config)
    task = asyncio.create_task(runner.run())
    try:
        yield runner
    finally:
        runner.stop()
        async with asyncio.timeout(10):
            await task


def journal(config: GatewayConfig, kind: str | None = None) -> list[JournalEntry]:
    store: GatewayStore[SessionState] = GatewayStore(config.store_path, SessionState)
    try:
        return store.recent(10_000, kind)
    finally:
        store.close()


async def registered(runner: Runner) -> VenId:
    async def ven_id() -> VenId | None:
        state = runner.session.state
        return state.ven_id if state.phase == Phase.REGISTERED else None

    found: VenId = await wait_for("the registration", ven_id)
    return found


async def synced(runner: Runner) -> VenId:
    """Registered, and the VTN has answered the oadrRequestEvent the VEN sends right after
    registering (it leaves the outbox once answered): an event created from now on is new to
    the VEN, so it arrives by push or poll, not in that reply."""
    ven_id = await registered(runner)

    async def answered() -> bool:
        state = runner.session.state
        return state.phase == Phase.REGISTERED and not any(
            isinstance(queued.payload, RequestEvent) for queued in state.outbox
        )

    await wait_for("the answer to the post-registration oadrRequestEvent", answered)
    return ven_id


def simple_event(ven_id: str, *, minutes: float, start_in: timedelta = SECOND) -> Event:
    now = datetime.now(UTC)
    return replace(
        make_event(start=now + start_in, duration=timedelta(minutes=minutes)),
        event_id=EventId(f"ev-{uuid.uuid4().hex[:8]}"),
        target=Target(ven_ids=(VenId(ven_id),)),
    )


async def create(vtn: Vtn, event: Event) -> Event:
    return await operator.create_event(
        vtn.running.context, event, actor="test", now=datetime.now(UTC)
    )


async def stored_opt(vtn: Vtn, event_id: str) -> OptType | None:
    async with vtn.running.context.store.transaction() as tx:
        deliveries = await tx.deliveries.for_event(event_id)
    return deliveries[0].opt_type if deliveries else None


async def readings_of(vtn: Vtn, ven_id: str, r_id: str) -> list[Any]:
    async with vtn.running.context.store.transaction() as tx:
        return await tx.readings.query(ven_id=ven_id, r_id=r_id, limit=100_000)


def decisions(config: GatewayConfig, event_id: str) -> list[JournalEntry]:
    return [e for e in journal(config, "decision") if e.detail.get("event_id") == event_id]


async def decided(config: GatewayConfig, event_id: str) -> list[JournalEntry]:
    """The journal's decisions on one event, once there is one: the runner journals a decision
    after sending its answer, so the VTN may store the opt first."""

    async def found() -> list[JournalEntry]:
        return decisions(config, event_id)

    entries: list[JournalEntry] = await wait_for(f"the decision on {event_id}", found)
    return entries


# --- the flow, by pull and by push ----------------------------------------------------------------


async def check_the_whole_flow(
    vtn: Vtn, runner: Runner, config: GatewayConfig, *, pushed: bool = False
) -> None:
    ven_id = await synced(runner)
    assert isinstance(runner.bus, InProcessBus)

    # An event the household accepts: SIMPLE level 1 for 10 minutes, starting now.
    accepted = await create(vtn, simple_event(ven_id, minutes=10))
    assert await wait_for("the optIn at the VTN", lambda: stored_opt(vtn, accepted.event_id))
    assert await stored_opt(vtn, accepted.event_id) == OptType.OPT_IN
    (decision,) = await decided(config, accepted.event_id)
    assert decision.detail["opt"] == "optIn" and decision.text.startswith("optIn (")

    # The devices obey while it runs: the EV is held to half its 11 kW, the heat pump 1 °C lower.
    async def ev_limited() -> bool:
        ev = runner.bus.states()["ev-charger"]
        return ev.power_limit_kw == pytest.approx(5.5)

    await wait_for("the EV charger's power limit", ev_limited)
    await asyncio.sleep(1.5)  # a full telemetry step under the limit
    states = runner.bus.states()
    assert states["ev-charger"].power_kw <= 5.5 + 1e-6
    assert states["heat-pump"].setpoint_c == pytest.approx(20.0)  # its own 21 °C less 1

    # An event the household refuses (longer than the 2 h it accepts): optOut, and why.
    refused = await create(vtn, simple_event(ven_id, minutes=240, start_in=timedelta(hours=1)))
    assert await wait_for("the optOut at the VTN", lambda: stored_opt(vtn, refused.event_id))
    assert await stored_opt(vtn, refused.event_id) == OptType.OPT_OUT
    (decision,) = await decided(config, refused.event_id)
    assert decision.text.startswith("optOut (duration)")

    # Telemetry reaches the VTN, and shows the EV held back while the event runs.
    async def limited_at_vtn() -> list[Any]:
        rows = await readings_of(vtn, ven_id, "ev-charger.power")
        return [r for r in rows if r.start >= accepted.active_period.start + 2 * SECOND]

    rows = await wait_for("the EV's power at the VTN", limited_at_vtn)
    assert all(r.value <= 5.5 + 1e-6 for r in rows)
    assert await wait_for(
        "the heat pump's status at the VTN", lambda: readings_of(vtn, ven_id, "heat-pump.status")
    )
    # Each answer went to the VTN once: posted (pull), or in the push's HTTP reply (push).
    once = Counter({(accepted.event_id, 0): 1, (refused.event_id, 0): 1})
    assert vtn.received.event_responses() == (Counter() if pushed else once)


async def test_a_pulling_gateway_registers_decides_drives_devices_and_reports(
    pki: DevPki, database_url: str, tmp_path: Path
) -> None:
    async with vtn_server(pki, database_url) as vtn:
        config = gateway_config(pki, vtn.running.url, tmp_path, pki.vens[0])
        async with running(config) as runner:
            await check_the_whole_flow(vtn, runner, config)
            assert runner.push_url is None


async def test_a_push_gateway_gets_the_event_pushed(
    pki: DevPki, database_url: str, tmp_path: Path
) -> None:
    async with vtn_server(pki, database_url, push=True) as vtn:
        port = free_port()
        config = gateway_config(pki, vtn.running.url, tmp_path, pki.vens[1], push_port=port)
        async with running(config) as runner:
            await check_the_whole_flow(vtn, runner, config, pushed=True)
            assert runner.push_url == f"https://127.0.0.1:{port}"
    # Pushed, not polled: the VEN never sent an oadrPoll.
    assert not vtn.received.of_type(Poll)


async def test_a_manual_opt_out_reaches_the_vtn_and_releases_the_devices(
    pki: DevPki, tmp_path: Path
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'vtn.db'}"
    async with vtn_server(pki, database_url) as vtn:
        config = gateway_config(pki, vtn.running.url, tmp_path, pki.vens[2])
        async with running(config) as runner:
            ven_id = await registered(runner)
            event = await create(vtn, simple_event(ven_id, minutes=10))

            async def ev_limit() -> float | None:
                return runner.bus.states()["ev-charger"].power_limit_kw

            await wait_for("the EV's power limit", ev_limit)
            argv = ["ven", "opt-out", event.event_id, "--state", str(config.state_dir)]
            assert flex4grid_cli.main([*argv, "--reason", "guests tonight"]) == 0

            async def opted_out() -> bool:
                async with vtn.running.context.store.transaction() as tx:
                    return bool(await tx.opts.active(ven_id))

            await wait_for("the CreateOpt at the VTN", opted_out)
            await wait_for("the EV released", lambda: _none(ev_limit))
    (done,) = journal(config, "manual-opt-out")
    assert done.detail["ok"] is True and "guests tonight" in done.text


async def _none(check: Callable[[], Awaitable[Any]]) -> bool:
    return await check() is None


# --- over the real Mosquitto ----------------------------------------------------------------------


async def broker_reachable() -> None:
    broker = Broker.from_url(MQTT_URL)
    try:
        async with asyncio.timeout(2):
            _, writer = await asyncio.open_connection(broker.host, broker.port)
    except (OSError, TimeoutError) as exc:
        message = f"MQTT broker not available: {MQTT_URL}: {exc!r}"
        if REQUIRE_SERVICES:
            pytest.fail(message + " (FLEX4GRID_REQUIRE_SERVICES=1)")
        pytest.skip(message)
    writer.close()
    await writer.wait_closed()


async def test_the_devices_obey_through_the_mosquitto_broker(pki: DevPki, tmp_path: Path) -> None:
    await broker_reachable()
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'vtn.db'}"
    async with vtn_server(pki, database_url) as vtn:
        config = gateway_config(
            pki,
            vtn.running.url,
            tmp_path,
            pki.vens[0],
            mqtt_url=MQTT_URL,
            gateway_id=f"test-{uuid.uuid4().hex[:8]}",  # no retained telemetry from other runs
        )
        async with running(config) as runner:
            ven_id = await registered(runner)

            async def ev_state() -> Any:
                return runner.bus.states().get("ev-charger")

            await wait_for("the EV's telemetry over MQTT", ev_state)
            event = await create(vtn, simple_event(ven_id, minutes=10))
            assert await wait_for("the optIn", lambda: stored_opt(vtn, event.event_id))

            async def ev_limited_over_mqtt() -> bool:
                ev = await ev_state()
                return ev is not None and ev.power_limit_kw == pytest.approx(5.5)

            await wait_for("the EV's power limit, reported over MQTT", ev_limited_over_mqtt)
            rows = await wait_for(
                "the EV's power at the VTN",
                lambda: readings_of(vtn, ven_id, "ev-charger.power"),
            )
            assert rows
        assert await stored_opt(vtn, event.event_id) == OptType.OPT_IN


# --- the command line -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ven", "status", "--state", "/nonexistent"], "no VEN state in /nonexistent"),
        (["ven", "opt-out", "e-1", "--state", "/nonexistent"], "no VEN state in /nonexistent"),
        (["ven", "run", "--vtn-url", "https://vtn"], "missing --ven-name, --state"),
        (
            ["ven", "run", "--vtn-url", "https://vtn", "--ven-name", "h", "--state", "/tmp/x",
             "--simulate", "mansion"],
            "unknown household profile 'mansion' (known: typical)",
        ),
        (
            ["ven", "run", "--vtn-url", "https://vtn", "--ven-name", "h", "--state", "/tmp/x",
             "--simulate", "typical", "--push-port", "8443"],
            "--push-port needs --cert, --key and --ca-file (mutual TLS)",
        ),
    ],
    ids=["status-no-state", "opt-out-no-state", "run-missing", "run-profile", "run-push-no-tls"],
)  # fmt: skip
def test_cli_problems_are_one_line_and_exit_1(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert flex4grid_cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_config_file_settings_with_flags_winning(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(
        'vtn_url = "https://vtn.example:8080"\nven_name = "house-17"\nstate = "state"\n'
        "poll_interval_s = 30\n[preferences]\ncomfort_min_c = 19.5\n"
        '[[devices]]\nid = "hp"\nkind = "heat_pump"\n'
    )
    fields = config_file(path) | {"ven_name": "from-flag"}
    config = make_config(**fields)
    assert (config.vtn_url, config.ven_name) == ("https://vtn.example:8080", "from-flag")
    assert config.state_dir == tmp_path / "state"
    assert config.poll_interval == 30 * SECOND
    assert config.preferences.comfort_min_c == 19.5
    assert [(d.resource_id, d.kind) for d in config.devices] == [("hp", "heat_pump")]
    path.write_text('vtn_url = "https://vtn"\npoll_intervall_s = 3\n')
    with pytest.raises(ConfigError, match=r"unknown setting.*poll_intervall_s"):
        config_file(path)
