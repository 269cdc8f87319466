"""Consent: which recipient may see a prosumer's metering data, for what purpose, how finely.

A prosumer grants one recipient, for one purpose, a level of detail (in the spirit of Green
Button Connect's data-access authorisations: granularity, data period, expiry, revocation):

    NONE < MONTHLY < DAILY < QUARTER_HOUR < NEAR_REAL_TIME

A grant is time-limited (`expires_at` is required, at most `MAX_GRANT_DURATION` ahead), scoped
(individual series under a pseudonym, or only inclusion in anonymised aggregates; optionally a
period of readings) and revocable. Without a live grant the answer is the least: NONE. A grant
for a level covers every coarser level; an individual grant covers aggregate use too.

Levels also set how fresh the data may be: only NEAR_REAL_TIME sees today's readings; the other
levels see whole buckets that have closed (yesterday and before, last month and before).

Pure: grants and `now` come in, a `Decision` comes out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import IntEnum, StrEnum
from typing import NewType

ProsumerId = NewType("ProsumerId", str)
RecipientId = NewType("RecipientId", str)
GrantId = NewType("GrantId", str)

# One year, like the longest authorisations utilities give third parties; renewing is explicit.
MAX_GRANT_DURATION = timedelta(days=366)
_PURPOSE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class Level(IntEnum):
    NONE = 0
    MONTHLY = 1
    DAILY = 2
    QUARTER_HOUR = 3
    NEAR_REAL_TIME = 4


class Access(StrEnum):
    AGGREGATE = "aggregate"  # only as one member of an anonymised aggregate
    INDIVIDUAL = "individual"  # the prosumer's own series, under a per-recipient pseudonym


class ConsentError(ValueError):
    """A grant that may not be made or changed as asked."""


class Refusal(StrEnum):
    NO_GRANT = "no-grant"
    REVOKED = "revoked"
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    LEVEL = "level-too-fine"
    ACCESS = "aggregate-only"
    PERIOD = "outside-period"


@dataclass(frozen=True, slots=True)
class Grant:
    grant_id: GrantId
    prosumer_id: ProsumerId
    recipient_id: RecipientId
    purpose: str
    level: Level
    access: Access
    granted_at: datetime
    expires_at: datetime
    # The readings it covers: [period_start, period_end); None = unbounded on that side.
    period_start: datetime | None = None
    period_end: datetime | None = None
    revoked_at: datetime | None = None

    def live(self, now: datetime) -> bool:
        return self.revoked_at is None and self.granted_at <= now < self.expires_at


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    grant: Grant | None  # the grant that allows it, or the closest one that did not
    refusal: Refusal | None = None

    @property
    def reason(self) -> str:
        return "allowed" if self.refusal is None else self.refusal.value


def check_purpose(purpose: str) -> str:
    if not _PURPOSE.match(purpose):
        raise ConsentError(
            f"purpose {purpose!r} must be a short token: lower-case letters, digits, . _ -"
        )
    return purpose


def make_grant(
    grant_id: GrantId,
    prosumer_id: ProsumerId,
    recipient_id: RecipientId,
    purpose: str,
    level: Level,
    access: Access,
    now: datetime,
    expires_at: datetime,
    period_start: datetime | None = None,
    period_end: datetime | None = None,
) -> Grant:
    """A new grant, checked: a real level, a bounded lifetime, a sane period."""
    if level is Level.NONE:
        raise ConsentError("a grant of level NONE grants nothing: revoke instead")
    if expires_at <= now:
        raise ConsentError("the grant would expire before it starts")
    if expires_at - now > MAX_GRANT_DURATION:
        raise ConsentError(f"a grant may last at most {MAX_GRANT_DURATION.days} days")
    if period_start is not None and period_end is not None and period_end <= period_start:
        raise ConsentError("the period ends before it starts")
    for name, value in (("now", now), ("expires_at", expires_at), ("period_start", period_start),
                        ("period_end", period_end)):  # fmt: skip
        if value is not None and value.tzinfo is None:
            raise ConsentError(f"{name} must be an aware UTC time")
    return Grant(
        grant_id=grant_id,
        prosumer_id=prosumer_id,
        recipient_id=recipient_id,
        purpose=check_purpose(purpose),
        level=level,
        access=access,
        granted_at=now,
        expires_at=expires_at,
        period_start=period_start,
        period_end=period_end,
    )


def revoke(grant: Grant, now: datetime) -> Grant:
    """Revocation is final and takes effect at `now`; revoking twice keeps the first time."""
    if grant.revoked_at is not None:
        return grant
    return replace(grant, revoked_at=now)


def decide(
    grants: Iterable[Grant],
    recipient: RecipientId,
    purpose: str,
    level: Level,
    now: datetime,
    *,
    access: Access = Access.INDIVIDUAL,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Decision:
    """May `recipient` see data at `level` for `purpose` (readings in [start, end)) now?

    Allowed when one live grant for that recipient and purpose covers the level, the kind of
    access and the period. Otherwise the refusal of the grant that came closest, so that a
    prosumer's revoked grant is reported as revoked, not as missing.
    """
    if level is Level.NONE:
        return Decision(True, None)
    best: Decision = Decision(False, None, Refusal.NO_GRANT)
    for grant in grants:
        if grant.recipient_id != recipient or grant.purpose != purpose:
            continue
        refusal = _refusal(grant, level, access, now, start, end)
        if refusal is None:
            return Decision(True, grant)
        if best.grant is None or _ORDER[refusal] > _ORDER[best.refusal or Refusal.NO_GRANT]:
            best = Decision(False, grant, refusal)
    return best


def allowed(
    grants: Iterable[Grant], recipient: RecipientId, purpose: str, level: Level, now: datetime
) -> bool:
    return decide(grants, recipient, purpose, level, now).allowed


def effective_level(
    grants: Iterable[Grant], recipient: RecipientId, purpose: str, now: datetime
) -> Level:
    """The finest level live grants allow; NONE by default."""
    levels = [
        g.level for g in grants if g.recipient_id == recipient and g.purpose == purpose
        and g.live(now)
    ]  # fmt: skip
    return max(levels, default=Level.NONE)


def visible_until(level: Level, now: datetime) -> datetime:
    """The end of the readings `level` may see now: only closed buckets below near-real-time."""
    now = now.astimezone(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if level is Level.NEAR_REAL_TIME:
        return now
    if level is Level.MONTHLY:
        return midnight.replace(day=1)
    return midnight


# Which refusal says most about why: a revoked grant outranks a merely different purpose.
_ORDER = {
    Refusal.NO_GRANT: 0,
    Refusal.NOT_YET_VALID: 1,
    Refusal.EXPIRED: 2,
    Refusal.PERIOD: 3,
    Refusal.ACCESS: 4,
    Refusal.LEVEL: 5,
    Refusal.REVOKED: 6,
}


def _refusal(
    grant: Grant,
    level: Level,
    access: Access,
    now: datetime,
    start: datetime | None,
    end: datetime | None,
) -> Refusal | None:
    if grant.revoked_at is not None and grant.revoked_at <= now:
        return Refusal.REVOKED
    if now < grant.granted_at:
        return Refusal.NOT_YET_VALID
    if now >= grant.expires_at:
        return Refusal.EXPIRED
    if level > grant.level:
        return Refusal.LEVEL
    if access is Access.INDIVIDUAL and grant.access is Access.AGGREGATE:
        return Refusal.ACCESS
    if grant.period_start is not None and (start is None or start < grant.period_start):
        return Refusal.PERIOD
    if grant.period_end is not None and (end is None or end > grant.period_end):
        return Refusal.PERIOD
    return None
