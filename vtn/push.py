"""HTTP push: the VTN POSTs VTN-initiated messages to VENs that registered for it.

A push VEN registered with oadrHttpPullModel=false and an oadrTransportAddress; it is an HTTPS
server of its own, and gets `<transportAddress>/OpenADR2/Simple/2.0b/<Service>` POSTs (EiEvent
for oadrDistributeEvent, EiRegisterParty for registration messages, EiReport for reports) over
mutual TLS with the VTN's certificate. What is due comes from the same durable state a poll reads
(`oadr_poll.next_due`), and is marked delivered only once the VEN answered HTTP 200 with a valid
reply, which is then handled like the same payload posted to the VTN (an oadrCreatedEvent is
stored per VEN per modification). A failure is retried with capped exponential backoff and
jitter; nothing is kept only in memory, so a restart loses nothing: startup wakes every push VEN.

The endpoint is checked by the client TLS context (`PushConfig.tls`: chain to the VTN's trusted
CAs and hostname); it is not yet pinned to the fingerprint the VEN registered with, since aiohttp
offers no public hook between the handshake and the request. A signed reply must be signed by the
VEN's own certificate.

`wake()` (Context.notify, after commit) queues the VEN once, however often it is woken; a fixed
number of push workers (`PushConfig.concurrency`, about the database pool) take VENs from the
queue (a sorter first leaves out the pull VENs, `WAKE_BATCH` at a time in one query) and push
to each until it has nothing left, so an event for 10,000 VENs is 10,000 queue
entries, not 10,000 transactions waiting for a pooled connection at once. A VEN woken while it is
being pushed to is looked at again before its worker moves on. A failed push is retried after
capped exponential backoff with jitter (a timer, no worker waits for it). Once the VEN answered,
recording that is retried on its own if the database fails, so a VEN is not pushed the same
message again for a database hiccup. The HTTP exchange happens outside any transaction.

With several workers (`vtn.wakeups`) only the one holding the leader lock runs a Pusher, started
when it gains the lock and stopped when it loses it; wake-ups reach it through PostgreSQL. Two
pushers can still overlap for a moment (a leader whose connection the server dropped pushes until
it notices), and both may then POST the same message. The commit is what stays single: the
transaction that marks a message delivered first locks the VEN's row (as a poll does, by
touching it) and re-reads whether the message is still undelivered. Whoever comes second finds it
delivered, marks nothing and ignores its copy of the reply, so the record shows each event
modification and each queued message delivered once, and a CancelPartyRegistration ends the
registration once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from certs import fingerprint
from certs.trust import TrustStore
from oadr import codec, exchanges
from oadr.errors import OadrError
from oadr.model import DistributeEvent, Payload, Response, VenId
from oadr.signing import ReplayGuard
from vtn import services
from vtn.services.context import Caller, Context
from vtn.services.oadr_poll import Due, mark_delivered, next_due
from vtn.store.db import Tx
from vtn.store.tables import outbox, vens
from vtn.vens import VenRecord

log = logging.getLogger("flex4grid.vtn.push")

# Woken VENs looked up at once, to leave the pull VENs out (`Pusher._sort`).
WAKE_BATCH = 64


@dataclass(frozen=True)
class PushConfig:
    """How the VTN pushes: its client TLS (its own certificate) and how it retries."""

    tls: ssl.SSLContext | None = None  # None: the default context (no client certificate)
    first_retry: timedelta = timedelta(seconds=1)
    max_retry: timedelta = timedelta(minutes=5)
    timeout: timedelta = timedelta(seconds=30)
    # VENs pushed to at the same time: a push mostly waits (TLS handshake, the VEN, commits),
    # and each holds a pooled database connection only inside its transactions (pool: 30).
    concurrency: int = 32
    # Attempts at recording a VEN's answer before the push counts as failed.
    record_attempts: int = 5
    # With several workers: how often a follower tries to become the one that pushes, and the
    # leader checks it still is (vtn.wakeups).
    leader_retry: timedelta = timedelta(seconds=3)


class PushFailed(Exception):
    """The VEN did not take the message: unreachable, not HTTP 200, or no valid reply."""


def retry_delay(failures: int, config: PushConfig, fraction: float) -> timedelta:
    """Exponential backoff after `failures` failures in a row, capped, with `fraction` (0..1)
    of its upper half as jitter so many VENs failing together do not retry in step."""
    ceiling: timedelta = min(config.max_retry, config.first_retry * 2 ** min(failures - 1, 32))
    return ceiling / 2 + ceiling / 2 * fraction


def is_push_ven(ven: VenRecord | None) -> bool:
    return (
        ven is not None
        and ven.registered
        and not ven.http_pull_model
        and bool(ven.transport_address)
    )


def push_url(transport_address: str, service: exchanges.Service) -> str:
    base = transport_address.rstrip("/")
    prefix = exchanges.PATH_PREFIX.rstrip("/")
    if base.endswith(prefix):  # some VENs register the full service root
        base = base[: -len(prefix)]
    return base + service.path


async def still_due(tx: Tx, ven_id: VenId, due: Due) -> bool:
    """Lock the VEN's row, so whoever marks this VEN's deliveries (a poll, another pusher) takes
    turns, and say whether `due` is still undelivered (module docstring)."""
    await tx.connection.execute(
        select(vens.c.ven_id).where(vens.c.ven_id == ven_id).with_for_update()
    )
    if due.outbox_id is not None:
        query = select(outbox.c.delivered_at).where(outbox.c.id == due.outbox_id)
        row = (await tx.connection.execute(query)).first()
        return row is not None and row.delivered_at is None
    sent = await tx.deliveries.sent(ven_id, [event.event_id for event in due.events])
    if any(sent.get(e.event_id, -1) < e.modification_number for e in due.events):
        return True
    # A list sent again for want of an answer (vtn.delivery.unanswered): due while unanswered.
    return any(
        d.opt_modification_number != d.modification_number
        for d in await tx.deliveries.for_ven(ven_id, due.resent)
    )


class Pusher:
    def __init__(
        self, context: Context, config: PushConfig, trust: TrustStore | None, rng: random.Random
    ) -> None:
        self.context = context
        self.config = config
        self.trust = trust
        self.rng = rng
        self.replay_guard = ReplayGuard(window=context.settings.replay_window)
        self._session: aiohttp.ClientSession | None = None
        self._queue: asyncio.Queue[VenId] = asyncio.Queue()  # woken
        self._ready: asyncio.Queue[VenId] = asyncio.Queue()  # woken push VENs
        self._queued: set[VenId] = set()  # in either queue
        self._active: set[VenId] = set()  # a worker is pushing to it
        self._again: set[VenId] = set()  # woken while active: look again before moving on
        self._failures: dict[VenId, int] = {}
        self._backoff: dict[VenId, asyncio.TimerHandle] = {}  # retry scheduled
        self._workers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Open the HTTP client and wake every push VEN: whatever is due survived a restart."""
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self.config.tls or True),
            timeout=aiohttp.ClientTimeout(total=self.config.timeout.total_seconds()),
        )
        loop = asyncio.get_running_loop()
        self._workers = [loop.create_task(self._sort(), name="vtn-push-sort")] + [
            loop.create_task(self._work(), name=f"vtn-push-{i}")
            for i in range(max(1, self.config.concurrency))
        ]
        async with self.context.store.transaction() as tx:
            push_vens = [ven for ven in await tx.vens.registered() if is_push_ven(ven)]
        for ven in push_vens:
            self.wake(ven.ven_id)

    async def stop(self) -> None:
        # Stopped before the workers are awaited, so a wake() meanwhile queues nothing;
        # forgotten, so a later start() (leadership regained, vtn.wakeups) begins afresh.
        session, self._session = self._session, None  # later wake()s are ignored
        workers, self._workers = self._workers, []
        for handle in self._backoff.values():
            handle.cancel()
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self._queue, self._ready = asyncio.Queue(), asyncio.Queue()
        for pending in (self._queued, self._active, self._again):
            pending.clear()
        self._failures.clear()
        self._backoff.clear()
        if session is not None:
            await session.close()

    def wake(self, ven_id: VenId) -> None:
        """Something may be due for this VEN (called after commit); cheap for pull VENs."""
        if self._session is None:
            return  # not started (or stopped): start() scans the database anyway
        if ven_id in self._active:
            self._again.add(ven_id)
        elif ven_id not in self._queued and ven_id not in self._backoff:
            self._queued.add(ven_id)
            self._queue.put_nowait(ven_id)

    async def _sort(self) -> None:
        """Take woken VENs in batches and pass on the push VENs among them: an event for 10,000
        VENs wakes every one, most of them pull VENs, and one query per batch leaves those out
        instead of a transaction each (which starved the polls of pooled connections)."""
        while True:
            batch = [await self._queue.get()]
            while len(batch) < WAKE_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                async with self.context.store.transaction() as tx:
                    push = await tx.vens.push_among(list(batch))
            except (SQLAlchemyError, OSError) as err:
                log.warning("push VENs not looked up (%d woken), retrying: %s", len(batch), err)
                push = set(batch)  # each looks itself up (and backs off) in _push_next
            for ven_id in batch:
                if ven_id in push:
                    self._ready.put_nowait(ven_id)
                else:
                    self._queued.discard(ven_id)

    async def _work(self) -> None:
        while True:
            ven_id = await self._ready.get()
            self._queued.discard(ven_id)
            self._active.add(ven_id)
            try:
                await self._push_all(ven_id)
            finally:
                self._active.discard(ven_id)
                if ven_id in self._again:  # woken after its last look (e.g. while cancelled)
                    self._again.discard(ven_id)
                    self.wake(ven_id)

    async def _push_all(self, ven_id: VenId) -> None:
        """Push to this VEN until it has nothing due; on failure, schedule a retry."""
        while True:
            self._again.discard(ven_id)
            try:
                delivered = await self._push_next(ven_id)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                self._retry_later(ven_id, err)
                return
            self._failures.pop(ven_id, None)
            if not delivered and ven_id not in self._again:
                return

    def _retry_later(self, ven_id: VenId, err: Exception) -> None:
        failures = self._failures[ven_id] = self._failures.get(ven_id, 0) + 1
        delay = retry_delay(failures, self.config, self.rng.random()).total_seconds()
        if isinstance(err, PushFailed | OadrError):
            log.warning(
                "push to VEN %s failed (%d in a row), retrying in %.1f s: %s",
                ven_id, failures, delay, err,
            )  # fmt: skip
        else:
            reference = uuid.uuid4().hex[:12]
            log.error(
                "unexpected push failure for VEN %s, reference %s, retrying in %.1f s",
                ven_id, reference, delay, exc_info=err,
            )  # fmt: skip
        self._again.discard(ven_id)

        def retry() -> None:
            self._backoff.pop(ven_id, None)
            self.wake(ven_id)

        self._backoff[ven_id] = asyncio.get_running_loop().call_later(delay, retry)

    async def _push_next(self, ven_id: VenId) -> bool:
        """Push the next message due to this VEN; False if there is nothing (or not a push VEN)."""
        async with self.context.store.transaction() as tx:
            ven = await tx.vens.get(ven_id)
            if ven is None or not is_push_ven(ven):
                return False
            due = await next_due(self.context, tx, ven, self.context.clock())
        if due is None:
            return False
        reply = await self._post(ven, due.payload)
        now = self.context.clock()
        first = await self._record(ven, due, now)
        if not first:  # another pusher or a poll delivered it meanwhile: on record once only
            log.warning(
                "VEN %s already had this %s; not marked again", ven_id, type(due.payload).__name__
            )
            return True
        log.info("pushed %s to VEN %s", type(due.payload).__name__, ven_id)
        await self._handle_reply(ven, due, reply, now)
        return True

    async def _record(self, ven: VenRecord, due: Due, now: datetime) -> bool:
        """Mark `due` delivered (False: someone else had); the VEN has answered, so a database
        failure here is retried on its own rather than by pushing the message again."""
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self.context.store.transaction() as tx:
                    first = await still_due(tx, ven.ven_id, due)
                    if first:
                        current = await tx.vens.get(ven.ven_id)
                        await mark_delivered(tx, current or ven, due, now)
                return first
            except (SQLAlchemyError, OSError) as err:
                if attempt >= self.config.record_attempts:
                    raise
                delay = min(0.25 * 2**attempt, 5.0)
                log.warning(
                    "VEN %s answered, recording failed (attempt %d), again in %.2f s: %s",
                    ven.ven_id, attempt, delay, err,
                )  # fmt: skip
                await asyncio.sleep(delay)

    async def _post(self, ven: VenRecord, payload: Payload) -> Payload | None:
        """POST `payload` to the VEN; its valid reply (None: an empty 200 where that is allowed)."""
        assert self._session is not None and ven.transport_address is not None
        settings = self.context.settings
        now = self.context.clock()
        key = settings.signing_key if (ven.xml_signature or settings.require_signatures) else None
        body = codec.encode(
            payload, signing_key=key, now=now, nonce=uuid.uuid4().hex if key else None
        )
        url = push_url(ven.transport_address, exchanges.service_for(payload))
        try:
            async with self._session.post(
                url, data=body, headers={"Content-Type": "application/xml"}
            ) as response:
                if (response.content_length or 0) > settings.limits.max_bytes:
                    raise PushFailed(f"{url} answered with {response.content_length} bytes")
                content = await response.read()
                if response.status != 200:
                    raise PushFailed(f"{url} answered HTTP {response.status}")
        except (TimeoutError, aiohttp.ClientError, OSError) as err:
            raise PushFailed(f"{url}: {type(err).__name__}: {err}") from err
        if not content.strip() and isinstance(payload, DistributeEvent):
            return None  # nothing to answer (no event requires a response)
        try:
            received = codec.receive(
                content,
                now=self.context.clock(),
                replay_guard=self.replay_guard,
                require_signature=settings.require_signatures,
                limits=settings.limits,
            )
        except OadrError as err:
            raise PushFailed(f"{url} answered with an invalid reply: {err.message}") from err
        reply = received.payload
        if not (exchanges.is_reply_to(payload, reply) or isinstance(reply, Response)):
            raise PushFailed(f"{url} answered {type(payload).__name__} with {type(reply).__name__}")
        if received.signature is not None and ven.fingerprint != fingerprint.of_certificate(
            received.signature.certificate
        ):
            raise PushFailed(f"{url} signed its reply with another certificate than its own")
        return reply

    async def _handle_reply(
        self, ven: VenRecord, due: Due, reply: Payload | None, now: datetime
    ) -> None:
        """Handle the VEN's reply as if it had posted it (oadrCreatedEvent, oadrRegisteredReport,
        ...); oadrResponse just closes the exchange. The message is delivered either way."""
        if reply is None or isinstance(reply, Response):
            return
        caller = Caller(None if self.trust is None else ven.fingerprint)
        try:
            await services.handle(self.context, reply, caller, now)
        except OadrError as err:
            log.warning(
                "VEN %s's reply to a pushed %s refused with %d: %s",
                ven.ven_id, type(due.payload).__name__, int(err.code), err.message,
            )  # fmt: skip
