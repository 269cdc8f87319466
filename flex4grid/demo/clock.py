"""The demo's simulated clock: one `now` for the VTN and every VEN, running `speed` times real time.

It stands still until released, and may be moved forward by hand meanwhile: the pilot enrols its
VENs a few at a time, each batch at its own simulated minute, so their hourly reports fall due
spread over the hour as in a real fleet, and registration work on a slow machine costs no
simulated time. Once released it follows the system's monotonic clock, so it never steps back.
Everything that waits in real time divides simulated spans by `speed`; nothing else knows the
clock is simulated.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass
class SimClock:
    """Simulated time: held at `start` (or where `advance` put it), then running from there."""

    start: datetime
    speed: float
    monotonic: Callable[[], float] = time.monotonic
    _held_at: datetime = field(init=False)
    _released_at: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("the simulated clock starts at an aware datetime")
        if self.speed <= 0:
            raise ValueError("the clock speed must be positive")
        self._held_at = self.start

    def __call__(self) -> datetime:
        if self._released_at is None:
            return self._held_at
        return self._held_at + timedelta(
            seconds=(self.monotonic() - self._released_at) * self.speed
        )

    def advance(self, span: timedelta) -> None:
        """Move a held clock forward by `span` at once."""
        if self._released_at is not None:
            raise RuntimeError("a running clock cannot be moved")
        if span < timedelta(0):
            raise ValueError("the clock never steps back")
        self._held_at += span

    def release(self) -> None:
        """Let simulated time run from where it is held (once; later calls change nothing)."""
        if self._released_at is None:
            self._released_at = self.monotonic()

    @property
    def running(self) -> bool:
        return self._released_at is not None

    def real_seconds(self, span: timedelta) -> float:
        """How long `span` of simulated time takes in real time."""
        return span.total_seconds() / self.speed
