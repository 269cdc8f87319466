"""Rows <-> data service values, inside one transaction of the VTN's `Store`. Decides nothing.

The append-only tables have `add` and read methods only: there is no update or delete path in
code, and the database triggers refuse one from anywhere else.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import LargeBinary, and_, delete, func, insert, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection

from dataservice.anonymity import Release, Released, digest
from dataservice.consent import Access, Grant, GrantId, Level, ProsumerId, RecipientId
from dataservice.store.tables import (
    data_access_log,
    data_days,
    data_grants,
    data_ingest_marks,
    data_prosumer_keys,
    data_prosumers,
    data_recipients,
    data_release_members,
    data_releases,
    data_tokens,
)
from vtn.store.tables import readings, vens


@dataclass(frozen=True, slots=True)
class Prosumer:
    prosumer_id: ProsumerId
    ven_id: str | None
    areas: tuple[str, ...]
    created_at: datetime
    erased_at: datetime | None


@dataclass(frozen=True, slots=True)
class Recipient:
    recipient_id: RecipientId
    name: str
    fingerprint: str | None
    wrapped_pseudonym_key: bytes
    master_key_id: str
    epsilon_budget: float
    created_at: datetime


@dataclass(frozen=True, slots=True)
class WrappedKey:
    wrapped_key: bytes
    master_key_id: str


@dataclass(frozen=True, slots=True)
class DataToken:
    token_id: str
    holder_kind: str
    holder_id: str
    secret_hash: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """One row of the access log."""

    at: datetime
    actor: str
    action: str
    recipient_id: str | None
    prosumer_id: str | None
    release_id: int | None
    purpose: str | None
    level: Level | None
    outcome: str
    reason: str
    detail: dict[str, Any]


def _grant(row: Any) -> Grant:
    return Grant(
        grant_id=GrantId(row.grant_id),
        prosumer_id=ProsumerId(row.prosumer_id),
        recipient_id=RecipientId(row.recipient_id),
        purpose=row.purpose,
        level=Level(row.level),
        access=Access(row.access),
        granted_at=row.granted_at,
        expires_at=row.expires_at,
        period_start=row.period_start,
        period_end=row.period_end,
        revoked_at=row.revoked_at,
    )


def _prosumer(row: Any) -> Prosumer:
    return Prosumer(
        ProsumerId(row.prosumer_id), row.ven_id, tuple(row.areas), row.created_at, row.erased_at
    )


class DataRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self.is_postgresql = connection.dialect.name == "postgresql"

    # --- prosumers and keys -------------------------------------------------------------------

    async def add_prosumer(self, prosumer: Prosumer, key: WrappedKey) -> None:
        await self.connection.execute(
            insert(data_prosumers).values(
                prosumer_id=prosumer.prosumer_id,
                ven_id=prosumer.ven_id,
                areas=list(prosumer.areas),
                created_at=prosumer.created_at,
                erased_at=None,
            )
        )
        await self.connection.execute(
            insert(data_prosumer_keys).values(
                prosumer_id=prosumer.prosumer_id,
                wrapped_key=key.wrapped_key,
                master_key_id=key.master_key_id,
                created_at=prosumer.created_at,
            )
        )

    async def prosumer(self, prosumer_id: str) -> Prosumer | None:
        query = select(data_prosumers).where(data_prosumers.c.prosumer_id == prosumer_id)
        row = (await self.connection.execute(query)).first()
        return None if row is None else _prosumer(row)

    async def prosumers(self) -> list[Prosumer]:
        query = select(data_prosumers).order_by(data_prosumers.c.prosumer_id)
        return [_prosumer(row) for row in await self.connection.execute(query)]

    async def prosumer_of_ven(self, ven_id: str) -> Prosumer | None:
        query = select(data_prosumers).where(data_prosumers.c.ven_id == ven_id)
        row = (await self.connection.execute(query)).first()
        return None if row is None else _prosumer(row)

    async def prosumer_of_fingerprint(self, fingerprint: str) -> Prosumer | None:
        """The prosumer whose VEN presents this certificate (a prosumer's own view)."""
        query = (
            select(data_prosumers)
            .join(vens, vens.c.ven_id == data_prosumers.c.ven_id)
            .where(vens.c.fingerprint == fingerprint)
        )
        row = (await self.connection.execute(query)).first()
        return None if row is None else _prosumer(row)

    async def prosumer_key(self, prosumer_id: str) -> WrappedKey | None:
        query = select(data_prosumer_keys).where(data_prosumer_keys.c.prosumer_id == prosumer_id)
        row = (await self.connection.execute(query)).first()
        return None if row is None else WrappedKey(row.wrapped_key, row.master_key_id)

    async def prosumer_keys(self, prosumer_ids: Sequence[str]) -> dict[str, WrappedKey]:
        found: dict[str, WrappedKey] = {}
        for chunk in _chunks(prosumer_ids):
            query = select(data_prosumer_keys).where(data_prosumer_keys.c.prosumer_id.in_(chunk))
            for row in await self.connection.execute(query):
                found[row.prosumer_id] = WrappedKey(row.wrapped_key, row.master_key_id)
        return found

    async def all_wrapped_keys(self) -> list[tuple[str, WrappedKey]]:
        query = select(data_prosumer_keys).order_by(data_prosumer_keys.c.prosumer_id)
        return [
            (row.prosumer_id, WrappedKey(row.wrapped_key, row.master_key_id))
            for row in await self.connection.execute(query)
        ]

    async def rewrap_prosumer_key(self, prosumer_id: str, key: WrappedKey) -> None:
        await self.connection.execute(
            update(data_prosumer_keys)
            .where(data_prosumer_keys.c.prosumer_id == prosumer_id)
            .values(wrapped_key=key.wrapped_key, master_key_id=key.master_key_id)
        )

    async def recipients(self) -> list[Recipient]:
        query = select(data_recipients).order_by(data_recipients.c.recipient_id)
        return [Recipient(**row._mapping) for row in await self.connection.execute(query)]

    async def rewrap_recipient_key(self, recipient_id: str, key: WrappedKey) -> None:
        await self.connection.execute(
            update(data_recipients)
            .where(data_recipients.c.recipient_id == recipient_id)
            .values(wrapped_pseudonym_key=key.wrapped_key, master_key_id=key.master_key_id)
        )

    async def erase_prosumer(self, prosumer_id: str, now: datetime) -> int:
        """Crypto-shredding: the key, then every blob, grant and token; a tombstone stays.

        Returns how many day blobs went.
        """
        await self.connection.execute(
            delete(data_prosumer_keys).where(data_prosumer_keys.c.prosumer_id == prosumer_id)
        )
        days = await self.connection.execute(
            delete(data_days).where(data_days.c.prosumer_id == prosumer_id)
        )
        await self.connection.execute(
            delete(data_grants).where(data_grants.c.prosumer_id == prosumer_id)
        )
        await self.connection.execute(
            delete(data_tokens).where(
                and_(
                    data_tokens.c.holder_kind == "prosumer", data_tokens.c.holder_id == prosumer_id
                )
            )
        )
        await self.connection.execute(
            update(data_prosumers)
            .where(data_prosumers.c.prosumer_id == prosumer_id)
            .values(erased_at=now, areas=[], ven_id=None)
        )
        return int(days.rowcount)

    async def delete_vtn_readings(self, ven_id: str) -> int:
        """The VTN's own plaintext copy of a VEN's telemetry."""
        result = await self.connection.execute(delete(readings).where(readings.c.ven_id == ven_id))
        return int(result.rowcount)

    # --- day blobs ----------------------------------------------------------------------------

    async def day_blobs(self, prosumer_id: str, days: Iterable[date]) -> dict[date, bytes]:
        wanted = list(days)
        query = select(data_days.c.day, data_days.c.blob).where(
            data_days.c.prosumer_id == prosumer_id, data_days.c.day.in_(wanted)
        )
        return {row.day: row.blob for row in await self.connection.execute(query)}

    async def all_day_blobs(self, prosumer_id: str) -> dict[date, bytes]:
        query = (
            select(data_days.c.day, data_days.c.blob)
            .where(data_days.c.prosumer_id == prosumer_id)
            .order_by(data_days.c.day)
        )
        return {row.day: row.blob for row in await self.connection.execute(query)}

    async def stream_days(
        self, prosumer_ids: Sequence[str], first: date, last: date
    ) -> AsyncIterator[tuple[str, list[tuple[date, bytes]]]]:
        """Each of these prosumers that has blobs for days in [first, last], with them in day
        order: one prosumer after the other, so a caller can finish each before the next."""
        for chunk in _chunks(sorted(prosumer_ids)):
            where = (data_days.c.prosumer_id.in_(chunk), data_days.c.day.between(first, last))
            if self.is_postgresql:
                # One row per prosumer (its blobs concatenated in day order, with their days
                # and lengths): a month of 10,000 prosumers is 10,000 rows, not 300,000.
                by_day = data_days.c.day.asc()
                query = (
                    select(
                        data_days.c.prosumer_id,
                        func.array_agg(aggregate_order_by(data_days.c.day, by_day)).label("days"),
                        func.array_agg(
                            aggregate_order_by(func.octet_length(data_days.c.blob), by_day)
                        ).label("lengths"),
                        func.string_agg(
                            data_days.c.blob,
                            aggregate_order_by(literal_column("''::bytea"), by_day),
                            type_=LargeBinary,
                        ).label("blobs"),
                    )
                    .where(*where)
                    .group_by(data_days.c.prosumer_id)
                    .order_by(data_days.c.prosumer_id)
                )
                for row in await self.connection.execute(query):
                    ends = list(itertools.accumulate(row.lengths))
                    yield (
                        row.prosumer_id,
                        [
                            (day, row.blobs[end - length : end])
                            for day, length, end in zip(row.days, row.lengths, ends, strict=True)
                        ],
                    )
                continue
            query = (
                select(data_days.c.prosumer_id, data_days.c.day, data_days.c.blob)
                .where(*where)
                .order_by(data_days.c.prosumer_id, data_days.c.day)
            )
            rows = await self.connection.execute(query)
            for prosumer_id, group in itertools.groupby(rows, key=lambda row: row.prosumer_id):
                yield prosumer_id, [(row.day, row.blob) for row in group]

    async def put_days(self, prosumer_id: str, blobs: dict[date, bytes], now: datetime) -> None:
        if not blobs:
            return
        rows = [
            {"prosumer_id": prosumer_id, "day": d, "blob": b, "updated_at": now}
            for d, b in blobs.items()
        ]
        dialect = postgresql if self.is_postgresql else sqlite
        statement = dialect.insert(data_days)
        statement = statement.on_conflict_do_update(
            index_elements=[data_days.c.prosumer_id, data_days.c.day],
            set_={"blob": statement.excluded.blob, "updated_at": statement.excluded.updated_at},
        )
        await self.connection.execute(statement, rows)

    async def purge_days_before(self, day: date) -> int:
        result = await self.connection.execute(delete(data_days).where(data_days.c.day < day))
        return int(result.rowcount)

    # --- recipients and tokens ----------------------------------------------------------------

    async def add_recipient(self, recipient: Recipient) -> None:
        await self.connection.execute(
            insert(data_recipients).values(
                recipient_id=recipient.recipient_id,
                name=recipient.name,
                fingerprint=recipient.fingerprint,
                wrapped_pseudonym_key=recipient.wrapped_pseudonym_key,
                master_key_id=recipient.master_key_id,
                epsilon_budget=recipient.epsilon_budget,
                created_at=recipient.created_at,
            )
        )

    async def recipient(self, recipient_id: str, *, lock: bool = False) -> Recipient | None:
        """With `lock`, hold the row until commit: one recipient's aggregate queries run one
        at a time, so two at once cannot both pass the differencing and budget checks."""
        query = select(data_recipients).where(data_recipients.c.recipient_id == recipient_id)
        if lock and self.is_postgresql:
            query = query.with_for_update()
        row = (await self.connection.execute(query)).first()
        return None if row is None else Recipient(**row._mapping)

    async def recipient_of_fingerprint(self, fingerprint: str) -> Recipient | None:
        query = select(data_recipients).where(data_recipients.c.fingerprint == fingerprint)
        row = (await self.connection.execute(query)).first()
        return None if row is None else Recipient(**row._mapping)

    async def add_token(self, token: DataToken) -> None:
        await self.connection.execute(
            insert(data_tokens).values(
                token_id=token.token_id,
                holder_kind=token.holder_kind,
                holder_id=token.holder_id,
                secret_hash=token.secret_hash,
                created_at=token.created_at,
                revoked_at=token.revoked_at,
            )
        )

    async def token(self, token_id: str) -> DataToken | None:
        query = select(data_tokens).where(data_tokens.c.token_id == token_id)
        row = (await self.connection.execute(query)).first()
        return None if row is None else DataToken(**row._mapping)

    async def revoke_token(self, token_id: str, now: datetime) -> bool:
        result = await self.connection.execute(
            update(data_tokens)
            .where(data_tokens.c.token_id == token_id, data_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return bool(result.rowcount)

    # --- grants -------------------------------------------------------------------------------

    async def add_grant(self, grant: Grant) -> None:
        await self.connection.execute(
            insert(data_grants).values(
                grant_id=grant.grant_id,
                prosumer_id=grant.prosumer_id,
                recipient_id=grant.recipient_id,
                purpose=grant.purpose,
                level=int(grant.level),
                access=grant.access.value,
                granted_at=grant.granted_at,
                expires_at=grant.expires_at,
                period_start=grant.period_start,
                period_end=grant.period_end,
                revoked_at=grant.revoked_at,
            )
        )

    async def grant(self, grant_id: str) -> Grant | None:
        query = select(data_grants).where(data_grants.c.grant_id == grant_id)
        row = (await self.connection.execute(query)).first()
        return None if row is None else _grant(row)

    async def set_revoked(self, grant_id: str, now: datetime) -> None:
        await self.connection.execute(
            update(data_grants)
            .where(data_grants.c.grant_id == grant_id, data_grants.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    async def grants_of_prosumer(self, prosumer_id: str) -> list[Grant]:
        query = (
            select(data_grants)
            .where(data_grants.c.prosumer_id == prosumer_id)
            .order_by(data_grants.c.granted_at, data_grants.c.grant_id)
        )
        return [_grant(row) for row in await self.connection.execute(query)]

    async def grants_to(self, recipient_id: str, purpose: str | None = None) -> list[Grant]:
        query = select(data_grants).where(data_grants.c.recipient_id == recipient_id)
        if purpose is not None:
            query = query.where(data_grants.c.purpose == purpose)
        return [_grant(row) for row in await self.connection.execute(query)]

    async def grants_in_area(self, recipient_id: str, purpose: str, area: str) -> list[Grant]:
        """Grants to this recipient for this purpose from live prosumers of the area."""
        grants = await self.grants_to(recipient_id, purpose)
        if not grants:
            return []
        members = await self.connection.execute(
            select(data_prosumers.c.prosumer_id, data_prosumers.c.areas).where(
                data_prosumers.c.erased_at.is_(None)
            )
        )
        in_area = {row.prosumer_id for row in members if area in row.areas}
        return [g for g in grants if g.prosumer_id in in_area]

    # --- releases and the access log (append-only) --------------------------------------------

    async def add_release(
        self,
        recipient_id: str,
        purpose: str,
        level: Level,
        area: str,
        release: Release,
        epsilon: float,
        now: datetime,
    ) -> int:
        result = await self.connection.execute(
            insert(data_releases)
            .values(
                recipient_id=recipient_id,
                purpose=purpose,
                level=int(level),
                area=area,
                window_start=release.start,
                window_end=release.end,
                member_count=len(release.members),
                members_digest=digest(release.members),
                epsilon=epsilon,
                released_at=now,
            )
            .returning(data_releases.c.release_id)
        )
        release_id = int(result.scalar_one())
        rows = [{"release_id": release_id, "prosumer_id": m} for m in sorted(release.members)]
        if rows:
            await self.connection.execute(insert(data_release_members), rows)
        return release_id

    async def releases_to(
        self, recipient_id: str, start: datetime, end: datetime
    ) -> list[Released]:
        """The recipient's earlier releases whose window overlaps [start, end)."""
        query = select(data_releases).where(
            data_releases.c.recipient_id == recipient_id,
            data_releases.c.window_start < end,
            data_releases.c.window_end > start,
        )
        return [
            Released(
                row.release_id,
                row.member_count,
                row.members_digest,
                row.window_start,
                row.window_end,
            )
            for row in await self.connection.execute(query.order_by(data_releases.c.release_id))
        ]

    async def releases(self, release_ids: Sequence[int]) -> list[Release]:
        """Earlier releases with their member lists."""
        windows: dict[int, tuple[datetime, datetime]] = {}
        members: dict[int, set[str]] = {}
        for chunk in _chunks(list(release_ids)):
            query = select(data_releases).where(data_releases.c.release_id.in_(chunk))
            for row in await self.connection.execute(query):
                windows[row.release_id] = (row.window_start, row.window_end)
                members[row.release_id] = set()
            rows = await self.connection.execute(
                select(data_release_members).where(data_release_members.c.release_id.in_(chunk))
            )
            for row in rows:
                members[row.release_id].add(row.prosumer_id)
        return [Release(frozenset(members[r]), *windows[r]) for r in sorted(windows)]

    async def epsilon_spent(self, recipient_id: str) -> float:
        query = select(func.coalesce(func.sum(data_releases.c.epsilon), 0.0)).where(
            data_releases.c.recipient_id == recipient_id
        )
        return float((await self.connection.execute(query)).scalar_one())

    async def log(self, entry: AccessEntry) -> None:
        await self.connection.execute(
            insert(data_access_log).values(
                at=entry.at,
                actor=entry.actor,
                action=entry.action,
                recipient_id=entry.recipient_id,
                prosumer_id=entry.prosumer_id,
                release_id=entry.release_id,
                purpose=entry.purpose,
                level=None if entry.level is None else int(entry.level),
                outcome=entry.outcome,
                reason=entry.reason,
                detail=entry.detail,
            )
        )

    async def accesses_of(self, prosumer_id: str) -> list[AccessEntry]:
        """Every logged access to this prosumer's data: directly, or as an aggregate's member."""
        as_member = select(data_release_members.c.release_id).where(
            data_release_members.c.prosumer_id == prosumer_id
        )
        query = (
            select(data_access_log)
            .where(
                (data_access_log.c.prosumer_id == prosumer_id)
                | data_access_log.c.release_id.in_(as_member)
            )
            .order_by(data_access_log.c.id)
        )
        return [_entry(row) for row in await self.connection.execute(query)]

    async def access_log(self, *, offset: int = 0, limit: int = 100) -> list[AccessEntry]:
        query = select(data_access_log).order_by(data_access_log.c.id.desc())
        rows = await self.connection.execute(query.offset(offset).limit(limit))
        return [_entry(row) for row in rows]

    # --- ingest from the VTN's readings -------------------------------------------------------

    async def ingest_mark(self, source: str) -> int:
        query = select(data_ingest_marks.c.last_id).where(data_ingest_marks.c.source == source)
        value = (await self.connection.execute(query)).scalar_one_or_none()
        return 0 if value is None else int(value)

    async def set_ingest_mark(self, source: str, last_id: int, now: datetime) -> None:
        dialect = postgresql if self.is_postgresql else sqlite
        statement = dialect.insert(data_ingest_marks).values(
            source=source, last_id=last_id, updated_at=now
        )
        await self.connection.execute(
            statement.on_conflict_do_update(
                index_elements=[data_ingest_marks.c.source],
                set_={"last_id": last_id, "updated_at": now},
            )
        )

    async def vtn_readings_after(
        self, last_id: int, r_id: str | None, limit: int, received_before: datetime
    ) -> list[tuple[int, str, datetime, int, float]]:
        """(id, ven_id, start, duration_s, value) of numeric readings after `last_id` that
        arrived before `received_before`."""
        query = select(
            readings.c.id,
            readings.c.ven_id,
            readings.c.starts_at,
            readings.c.duration_s,
            readings.c.value,
        ).where(
            readings.c.id > last_id,
            readings.c.received_at < received_before,
            readings.c.value.is_not(None),
            readings.c.starts_at.is_not(None),
            readings.c.duration_s.is_not(None),
        )
        if r_id is not None:
            query = query.where(readings.c.r_id == r_id)
        rows = await self.connection.execute(query.order_by(readings.c.id).limit(limit))
        return [(r.id, r.ven_id, r.starts_at, r.duration_s, r.value) for r in rows]

    async def last_vtn_reading_id(self) -> int:
        value = (await self.connection.execute(select(func.max(readings.c.id)))).scalar_one()
        return 0 if value is None else int(value)

    async def delete_vtn_readings_by_id(self, ids: Sequence[int]) -> int:
        deleted = 0
        for chunk in _chunks(ids):
            result = await self.connection.execute(delete(readings).where(readings.c.id.in_(chunk)))
            deleted += int(result.rowcount)
        return deleted


def _entry(row: Any) -> AccessEntry:
    return AccessEntry(
        at=row.at,
        actor=row.actor,
        action=row.action,
        recipient_id=row.recipient_id,
        prosumer_id=row.prosumer_id,
        release_id=row.release_id,
        purpose=row.purpose,
        level=None if row.level is None else Level(row.level),
        outcome=row.outcome,
        reason=row.reason,
        detail=row.detail,
    )


def _chunks(items: Sequence[Any], size: int = 1000) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
