"""Consent decisions: who may see what, for which purpose, until when."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from dataservice import consent
from dataservice.consent import (
    Access,
    ConsentError,
    Grant,
    GrantId,
    Level,
    ProsumerId,
    RecipientId,
    Refusal,
)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
LAB = RecipientId("lab")
AGG = RecipientId("aggregator")


def make_grant(**overrides: object) -> Grant:
    base = consent.make_grant(
        GrantId("g-1"),
        ProsumerId("p-1"),
        LAB,
        "research",
        Level.DAILY,
        Access.INDIVIDUAL,
        NOW - timedelta(days=1),
        NOW + timedelta(days=30),
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def test_levels_are_ordered_from_least_to_most() -> None:
    assert list(Level) == sorted(Level)
    assert Level.NONE < Level.MONTHLY < Level.DAILY < Level.QUARTER_HOUR < Level.NEAR_REAL_TIME


def test_without_any_grant_the_level_is_none() -> None:
    assert consent.effective_level([], LAB, "research", NOW) is Level.NONE
    decision = consent.decide([], LAB, "research", Level.MONTHLY, NOW)
    assert not decision.allowed and decision.refusal is Refusal.NO_GRANT


@pytest.mark.parametrize(
    ("asked", "allowed"),
    [(Level.MONTHLY, True), (Level.DAILY, True), (Level.QUARTER_HOUR, False),
     (Level.NEAR_REAL_TIME, False)],
    ids=["monthly", "daily", "quarter-hour", "near-real-time"],
)  # fmt: skip
def test_a_daily_grant_covers_coarser_levels_only(asked: Level, allowed: bool) -> None:
    assert consent.allowed([make_grant()], LAB, "research", asked, NOW) is allowed


def test_daily_consent_asking_quarter_hour_data_is_refused_for_its_level() -> None:
    decision = consent.decide([make_grant()], LAB, "research", Level.QUARTER_HOUR, NOW)
    assert not decision.allowed
    assert decision.refusal is Refusal.LEVEL


@pytest.mark.parametrize(
    ("grant", "refusal"),
    [
        (make_grant(recipient_id=AGG), Refusal.NO_GRANT),
        (make_grant(purpose="billing"), Refusal.NO_GRANT),
        (make_grant(revoked_at=NOW - timedelta(minutes=1)), Refusal.REVOKED),
        (make_grant(expires_at=NOW), Refusal.EXPIRED),
        (make_grant(granted_at=NOW + timedelta(hours=1)), Refusal.NOT_YET_VALID),
        (make_grant(access=Access.AGGREGATE), Refusal.ACCESS),
    ],
    ids=["other-recipient", "other-purpose", "revoked", "expired", "not-yet", "aggregate-only"],
)
def test_grants_that_do_not_apply(grant: Grant, refusal: Refusal) -> None:
    decision = consent.decide([grant], LAB, "research", Level.DAILY, NOW)
    assert not decision.allowed
    assert decision.refusal is refusal


def test_a_revoked_grant_used_again_is_refused_and_says_so() -> None:
    grant = make_grant()
    assert consent.allowed([grant], LAB, "research", Level.DAILY, NOW)

    revoked = consent.revoke(grant, NOW + timedelta(minutes=1))
    later = NOW + timedelta(minutes=2)
    decision = consent.decide([revoked], LAB, "research", Level.DAILY, later)

    assert not decision.allowed
    assert decision.refusal is Refusal.REVOKED
    assert consent.effective_level([revoked], LAB, "research", later) is Level.NONE


def test_revoking_twice_keeps_the_first_time() -> None:
    once = consent.revoke(make_grant(), NOW)
    assert consent.revoke(once, NOW + timedelta(days=1)).revoked_at == NOW


def test_aggregate_use_is_covered_by_an_individual_grant() -> None:
    decision = consent.decide(
        [make_grant()], LAB, "research", Level.DAILY, NOW, access=Access.AGGREGATE
    )
    assert decision.allowed


def test_the_period_limits_which_readings_are_covered() -> None:
    grant = make_grant(period_start=NOW - timedelta(days=10), period_end=NOW)
    inside = consent.decide([grant], LAB, "research", Level.DAILY, NOW,
                            start=NOW - timedelta(days=5), end=NOW)  # fmt: skip
    before = consent.decide([grant], LAB, "research", Level.DAILY, NOW,
                            start=NOW - timedelta(days=20), end=NOW)  # fmt: skip
    assert inside.allowed
    assert before.refusal is Refusal.PERIOD


def test_the_best_live_grant_wins_over_a_revoked_one() -> None:
    revoked = make_grant(grant_id=GrantId("old"), revoked_at=NOW - timedelta(days=1))
    fine = make_grant(grant_id=GrantId("new"), level=Level.QUARTER_HOUR)
    decision = consent.decide([revoked, fine], LAB, "research", Level.QUARTER_HOUR, NOW)
    assert decision.allowed and decision.grant == fine


@pytest.mark.parametrize(
    ("level", "expires", "purpose"),
    [
        (Level.NONE, timedelta(days=1), "research"),
        (Level.DAILY, timedelta(0), "research"),
        (Level.DAILY, timedelta(days=400), "research"),
        (Level.DAILY, timedelta(days=1), "Research Purposes!"),
    ],
    ids=["level-none", "already-expired", "too-long", "bad-purpose"],
)
def test_grants_that_cannot_be_made(level: Level, expires: timedelta, purpose: str) -> None:
    with pytest.raises(ConsentError):
        consent.make_grant(GrantId("g"), ProsumerId("p"), LAB, purpose, level,
                           Access.INDIVIDUAL, NOW, NOW + expires)  # fmt: skip


@pytest.mark.parametrize(
    ("level", "until"),
    [
        (Level.NEAR_REAL_TIME, NOW),
        (Level.QUARTER_HOUR, datetime(2026, 3, 10, tzinfo=UTC)),
        (Level.DAILY, datetime(2026, 3, 10, tzinfo=UTC)),
        (Level.MONTHLY, datetime(2026, 3, 1, tzinfo=UTC)),
    ],
    ids=["near-real-time", "quarter-hour", "daily", "monthly"],
)
def test_only_near_real_time_sees_the_open_day(level: Level, until: datetime) -> None:
    assert consent.visible_until(level, NOW) == until
