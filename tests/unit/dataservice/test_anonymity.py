"""The 15/15 rule and the differencing rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from dataservice import anonymity
from dataservice.anonymity import BucketStats, Differencing, DominantMember, Release, TooFewMembers

JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)
MAR = datetime(2026, 3, 1, tzinfo=UTC)


def stats_of(values: dict[str, list[float]]) -> BucketStats:
    width = len(next(iter(values.values())))
    stats = BucketStats(width)
    for member, series in values.items():
        stats.add(member, np.array(series, dtype=np.float64))
    return stats


def households(n: int, value: float = 1.0, buckets: int = 3) -> dict[str, list[float]]:
    return {f"h{i:02d}": [value] * buckets for i in range(n)}


def test_fifteen_equal_households_are_released() -> None:
    anonymity.check_group(stats_of(households(15)))


def test_an_aggregate_over_fourteen_households_is_refused() -> None:
    with pytest.raises(TooFewMembers, match="14 members"):
        anonymity.check_group(stats_of(households(14)))


def test_a_bucket_with_too_few_reporting_members_is_refused() -> None:
    values = households(20)
    for i in range(6):  # six households have no data in the last bucket
        values[f"h{i:02d}"][2] = float("nan")
    with pytest.raises(TooFewMembers, match="some bucket") as refused:
        anonymity.check_group(stats_of(values))
    assert not any(ch.isdigit() for ch in refused.value.message.replace("15", ""))


def test_one_household_above_fifteen_percent_of_a_bucket_is_refused() -> None:
    values = households(20)
    values["h00"][1] = 4.0  # 4 of 23 = 17 %
    with pytest.raises(DominantMember, match="some bucket") as refused:
        anonymity.check_group(stats_of(values))
    assert "1 " not in refused.value.message  # it does not say which bucket


def test_exactly_fifteen_percent_is_allowed() -> None:
    values = households(18)  # 17 others at 1.0; 3 / 20 = 15 %
    values["h00"] = [3.0, 1.0, 1.0]
    anonymity.check_group(stats_of(values))


def test_an_exporting_household_counts_by_magnitude() -> None:
    values = households(20)
    values["h00"][0] = -5.0  # net total 14, but |-5| of 24 = 21 %
    with pytest.raises(DominantMember):
        anonymity.check_group(stats_of(values))


def test_a_member_without_data_is_not_a_member() -> None:
    values = households(15)
    values["h00"] = [float("nan")] * 3
    with pytest.raises(TooFewMembers):
        anonymity.check_group(stats_of(values))


def members(n: int, offset: int = 0) -> frozenset[str]:
    return frozenset(f"h{i:02d}" for i in range(offset, offset + n))


def test_two_overlapping_aggregates_that_differ_by_one_household_are_refused() -> None:
    first = Release(members(16), JAN, FEB)
    with pytest.raises(Differencing, match="by 1 member"):
        anonymity.check_differencing(members(15), JAN + timedelta(days=10), MAR, [first])


@pytest.mark.parametrize(
    ("new", "start", "end"),
    [
        (members(16), JAN, FEB),  # the same set again reveals nothing new
        (members(31), JAN, FEB),  # 15 more: as anonymous as a new aggregate
        (members(15), FEB, MAR),  # no common period: nothing to subtract
    ],
    ids=["same-set", "differs-by-fifteen", "other-period"],
)
def test_aggregates_that_cannot_isolate_anyone(
    new: frozenset[str], start: datetime, end: datetime
) -> None:
    anonymity.check_differencing(new, start, end, [Release(members(16), JAN, FEB)])


def test_differencing_looks_at_every_earlier_release() -> None:
    earlier = [Release(members(40), JAN, FEB), Release(members(20, offset=5), JAN, FEB)]
    with pytest.raises(Differencing):
        anonymity.check_differencing(members(20, offset=6), JAN, FEB, earlier)


def summary(release_id: int, release: Release) -> anonymity.Released:
    return anonymity.Released(
        release_id,
        len(release.members),
        anonymity.digest(release.members),
        release.start,
        release.end,
    )


def test_only_releases_that_could_isolate_someone_are_loaded() -> None:
    earlier = [
        Release(members(20), JAN, FEB),  # 1: the same set
        Release(members(40), JAN, FEB),  # 2: 20 more members: differs by at least 20
        Release(members(21, offset=1), FEB, MAR),  # 3: another period
        Release(members(21, offset=1), JAN, FEB),  # 4: close in size, another set
    ]
    summaries = [summary(n + 1, r) for n, r in enumerate(earlier)]
    assert anonymity.to_compare(members(20), JAN, FEB, summaries) == [4]


def test_pruning_never_hides_a_release_that_would_refuse() -> None:
    """Randomised: whenever the full check refuses because of an earlier release, that release
    is among those `to_compare` asks for."""
    rng = np.random.default_rng(7)
    refusals = 0
    for _ in range(300):
        base = set(range(int(rng.integers(15, 40))))
        earlier = []
        for _ in range(3):
            drop = set(rng.choice(sorted(base), size=int(rng.integers(0, 5)), replace=False))
            add = set(range(100, 100 + int(rng.integers(0, 20))))
            earlier.append(Release(frozenset(str(m) for m in (base - drop) | add), JAN, FEB))
        new = frozenset(str(m) for m in base)
        summaries = [summary(n, r) for n, r in enumerate(earlier)]
        chosen = anonymity.to_compare(new, JAN, FEB, summaries)
        for n, release in enumerate(earlier):
            try:
                anonymity.check_differencing(new, JAN, FEB, [release])
            except Differencing:
                refusals += 1
                assert n in chosen
    assert refusals > 50  # the table above exercises the rule, not just its absence
