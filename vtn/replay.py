"""ReplayProtect nonces recorded durably before any reply, in group commits.

Every signed message's nonce must be new to every worker (and stay known across a restart, for
the replay window), so it goes to the database (`seen_nonces`, primary key on the nonce) before
the message is answered. One transaction per message made that the largest share of a signed
poll's database time. Here requests that arrive while a batch is being written wait for the next
batch, and a batch is one INSERT ... ON CONFLICT DO NOTHING RETURNING (`Store.remember_nonces`:
a statement of its own, no BEGIN and COMMIT): each request learns whether its nonce was new, and
is answered only after that statement committed. At low load a batch is one nonce
and costs what it did; under load the cost is shared.

A nonce sent twice inside one batch is a replay as well (the first wins). Old nonces are purged
every `purge_every` recorded nonces. If a batch fails (database away), every request in it gets
the error, and nothing is answered as accepted.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Protocol


class NonceStore(Protocol):
    """What the log needs of the store (`vtn.store.db.Store`)."""

    async def remember_nonces(self, signed: dict[str, datetime]) -> set[str]: ...

    async def forget_nonces_before(self, cutoff: datetime) -> int: ...


class NonceLog:
    def __init__(self, store: NonceStore, *, keep_for: timedelta, purge_every: int = 1000) -> None:
        self._store = store
        self._keep_for = keep_for
        self._purge_every = purge_every
        self._pending: dict[str, tuple[datetime, asyncio.Future[bool]]] = {}
        self._writer: asyncio.Task[None] | None = None
        self._recorded = 0
        self._now: datetime | None = None
        self.batches = 0

    async def remember(self, nonce: str, signed_at: datetime, now: datetime) -> bool:
        """True once the nonce is durably recorded as new; False: a replay."""
        if nonce in self._pending:
            return False
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending[nonce] = (signed_at, future)
        self._now = now
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="vtn-nonce-log")
        return await future

    async def _write(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, {}
            try:
                new = await self._store.remember_nonces({n: at for n, (at, _) in batch.items()})
                self._recorded += len(new)
                if self._recorded >= self._purge_every and self._now is not None:
                    self._recorded = 0
                    await self._store.forget_nonces_before(self._now - self._keep_for)
            except Exception as err:  # every waiter gets it; none is answered as accepted
                for _, future in batch.values():
                    if not future.done():
                        future.set_exception(err)
                continue
            finally:
                self.batches += 1
            for nonce, (_, future) in batch.items():
                if not future.done():
                    future.set_result(nonce in new)
