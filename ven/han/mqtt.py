"""The HAN/BMS bridge over MQTT: device commands out, device telemetry back (aiomqtt).

Topic scheme — one gateway, many devices; `<gateway>` and `<device_id>` are single topic levels
(no `/`, `+`, `#`):

    flex4grid/<gateway>/<device_id>/command       JSON DeviceCommand  VEN -> device  QoS 1
    flex4grid/<gateway>/<device_id>/telemetry     JSON DeviceState    device -> VEN  QoS 0, retained
    flex4grid/<gateway>/<device_id>/availability  online | offline    device -> VEN  QoS 1, retained

"offline" on availability is also each device's last will.

JSON is the `ven.model` dataclass as `ven.jsonform` writes it: field names as in Python,
datetimes ISO
8601 in UTC (`"2026-01-15T12:00:00Z"`), e.g.
`{"device_id": "heat-pump", "kind": "setpoint", "value": 19.0, "until": "2026-01-15T14:00:00Z",
"reason": "event e-1 LOAD_DISPATCH"}`. Telemetry is retained, so a VEN that (re)connects knows
every device's last reading at once; availability tells it which of those are stale.

`MqttBus` is the VEN side (`HomeBus`): it reconnects with exponential backoff and jitter when the
broker goes away; commands sent meanwhile are kept — the latest per device and kind, a `release`
superseding all queued for its device — and published when the connection is back (until the
broker acknowledges them). A device that comes (back) online is sent the latest commands for it
again, so delivery never depends on the broker keeping sessions across its own restart; applying
a command twice is harmless, and one past its `until` is dropped by the device.
`simulate_over_mqtt` is the device side: each simulated device is an MQTT client of its own that
subscribes to its command topic, then announces itself online and publishes its telemetry.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import random
import ssl
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType, TracebackType
from typing import Any, Literal, NoReturn, Self, TypeVar
from urllib.parse import unquote, urlsplit

import aiomqtt

from ven import jsonform
from ven.han import devices, household
from ven.han.bus import Clock
from ven.han.devices import CommandRejected
from ven.han.household import Household
from ven.model import DeviceCommand, DeviceState

log = logging.getLogger(__name__)

PREFIX = "flex4grid"
ONLINE, OFFLINE = b"online", b"offline"
Leaf = Literal["command", "telemetry", "availability"]

# --- wire format --------------------------------------------------------------------------------


def topic(gateway: str, device_id: str, leaf: Leaf) -> str:
    return f"{PREFIX}/{_level(gateway)}/{_level(device_id)}/{leaf}"


def _level(name: str) -> str:
    if not name or any(c in name for c in "/+#"):
        raise ValueError(f"{name!r} cannot be an MQTT topic level")
    return name


def parse_topic(name: str) -> tuple[str, str, str]:
    """`flex4grid/<gateway>/<device_id>/<leaf>` -> (gateway, device_id, leaf)."""
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != PREFIX:
        raise ValueError(f"not a Flex4Grid device topic: {name!r}")
    return parts[1], parts[2], parts[3]


def encode_command(command: DeviceCommand) -> bytes:
    return jsonform.dumps(command)


def decode_command(payload: bytes) -> DeviceCommand:
    """Raises ValueError (jsonform.FormError is one) for anything but a valid command."""
    command = jsonform.loads(payload, DeviceCommand)
    return command if command.until is None else replace(command, until=_utc(command.until))


def encode_state(state: DeviceState) -> bytes:
    return jsonform.dumps(state)


def decode_state(payload: bytes) -> DeviceState:
    state = jsonform.loads(payload, DeviceState)
    return replace(state, at=_utc(state.at))


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError(f"datetime without a time zone: {at.isoformat()}")
    return at.astimezone(UTC)


# --- connections --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Waits between reconnection attempts: doubling from `first` up to `maximum`, ±`jitter`."""

    first: timedelta = timedelta(milliseconds=500)
    maximum: timedelta = timedelta(seconds=30)
    jitter: float = 0.2  # fraction; spreads out gateways that lost the same broker together

    def delay(self, attempt: int, draw: float) -> float:
        """Seconds to wait before attempt `attempt` (1-based); `draw` is uniform in [0, 1)."""
        doubled = self.first * 2.0 ** min(attempt - 1, 32)  # capped: timedelta overflows
        base = min(doubled, self.maximum).total_seconds()
        return base * (1 + self.jitter * (2 * draw - 1))


