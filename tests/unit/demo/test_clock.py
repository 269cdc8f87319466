"""The simulated clock: held while the VENs register, then `speed` times real time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flex4grid.demo.clock import SimClock

START = datetime(2026, 11, 27, tzinfo=UTC)


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_held_until_released_then_runs_speed_times_faster() -> None:
    real = FakeMonotonic()
    clock = SimClock(start=START, speed=900.0, monotonic=real)
    real.now += 50
    assert clock() == START and not clock.running
    clock.release()
    real.now += 2.0
    assert clock() == START + timedelta(minutes=30)
    clock.release()  # a second release changes nothing
    assert clock() == START + timedelta(minutes=30)
    assert clock.real_seconds(timedelta(hours=1)) == 4.0


def test_a_held_clock_moves_forward_by_hand_and_runs_on_from_there() -> None:
    real = FakeMonotonic()
    clock = SimClock(start=START, speed=60.0, monotonic=real)
    clock.advance(timedelta(minutes=3))
    clock.advance(timedelta(minutes=3))
    real.now += 10
    assert clock() == START + timedelta(minutes=6)
    clock.release()
    real.now += 1
    assert clock() == START + timedelta(minutes=7)
    with pytest.raises(RuntimeError):
        clock.advance(timedelta(minutes=1))


@pytest.mark.parametrize(
    ("start", "speed"),
    [(datetime(2026, 11, 27), 1.0), (START, 0.0)],
    ids=["naive-start", "zero-speed"],
)
def test_refuses_what_cannot_be_a_clock(start: datetime, speed: float) -> None:
    with pytest.raises(ValueError):
        SimClock(start=start, speed=speed)
