"""The load at one congestion point as a regular 15-minute series (ISP resolution), from readings.

The VENs under a congestion point report telemetry (oadrUpdateReport, TELEMETRY_USAGE) at their
own pace: readings may be shorter or longer than an ISP, arrive late, arrive twice, or not at
all. `build` turns them into one value per ISP, the sum over the point's members, and marks an
ISP missing (NaN) instead of guessing when a member did not cover enough of it. Readings received
after the `known_at` cut-off are left out, so a forecast can be reproduced from the data that
was known when it was made (and `data_version` names that data).

Power is in kW, positive when drawn from the grid. Times are aware UTC datetimes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

ISP = timedelta(minutes=15)
ISPS_PER_DAY = 96
ISPS_PER_WEEK = 7 * ISPS_PER_DAY

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of one member: its mean power over [start, start + duration)."""

    member: str  # the venID (or resource) the reading belongs to
    start: datetime
    duration: timedelta
    power_kw: float
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True, eq=False)
class LoadSeries:
    """`power_kw[i]` is the mean load in [start + i*isp, start + (i+1)*isp); NaN = missing."""

    start: datetime
    power_kw: FloatArray
    isp: timedelta = ISP

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("a series starts at an aware UTC time")
        self.power_kw.setflags(write=False)  # frozen means frozen: shared with fitted models

    def __len__(self) -> int:
        return int(self.power_kw.shape[0])

    @property
    def end(self) -> datetime:
        """The first ISP after the series: where a forecast from it starts at the earliest."""
        return self.start + self.isp * len(self)

    def index_of(self, at: datetime) -> int:
        """The ISP index of `at` (may be negative or past the end); `at` on an ISP boundary."""
        steps, rest = divmod(at - self.start, self.isp)
        if rest:
            raise ValueError(f"{at.isoformat()} is not on an ISP boundary of this series")
        return int(steps)

    def time_of(self, index: int) -> datetime:
        return self.start + self.isp * index

    def until(self, end: datetime) -> LoadSeries:
        """The part before `end`: what was known at a forecast origin."""
        stop = max(0, min(len(self), self.index_of(end)))
        return LoadSeries(self.start, self.power_kw[:stop].copy(), self.isp)

    def window(self, start: datetime, count: int) -> FloatArray:
        """`count` values from `start`, NaN where the series has none."""
        first = self.index_of(start)
        out = np.full(count, np.nan)
        lo, hi = max(first, 0), min(first + count, len(self))
        if hi > lo:
            out[lo - first : hi - first] = self.power_kw[lo:hi]
        return out

    @property
    def missing(self) -> int:
        return int(np.isnan(self.power_kw).sum())


def floor_isp(at: datetime, isp: timedelta = ISP) -> datetime:
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    return at - (at - epoch) % isp


def build(
    samples: Iterable[Sample],
    members: Sequence[str],
    start: datetime,
    end: datetime,
    *,
    isp: timedelta = ISP,
    known_at: datetime | None = None,
    min_coverage: float = 0.5,
) -> LoadSeries:
    """The summed load of `members` per ISP in [start, end).

    Each reading is spread over the ISPs it overlaps, weighted by the overlap, so 1-minute
    readings and 1-hour readings both give ISP means. A reading sent again for the same member
    and start replaces the earlier one (the latest received wins). An ISP is missing unless every
    member covered at least `min_coverage` of it: a sum over some of the houses is not the load
    of the feeder, and a model is better told "unknown" than fed a dip that never happened.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be aware UTC times")
    count = max(0, (end - start) // isp)
    column = {member: i for i, member in enumerate(dict.fromkeys(members))}
    latest: dict[tuple[str, datetime], Sample] = {}
    for sample in samples:
        if sample.member not in column or not np.isfinite(sample.power_kw):
            continue
        if sample.duration <= timedelta(0):
            continue
        if known_at is not None and (sample.received_at or sample.start) > known_at:
            continue  # arrived after the cut-off: not known when the forecast was made
        key = (sample.member, sample.start)
        seen = latest.get(key)
        if seen is None or _received(sample) >= _received(seen):
            latest[key] = sample

    energy = np.zeros((count, len(column)))  # kW x fraction of the ISP, per member
    covered = np.zeros((count, len(column)))
    isp_s = isp.total_seconds()
    for sample in latest.values():
        col = column[sample.member]
        s0 = (sample.start - start).total_seconds() / isp_s
        s1 = s0 + sample.duration.total_seconds() / isp_s
        first, last = max(int(np.floor(s0)), 0), min(int(np.ceil(s1)), count)
        for i in range(first, last):
            overlap = min(s1, i + 1) - max(s0, i)
            if overlap > 0:
                energy[i, col] += sample.power_kw * overlap
                covered[i, col] += overlap
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_kw = np.where(covered > 0, energy / np.maximum(covered, 1e-12), np.nan)
    complete = (
        (np.minimum(covered, 1.0) >= min_coverage).all(axis=1)
        if column
        else np.zeros(count, dtype=bool)
    )
    total = np.where(complete, np.nansum(mean_kw, axis=1), np.nan)
    return LoadSeries(start, total.astype(np.float64), isp)


def _received(sample: Sample) -> datetime:
    return sample.received_at or sample.start


def data_version(series: LoadSeries, known_at: datetime | None = None) -> str:
    """A short fingerprint of the input a forecast was made from: same data, same version."""
    digest = hashlib.sha256()
    digest.update(series.start.isoformat().encode())
    digest.update(str(series.isp.total_seconds()).encode())
    digest.update(np.nan_to_num(series.power_kw, nan=-1e18).round(6).tobytes())
    if known_at is not None:
        digest.update(known_at.isoformat().encode())
    return digest.hexdigest()[:16]