@dataclass(frozen=True, slots=True, kw_only=True)
class Broker:
    """Where the broker is: `mqtt://[user:password@]host[:1883]` or `mqtts://...[:8883]`."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def from_url(cls, url: str) -> Broker:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"expected mqtt://host[:port] or mqtts://host[:port], got {url!r}")
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname,
            port=parts.port or (8883 if tls else 1883),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
        )

    def client(
        self, *, tls_context: ssl.SSLContext | None = None, **options: Any
    ) -> aiomqtt.Client:
        if self.tls and tls_context is None:
            tls_context = ssl.create_default_context()
        return Client(
            self.host,
            self.port,
            username=self.username,
            password=self.password,
            tls_context=tls_context if self.tls else None,
            timeout=10,
            keepalive=15,  # a dead broker is noticed within ~1.5 keepalives
            **options,
        )


T = TypeVar("T")


class Client(aiomqtt.Client):
    """aiomqtt's client, waiting for the broker with `asyncio.timeout`, not `asyncio.wait_for`.

    On Python 3.11, `wait_for` returns the result when a cancel arrives in the same loop step as
    the broker's answer (a CONNACK, SUBACK, PUBACK), and the cancel is lost: a cancelled device
    session then went on publishing, and its household's task group never ended (seen in CI).
    """

    async def _wait_for(self, fut: Awaitable[T], timeout: float | None) -> T:  # noqa: ASYNC109
        if timeout is None:
            timeout = self.timeout
        try:
            async with asyncio.timeout(None if timeout == math.inf else timeout):
                return await fut
        except TimeoutError:
            raise aiomqtt.MqttError("Operation timed out") from None


Session = Callable[[aiomqtt.Client], Awaitable[None]]


async def _stay_connected(
    name: str, connect: Callable[[], aiomqtt.Client], session: Session, backoff: Backoff
) -> NoReturn:
    """Run `session` on a connected client; after each failure wait, then connect again."""
    attempt = 0
    while True:
        try:
            async with connect() as client:
                attempt = 0
                log.info("%s: connected", name)
                await session(client)
        except aiomqtt.MqttError as exc:
            attempt += 1
            wait_s = backoff.delay(attempt, random.random())
            log.warning("%s: broker unreachable (%s); retrying in %.1f s", name, exc, wait_s)
            await asyncio.sleep(wait_s)
        except Exception:  # a gateway keeps going: log it with its traceback, back off, retry
            attempt += 1
            wait_s = backoff.delay(attempt, random.random())
            log.exception("%s: unexpected failure; retrying in %.1f s", name, wait_s)
            await asyncio.sleep(wait_s)


async def _first_to_end(*coroutines: Coroutine[Any, Any, None]) -> None:
    """Run together until one ends or fails (a disconnect ends them all); re-raise its error."""
    tasks = [asyncio.create_task(c) for c in coroutines]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        task.result()


# --- the VEN side -------------------------------------------------------------------------------


class MqttBus:
    """`HomeBus` over MQTT for the devices of one gateway."""

    def __init__(
        self,
        broker_url: str,
        gateway: str,
        *,
        backoff: Backoff = Backoff(),
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self._gateway = _level(gateway)
        self._broker = Broker.from_url(broker_url)
        self._backoff = backoff
        self._tls_context = tls_context
        self._pending: dict[tuple[str, str], DeviceCommand] = {}  # not yet acknowledged
        self._latest: dict[tuple[str, str], DeviceCommand] = {}  # re-sent when a device returns
        self._wakeup = asyncio.Event()
        self._connected = asyncio.Event()
        self._states: dict[str, DeviceState] = {}
        self._online: dict[str, bool] = {}
        self._task: asyncio.Task[NoReturn] | None = None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self) -> None:
        await self._connected.wait()

    def pending(self) -> tuple[DeviceCommand, ...]:
        """Commands not yet acknowledged by the broker, oldest first."""
        return tuple(self._pending.values())

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(
            _stay_connected(
                f"mqtt bus {self._gateway}",
                lambda: self._broker.client(tls_context=self._tls_context),
                self._session,
                self._backoff,
            ),
            name=f"mqtt-bus-{self._gateway}",
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(
                self._task, return_exceptions=True
            )  # a cancel of this call is not swallowed
            self._task = None

    async def send(self, command: DeviceCommand) -> None:
        _level(command.device_id)
        for commands in (self._pending, self._latest):
            if command.kind == "release":  # it undoes everything before it for the device
                for key in [k for k in commands if k[0] == command.device_id]:
                    del commands[key]
            key = (command.device_id, command.kind)
            commands.pop(key, None)  # the newest goes to the back of the queue
            commands[key] = command
        self._wakeup.set()

    def _resend(self, device_id: str) -> None:
        for key, command in self._latest.items():
            if key[0] == device_id and key not in self._pending:
                self._pending[key] = command
        self._wakeup.set()

    def states(self) -> Mapping[str, DeviceState]:
        return MappingProxyType(
            {
                device_id: replace(state, online=state.online and self._online.get(device_id, True))
                for device_id, state in self._states.items()
            }
        )

    async def _session(self, client: aiomqtt.Client) -> None:
        self._online.clear()  # unknown until heard again: an "online" then triggers a resend
        await client.subscribe(f"{PREFIX}/{self._gateway}/+/telemetry", qos=0)
        await client.subscribe(f"{PREFIX}/{self._gateway}/+/availability", qos=1)
        self._connected.set()
        try:
            await _first_to_end(self._publish_pending(client), self._receive(client))
        finally:
            self._connected.clear()

    async def _publish_pending(self, client: aiomqtt.Client) -> None:
        while True:
            self._wakeup.clear()
            while self._pending:
                key, command = next(iter(self._pending.items()))
                name = topic(self._gateway, command.device_id, "command")
                await client.publish(name, encode_command(command), qos=1)  # waits for PUBACK
                if self._pending.get(key) is command:  # not superseded while in flight
                    del self._pending[key]
            await self._wakeup.wait()

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, bytes) or not payload:
                continue  # a cleared retained message
            try:
                _, device_id, leaf = parse_topic(message.topic.value)
                if leaf == "availability":
                    online, was_online = payload == ONLINE, self._online.get(device_id)
                    self._online[device_id] = online
                    if online and not was_online:
                        self._resend(device_id)
                    continue
                state = decode_state(payload)
                if state.device_id != device_id:
                    raise ValueError(f"telemetry of {state.device_id!r} on {device_id!r}'s topic")
                self._states[device_id] = state
            except ValueError as exc:
                log.warning("ignoring message on %s: %s", message.topic.value, exc)


# --- the device side ----------------------------------------------------------------------------


async def simulate_over_mqtt(
    home: Household,
    broker_url: str,
    gateway: str,
    *,
    clock: Clock,
    interval: timedelta = timedelta(seconds=1),
    backoff: Backoff = Backoff(),
    tls_context: ssl.SSLContext | None = None,
) -> NoReturn:
    """Run `home`'s devices as MQTT clients until cancelled.

    The household is stepped to `clock()` every `interval` of real time and each device publishes
    its telemetry; a command arriving on a device's topic is applied at `clock()`.
    """
    simulation = _Simulation(home, gateway, clock)
    broker = Broker.from_url(broker_url)

    def client_of(device_id: str) -> aiomqtt.Client:
        return broker.client(
            tls_context=tls_context,
            identifier=f"{PREFIX}-{gateway}-{device_id}",
            will=aiomqtt.Will(topic(gateway, device_id, "availability"), OFFLINE, 1, True),
        )

    async with asyncio.TaskGroup() as group:
        for device_id in (d.device_id for d in home.devices):
            group.create_task(
                _stay_connected(
                    f"simulated {device_id}",
                    functools.partial(client_of, device_id),
                    functools.partial(simulation.device_session, device_id),
                    backoff,
                )
            )
        await simulation.tick_forever(interval)
    raise AssertionError("unreachable: tick_forever never returns")


class _Simulation:
    """One household shared by its devices' MQTT sessions."""

    def __init__(self, home: Household, gateway: str, clock: Clock) -> None:
        self.household = home
        self._gateway = gateway
        self._clock = clock
        self._ticks = {d.device_id: asyncio.Event() for d in home.devices}

    def _advance(self) -> None:
        now = self._clock()
        if now > self.household.now:
            self.household = household.step(self.household, now)

    async def tick_forever(self, interval: timedelta) -> NoReturn:
        while True:
            await asyncio.sleep(interval.total_seconds())
            self._advance()
            for tick in self._ticks.values():
                tick.set()

    async def device_session(self, device_id: str, client: aiomqtt.Client) -> None:
        availability = topic(self._gateway, device_id, "availability")
        await client.subscribe(topic(self._gateway, device_id, "command"), qos=1)
        # Online only once subscribed: the VEN answers "online" by re-sending our commands.
        await client.publish(availability, ONLINE, qos=1, retain=True)
        self._ticks[device_id].set()  # report at once: the VEN may have been waiting for us
        try:
            await _first_to_end(self._obey(device_id, client), self._report(device_id, client))
        except asyncio.CancelledError:
            # A graceful stop sends no last will: say goodbye ourselves.
            with contextlib.suppress(aiomqtt.MqttError):
                await client.publish(availability, OFFLINE, qos=1, retain=True, timeout=2)
            raise

    async def _obey(self, device_id: str, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            try:
                if not isinstance(message.payload, bytes):
                    raise ValueError("empty command")
                command = decode_command(message.payload)
                if command.device_id != device_id:
                    raise CommandRejected(f"command for {command.device_id!r} on our topic")
                self._advance()  # the command acts from now on, not retroactively
                self.household = household.send(self.household, command)
            except ValueError as exc:  # CommandRejected and jsonform.FormError too
                log.warning("%s ignored a command: %s", device_id, exc)
            self._ticks[device_id].set()

    async def _report(self, device_id: str, client: aiomqtt.Client) -> None:
        name = topic(self._gateway, device_id, "telemetry")
        tick = self._ticks[device_id]
        while True:
            await tick.wait()
            tick.clear()
            device = household.device(self.household, device_id)
            state = devices.telemetry(device, self.household.now)
            await client.publish(name, encode_state(state), qos=0, retain=True)
