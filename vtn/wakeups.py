"""Wake-ups across VTN workers, and which worker pushes.

A service that committed something new for a VEN calls `Context.notify(ven_id)`, a plain
callable wired to `Wakeups.publish`. What is due is always read from the database, so a wake-up
only says "look now"; one that is lost delays a push until the next scan, it loses nothing.

`InProcessWakeups` (SQLite, one process): publishing calls the local pusher directly, and this
process is always the one that pushes.

`PostgresWakeups` (`vtn serve --workers N`):
- Publishing queues the venID; a small background publisher sends the queue in one
  `SELECT pg_notify('flex4grid_wake', ...)` on the store's pool, after the service's commit,
  retrying while the database is away. The worker also wakes its own pusher at once, so a leader
  does not wait on the round trip.
- Every worker keeps one dedicated asyncpg connection that LISTENs on `flex4grid_wake` and hands
  each venID to its own pusher (a pusher that is not running ignores it).
- On that same connection the workers share the pushing. The push VENs fall into
  `PUSH_SHARDS` shards by a hash of their venID (`shard_of`), and each shard is a
  session-level advisory lock (`pg_try_advisory_lock(SHARD_LOCK + shard)`): a worker pushes to
  the VENs of the shards it holds. Every worker also holds one presence lock, so each can count
  the live workers and aim at its fair share, ceil(PUSH_SHARDS / workers): every `retry` it
  hands back the shards it holds beyond that (its pusher lets go of them first) and tries to
  take free ones up to it. A worker alone holds every shard; a second one gets half within two
  `retry` periods. On taking shards its Pusher scans the database for their push VENs (so
  wake-ups nobody heard are not lost). The locks live exactly as long as the connection: a
  worker that exits, crashes or loses its connection releases them, and the others take its
  shards within `retry`; each worker checks its connection every `retry` and stops pushing as
  soon as it is gone. Listening and pushing share the connection because they fail together:
  a pusher that cannot hear wake-ups would be no use. A lost connection is reopened with capped
  backoff and jitter. A host cut off from the network holds its locks until the server's TCP
  keepalive gives up on it (`tcp_keepalives_idle` etc., worth setting to a minute or so), while
  its own pusher stops within `retry` (the connection check fails).

Two pushers can still overlap briefly on one VEN (a worker whose connection the server dropped
pushes until it notices; a shard changing hands); `vtn.push` makes marking a delivery
conditional, so the overlap cannot record a message twice (see its docstring).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import random
import zlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol

import asyncpg
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from oadr.model import VenId
from vtn.store.db import Store

log = logging.getLogger("flex4grid.vtn.wakeups")

CHANNEL = "flex4grid_wake"
# Advisory lock keys, constant for the whole database: "f4g-push" as a 64-bit integer, then
# one key per shard and one per presence slot after it (advisory locks and NOTIFY channels are
# scoped to one database, so separate deployments never meet).
PUSH_SHARDS = 16
PRESENCE_SLOTS = 256  # workers that can count themselves in
SHARD_LOCK = int.from_bytes(b"f4g-push", "big")
PRESENCE_LOCK = SHARD_LOCK + PUSH_SHARDS
ALL_SHARDS = frozenset(range(PUSH_SHARDS))


def shard_of(ven_id: str) -> int:
    """The push shard of a VEN: a stable hash of its venID (the same in every worker)."""
    return zlib.crc32(ven_id.encode()) % PUSH_SHARDS


# Live workers: the presence locks granted in this database (a 64-bit advisory key shows in
# pg_locks as classid = its high 32 bits, objid = its low 32 bits, objsubid = 1).
_LIVE_WORKERS = """
SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND granted AND objsubid = 1
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND ((classid::bigint << 32) | objid::bigint) BETWEEN $1 AND $2
"""
DEFAULT_RETRY = timedelta(seconds=3)
MAX_BACKOFF = timedelta(seconds=30)

_CONNECT_TIMEOUT_S = 10.0
_SETTLE_S = 1.0
_CLOSE_TIMEOUT_S = 5.0


class Leader(Protocol):
    """What pushes, for the shards of push VENs this worker holds: the Pusher."""

    async def serve(self, shards: frozenset[int]) -> None:
        """Push to the VENs of these shards from now on (none: stop pushing)."""
        ...


class Wakeups(Protocol):
    @property
    def leading(self) -> bool:
        """Whether this process pushes now (to the VENs of at least one shard)."""
        ...

    @property
    def shards(self) -> frozenset[int]:
        """The shards of push VENs this process pushes to."""
        ...

    def publish(self, ven_id: VenId) -> None:
        """Something new is committed for this VEN: wake whichever worker pushes."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class InProcessWakeups:
    """One process: a wake-up is a direct call, and this process always leads."""

    def __init__(self, *, wake: Callable[[VenId], None], leader: Leader) -> None:
        self.wake = wake
        self.leader = leader
        self._leading = False

    @property
    def leading(self) -> bool:
        return self._leading

    @property
    def shards(self) -> frozenset[int]:
        return ALL_SHARDS if self._leading else frozenset()

    def publish(self, ven_id: VenId) -> None:
        self.wake(ven_id)

    async def start(self) -> None:
        await self.leader.serve(ALL_SHARDS)
        self._leading = True

    async def stop(self) -> None:
        if self._leading:
            self._leading = False
            await self.leader.serve(frozenset())


