"""The HAN bridge over a real Mosquitto: commands reach simulated devices, telemetry comes back.

The shared broker is FLEX4GRID_MQTT_URL (default mqtt://127.0.0.1:1883); where none answers the
broker tests skip with the reason, unless FLEX4GRID_REQUIRE_SERVICES=1 (CI), which makes that a
failure. The restart test runs a Mosquitto of its own on a free port (when the binary is here),
so killing it touches nothing else. Device time runs 600× faster than the wall clock.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.ports import free_port
from ven.han import mqtt
from ven.han.bus import HomeBus
from ven.han.devices import HeatPump, PvInverter
from ven.han.household import EnvironmentSource, Household
from ven.han.mqtt import Backoff, MqttBus, simulate_over_mqtt
from ven.model import CommandKind, DeviceCommand, DeviceKind, DeviceState

REPO = Path(__file__).resolve().parents[2]
MQTT_URL = os.environ.get("FLEX4GRID_MQTT_URL", "mqtt://127.0.0.1:1883")
REQUIRE_SERVICES = os.environ.get("FLEX4GRID_REQUIRE_SERVICES") == "1"
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
FAST = Backoff(first=timedelta(milliseconds=50), maximum=timedelta(milliseconds=500))
TICK = timedelta(milliseconds=20)


def unavailable(service: str, why: str) -> None:
    # As in conftest.py: skip locally, fail in CI.
    message = f"{service} not available: {why}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " (FLEX4GRID_REQUIRE_SERVICES=1)")
    pytest.skip(message)


async def accepts_connections(url: str) -> str | None:
    """None when something listens at the broker's address, else why not."""
    broker = mqtt.Broker.from_url(url)
    try:
        async with asyncio.timeout(2):
            _, writer = await asyncio.open_connection(broker.host, broker.port)
    except (OSError, TimeoutError) as exc:
        return f"{url}: {exc!r}"
    writer.close()
    await writer.wait_closed()
    return None


@pytest.fixture
async def broker_url() -> str:
    if (why := await accepts_connections(MQTT_URL)) is not None:
        unavailable("MQTT broker", why)
    return MQTT_URL


class FastClock:
    """Device time from NOW, `speed` times faster than the event loop's clock."""

    def __init__(self, speed: float = 600.0) -> None:
        self._loop = asyncio.get_running_loop()
        self._start = self._loop.time()
        self._speed = speed

    def __call__(self) -> datetime:
        return NOW + timedelta(seconds=(self._loop.time() - self._start) * self._speed)


def make_home() -> Household:
    return Household(
        devices=(
            PvInverter(device_id="pv"),
            HeatPump(device_id="hp", room_temperature_c=20.6, heating=True),
        ),
        source=EnvironmentSource(
            outdoor_temperature_c=lambda at: 0.0,
            irradiance_w_per_m2=lambda at: 800.0,  # 4.08 kW from 6 kWp at 85 %
            base_load_kw=lambda at: 0.5,
        ),
        now=NOW,
    )


def command(device_id: str, kind: CommandKind, value: float | None = None) -> DeviceCommand:
    return DeviceCommand(
        device_id=device_id, kind=kind, value=value, until=None, reason="integration test"
    )


async def until_true(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    for _ in range(int(timeout_s / 0.01)):  # polled: telemetry is a snapshot, not a stream
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"still false after {timeout_s} s")


def state(bus: MqttBus, device_id: str) -> DeviceState | None:
    return bus.states().get(device_id)


@pytest.fixture
async def devices_over(request: pytest.FixtureRequest) -> AsyncIterator[Callable[[str], str]]:
    """Start the simulated household on a broker under a fresh gateway name; returns the name."""
    tasks: list[asyncio.Task[object]] = []

    def start(url: str) -> str:
        gateway = f"test-{uuid.uuid4().hex[:10]}"
        home_task = simulate_over_mqtt(
            make_home(), url, gateway, clock=FastClock(), interval=TICK, backoff=FAST
        )
        tasks.append(asyncio.create_task(home_task))
        return gateway

    yield start
    for task in tasks:
        task.cancel()
    # Bounded: a simulated household that does not stop when cancelled fails the test here instead
    # of hanging the whole run (seen once in a loaded parallel run, after a broker restart).
    stuck = (await asyncio.wait(tasks, timeout=30))[1] if tasks else set()
    assert not stuck, "the simulated devices did not stop within 30 s of being cancelled"


