"""The anonymised interface's release rules: the "15/15 rule" and no isolation by differencing.

15/15 (as utilities release aggregated customer data, e.g. CPUC D.14-05-016): an aggregate is
released only if at least 15 customers contribute to it and no single one contributes more than
15 % of its total. We apply both to every bucket of the answer (every quarter-hour, day or
month), because one household charging a car at 3 a.m. can dominate a quarter-hour that its
month does not reveal; a bucket that fails refuses the whole answer (suppressing only that bucket
would let the recipient recover it from a coarser total). Shares are of absolute values, so an
exporting PV household cannot hide behind its neighbours' consumption.

Differencing: two aggregates over member sets that differ by one household reveal that
household (A - B). For each recipient we keep the member sets of what it was given, and refuse
a new aggregate whose set differs from an earlier one covering an overlapping time window by
fewer than `MIN_GROUP` members (but by at least one: asking the same set again reveals nothing
new). Windows that do not overlap in time cannot be subtracted bucket by bucket, so they are not
compared; otherwise one household revoking its consent would block its area for ever.

Pure: the caller passes the per-bucket statistics and the earlier releases.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

MIN_GROUP = 15
MAX_SHARE = 0.15

Floats = npt.NDArray[np.float64]


class AnonymityError(Exception):
    """The aggregate may not be released; `message` says why without naming anyone."""

    reason = "anonymity"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TooFewMembers(AnonymityError):
    reason = "too-few-members"


class DominantMember(AnonymityError):
    reason = "dominant-member"


class Differencing(AnonymityError):
    reason = "differencing"


@dataclass(frozen=True, slots=True)
class Release:
    """An aggregate a recipient was given: over whom, and which readings."""

    members: frozenset[str]
    start: datetime
    end: datetime

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and start < self.end


@dataclass(frozen=True, slots=True)
class Released:
    """What is kept in view of an earlier release without loading its member list."""

    release_id: int
    count: int
    digest: str
    start: datetime
    end: datetime


def digest(members: Iterable[str]) -> str:
    """Names a member set: equal digests, equal sets."""
    return hashlib.sha256("\0".join(sorted(members)).encode()).hexdigest()


def to_compare(
    members: frozenset[str],
    start: datetime,
    end: datetime,
    released: Iterable[Released],
    min_group: int = MIN_GROUP,
) -> list[int]:
    """The earlier releases whose member lists `check_differencing` must see: those over an
    overlapping window, of another set, and close enough in size to differ by fewer than
    `min_group` (sets whose sizes differ by k differ by at least k members)."""
    mine = digest(members)
    return [
        r.release_id
        for r in released
        if r.start < end
        and start < r.end
        and r.digest != mine
        and abs(r.count - len(members)) < min_group
    ]


class BucketStats:
    """Running per-bucket sums over members, fed one member's series at a time.

    Memory is a few arrays of one value per bucket, whatever the number of members.
    """

    def __init__(self, buckets: int, bounds_wh: npt.NDArray[np.int64] | None = None) -> None:
        self.total: Floats = np.zeros(buckets)
        self.abs_total: Floats = np.zeros(buckets)
        self.abs_max: Floats = np.zeros(buckets)
        self.count = np.zeros(buckets, dtype=np.int64)
        self.members: set[str] = set()
        # For differential privacy: each member's bucket value in whole Wh, clamped to the
        # bucket's bound before it is added, so one member moves the totals by at most that.
        self.bounds_wh = bounds_wh
        self.clamped_wh = np.zeros(buckets, dtype=np.int64)

    def add(self, member: str, values: Floats) -> None:
        """One member's values per bucket; NaN where it has no data."""
        present = ~np.isnan(values)
        if not present.any():
            return
        clean = np.where(present, values, 0.0)
        magnitude = np.abs(clean)
        self.total += clean
        self.abs_total += magnitude
        np.maximum(self.abs_max, magnitude, out=self.abs_max)
        self.count += present
        self.members.add(member)
        if self.bounds_wh is not None:
            wh = np.rint(clean * 1000).astype(np.int64)
            self.clamped_wh += np.clip(wh, -self.bounds_wh, self.bounds_wh)


def check_group(
    stats: BucketStats, min_group: int = MIN_GROUP, max_share: float = MAX_SHARE
) -> None:
    """Raise unless every bucket has `min_group` members and none above `max_share`."""
    if len(stats.members) < min_group:
        raise TooFewMembers(
            f"the aggregate has {len(stats.members)} members; at least {min_group} are needed"
        )
    # The refusals say what failed, not where or by how much: which quarter-hour one
    # household dominated is itself something about that household.
    if (stats.count < min_group).any():
        raise TooFewMembers(f"some bucket has data from fewer than {min_group} members")
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(stats.abs_total > 0, stats.abs_max / stats.abs_total, 0.0)
    if (share > max_share).any():
        raise DominantMember(
            f"in some bucket one member contributes more than {max_share:.0%} of the total"
        )


def check_differencing(
    members: frozenset[str],
    start: datetime,
    end: datetime,
    released: Iterable[Release],
    min_group: int = MIN_GROUP,
) -> None:
    """Raise if subtracting an earlier overlapping release from this one would isolate fewer
    than `min_group` members."""
    for earlier in released:
        if not earlier.overlaps(start, end):
            continue
        differing = len(members ^ earlier.members)
        if 0 < differing < min_group:
            raise Differencing(
                f"this aggregate differs from one you were given for an overlapping period by "
                f"{differing} member(s); at least {min_group} are needed"
            )
