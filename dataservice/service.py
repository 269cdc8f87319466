"""The data service: loads, decides with the pure rules, saves and logs, in one transaction.

Every read of anyone's data (allowed or refused) writes one access-log row in the transaction
that reads it, so nothing is seen without a trace. Refusals are logged and committed before the
error leaves. Consent changes, exports and erasures are logged the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

import numpy as np

from dataservice import consent, crypto, series
from dataservice.consent import Access, Grant, GrantId, Level, ProsumerId, RecipientId
from dataservice.crypto import CryptoError, MasterKey
from dataservice.store.repository import (
    AccessEntry,
    DataRepository,
    DataToken,
    Prosumer,
    Recipient,
    WrappedKey,
)
from vtn.admin.tokens import hash_secret, split, verify_secret
from vtn.store.db import Store, Tx


class DataError(Exception):
    """Refused or impossible; `status` is the HTTP status it becomes at the edge."""

    status = 400

    def __init__(self, message: str, reason: str = "bad-request") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


class NotFound(DataError):
    status = 404


class Forbidden(DataError):
    status = 403


class Unauthenticated(DataError):
    status = 401


class Conflict(DataError):
    status = 409


class Kind(StrEnum):
    RECIPIENT = "recipient"
    PROSUMER = "prosumer"
    OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class Caller:
    kind: Kind
    id: str

    @property
    def actor(self) -> str:
        return f"{self.kind.value}:{self.id}"


@dataclass(frozen=True, slots=True)
class Series:
    """One prosumer's data as a recipient sees it: under its pseudonym for that recipient."""

    pseudonym: str
    level: Level
    buckets: list[tuple[datetime, datetime]]
    energy_kwh: list[float | None]


@dataclass(frozen=True, slots=True)
class Export:
    prosumer: Prosumer
    quarter_hours: list[tuple[datetime, float]]
    grants: list[Grant]
    accesses: list[AccessEntry]