# --- the wire format ----------------------------------------------------------------------------


def test_commands_and_telemetry_survive_their_json_encoding() -> None:
    sent = DeviceCommand(
        device_id="hp", kind="setpoint", value=19.0, until=NOW + timedelta(hours=2), reason="e-1"
    )
    reading = DeviceState(device_id="pv", kind=DeviceKind.PV, power_kw=-2.5, at=NOW, soc=None)
    assert mqtt.decode_command(mqtt.encode_command(sent)) == sent
    assert mqtt.decode_state(mqtt.encode_state(reading)) == reading
    assert b'"until":"2026-01-15T14:00:00Z"' in mqtt.encode_command(sent)


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b'{"device_id":"x","kind":"explode","value":1,"until":null,"reason":""}',
        b'{"device_id":"x","kind":"release","value":null,"until":"2026-01-15T12:00:00","reason":""}',
    ],
    ids=["not-json", "unknown-kind", "naive-until"],
)
def test_malformed_commands_are_refused(payload: bytes) -> None:
    with pytest.raises(ValueError):
        mqtt.decode_command(payload)


@pytest.mark.parametrize(
    ("gateway", "device_id"),
    [("gw/1", "pv"), ("gw", "pv+"), ("gw", "#"), ("", "pv")],
    ids=["slash", "plus", "hash", "empty"],
)
def test_names_that_would_break_the_topic_scheme_are_refused(gateway: str, device_id: str) -> None:
    with pytest.raises(ValueError):
        mqtt.topic(gateway, device_id, "command")


def test_backoff_doubles_up_to_its_maximum_within_its_jitter() -> None:
    backoff = Backoff(first=timedelta(seconds=1), maximum=timedelta(seconds=30), jitter=0.2)
    assert [backoff.delay(n, 0.5) for n in (1, 2, 3, 6, 1000)] == [1, 2, 4, 30, 30]
    assert (backoff.delay(1, 0.0), backoff.delay(1, 0.999999)) == pytest.approx((0.8, 1.2))


@pytest.mark.parametrize("limit_s", [5.0, None])
async def test_a_cancel_that_comes_with_the_brokers_answer_is_not_lost(
    limit_s: float | None,
) -> None:
    """The cancel and the answer land in the same loop step: the wait must end cancelled (aiomqtt's
    own wait_for returned the answer and the cancelled session went on)."""
    client = mqtt.Broker.from_url("mqtt://127.0.0.1:1").client()
    answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    waiting = asyncio.create_task(client._wait_for(answer, timeout=limit_s))
    await asyncio.sleep(0)  # now waiting for the answer
    answer.set_result("PUBACK")
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


# --- over the shared broker ---------------------------------------------------------------------


@pytest.mark.mqtt
async def test_a_command_reaches_the_device_over_the_broker_and_telemetry_shows_it(
    broker_url: str, devices_over: Callable[[str], str]
) -> None:
    gateway = devices_over(broker_url)
    async with MqttBus(broker_url, gateway, backoff=FAST) as bus:
        await until_true(lambda: (s := state(bus, "pv")) is not None and s.power_kw < -4)
        assert state(bus, "pv").power_kw == pytest.approx(-4.08)  # type: ignore[union-attr]

        home_bus: HomeBus = bus  # what the VEN runner sees
        await home_bus.send(command("pv", "power_limit", 1.0))
        await home_bus.send(command("hp", "setpoint", 15.0))

        await until_true(lambda: (s := state(bus, "pv")) is not None and s.power_kw == -1.0)
        await until_true(lambda: (s := state(bus, "hp")) is not None and s.setpoint_c == 15.0)
        cooling_from = state(bus, "hp")
        assert cooling_from is not None
        await until_true(lambda: (s := state(bus, "hp")) is not None and s.at > cooling_from.at)
        later = state(bus, "hp")
        assert later is not None and later.power_kw == 0.0
        assert later.temperature_c is not None and cooling_from.temperature_c is not None
        assert later.temperature_c < cooling_from.temperature_c  # the room cools, heat pump off
        assert bus.pending() == ()


