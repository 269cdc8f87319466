"""When may a worker trust what it remembers of "nothing new for this VEN"?

A VEN's poll comes back empty unless an event it is targeted by has a modification it was not
sent, or a message waits for it in the outbox; what changes that is a write: an event added or
replaced, a message queued, a VEN's registration, targets or certificate changed. The
repositories that make such writes mark their transaction (`TxChanges.mark`), and the store bumps
one counter row (`poll_changes.seq`) in that same transaction, just before it commits.

`ChangeSequence` is a worker's view of it: `local` counts this process's own such commits (known
at once), `seq` is the counter as last read from the database (other workers, other processes
such as `flex4grid vtn event create`), refreshed every `period` by `vtn.quiet`. `token()` is the
pair, or None when the database has not answered for a while: then nothing may be trusted.

A poll reads the token *before* its transaction and remembers its empty answer under it; a change
committed meanwhile makes the token differ by the next refresh, so the memory is stale at most
`period` for changes made elsewhere and not at all for changes made in this process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from vtn.store.tables import poll_changes

_ROW = 1
_BUMP = update(poll_changes).where(poll_changes.c.id == _ROW).values(seq=poll_changes.c.seq + 1)
_SEED = insert(poll_changes).values(id=_ROW, seq=bindparam("seq"))
_READ = select(poll_changes.c.seq).where(poll_changes.c.id == _ROW)

Token = tuple[int, int]


class TxChanges:
    """Set by a repository when its write can give some VEN something new to fetch."""

    __slots__ = ("pollable",)

    def __init__(self) -> None:
        self.pollable = False

    def mark(self) -> None:
        self.pollable = True


async def bump(connection: AsyncConnection) -> None:
    """Inside the transaction that made the change, as its last statement."""
    if (await connection.execute(_BUMP)).rowcount == 0:  # a schema made by create_all (tests)
        await connection.execute(_SEED, {"seq": 1})


async def read(connection: AsyncConnection) -> int:
    return int((await connection.execute(_READ)).scalar_one_or_none() or 0)


@dataclass
class ChangeSequence:
    """One worker's view of the change counter (see the module docstring)."""

    local: int = 0
    seq: int | None = None  # None until first read
    read_at: float = float("-inf")  # time.monotonic() of the last successful read
    trust_for: float = 2.0  # seconds a read stays good enough to answer from memory

    def committed_locally(self) -> None:
        self.local += 1

    def refreshed(self, seq: int, at: float | None = None) -> None:
        self.seq = seq
        self.read_at = time.monotonic() if at is None else at

    def token(self, at: float | None = None) -> Token | None:
        now = time.monotonic() if at is None else at
        if self.seq is None or now - self.read_at > self.trust_for:
            return None
        return (self.seq, self.local)
