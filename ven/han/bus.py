"""The home bus: how the VEN runner reaches the devices (commands out, latest telemetry back).

`HomeBus` is what the runner depends on; `InProcessBus` drives a simulated `Household` directly
in this process, stepped by an asyncio task on a clock the caller passes in (real or simulated),
for when no broker is present and for the demo. `ven.han.mqtt.MqttBus` is the same over MQTT.

The runner reads `states()`, a snapshot of the latest telemetry per device, whenever its report
granularity comes round; `send()` never waits for the device, only hands the command on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType, TracebackType
from typing import Protocol, Self

from ven.han import household
from ven.han.devices import CommandRejected
from ven.han.household import Household
from ven.model import DeviceCommand, DeviceState

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class HomeBus(Protocol):
    """Commands to devices and their latest telemetry; used as `async with bus:`."""

    async def send(self, command: DeviceCommand) -> None:
        """Hand `command` to its device; a device that cannot obey logs it and carries on."""
        ...

    def states(self) -> Mapping[str, DeviceState]:
        """The latest telemetry of each device heard from, by device id."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class InProcessBus:
    """A simulated household stepped every `interval` (real time) to `clock()` (any time)."""

    def __init__(
        self,
        home: Household,
        *,
        clock: Clock,
        interval: timedelta = timedelta(seconds=1),
    ) -> None:
        self._household = home
        self._clock = clock
        self._interval = interval
        self._states: dict[str, DeviceState] = {}
        self._task: asyncio.Task[None] | None = None
        self._publish()

    @property
    def household(self) -> Household:
        return self._household

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run(), name="in-process-household")
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
        self.step()  # the command acts from now on, not retroactively
        try:
            self._household = household.send(self._household, command)
        except CommandRejected as exc:
            log.warning("device %s rejected %s command: %s", command.device_id, command.kind, exc)
        self._publish()

    def states(self) -> Mapping[str, DeviceState]:
        return MappingProxyType(dict(self._states))

    def step(self) -> None:
        """Bring the household up to `clock()` now (the task does this every interval)."""
        now = self._clock()
        if now > self._household.now:  # a clock that stalls or jumps back just waits
            self._household = household.step(self._household, now)
        self._publish()

    def _publish(self) -> None:
        self._states = {s.device_id: s for s in household.telemetry(self._household)}

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval.total_seconds())
            self.step()
