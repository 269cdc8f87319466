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

`wake()` (Context.notify, after commit) queues the VEN once, however often it is woken. Pushing
is a pipeline with batched database work at both ends, so an event for 10,000 VENs costs a
handful of transactions per batch of VENs rather than several per VEN:

1. *plan*: woken VENs are taken `WAKE_BATCH` at a time; one transaction finds the push VENs
   among them (an event wakes every VEN, most of them pull VENs) and what each is due;
2. *post*: `PushConfig.concurrency` tasks POST one message each, outside any transaction;
3. *record*: the VENs' answers are recorded in group commits (as `vtn.replay` does nonces):
   whatever answers arrived while the previous batch was written go in one transaction, each
   VEN's delivery marked and its oadrCreatedEvent stored; replies of other kinds are handled
   as if the VEN had posted them, after that commit. The VEN is then woken again, to push what
   else it may be due.

A VEN woken while it is planned is planned again. A failed push is retried after capped
exponential backoff with jitter (a timer, no task waits for it). Once the VEN answered, a
database failure while recording is retried on its own (the batch again, `record_attempts`
times), so a VEN is not pushed the same message again for a database hiccup.

With several workers (`vtn.wakeups`) each worker's Pusher pushes to the VENs of the shards that
worker holds (`serve(shards)`: `wakeups.shard_of` a venID); wake-ups reach every worker through
PostgreSQL and each Pusher ignores the VENs that are not its own. Two pushers can still overlap for
a moment on one VEN (a worker whose connection the server dropped pushes until it notices, or a
shard changing hands), and both may then POST the same message. The commit is what stays single: the
transaction that marks a message delivered first locks the VEN's row (as a poll does, by touching
it) and re-reads whether the message is still undelivered. Whoever comes second finds it delivered,
marks nothing and ignores its copy of the reply, so the record shows each event modification and
each queued message delivered once, and a CancelPartyRegistration ends the registration once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import uuid
from collections.abc import Mapping, Set
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import aiohttp
from sqlalchemy.exc import SQLAlchemyError

from certs import fingerprint
from certs.tls import ClientContext
from certs.trust import TrustStore
from oadr import codec, exchanges
from oadr.errors import OadrError
from oadr.model import CreatedEvent, DistributeEvent, EventId, Payload, Response, VenId
from oadr.signing import ReplayGuard
from vtn import services
from vtn.delivery import Sent
from vtn.services import ei_event
from vtn.services.context import Caller, Context, authorize_caller
from vtn.services.oadr_poll import Due, due_among, mark_delivered_many
from vtn.store.db import Tx
from vtn.store.events import OptAnswer
from vtn.vens import VenRecord
from vtn.wakeups import ALL_SHARDS, shard_of

log = logging.getLogger("flex4grid.vtn.push")

# Woken VENs planned in one transaction (`Pusher._plan`); also how far planning runs ahead.
WAKE_BATCH = 64


@dataclass(frozen=True)
class PushConfig:
    """How the VTN pushes: its client TLS (its own certificate) and how it retries."""

    tls: ssl.SSLContext | None = None  # None: the default context (no client certificate)
    first_retry: timedelta = timedelta(seconds=1)
    max_retry: timedelta = timedelta(minutes=5)
    timeout: timedelta = timedelta(seconds=30)
    # VENs pushed to at the same time: a push mostly waits (TLS handshake, the VEN); it holds
    # no database connection (planning and recording are batched, two connections in all).
    concurrency: int = 32
    # Attempts at recording a batch of answers before its pushes count as failed.
    record_attempts: int = 5
    # With several workers: how often each re-counts the workers and rebalances the push
    # shards it holds (vtn.wakeups).
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


