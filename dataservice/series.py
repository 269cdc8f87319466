"""Metering series: quarter-hour energy per prosumer-day, and its buckets at each consent level.

The unit of storage is one prosumer-day: 96 quarter-hour energies in kWh (UTC days), NaN where
nothing was metered, packed as 96 little-endian float64 (768 bytes) before encryption. A month
for 10,000 prosumers is then 300,000 small blobs, not 28.8 million rows.

Buckets: QUARTER_HOUR and NEAR_REAL_TIME answer per quarter-hour, DAILY per UTC day, MONTHLY per
calendar month (UTC). A bucket's value is the sum of the quarter-hours present in it; NaN if none.

Pure: numpy arrays in and out.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import numpy.typing as npt

from dataservice.consent import Level

SLOT = timedelta(minutes=15)
SLOTS_PER_DAY = 96
BLOB_BYTES = SLOTS_PER_DAY * 8
MAX_WINDOW = timedelta(days=366)
_DTYPE = np.dtype("<f8")

Floats = npt.NDArray[np.float64]


class SeriesError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Reading:
    """Energy metered over [start, start + duration)."""

    start: datetime
    duration: timedelta
    energy_kwh: float


def empty_day() -> Floats:
    return np.full(SLOTS_PER_DAY, np.nan)


def pack(values: Floats) -> bytes:
    if values.shape != (SLOTS_PER_DAY,):
        raise SeriesError(f"a day has {SLOTS_PER_DAY} quarter-hours, not {values.shape}")
    return values.astype(_DTYPE).tobytes()


def unpack(blob: bytes) -> Floats:
    if len(blob) != BLOB_BYTES:
        raise SeriesError(f"a day blob has {BLOB_BYTES} bytes, not {len(blob)}")
    # Read-only and without a copy: every consumer makes new arrays from it.
    return np.frombuffer(blob, dtype=_DTYPE)


def merge(old: Floats | None, new: Floats) -> Floats:
    """A day updated with newer values; quarter-hours the update lacks keep the old value."""
    if old is None:
        return new.copy()
    return np.where(np.isnan(new), old, new)


def add(old: Floats | None, new: Floats) -> Floats:
    """A day with more energy added where the update has some (NaN + x = x)."""
    if old is None:
        return new.copy()
    both = np.isnan(old) & np.isnan(new)
    return np.where(both, np.nan, np.nan_to_num(old) + np.nan_to_num(new))


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def to_days(readings: Iterable[Reading]) -> dict[date, Floats]:
    """Quarter-hour energies from readings of any length, spread over the quarter-hours they
    cover in proportion to the overlap (a 1-hour reading fills four)."""
    days: dict[date, Floats] = {}
    for reading in readings:
        if reading.duration <= timedelta(0) or not np.isfinite(reading.energy_kwh):
            continue
        start = reading.start.astimezone(UTC)
        end = start + reading.duration
        slot_start = start.replace(minute=start.minute - start.minute % 15, second=0,
                                   microsecond=0)  # fmt: skip
        while slot_start < end:
            overlap = min(end, slot_start + SLOT) - max(start, slot_start)
            share = reading.energy_kwh * (overlap / reading.duration)
            day = days.setdefault(slot_start.date(), empty_day())
            index = (slot_start.hour * 60 + slot_start.minute) // 15
            day[index] = share if np.isnan(day[index]) else day[index] + share
            slot_start += SLOT
    return days


def _months(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    edges: list[tuple[datetime, datetime]] = []
    cursor = start
    while cursor < end:
        following = (cursor.replace(day=28) + timedelta(days=4)).replace(day=1)
        edges.append((cursor, min(following, end)))
        cursor = following
    return edges


def check_window(level: Level, start: datetime, end: datetime, *, aligned: bool = True) -> None:
    """A window of whole buckets (days; months for MONTHLY), at most `MAX_WINDOW` long."""
    if start.tzinfo is None or end.tzinfo is None:
        raise SeriesError("start and end need a UTC offset")
    if end <= start:
        raise SeriesError("the window ends before it starts")
    if end - start > MAX_WINDOW:
        raise SeriesError(f"a window is at most {MAX_WINDOW.days} days")
    if level is Level.NONE:
        raise SeriesError("level NONE has no data")
    if not aligned:
        return
    for edge in (start.astimezone(UTC), end.astimezone(UTC)):
        if edge.time() != time():
            raise SeriesError("windows start and end at midnight UTC")
        if level is Level.MONTHLY and edge.day != 1:
            raise SeriesError("monthly windows start and end on the 1st of a month")


def buckets(level: Level, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The buckets of [start, end) at `level`."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if level is Level.MONTHLY:
        return _months(start, end)
    step = timedelta(days=1) if level is Level.DAILY else SLOT
    edges: list[tuple[datetime, datetime]] = []
    cursor = start
    while cursor < end:
        edges.append((cursor, min(cursor + step, end)))
        cursor += step
    return edges


@functools.lru_cache(maxsize=64)  # one window serves every member of an aggregate
def days_of(start: datetime, end: datetime) -> tuple[date, ...]:
    first = start.astimezone(UTC).date()
    last = (end.astimezone(UTC) - timedelta(microseconds=1)).date()
    return tuple(first + timedelta(days=n) for n in range((last - first).days + 1))


def values(days: Mapping[date, Floats], level: Level, start: datetime, end: datetime) -> Floats:
    """One prosumer's bucket values over [start, end) at `level`; NaN where it has no data."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    wanted = days_of(start, end)
    slots = np.concatenate([days.get(d, _NAN_DAY) for d in wanted])
    base = day_start(wanted[0])
    first = int((start - base) / SLOT)
    last = int(np.ceil((end - base) / SLOT))
    slots = slots[first:last]
    if level in (Level.QUARTER_HOUR, Level.NEAR_REAL_TIME):
        return slots
    if level is Level.DAILY and start.time() == time() and end.time() == time():
        days_matrix = slots.reshape(-1, SLOTS_PER_DAY)  # the fast path for whole days
        present = ~np.isnan(days_matrix)
        sums = np.where(present, days_matrix, 0.0).sum(axis=1)
        return np.where(present.any(axis=1), sums, np.nan)
    parts = []
    for bucket_start, bucket_end in buckets(level, start, end):
        lo = int((bucket_start - start) / SLOT)
        hi = int(np.ceil((bucket_end - start) / SLOT))
        chunk = slots[lo:hi]
        present = ~np.isnan(chunk)
        parts.append(float(chunk[present].sum()) if present.any() else np.nan)
    return np.array(parts, dtype=np.float64)


_NAN_DAY = empty_day()
_NAN_DAY.setflags(write=False)
