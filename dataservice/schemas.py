"""The data service's JSON: request bodies (pydantic, validated at the edge) and replies.

The same types produce the OpenAPI document (`vtn.admin.openapi`). Levels and kinds of access
travel by name (`QUARTER_HOUR`, `individual`); times are ISO 8601 with an offset.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from dataservice.consent import Access, Grant, Level
from dataservice.store.repository import AccessEntry

LevelName = Literal["MONTHLY", "DAILY", "QUARTER_HOUR", "NEAR_REAL_TIME"]
_ID = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProsumerBody(_Body):
    prosumer_id: str = _ID
    areas: list[str] = Field(default_factory=list, max_length=32)
    ven_id: str | None = None


class RecipientBody(_Body):
    recipient_id: str = _ID
    name: str = Field(min_length=1, max_length=255)
    fingerprint: str | None = Field(default=None, pattern=r"^([0-9A-F]{2}:){9}[0-9A-F]{2}$")
    epsilon_budget: float = Field(default=10.0, ge=0, le=1000)


class TokenBody(_Body):
    holder_kind: Literal["recipient", "prosumer"]
    holder_id: str = _ID


class GrantBody(_Body):
    recipient_id: str = _ID
    purpose: str = Field(min_length=1, max_length=64)
    level: LevelName
    access: Access = Access.AGGREGATE  # the least by default
    expires_at: AwareDatetime
    period_start: AwareDatetime | None = None
    period_end: AwareDatetime | None = None


class OperatorGrantBody(GrantBody):
    prosumer_id: str = _ID


class MeterDataBody(_Body):
    start: AwareDatetime
    energy_kwh: list[float | None] = Field(min_length=1, max_length=96 * 31)


class AggregateBody(_Body):
    purpose: str = Field(min_length=1, max_length=64)
    level: LevelName
    area: str = Field(min_length=1, max_length=255)
    start: AwareDatetime
    end: AwareDatetime
    epsilon: float | None = Field(default=None, gt=0)


class GrantView(BaseModel):
    grant_id: str
    prosumer_id: str
    recipient_id: str
    purpose: str
    level: LevelName
    access: Access
    granted_at: datetime
    expires_at: datetime
    period_start: datetime | None
    period_end: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, grant: Grant) -> GrantView:
        return cls(
            grant_id=grant.grant_id,
            prosumer_id=grant.prosumer_id,
            recipient_id=grant.recipient_id,
            purpose=grant.purpose,
            level=grant.level.name,  # type: ignore[arg-type]
            access=grant.access,
            granted_at=grant.granted_at,
            expires_at=grant.expires_at,
            period_start=grant.period_start,
            period_end=grant.period_end,
            revoked_at=grant.revoked_at,
        )


class AccessView(BaseModel):
    """One access-log row: who, when, what, at which level, for what, and the outcome."""

    at: datetime
    actor: str
    action: str
    recipient_id: str | None
    purpose: str | None
    level: LevelName | None
    outcome: str
    reason: str
    release_id: int | None
    detail: dict[str, object]

    @classmethod
    def of(cls, entry: AccessEntry) -> AccessView:
        return cls(
            at=entry.at,
            actor=entry.actor,
            action=entry.action,
            recipient_id=entry.recipient_id,
            purpose=entry.purpose,
            level=None if entry.level is None or entry.level is Level.NONE else entry.level.name,  # type: ignore[arg-type]
            outcome=entry.outcome,
            reason=entry.reason,
            release_id=entry.release_id,
            detail=entry.detail,
        )


class Bucket(BaseModel):
    start: datetime
    end: datetime
    energy_kwh: float | None


class SeriesView(BaseModel):
    pseudonym: str
    level: LevelName
    buckets: list[Bucket]


class AggregateView(BaseModel):
    area: str
    purpose: str
    level: LevelName
    members: int
    epsilon: float | None
    noise_scale_kwh: float | None
    release_id: int
    buckets: list[Bucket]


class Pseudonyms(BaseModel):
    purpose: str
    pseudonyms: list[str]


class TokenView(BaseModel):
    token: str = Field(description="shown once: `d.<token_id>.<secret>`")


class Created(BaseModel):
    id: str


class Stored(BaseModel):
    prosumer_id: str
    days: int  # prosumer-days written


class Erased(BaseModel):
    prosumer_id: str
    days: int
    vtn_readings: int


class QuarterHour(BaseModel):
    start: datetime
    energy_kwh: float


class ExportView(BaseModel):
    prosumer_id: str
    areas: list[str]
    quarter_hours: list[QuarterHour]
    grants: list[GrantView]
    accesses: list[AccessView]