@pytest.mark.mqtt
async def test_a_stopped_device_shows_offline_and_is_re_sent_its_commands_on_return(
    broker_url: str,
) -> None:
    gateway = f"test-{uuid.uuid4().hex[:10]}"
    clock = FastClock()

    def run_devices() -> asyncio.Task[object]:
        return asyncio.create_task(
            simulate_over_mqtt(
                make_home(), broker_url, gateway, clock=clock, interval=TICK, backoff=FAST
            )
        )

    async with MqttBus(broker_url, gateway, backoff=FAST) as bus:
        home = run_devices()
        await until_true(lambda: (s := state(bus, "pv")) is not None and s.power_kw < -4)
        home.cancel()
        await asyncio.gather(home, return_exceptions=True)
        await until_true(lambda: (s := state(bus, "pv")) is not None and not s.online)

        await bus.send(command("pv", "power_limit", 2.0))
        await until_true(lambda: bus.pending() == ())  # the broker took it; nobody listened
        home = run_devices()  # a fresh device, knowing nothing of that command
        try:
            await until_true(lambda: (s := state(bus, "pv")) is not None and s.power_kw == -2.0)
            assert state(bus, "pv").online  # type: ignore[union-attr]
        finally:
            home.cancel()
            await asyncio.gather(home, return_exceptions=True)


DEVICES_PROCESS = """
import asyncio, sys
from datetime import UTC, datetime, timedelta
from ven.han import household
from ven.han.mqtt import simulate_over_mqtt

def now():
    return datetime.now(UTC)

home = household.typical(now(), household.synthetic_source())
tick = timedelta(seconds=0.05)
asyncio.run(simulate_over_mqtt(home, sys.argv[1], sys.argv[2], clock=now, interval=tick))
"""


@pytest.mark.mqtt
async def test_devices_killed_mid_run_are_reported_offline_by_their_last_will(
    broker_url: str,
) -> None:
    gateway = f"test-{uuid.uuid4().hex[:10]}"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", DEVICES_PROCESS, broker_url, gateway, cwd=REPO
    )
    try:
        async with MqttBus(broker_url, gateway, backoff=FAST) as bus:
            await until_true(lambda: len(bus.states()) == 5 and all_online(bus))
            assert {s.kind for s in bus.states().values()} == set(DeviceKind)
            process.kill()  # no goodbye: only the broker's last will can tell
            await process.wait()
            await until_true(lambda: not any(s.online for s in bus.states().values()))
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def all_online(bus: MqttBus) -> bool:
    return all(s.online for s in bus.states().values())


# --- over a broker of our own, restarted ------------------------------------------------------


class OwnBroker:
    """A Mosquitto process this test starts and kills; always on the same port."""

    def __init__(self, binary: str, log_path: Path) -> None:
        self._binary = binary
        self._log_path = log_path
        self.port = free_port()
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def start(self) -> None:
        with self._log_path.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                self._binary, "-p", str(self.port), stdout=log, stderr=subprocess.STDOUT
            )
        for _ in range(200):
            if await accepts_connections(self.url) is None:
                return
            assert self._process.returncode is None, self._log_path.read_text()
            await asyncio.sleep(0.05)
        raise AssertionError(f"mosquitto did not listen on {self.port}")

    async def kill(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()
        self._process = None


@pytest.fixture
async def own_broker(tmp_path: Path) -> AsyncIterator[OwnBroker]:
    binary = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
    if binary is None:
        pytest.skip("no mosquitto binary to run a broker of our own")
    broker = OwnBroker(binary, tmp_path / "mosquitto.log")
    yield broker
    await broker.kill()


@pytest.mark.mqtt
async def test_after_a_broker_restart_both_sides_reconnect_and_queued_commands_arrive(
    own_broker: OwnBroker, devices_over: Callable[[str], str]
) -> None:
    await own_broker.start()
    gateway = devices_over(own_broker.url)
    async with MqttBus(own_broker.url, gateway, backoff=FAST) as bus:
        await until_true(lambda: (s := state(bus, "pv")) is not None and s.power_kw < -4)

        await own_broker.kill()
        await until_true(lambda: not bus.connected)
        await bus.send(command("pv", "power_limit", 1.5))
        assert [c.value for c in bus.pending()] == [1.5]

        await own_broker.start()  # a fresh broker: no sessions, no retained messages
        await until_true(lambda: (s := state(bus, "pv")) is not None and s.power_kw == -1.5)
        assert bus.connected and bus.pending() == ()
