"""Quiet polls answered from memory, and last-seen times written in batches.

Most polls find nothing new: the VEN is registered, every event it is targeted by was sent to it
in its latest modification, and no message waits in its outbox. Such a poll (`oadr_poll.poll`)
remembers its VEN here under the change token it read *before* its transaction
(`vtn.store.changes`); the VEN's next poll, while the token is the same, is answered from this
memory: the same authorization rule runs on the remembered record, and the reply is the same
oadrResponse 200 the database would have led to. Anything that can change the answer bumps the
token (an event, a queued message, a registration or certificate change); a certificate revoked
or expired is caught before (`certs.trust` on every request); and when the database has not
answered the refresh for `ChangeSequence.trust_for` seconds there is no token and every poll
reads the database (and so reports its errors).

`last_seen_at` is written in batches, one UPDATE per flush (every `flush_every`, or sooner once
`flush_at` are waiting): a VEN's last-seen time is for "online / last seen" views, which already
tolerate half a poll interval of lag (`vtn.services.context.seen_recently`); nothing a VEN is
acknowledged for depends on it, so losing the last second of them in a crash loses nothing
acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import bindparam, update
from sqlalchemy.exc import SQLAlchemyError

from vtn.store import changes
from vtn.store.changes import Token
from vtn.store.db import Store
from vtn.store.tables import vens
from vtn.vens import VenRecord

log = logging.getLogger("flex4grid.vtn.quiet")

# By certificate fingerprint; on insecure HTTP (no client certificates) by venID.
Key = tuple[str, str]

_TOUCH_MANY = (
    update(vens).where(vens.c.ven_id == bindparam("id")).values(last_seen_at=bindparam("seen"))
)


def key_of(fingerprint: str | None, ven_id: str | None) -> Key | None:
    if fingerprint is not None:
        return ("fingerprint", fingerprint)
    return None if ven_id is None else ("ven_id", ven_id)


@dataclass
class QuietPolls:
    """One worker's memory of VENs whose last poll found nothing new, and pending last-seen
    writes. Bounded: past `capacity` entries the memory starts over (the next polls read the
    database and fill it again)."""

    store: Store
    capacity: int = 200_000
    refresh_every: float = 0.2  # seconds between reads of the change counter
    flush_every: float = 1.0  # seconds between last-seen batches
    flush_at: int = 5_000  # ... or sooner, once this many wait
    _known: dict[Key, tuple[Token, VenRecord]] = field(default_factory=dict)
    _seen: dict[str, datetime] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    _flush_now: asyncio.Event = field(default_factory=asyncio.Event)
    _stopping: bool = False

    def token(self) -> Token | None:
        """The change token now; None: do not trust memory (not started, database silent)."""
        return None if self._task is None else self.store.changes.token()

    def lookup(self, key: Key | None, token: Token | None) -> VenRecord | None:
        if key is None or token is None:
            return None
        known = self._known.get(key)
        if known is None or known[0] != token:
            return None
        return known[1]

    def remember(self, key: Key | None, token: Token | None, ven: VenRecord) -> None:
        if key is None or token is None:
            return
        if len(self._known) >= self.capacity and key not in self._known:
            self._known.clear()
        self._known[key] = (token, ven)

    def seen(self, key: Key, ven: VenRecord, now: datetime) -> None:
        """Queue a last-seen write for a VEN answered from memory, and remember it as seen."""
        self._seen[ven.ven_id] = now
        known = self._known.get(key)
        if known is not None:
            self._known[key] = (known[0], replace(ven, last_seen_at=now))
        if len(self._seen) >= self.flush_at:
            self._flush_now.set()

    async def start(self) -> None:
        if self._task is None:
            await self._refresh()
            self._task = asyncio.create_task(self._run(), name="vtn-quiet-polls")

    async def stop(self) -> None:
        """Let the background task finish its turn, then write what is queued. It is not
        cancelled in the middle of a database call: a checkout cancelled half-way can leave the
        pool's only SQLite connection checked out, and every later transaction (this flush,
        the shutdown) would wait out the pool timeout."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            self._flush_now.set()
            try:
                async with asyncio.timeout(10):
                    await asyncio.shield(task)
            except TimeoutError:
                task.cancel()
                await asyncio.gather(
                    task, return_exceptions=True
                )  # a cancel of this call is not swallowed
            self._stopping = False
        await self.flush()

    async def flush(self) -> None:
        """Write the queued last-seen times in one statement; kept for the next try on error."""
        if not self._seen:
            return
        batch, self._seen = self._seen, {}
        try:
            async with self.store.engine.begin() as connection:
                await connection.execute(
                    _TOUCH_MANY, [{"id": ven_id, "seen": at} for ven_id, at in batch.items()]
                )
        except (SQLAlchemyError, OSError) as err:
            log.warning("last-seen times not written (%d VENs), retrying: %s", len(batch), err)
            for ven_id, at in batch.items():
                self._seen.setdefault(ven_id, at)

    async def _refresh(self) -> None:
        try:
            async with self.store.engine.connect() as connection:
                self.store.changes.refreshed(await changes.read(connection))
        except (SQLAlchemyError, OSError) as err:
            log.debug("change counter not read: %s", err)  # token() lapses by itself

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_flush = loop.time() + self.flush_every
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.refresh_every):
                    await self._flush_now.wait()
            if self._stopping:
                return
            await self._refresh()
            if self._flush_now.is_set() or loop.time() >= next_flush:
                self._flush_now.clear()
                next_flush = loop.time() + self.flush_every
                await self.flush()