def backoff(failures: int, ceiling: timedelta = MAX_BACKOFF) -> float:
    """Seconds to wait after `failures` failures in a row: doubling from 0.5 s, capped, with
    jitter so workers that lost the database together do not come back in step."""
    upper = min(ceiling.total_seconds(), 0.5 * 2.0 ** min(failures - 1, 16))
    return upper * random.uniform(0.5, 1.0)


def asyncpg_connect_args(store: Store) -> dict[str, Any]:
    """The keyword arguments SQLAlchemy would give asyncpg.connect for this store's URL, less
    the ones only SQLAlchemy's adapter understands (prepared_statement_cache_size, ...)."""
    _, kwargs = store.engine.dialect.create_connect_args(store.engine.url)
    accepted = inspect.signature(asyncpg.connect).parameters
    return {key: value for key, value in kwargs.items() if key in accepted}


class PostgresWakeups:
    """Wake-ups through LISTEN/NOTIFY and leadership through an advisory lock (module docstring)."""

    def __init__(
        self,
        store: Store,
        *,
        wake: Callable[[VenId], None],
        leader: Leader,
        retry: timedelta = DEFAULT_RETRY,
    ) -> None:
        self.store = store
        self.wake = wake
        self.leader = leader
        self.retry_s = retry.total_seconds()
        self._shards: frozenset[int] = frozenset()
        self.listening = False  # LISTEN is in place: wake-ups published from now on arrive
        self._pending: dict[VenId, None] = {}  # an ordered set: each venID once per batch
        self._has_pending = asyncio.Event()
        self._publisher: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None

    @property
    def leading(self) -> bool:
        return bool(self._shards)

    @property
    def shards(self) -> frozenset[int]:
        return self._shards

    def publish(self, ven_id: VenId) -> None:
        self.wake(ven_id)  # this worker's own pusher, if the VEN is its: no round trip
        if self._publisher is None:
            return  # not started or stopped: whoever leads next scans the database anyway
        self._pending[ven_id] = None
        self._has_pending.set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._publisher = loop.create_task(self._publish_forever(), name="wakeups-publisher")
        self._listener = loop.create_task(self._listen_forever(), name="wakeups-listener")

    async def stop(self) -> None:
        """Stop pushing (closing the connection releases the locks at once, so the others take
        the shards within `retry`) and send what is still queued."""
        publisher, self._publisher = self._publisher, None
        listener, self._listener = self._listener, None
        for task in (listener, publisher):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self._pending:
            try:
                async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                    await self._flush()
            except Exception as err:  # shutting down: the next leader's scan covers these
                log.warning("%d wake-ups not published at shutdown: %s", len(self._pending), err)

    # --- publishing ---------------------------------------------------------------------------

    async def _publish_forever(self) -> None:
        failures = 0
        while True:
            await self._has_pending.wait()
            try:
                await self._flush()
            except Exception as err:
                failures += 1
                delay = backoff(failures)
                log.warning("publishing wake-ups failed, retrying in %.1f s: %s", delay, err)
                await asyncio.sleep(delay)
            else:
                failures = 0

    async def _flush(self) -> None:
        # Take the batch before sending: a publish during the send comes after a later commit
        # and must be sent again, not dropped with this batch.
        batch = list(self._pending)
        self._pending.clear()
        self._has_pending.clear()
        if not batch:
            return
        try:
            async with self.store.engine.begin() as connection:  # NOTIFY goes out at commit
                await connection.execute(
                    text(
                        "SELECT pg_notify(:channel, ven_id) "
                        "FROM unnest(CAST(:ven_ids AS text[])) AS ven_id"
                    ),
                    {"channel": CHANNEL, "ven_ids": batch},
                )
        except BaseException:
            for ven_id in batch:
                self._pending.setdefault(ven_id, None)
            self._has_pending.set()
            raise

    # --- listening and leading ----------------------------------------------------------------

    async def _listen_forever(self) -> None:
        failures = 0
        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(
                    **asyncpg_connect_args(self.store), timeout=_CONNECT_TIMEOUT_S
                )
                failures = 0
                await self._listen_and_lead(connection)
                reason = "the connection was closed"
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError,
                    SQLAlchemyError) as err:  # fmt: skip
                reason = f"{type(err).__name__}: {err}"
            except Exception as err:  # a bug, or the pusher's start failing: never give up
                log.exception("unexpected failure on the wake-up connection")
                reason = f"{type(err).__name__}: {err}"
            finally:
                self.listening = False
                await self._step_down()
                if connection is not None:
                    await _close(connection)
            failures += 1
            delay = backoff(failures)
            log.warning("wake-up connection lost (%s), reconnecting in %.1f s", reason, delay)
            await asyncio.sleep(delay)

    async def _listen_and_lead(self, connection: asyncpg.Connection) -> None:
        """Serve wake-ups and hold a fair share of the push shards until the connection is
        lost."""
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        await connection.add_listener(CHANNEL, self._on_notification)
        self.listening = True
        timeout = max(self.retry_s, 1.0)
        for slot in range(PRESENCE_SLOTS):
            if await connection.fetchval(
                "SELECT pg_try_advisory_lock($1)", PRESENCE_LOCK + slot, timeout=timeout
            ):
                break
        else:
            log.warning(
                "more than %d workers: worker %d does not push", PRESENCE_SLOTS, os.getpid()
            )
        # Workers started together count each other in before any takes shards: fewer shards
        # change hands (and fewer pushes overlap) just after a start.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(self.retry_s, _SETTLE_S)):
                await lost.wait()
        while not lost.is_set():
            # Also the check that the connection (which holds the locks) is alive.
            live = await connection.fetchval(
                _LIVE_WORKERS, PRESENCE_LOCK, PRESENCE_LOCK + PRESENCE_SLOTS - 1, timeout=timeout
            )
            await self._rebalance(connection, -(-PUSH_SHARDS // max(1, int(live))), timeout)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.retry_s):
                    await lost.wait()

    async def _rebalance(self, connection: asyncpg.Connection, fair: int, wait_s: float) -> None:
        """Hand back the shards held beyond `fair` (the pusher lets go first), then take free
        ones up to it."""
        extra = sorted(self._shards, reverse=True)[: max(0, len(self._shards) - fair)]
        if extra:
            await self._serve(self._shards - set(extra))
            for shard in extra:
                await connection.fetchval(
                    "SELECT pg_advisory_unlock($1)", SHARD_LOCK + shard, timeout=wait_s
                )
        taken = set(self._shards)
        for shard in range(PUSH_SHARDS):
            if len(taken) >= fair:
                break
            if shard not in taken and await connection.fetchval(
                "SELECT pg_try_advisory_lock($1)", SHARD_LOCK + shard, timeout=wait_s
            ):
                taken.add(shard)
        if taken != self._shards:
            await self._serve(frozenset(taken))

    async def _serve(self, shards: frozenset[int]) -> None:
        before, self._shards = self._shards, frozenset(shards)
        log.info(
            "worker %d pushes to %d of %d shards (was %d)",
            os.getpid(), len(shards), PUSH_SHARDS, len(before),
        )  # fmt: skip
        await self.leader.serve(self._shards)

    def _on_notification(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        self.wake(VenId(payload))

    async def _step_down(self) -> None:
        if self._shards:
            self._shards = frozenset()
            log.info("worker %d no longer pushes", os.getpid())
            await self.leader.serve(frozenset())


async def _close(connection: asyncpg.Connection) -> None:
    if connection.is_closed():
        return
    try:
        async with asyncio.timeout(_CLOSE_TIMEOUT_S):
            await connection.close()
    except Exception:
        connection.terminate()


def for_store(
    store: Store,
    *,
    wake: Callable[[VenId], None],
    leader: Leader,
    retry: timedelta = DEFAULT_RETRY,
) -> Wakeups:
    """SQLite is one process; PostgreSQL may be shared by several workers."""
    if store.is_sqlite:
        return InProcessWakeups(wake=wake, leader=leader)
    return PostgresWakeups(store, wake=wake, leader=leader, retry=retry)