def _origin(url: str) -> str:
    """Whose TLS session a connection to `url` may resume: scheme, host and port."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def still_due(due: Due, sent: Mapping[EventId, Sent], undelivered: Set[int]) -> bool:
    """Whether `due` is still undelivered to its VEN, given what the VEN was sent of its events
    and which queued messages are undelivered (read under lock: module docstring). Pure."""
    if due.outbox_id is not None:
        return due.outbox_id in undelivered
    if any(e.event_id not in sent or sent[e.event_id].modification_number < e.modification_number
           for e in due.events):  # fmt: skip
        return True
    # A list sent again for want of an answer (vtn.delivery.unanswered): due while unanswered.
    return any(
        (record := sent.get(event_id)) is not None and record.answered != record.modification_number
        for event_id in due.resent
    )


@dataclass(frozen=True, slots=True)
class _Answered:
    """A push the VEN took: what it was sent, when, and its reply (None: an empty 200)."""

    ven: VenRecord
    due: Due
    reply: Payload | None
    at: datetime


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
        self._woken: asyncio.Queue[VenId] = asyncio.Queue()
        self._ready: asyncio.Queue[tuple[VenRecord, Due]] = asyncio.Queue()  # planned pushes
        self._room = asyncio.Event()  # set when a push was taken from `_ready`
        self._answered: list[_Answered] = []  # to record
        self._has_answers = asyncio.Event()
        self._queued: set[VenId] = set()  # woken, not planned yet
        self._active: set[VenId] = set()  # being planned, pushed to or recorded
        self._again: set[VenId] = set()  # woken while active: look again afterwards
        self._failures: dict[VenId, int] = {}
        self._backoff: dict[VenId, asyncio.TimerHandle] = {}  # retry scheduled
        self._tasks: list[asyncio.Task[None]] = []
        self._shards: frozenset[int] = frozenset()  # whose VENs this Pusher pushes to
        self._replies: set[asyncio.Task[None]] = set()  # replies being handled (`_release`)

    async def serve(self, shards: frozenset[int]) -> None:
        """Push to the VENs of these shards from now on (`vtn.wakeups`); none: stop. The VENs
        of shards it did not have are looked at at once: what is due survived a restart."""
        if not shards:
            await self.stop()
            return
        gained, self._shards = shards - self._shards, shards
        if self._session is None:
            await self._open()
        if gained:
            await self._wake_push_vens()

    async def start(self) -> None:
        """Push to every VEN (one process, or tests)."""
        await self.serve(ALL_SHARDS)

    def _mine(self, ven_id: VenId) -> bool:
        return shard_of(ven_id) in self._shards

    async def _open(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self.config.tls or True),
            timeout=aiohttp.ClientTimeout(total=self.config.timeout.total_seconds()),
        )
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._plan(), name="vtn-push-plan"),
            loop.create_task(self._record(), name="vtn-push-record"),
        ] + [
            loop.create_task(self._post_ready(), name=f"vtn-push-{i}")
            for i in range(max(1, self.config.concurrency))
        ]

    async def _wake_push_vens(self) -> None:
        async with self.context.store.transaction() as tx:
            push_vens = [ven for ven in await tx.vens.registered() if is_push_ven(ven)]
        for ven in push_vens:
            self.wake(ven.ven_id)  # only this Pusher's own

    async def stop(self) -> None:
        # Stopped before the tasks are awaited, so a wake() meanwhile queues nothing;
        # forgotten, so a later serve() (shards taken again, vtn.wakeups) begins afresh.
        session, self._session = self._session, None  # later wake()s are ignored
        self._shards = frozenset()
        tasks, self._tasks = self._tasks + list(self._replies), []
        for handle in self._backoff.values():
            handle.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._woken, self._ready, self._room = asyncio.Queue(), asyncio.Queue(), asyncio.Event()
        self._answered.clear()
        for pending in (self._queued, self._active, self._again, self._replies):
            pending.clear()
        self._failures.clear()
        self._backoff.clear()
        if session is not None:
            await session.close()

    def wake(self, ven_id: VenId) -> None:
        """Something may be due for this VEN (called after commit); cheap for pull VENs."""
        if self._session is None or not self._mine(ven_id):
            return  # not started (or stopped), or another worker's: whoever serves it scans
        if ven_id in self._active:
            self._again.add(ven_id)
        elif ven_id not in self._queued and ven_id not in self._backoff:
            self._queued.add(ven_id)
            self._woken.put_nowait(ven_id)

    def _release(self, ven_id: VenId, *, look_again: bool) -> None:
        """Done with this VEN for now; woken again if it may be due more (or was woken)."""
        self._active.discard(ven_id)
        if look_again or ven_id in self._again:
            self._again.discard(ven_id)
            self.wake(ven_id)

    async def _plan(self) -> None:
        """Take woken VENs in batches; in one transaction per batch, what each push VEN is due."""
        while True:
            # Planned only a little ahead of the pushes: what is due stays fresh, memory bounded.
            while self._ready.qsize() >= WAKE_BATCH + self.config.concurrency:
                self._room.clear()
                await self._room.wait()
            batch = [await self._woken.get()]
            while len(batch) < WAKE_BATCH and not self._woken.empty():
                batch.append(self._woken.get_nowait())
            for ven_id in batch:
                self._queued.discard(ven_id)
            batch = [ven_id for ven_id in batch if self._mine(ven_id)]  # a shard may have gone
            if not batch:
                continue
            for ven_id in batch:
                self._active.add(ven_id)
                self._again.discard(ven_id)
            try:
                planned = await self._due_among(batch)
            except (SQLAlchemyError, OSError) as err:
                log.warning("push: %d woken VENs not looked up, retrying: %s", len(batch), err)
                for ven_id in batch:
                    self._retry_later(ven_id, err)
                continue
            for ven_id in batch:
                if ven_id in planned:
                    self._ready.put_nowait(planned[ven_id])
                else:
                    self._failures.pop(ven_id, None)
                    self._release(ven_id, look_again=False)

    async def _due_among(self, batch: list[VenId]) -> dict[VenId, tuple[VenRecord, Due]]:
        now = self.context.clock()
        async with self.context.store.transaction() as tx:
            push_vens = await tx.vens.push_among(list(batch))
            due = await due_among(self.context, tx, push_vens, now)
        return {ven.ven_id: (ven, due[ven.ven_id]) for ven in push_vens if ven.ven_id in due}

    async def _post_ready(self) -> None:
        while True:
            ven, due = await self._ready.get()
            self._room.set()
            if not self._mine(ven.ven_id):  # its shard went to another worker meanwhile
                self._release(ven.ven_id, look_again=False)
                continue
            try:
                reply = await self._post(ven, due.payload)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                self._retry_later(ven.ven_id, err)
                continue
            self._failures.pop(ven.ven_id, None)
            self._answered.append(_Answered(ven, due, reply, self.context.clock()))
            self._has_answers.set()

    def _retry_later(self, ven_id: VenId, err: Exception) -> None:
        self._active.discard(ven_id)
        self._again.discard(ven_id)
        failures = self._failures[ven_id] = self._failures.get(ven_id, 0) + 1
        delay = retry_delay(failures, self.config, self.rng.random()).total_seconds()
        if isinstance(err, PushFailed | OadrError | SQLAlchemyError | OSError):
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

        def retry() -> None:
            self._backoff.pop(ven_id, None)
            self.wake(ven_id)

        self._backoff[ven_id] = asyncio.get_running_loop().call_later(delay, retry)

    async def _record(self) -> None:
        """Group commits of the answers that arrived while the previous batch was written."""
        while True:
            await self._has_answers.wait()
            self._has_answers.clear()
            batch, self._answered = self._answered, []
            if not batch:
                continue
            try:
                outcomes = await self._record_batch(batch)
            except Exception as err:  # every VEN in it is pushed again later
                for answered in batch:
                    self._retry_later(answered.ven.ven_id, err)
                continue
            for answered, outcome in zip(batch, outcomes, strict=True):
                self._recorded(answered, outcome)

    async def _record_batch(self, batch: list[_Answered]) -> list[VenRecord | str | None]:
        """Mark each answered push delivered and store its oadrCreatedEvent, in one transaction
        of a few statements however many; retried on a database failure (the VENs answered)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self.context.store.transaction() as tx:
                    return await self._mark(tx, batch)
            except (SQLAlchemyError, OSError) as err:
                if attempt >= self.config.record_attempts:
                    raise
                delay = min(0.25 * 2**attempt, 5.0)
                log.warning(
                    "%d VENs answered, recording failed (attempt %d), again in %.2f s: %s",
                    len(batch), attempt, delay, err,
                )  # fmt: skip
                await asyncio.sleep(delay)

    async def _mark(self, tx: Tx, batch: list[_Answered]) -> list[VenRecord | str | None]:
        """Per answered push: the VEN, its delivery marked; None if it had been delivered
        meanwhile (another pusher or a poll: on record once only); or why its oadrCreatedEvent
        was refused (the delivery is marked all the same)."""
        locked = await tx.vens.lock_among(a.ven.ven_id for a in batch)
        event_ids = sorted({e.event_id for a in batch for e in a.due.events})
        sent = await tx.deliveries.sent_records(sorted(locked), event_ids)
        undelivered = await tx.outbox.undelivered_among(
            [a.due.outbox_id for a in batch if a.due.outbox_id is not None]
        )
        sent_to: dict[str, dict[EventId, Sent]] = {}
        for (to, event_id), record in sent.items():
            sent_to.setdefault(to, {})[event_id] = record
        outcomes: list[VenRecord | str | None] = []
        delivered: list[tuple[VenRecord, Due, datetime]] = []
        answers: list[OptAnswer] = []
        seen: list[tuple[str, datetime]] = []
        for answered in batch:
            ven_id = answered.ven.ven_id
            ven = locked.get(ven_id)
            ven_sent = sent_to.get(ven_id, {})
            if ven is None or not still_due(answered.due, ven_sent, undelivered):
                outcomes.append(None)
                continue
            delivered.append((ven, answered.due, answered.at))
            outcome: VenRecord | str = ven
            reply = answered.reply
            if isinstance(reply, CreatedEvent):
                seen.append((ven_id, answered.at))
                numbers = {e: r.modification_number for e, r in ven_sent.items()}
                numbers.update((e.event_id, e.modification_number) for e in answered.due.events)
                caller = Caller(None if self.trust is None else ven.fingerprint)
                try:
                    authorize_caller(ven, reply.ven_id, caller)
                    answers += ei_event.answers(ven_id, reply, numbers, answered.at)
                except OadrError as err:
                    outcome = f"refused with {int(err.code)}: {err.message}"
            outcomes.append(outcome)
        await mark_delivered_many(tx, delivered)
        await tx.vens.touch_many(seen)
        await tx.deliveries.record_opts(answers)
        return outcomes

    def _recorded(self, answered: _Answered, outcome: VenRecord | str | None) -> None:
        ven_id, kind = answered.ven.ven_id, type(answered.due.payload).__name__
        if outcome is None:
            log.warning("VEN %s already had this %s; not marked again", ven_id, kind)
        elif isinstance(outcome, str):
            log.warning("VEN %s's reply to a pushed %s %s", ven_id, kind, outcome)
        else:
            log.info("pushed %s to VEN %s", kind, ven_id)
        reply = answered.reply
        if isinstance(outcome, VenRecord) and not (
            reply is None or isinstance(reply, Response | CreatedEvent)
        ):
            task = asyncio.get_running_loop().create_task(self._handle_reply(outcome, answered))
            self._replies.add(task)
            task.add_done_callback(self._replies.discard)
            return
        self._release(ven_id, look_again=True)

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
        tls = self.config.tls
        try:
            # A new connection offers the TLS session of this VEN's last one (certs.tls).
            with tls.resuming(_origin(url)) if isinstance(tls, ClientContext) else nullcontext():
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
        if received.signature is not None and ven.fingerprint != fingerprint.of_der(
            received.signature.certificate_der
        ):
            raise PushFailed(f"{url} signed its reply with another certificate than its own")
        return reply

    async def _handle_reply(self, ven: VenRecord, answered: _Answered) -> None:
        """Handle a reply other than oadrCreatedEvent (oadrRegisteredReport, ...) as if the VEN
        had posted it, after its push was recorded; then look at the VEN again."""
        assert answered.reply is not None
        caller = Caller(None if self.trust is None else ven.fingerprint)
        try:
            await services.handle(self.context, answered.reply, caller, answered.at)
        except OadrError as err:
            log.warning(
                "VEN %s's reply to a pushed %s refused with %d: %s",
                ven.ven_id, type(answered.due.payload).__name__, int(err.code), err.message,
            )  # fmt: skip
        except (SQLAlchemyError, OSError) as err:
            log.warning("VEN %s's reply to a pushed message not stored: %s", ven.ven_id, err)
        finally:
            self._release(ven.ven_id, look_again=True)
