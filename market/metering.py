"""Metering for measurement and verification: telemetry readings become per-ISP day series.

Pure (issue 8, M&V): readings of a node's meters (its members' gateways, or the node's own VEN)
go in as (meter, start, kW); out comes `market.baseline.History` and the event day's series: per
UTC day, the mean kW of each meter in each ISP, summed over the meters. An ISP where any meter
has no reading is a gap (None): a partial sum would look like a load reduction nobody made.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from market.baseline import DayReadings, EventBlocks, History


@dataclass(frozen=True, slots=True)
class MeterReading:
    meter: str  # the venID that reported it
    start: datetime
    power_kw: Decimal


def reading(meter: str, start: datetime, value: float) -> MeterReading:
    """A telemetry value (float on the wire) as an exact Decimal of its shortest repr."""
    return MeterReading(meter=meter, start=start, power_kw=Decimal(repr(value)))


def day_series(
    readings: Iterable[MeterReading], meters: Sequence[str], isp: timedelta
) -> dict[date, list[Decimal | None]]:
    """Per UTC day, the summed mean kW of `meters` in each ISP (None where a meter is silent)."""
    per_day = int(timedelta(days=1) / isp)
    cells: dict[tuple[date, int, str], list[Decimal]] = {}
    for item in readings:
        start = item.start.astimezone(UTC)
        day = start.date()
        offset = start - datetime.combine(day, time(), tzinfo=UTC)
        cells.setdefault((day, int(offset / isp), item.meter), []).append(item.power_kw)
    days = sorted({day for day, _, _ in cells})
    series: dict[date, list[Decimal | None]] = {}
    for day in days:
        values: list[Decimal | None] = []
        for index in range(per_day):
            found = [cells.get((day, index, meter)) for meter in meters]
            present = [m for m in found if m is not None]
            if not meters or len(present) < len(meters):
                values.append(None)
            else:
                values.append(sum((_mean(m) for m in present), Decimal(0)))
        series[day] = values
    return series


def _mean(values: Sequence[Decimal]) -> Decimal:
    return sum(values, Decimal(0)) / len(values)


def split(
    series: dict[date, list[Decimal | None]], blocks: EventBlocks
) -> tuple[History, DayReadings, tuple[Decimal | None, ...]]:
    """(history before the event day, the event day's series, the actual kW per block)."""
    empty: list[Decimal | None] = [None] * blocks.isps_per_day
    event_day = series.get(blocks.day, empty)
    history = {day: values for day, values in series.items() if day < blocks.day}
    return history, event_day, tuple(event_day[i] for i in blocks.isps)