class DataService:
    def __init__(
        self,
        store: Store,
        master: MasterKey | None,
        *,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.store = store
        self._master = master
        self.new_id = new_id
        self._verified: dict[tuple[str, str], bytes] = {}

    @property
    def master(self) -> MasterKey:
        """Only what decrypts or makes keys needs it; consent and the log do not."""
        if self._master is None:
            raise CryptoError("no master key loaded (--key-file, $FLEX4GRID_DATA_KEY_FILE)")
        return self._master

    # --- helpers ------------------------------------------------------------------------------

    def _repo(self, tx: Tx) -> DataRepository:
        return DataRepository(tx.connection)

    def prosumer_key(self, prosumer_id: str, wrapped: WrappedKey | None) -> bytes:
        if wrapped is None:
            raise NotFound(f"prosumer {prosumer_id!r} has no key (erased?)", "erased")
        if wrapped.master_key_id != self.master.key_id:
            raise CryptoError(
                f"prosumer {prosumer_id!r} key is wrapped by master key {wrapped.master_key_id}, "
                f"not the loaded {self.master.key_id}"
            )
        return self.master.unwrap(wrapped.wrapped_key, crypto.prosumer_key_label(prosumer_id))

    def pseudonym_key(self, recipient: Recipient) -> bytes:
        return self.master.unwrap(
            recipient.wrapped_pseudonym_key, crypto.recipient_key_label(recipient.recipient_id)
        )

    async def _live_prosumer(self, repo: DataRepository, prosumer_id: str) -> Prosumer:
        prosumer = await repo.prosumer(prosumer_id)
        if prosumer is None or prosumer.erased_at is not None:
            raise NotFound(f"no prosumer {prosumer_id!r}", "unknown-prosumer")
        return prosumer

    async def _recipient(self, repo: DataRepository, recipient_id: str) -> Recipient:
        recipient = await repo.recipient(recipient_id)
        if recipient is None:
            raise NotFound(f"no recipient {recipient_id!r}", "unknown-recipient")
        return recipient

    # --- registration -------------------------------------------------------------------------

    async def add_prosumer(
        self,
        prosumer_id: str,
        areas: Sequence[str],
        ven_id: str | None,
        actor: str,
        now: datetime,
    ) -> Prosumer:
        prosumer = Prosumer(ProsumerId(prosumer_id), ven_id, tuple(areas), now, None)
        key = self.master.wrap(crypto.new_key(), crypto.prosumer_key_label(prosumer_id))
        async with self.store.transaction() as tx:
            repo = self._repo(tx)
            if await repo.prosumer(prosumer_id) is not None:
                raise Conflict(f"prosumer {prosumer_id!r} exists (or was erased)")
            await repo.add_prosumer(prosumer, WrappedKey(key, self.master.key_id))
            await repo.log(
                entry(
                    now,
                    actor,
                    "prosumer.add",
                    prosumer_id=prosumer_id,
                    detail={"areas": list(areas), "ven_id": ven_id},
                )
            )
        return prosumer

    async def add_recipient(
        self,
        recipient_id: str,
        name: str,
        fingerprint: str | None,
        epsilon_budget: float,
        actor: str,
        now: datetime,
    ) -> Recipient:
        wrapped = self.master.wrap(crypto.new_key(), crypto.recipient_key_label(recipient_id))
        recipient = Recipient(
            RecipientId(recipient_id),
            name,
            fingerprint,
            wrapped,
            self.master.key_id,
            epsilon_budget,
            now,
        )
        async with self.store.transaction() as tx:
            repo = self._repo(tx)
            if await repo.recipient(recipient_id) is not None:
                raise Conflict(f"recipient {recipient_id!r} exists")
            await repo.add_recipient(recipient)
            await repo.log(
                entry(
                    now,
                    actor,
                    "recipient.add",
                    recipient_id=recipient_id,
                    detail={
                        "name": name,
                        "fingerprint": fingerprint,
                        "epsilon_budget": epsilon_budget,
                    },
                )
            )
        return recipient

    async def rotate_master(self, new: MasterKey, actor: str, now: datetime) -> dict[str, int]:
        """Re-wrap every prosumer and recipient key under `new`, in one transaction.

        Data and pseudonyms stay as they are. Once the old master key is destroyed, the wrapped
        keys in every earlier backup open nothing: erasures then reach the backups too.
        """
        old = self.master
        async with self.store.transaction() as tx:
            repo = self._repo(tx)
            prosumers = await repo.all_wrapped_keys()
            for prosumer_id, wrapped in prosumers:
                label = crypto.prosumer_key_label(prosumer_id)
                key = self.prosumer_key(prosumer_id, wrapped)
                await repo.rewrap_prosumer_key(
                    prosumer_id, WrappedKey(new.wrap(key, label), new.key_id)
                )
            recipients = await repo.recipients()
            for recipient in recipients:
                label = crypto.recipient_key_label(recipient.recipient_id)
                key = old.unwrap(recipient.wrapped_pseudonym_key, label)
                await repo.rewrap_recipient_key(
                    recipient.recipient_id, WrappedKey(new.wrap(key, label), new.key_id)
                )
            counts = {"prosumer_keys": len(prosumers), "recipient_keys": len(recipients)}
            await repo.log(
                entry(
                    now,
                    actor,
                    "master-key.rotate",
                    detail={"from": old.key_id, "to": new.key_id, **counts},
                )
            )
        self._master = new
        return counts

    # --- tokens -------------------------------------------------------------------------------

    async def create_token(self, holder: Caller, actor: str, now: datetime) -> str:
        """A bearer token for a recipient or a prosumer; its text exists only in the reply."""
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        secret_hash = await asyncio.to_thread(hash_secret, secret, secrets.token_bytes(16))
        async with self.store.transaction() as tx:
            repo = self._repo(tx)
            if holder.kind is Kind.RECIPIENT:
                await self._recipient(repo, holder.id)
            elif holder.kind is Kind.PROSUMER:
                await self._live_prosumer(repo, holder.id)
            else:
                raise DataError("tokens are for recipients and prosumers")
            await repo.add_token(
                DataToken(token_id, holder.kind.value, holder.id, secret_hash, now, None)
            )
            await repo.log(
                entry(
                    now,
                    actor,
                    "token.create",
                    detail={"token_id": token_id, "holder": holder.actor},
                )
            )
        return f"d.{token_id}.{secret}"

    async def authenticate_token(self, token: str) -> Caller:
        prefix, _, rest = token.strip().partition(".")
        try:
            if prefix != "d":
                raise ValueError
            token_id, secret = split(rest)
        except Exception:
            raise Unauthenticated("malformed data token", "malformed-token") from None
        async with self.store.transaction() as tx:
            record = await self._repo(tx).token(token_id)
        if record is None or record.revoked_at is not None:
            raise Unauthenticated("unknown or revoked data token", "bad-token")
        key = (record.token_id, record.secret_hash)
        quick = hashlib.sha256(secret.encode()).digest()
        remembered = self._verified.get(key)
        if remembered is None or not hmac.compare_digest(remembered, quick):
            if not await asyncio.to_thread(verify_secret, secret, record.secret_hash):
                raise Unauthenticated("unknown or revoked data token", "bad-token")
            if len(self._verified) > 1024:
                self._verified.clear()
            self._verified[key] = quick
        return Caller(Kind(record.holder_kind), record.holder_id)

    async def authenticate_certificate(self, fingerprint: str, kind: Kind) -> Caller:
        """A `service` certificate names a recipient; a VEN's certificate its prosumer."""
        async with self.store.transaction() as tx:
            repo = self._repo(tx)
            if kind is Kind.RECIPIENT:
                recipient = await repo.recipient_of_fingerprint(fingerprint)
                if recipient is not None:
                    return Caller(Kind.RECIPIENT, recipient.recipient_id)
            elif kind is Kind.PROSUMER:
                prosumer = await repo.prosumer_of_fingerprint(fingerprint)
                if prosumer is not None and prosumer.erased_at is None:
                    return Caller(Kind.PROSUMER, prosumer.prosumer_id)
        raise Unauthenticated(f"this certificate belongs to no {kind.value}", "unknown-certificate")

    # --- consent ------------------------------------------------------------------------------

    async def grant(
        self,
        prosumer_id: str,
        recipient_id: str,
        purpose: str,
        level: Level,
        access: Access,
        expires_at: datetime,
        actor: str,
        now: datetime,
        *,
        period_start: datetime | None = None,
        period_end: datetime | None = None,
    ) -> Grant:
        try:
            grant = consent.make_grant(
                GrantId(self.new_id()),
                ProsumerId(prosumer_id),
                RecipientId(recipient_id),
                purpose,
                level,
                access,
                now,
                expires_at,
                period_start,
                period_end,
            )
        except consent.ConsentError as err:
            raise DataError(str(err), "bad-grant") from None
        async with self.store.transaction() as tx:
            repo = self._repo(tx)
            await self._live_prosumer(repo, prosumer_id)
            await self._recipient(repo, recipient_id)
            await repo.add_grant(grant)
            await repo.log(
                entry(
                    now,
                    actor,
                    "grant",
                    recipient_id=recipient_id,
                    prosumer_id=prosumer_id,
                    purpose=purpose,
                    level=level,
                    detail=_grant_detail(grant),
                )
            )
        return grant

    async def revoke(
        self, grant_id: str, actor: str, now: datetime, *, prosumer_id: str | None = None
    ) -> Grant:
        """Revoke a grant; a prosumer (`prosumer_id`) may revoke only its own."""
        async with self.store.transaction() as tx:
            repo = self._repo(tx)
            grant = await repo.grant(grant_id)
            if grant is None or (prosumer_id is not None and grant.prosumer_id != prosumer_id):
                raise NotFound(f"no grant {grant_id!r}", "unknown-grant")
            revoked = consent.revoke(grant, now)
            if grant.revoked_at is None:
                await repo.set_revoked(grant_id, now)
                await repo.log(
                    entry(
                        now,
                        actor,
                        "revoke",
                        recipient_id=grant.recipient_id,
                        prosumer_id=grant.prosumer_id,
                        purpose=grant.purpose,
                        level=grant.level,
                        detail={"grant_id": grant_id},
                    )
                )
        return revoked

    async def grants_of(self, prosumer_id: str) -> list[Grant]:
        async with self.store.transaction() as tx:
            return await self._repo(tx).grants_of_prosumer(prosumer_id)

    async def accesses_of(self, prosumer_id: str) -> list[AccessEntry]:
        """The prosumer's "who saw my data": every logged access to it, oldest first."""
        async with self.store.transaction() as tx:
            return await self._repo(tx).accesses_of(prosumer_id)

    async def access_log(self, offset: int = 0, limit: int = 100) -> list[AccessEntry]:
        async with self.store.transaction() as tx:
            return await self._repo(tx).access_log(offset=offset, limit=limit)

    # --- readings in --------------------------------------------------------------------------

    async def put_days(
        self,
        repo: DataRepository,
        prosumer_id: str,
        days: dict[date, np.ndarray[Any, Any]],
        now: datetime,
        *,
        add: bool = False,
    ) -> int:
        """Merge quarter-hour days into the prosumer's encrypted blobs; returns days written.

        `add` adds to what is stored (ingest, where one quarter-hour's readings may arrive in
        parts); otherwise a value replaces the stored one (meter data, corrections).
        """
        key = self.prosumer_key(prosumer_id, await repo.prosumer_key(prosumer_id))
        stored = await repo.day_blobs(prosumer_id, days)
        blobs: dict[date, bytes] = {}
        for day, values in days.items():
            aad = crypto.day_aad(prosumer_id, day)
            old = stored.get(day)
            before = None if old is None else series.unpack(crypto.open_sealed(key, old, aad))
            merged = series.add(before, values) if add else series.merge(before, values)
            blobs[day] = crypto.seal(key, series.pack(merged), aad)
        await repo.put_days(prosumer_id, blobs, now)
        return len(blobs)

    async def add_meter_data(
        self,
        prosumer_id: str,
        start: datetime,
        energy_kwh: Sequence[float | None],
        actor: str,
        now: datetime,
    ) -> int:
        """Quarter-hour energies from `start` (on a quarter-hour), e.g. a meter operator's."""
        if start.tzinfo is None or start.minute % 15 or start.second or start.microsecond:
            raise DataError("start must be an aware time on a quarter-hour")
        readings = [
            series.Reading(start + i * series.SLOT, series.SLOT, value)
            for i, value in enumerate(energy_kwh)
            if value is not None
        ]
        async with self.store.transaction() as tx:
            repo = self._repo(tx)
            await self._live_prosumer(repo, prosumer_id)
            written = await self.put_days(repo, prosumer_id, series.to_days(readings), now)
            await repo.log(
                entry(
                    now,
                    actor,
                    "meter-data",
                    prosumer_id=prosumer_id,
                    detail={"start": start.isoformat(), "quarter_hours": len(readings)},
                )
            )
        return written

    # --- data rights --------------------------------------------------------------------------

    async def export(self, prosumer_id: str, caller: Caller, now: datetime) -> Export:
        """Everything held about the prosumer, decrypted, for the prosumer (portability)."""
        async with self.store.transaction() as tx:
            repo = self._repo(tx)
            prosumer = await self._live_prosumer(repo, prosumer_id)
            key = self.prosumer_key(prosumer_id, await repo.prosumer_key(prosumer_id))
            quarter_hours: list[tuple[datetime, float]] = []
            for day, blob in (await repo.all_day_blobs(prosumer_id)).items():
                values = series.unpack(
                    crypto.open_sealed(key, blob, crypto.day_aad(prosumer_id, day))
                )
                base = series.day_start(day)
                quarter_hours += [
                    (base + i * series.SLOT, float(v))
                    for i, v in enumerate(values)
                    if not np.isnan(v)
                ]
            grants = await repo.grants_of_prosumer(prosumer_id)
            await repo.log(
                entry(
                    now,
                    caller.actor,
                    "export",
                    prosumer_id=prosumer_id,
                    detail={"quarter_hours": len(quarter_hours)},
                )
            )
            accesses = await repo.accesses_of(prosumer_id)
        return Export(prosumer, quarter_hours, grants, accesses)

    async def erase(self, prosumer_id: str, actor: str, now: datetime) -> dict[str, int]:
        """Right to erasure: shred the key, delete blobs, grants, tokens and the VTN's own
        plaintext telemetry of the prosumer's VEN. The access log keeps its rows (they hold no
        readings and are kept for accountability, GDPR Art. 17(3)(b))."""
        async with self.store.transaction() as tx:
            repo = self._repo(tx)
            prosumer = await self._live_prosumer(repo, prosumer_id)
            if repo.connection.dialect.name == "sqlite":
                # Overwrite freed pages, so deleted rows do not linger in the file.
                await repo.connection.exec_driver_sql("PRAGMA secure_delete=ON")
            days = await repo.erase_prosumer(prosumer_id, now)
            vtn_rows = 0
            if prosumer.ven_id is not None:
                vtn_rows = await repo.delete_vtn_readings(prosumer.ven_id)
            counts = {"days": days, "vtn_readings": vtn_rows}
            await repo.log(entry(now, actor, "erase", prosumer_id=prosumer_id, detail=counts))
        return counts

    async def purge(self, retention: timedelta, actor: str, now: datetime) -> int:
        """Retention limit: delete every day blob older than `retention`."""
        cutoff = (now - retention).date()
        async with self.store.transaction() as tx:
            repo = self._repo(tx)
            purged = await repo.purge_days_before(cutoff)
            await repo.log(
                entry(now, actor, "purge", detail={"before": cutoff.isoformat(), "days": purged})
            )
        return purged


def entry(
    now: datetime,
    actor: str,
    action: str,
    *,
    recipient_id: str | None = None,
    prosumer_id: str | None = None,
    release_id: int | None = None,
    purpose: str | None = None,
    level: Level | None = None,
    outcome: str = "allowed",
    reason: str = "allowed",
    detail: dict[str, Any] | None = None,
) -> AccessEntry:
    return AccessEntry(
        now,
        actor,
        action,
        recipient_id,
        prosumer_id,
        release_id,
        purpose,
        level,
        outcome,
        reason,
        detail or {},
    )


def _grant_detail(grant: Grant) -> dict[str, Any]:
    return {
        "grant_id": grant.grant_id,
        "access": grant.access.value,
        "expires_at": grant.expires_at.isoformat(),
        "period_start": None if grant.period_start is None else grant.period_start.isoformat(),
        "period_end": None if grant.period_end is None else grant.period_end.isoformat(),
    }
