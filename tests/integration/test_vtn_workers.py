"""Several VTN workers on one PostgreSQL database: wake-ups cross workers through LISTEN/NOTIFY,
exactly one worker pushes (an advisory lock) and another takes over when it stops, a pull VEN
is served by any worker, and `vtn serve --workers 2` spreads requests over both processes,
refuses a replay whichever process gets it, and stops both on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import ssl
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import text

from certs.dev import DevPki
from oadr import codec, exchanges
from oadr.enums import ResponseCode
from oadr.model import (
    CreatedPartyRegistration,
    CreatePartyRegistration,
    DistributeEvent,
    Poll,
    RegisterReport,
    RequestId,
    Response,
    VenId,
)
from oadr.signing import SigningKey
from tests.integration.test_vtn_cli import ROOT, free_port, serve_command
from tests.integration.test_vtn_flow import bootstrap
from tests.integration.test_vtn_push import (
    FAST_RETRY,
    PushVen,
    create_event,
    opted,
    register_push,
    serving,
    wait_for,
)
from tests.integration.vtn_harness import RunningVtn, VenClient, utc_now
from vtn.app import WAKEUPS, VtnConfig, build_app
from vtn.config import VtnSettings
from vtn.push import Pusher
from vtn.services import operator
from vtn.store.db import Store
from vtn.wakeups import PUSH_SHARDS, SHARD_LOCK, PostgresWakeups, shard_of

# PostgreSQL only: SQLite is one process, and `--workers` refuses it (test_vtn_cli).
pytestmark = pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)

LEADER_RETRY = timedelta(milliseconds=200)


async def create_schema(database_url: str) -> None:
    store = Store(database_url)
    try:
        await store.create_all()
    finally:
        await store.close()


# --- two VTN apps in this process on one database --------------------------------------------


@dataclass
class Worker:
    """One VTN app on its own port, as one `--workers` process would run it."""

    vtn: RunningVtn
    runner: web.AppRunner

    @property
    def leading(self) -> bool:
        return self.vtn.app[WAKEUPS].leading

    @property
    def shards(self) -> frozenset[int]:
        return self.vtn.app[WAKEUPS].shards

    async def stop(self) -> None:
        await self.runner.cleanup()


@asynccontextmanager
async def workers(pki: DevPki, database_url: str, count: int) -> AsyncIterator[list[Worker]]:
    await create_schema(database_url)
    config = VtnConfig(
        settings=VtnSettings(),
        database_url=database_url,
        trust=pki.trust_store(),
        push=replace(FAST_RETRY, tls=pki.client_context(pki.vtn), leader_retry=LEADER_RETRY),
    )
    started: list[Worker] = []
    try:
        for _ in range(count):
            app = build_app(config)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=pki.server_context()).start()
            host, port = runner.addresses[0][:2]
            started.append(Worker(RunningVtn(f"https://{host}:{port}", app, pki), runner))
        yield started
    finally:
        for worker in started:
            await worker.stop()  # a second cleanup of a stopped one is a no-op


async def shared_fairly(candidates: list[Worker]) -> bool:
    """Every shard held by exactly one of them, each holding its fair share."""
    held = [worker.shards for worker in candidates]
    every = sorted(shard for shards in held for shard in shards)
    fair = -(-PUSH_SHARDS // len(candidates))
    return every == list(range(PUSH_SHARDS)) and all(len(s) <= fair for s in held)


async def test_workers_share_the_push_vens_and_one_takes_all_when_the_other_stops(
    pki: DevPki, database_url: str
) -> None:
    ven = PushVen(pki.vens[0])
    port = free_port()
    async with serving(ven, pki, port), workers(pki, database_url, 2) as (a, b):
        await wait_for("the shards shared", lambda: shared_fairly([a, b]))
        # Everything goes through the worker whose shards do not hold this VEN: what reaches
        # it was woken across workers and pushed by the other alone.
        ven_id = await register_push(a.vtn, ven, port)
        pusher = a if shard_of(ven_id) in a.shards else b
        other = b if pusher is a else a
        event = await create_event(other.vtn, ven_id)
        await wait_for("the VTN's RegisterReport", lambda: ven.has(RegisterReport))
        await wait_for("the optIn to modification 0", lambda: opted(a.vtn, event.event_id, 0))
        await asyncio.sleep(0.5)  # room for a second pusher's copy to show up
        assert ven.event_modifications() == [(event.event_id, 0)]
        assert len(ven.of_type(RegisterReport)) == 1
        assert shard_of(ven_id) not in other.shards

        await pusher.stop()  # its connection closes: its shard locks are free
        # Modified at once, probably before the other took the shards: its scan on taking
        # them or the wake-up pushes it, once either way.
        await operator.modify_event(
            other.vtn.context, event.event_id, actor="test", now=utc_now(), priority=2
        )
        await wait_for("the other to take every shard", lambda: shared_fairly([other]))
        await wait_for("the optIn to modification 1", lambda: opted(other.vtn, event.event_id, 1))
        await operator.modify_event(
            other.vtn.context, event.event_id, actor="test", now=utc_now(), priority=3
        )
        await wait_for("the optIn to modification 2", lambda: opted(other.vtn, event.event_id, 2))
        await asyncio.sleep(0.5)

    assert ven.event_modifications() == [(event.event_id, n) for n in range(3)]
    assert len(ven.of_type(RegisterReport)) == 1


async def test_a_pull_ven_polling_one_worker_gets_an_event_created_through_another(
    pki: DevPki, database_url: str
) -> None:
    async with workers(pki, database_url, 2) as (a, b):
        client = b.vtn.client(pki.vens[1])
        ven_id = await bootstrap(client)
        event = await create_event(a.vtn, ven_id)

        delivered = await client.send(Poll(ven_id=ven_id))
        assert isinstance(delivered, DistributeEvent)
        assert [(e.event_id, e.modification_number) for e in delivered.events] == [
            (event.event_id, 0)
        ]
        # Delivered once, whichever worker the next poll reaches.
        again = await a.vtn.client(pki.vens[1]).send(Poll(ven_id=ven_id))
        assert isinstance(again, Response) and again.response.code == ResponseCode.OK


@dataclass
class SlowVen(PushVen):
    """Holds each pushed oadrDistributeEvent until a second copy arrives: two pushers overlap."""

    copies: int = 0
    both_in_flight: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        if isinstance(codec.decode(await request.read()), DistributeEvent):  # read() is cached
            self.copies += 1
            if self.copies == 2:
                self.both_in_flight.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    await self.both_in_flight.wait()
        return await super().handle(request)


async def test_two_overlapping_pushers_record_a_delivery_once(
    pki: DevPki, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="flex4grid")
    ven = SlowVen(pki.vens[2])
    port = free_port()
    async with serving(ven, pki, port), workers(pki, database_url, 1) as (worker,):
        await wait_for("every shard taken", lambda: shared_fairly([worker]))
        ven_id = await register_push(worker.vtn, ven, port)
        await wait_for("the VTN's RegisterReport", lambda: ven.has(RegisterReport))
        # A second pusher on the same database, as when a leader that lost its connection has
        # not noticed yet: its startup scan finds the new event as the leader is pushing it.
        config = replace(FAST_RETRY, tls=pki.client_context(pki.vtn))
        stale = Pusher(worker.vtn.context, config, pki.trust_store(), random.Random())
        event = await create_event(worker.vtn, ven_id)
        await stale.start()
        try:
            await wait_for("the optIn", lambda: opted(worker.vtn, event.event_id, 0))
            await asyncio.sleep(0.5)
        finally:
            await stale.stop()

    assert ven.event_modifications() == [(event.event_id, 0)] * 2, "both pushers were in flight"
    messages = [record.getMessage() for record in caplog.records]
    assert sum("already had this DistributeEvent" in m for m in messages) == 1, messages
    assert sum(f"pushed DistributeEvent to VEN {ven_id}" in m for m in messages) == 1, messages
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# --- Wakeups on their own ---------------------------------------------------------------------


@dataclass
class Recorder:
    """Stands in for a worker's pusher: what it was woken for, and when it led."""

    woken: list[VenId] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    shards: frozenset[int] = frozenset()
    starts: int = 0  # from no shard to some
    stops: int = 0  # from some shards to none

    def wake(self, ven_id: VenId) -> None:
        self.woken.append(ven_id)
        self.arrived.set()

    async def serve(self, shards: frozenset[int]) -> None:
        self.starts += bool(shards) and not self.shards
        self.stops += bool(self.shards) and not shards
        self.shards = shards


@asynccontextmanager
async def wakeups(
    database_url: str, count: int
) -> AsyncIterator[list[tuple[PostgresWakeups, Recorder]]]:
    store = Store(database_url)
    pairs: list[tuple[PostgresWakeups, Recorder]] = []
    for _ in range(count):
        recorder = Recorder()
        pairs.append(
            (
                PostgresWakeups(store, wake=recorder.wake, leader=recorder, retry=LEADER_RETRY),
                recorder,
            )
        )
    try:
        for instance, _ in pairs:
            await instance.start()
        yield pairs
    finally:
        for instance, _ in pairs:
            await instance.stop()
        await store.close()


def shared(pairs: list[tuple[PostgresWakeups, Recorder]]) -> Callable[[], Awaitable[bool]]:
    """All of them listen and push, each shard served by exactly one, each its fair share."""

    async def check() -> bool:
        held = [recorder.shards for _, recorder in pairs]
        every = sorted(shard for shards in held for shard in shards)
        fair = -(-PUSH_SHARDS // len(pairs))
        return (
            all(instance.listening for instance, _ in pairs)
            and every == list(range(PUSH_SHARDS))
            and all(0 < len(shards) <= fair for shards in held)
        )

    return check


def listening(pairs: list[tuple[PostgresWakeups, Recorder]]) -> Callable[[], Awaitable[bool]]:
    async def all_listen() -> bool:
        return all(instance.listening for instance, _ in pairs)

    return all_listen


async def test_a_wake_up_published_by_one_worker_reaches_another_within_a_second(
    database_url: str,
) -> None:
    async with wakeups(database_url, 2) as pairs:
        [(first, _), (_, heard)] = pairs
        await wait_for("both to listen", listening(pairs))
        started = time.monotonic()
        first.publish(VenId("ven-42"))
        async with asyncio.timeout(1.0):
            await heard.arrived.wait()
        elapsed_s = time.monotonic() - started
        assert heard.woken == [VenId("ven-42")]
        print(f"wake-up crossed workers in {elapsed_s * 1000:.1f} ms")

        # Many at once arrive, each venID at least once.
        heard.woken.clear()
        ids = [VenId(f"ven-{n}") for n in range(50)]
        for ven_id in ids:
            first.publish(ven_id)
        await wait_for("50 wake-ups", lambda: _has_all(heard, ids), timeout_s=2.0)


async def _has_all(recorder: Recorder, ids: list[VenId]) -> bool:
    return set(ids) <= set(recorder.woken)


async def test_each_shard_has_one_pusher_and_a_lost_connection_hands_its_shards_over(
    database_url: str,
) -> None:
    async with wakeups(database_url, 3) as pairs:
        await wait_for("the shards shared by three", shared(pairs))
        await asyncio.sleep(3 * LEADER_RETRY.total_seconds())  # they kept checking: stable
        assert await shared(pairs)()
        assert [instance.shards for instance, _ in pairs] == [r.shards for _, r in pairs]

        # The server drops one worker's connection (as when its host vanishes): it stops
        # pushing, the other two share its shards, and it reconnects, hears wake-ups and gets
        # its share back.
        old = pairs[0][1]
        store = Store(database_url)
        try:
            async with store.engine.begin() as connection:
                terminated = await connection.scalar(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM (SELECT DISTINCT pid "
                        "FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
                        "AND ((classid::bigint << 32) | objid::bigint) = ANY(:keys) AND database "
                        "= (SELECT oid FROM pg_database WHERE datname = current_database())) AS h"
                    ),
                    {"keys": [SHARD_LOCK + shard for shard in old.shards]},
                )
        finally:
            await store.close()
        assert terminated == 1
        await wait_for("the dropped one to stop", lambda: _stopped(old))
        await wait_for("all three to listen again", listening(pairs))
        await wait_for("the shards shared by three again", shared(pairs))
        assert old.starts == 2 and old.shards
        old.woken.clear()
        old.arrived.clear()
        pairs[1][0].publish(VenId("after-reconnect"))
        async with asyncio.timeout(1.0):
            await old.arrived.wait()
        assert VenId("after-reconnect") in old.woken


async def _stopped(recorder: Recorder) -> bool:
    return recorder.stops == 1


# --- `vtn serve --workers 2` as real processes -----------------------------------------------


@dataclass
class Connection:
    """One kept-alive HTTPS connection to the VTN; its client port tells which worker has it."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    @property
    def client_port(self) -> int:
        return int(self.writer.get_extra_info("sockname")[1])

    async def post(self, service: exchanges.Service, body: bytes) -> bytes:
        head = (
            f"POST {service.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/xml\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status, *headers = (await self.reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
        assert status.startswith("HTTP/1.1 200"), status
        length = next(
            int(h.split(":")[1]) for h in headers if h.lower().startswith("content-length")
        )
        return await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def connect(port: int, context: ssl.SSLContext) -> Connection:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    return Connection(reader, writer)


def accepting_process(server_pid: int, port: int) -> dict[int, int]:
    """client port -> pid of the worker (a child of `vtn serve`) holding that connection, read
    from /proc: the kernel's socket table and each worker's open file descriptors."""
    client_port_of: dict[str, int] = {}  # socket inode -> client port
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
        if state == "01" and int(local.split(":")[1], 16) == port:  # 01: ESTABLISHED
            client_port_of[inode] = int(remote.split(":")[1], 16)
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    owners: dict[int, int] = {}
    for pid in map(int, children):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            inode = target.removeprefix("socket:[").removesuffix("]")
            if inode in client_port_of:
                owners[client_port_of[inode]] = pid
    return owners


def read_log(path: Path) -> str:
    return path.read_text(errors="replace")


async def serve_two_workers(
    tmp_path: Path, pki: DevPki, database_url: str, port: int, log_path: Path, session: bool = False
) -> asyncio.subprocess.Process:
    """`vtn serve --workers 2` in a subprocess, its log in `log_path`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log_path.open("wb") as log_file:
        return await asyncio.create_subprocess_exec(
            *serve_command(pki, database_url, port, "--workers", "2"),
            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=log_file,
            start_new_session=session,
        )  # fmt: skip


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux /proc")
async def test_serve_with_two_workers_shares_requests_replay_protection_and_shutdown(
    tmp_path: Path, pki: DevPki, database_url: str
) -> None:
    port = free_port()
    log_path = tmp_path / "serve.log"
    process = await serve_two_workers(tmp_path, pki, database_url, port, log_path)
    try:
        url = f"https://127.0.0.1:{port}"
        await wait_for("both workers", lambda: _logged(log_path, "serving on https://", 2, process))
        await wait_for("/healthz", lambda: healthy(url, pki))
        await wait_for("a worker to push", lambda: _logged(log_path, "pushes to ", 1, process))

        # Many polls, each on a connection of its own, all answered; the kernel spread the
        # connections over both worker processes.
        ven = VenClient(url, pki.client_context(pki.vens[0]))
        ven_id = await bootstrap(ven)
        context = pki.client_context(pki.vens[0])
        connections = [await connect(port, context) for _ in range(24)]
        replies = await asyncio.gather(
            *(
                c.post(exchanges.Service.OADR_POLL, codec.encode(Poll(ven_id=ven_id)))
                for c in connections
            )
        )
        assert all(
            isinstance(r := codec.decode(body), Response) and r.response.code == ResponseCode.OK
            for body in replies
        )
        owners = accepting_process(process.pid, port)
        workers_used = {owners[c.client_port] for c in connections}
        for c in connections:
            await c.close()
        assert len(workers_used) == 2, f"all 24 connections went to {workers_used}"

        # A signed poll is accepted once; replayed on fresh connections it is refused by both
        # workers (the nonce is in the database, not only in the memory of the one that saw it).
        signer = pki.vens[1]
        key = SigningKey.from_pem(signer.key.read_bytes(), signer.cert.read_bytes())
        client = VenClient(url, pki.client_context(signer))
        created = await client.send(
            CreatePartyRegistration(
                request_id=RequestId("r"), ven_name="signed", xml_signature=True
            )
        )
        assert isinstance(created, CreatedPartyRegistration) and created.ven_id is not None
        signed_poll = codec.encode(
            Poll(ven_id=created.ven_id), signing_key=key, now=utc_now(), nonce=uuid.uuid4().hex
        )
        signer_context = pki.client_context(signer)
        original = await connect(port, signer_context)
        first = codec.decode(await original.post(exchanges.Service.OADR_POLL, signed_poll))
        assert isinstance(first, RegisterReport)  # queued at registration
        first_worker = accepting_process(process.pid, port)[original.client_port]
        await original.close()
        refused_by: set[int] = set()
        for _ in range(40):
            replay = await connect(port, signer_context)
            reply = codec.decode(await replay.post(exchanges.Service.OADR_POLL, signed_poll))
            refused_by.add(accepting_process(process.pid, port)[replay.client_port])
            await replay.close()
            assert isinstance(reply, Response), reply
            assert reply.response.code == ResponseCode.NOT_REGISTERED_OR_AUTHORIZED
            assert "nonce" in (reply.response.description or "")
            if refused_by - {first_worker}:
                break
        assert refused_by - {first_worker}, "no replay reached the other worker"

        # Both workers push, 8 shards each (they started together, or the first handed half
        # over to the second within two of its 3 s checks).
        async def both_push() -> bool:
            return read_log(log_path).count("pushes to 8 of 16 shards") == 2

        await wait_for("both workers to push", both_push, timeout_s=15)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(30):
                code = await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
    log = read_log(log_path)
    assert code == 0, log
    assert log.count("VTN stopped") == 2, log
    assert "Traceback" not in log and "ERROR" not in log, log


@pytest.mark.parametrize("when", ["starting", "serving"])
async def test_ctrl_c_stops_every_worker_cleanly(
    tmp_path: Path, pki: DevPki, database_url: str, when: str
) -> None:
    """Ctrl-C reaches the whole process group: the parent turns it into one SIGTERM per worker,
    whose own SIGINT is ignored (a second signal used to cut a worker's shutdown: exit 1)."""
    port = free_port()
    log_path = tmp_path / "serve.log"
    # In its own process group, as in a terminal.
    process = await serve_two_workers(tmp_path, pki, database_url, port, log_path, session=True)
    try:
        if when == "starting":  # the parent has prepared the database: the workers load
            await wait_for("the schema", lambda: _logged(log_path, "PostgresqlImpl", 1, process))
        else:
            await wait_for("workers", lambda: _logged(log_path, "serving on", 2, process))
            await wait_for("/healthz", lambda: healthy(f"https://127.0.0.1:{port}", pki))
        os.killpg(process.pid, signal.SIGINT)
        async with asyncio.timeout(30):
            code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    log = read_log(log_path)
    assert code == 0, log
    assert "Traceback" not in log and "workers failed" not in log, log


async def _logged(
    path: Path, text_: str, count: int, process: asyncio.subprocess.Process | None = None
) -> bool:
    if process is not None and process.returncode is not None:
        pytest.fail(f"vtn serve exited with {process.returncode}: {read_log(path)}")
    return read_log(path).count(text_) >= count


async def healthy(url: str, pki: DevPki) -> bool:
    context = ssl.create_default_context(cafile=str(pki.vtn.root))
    try:
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session,
            session.get(url + "/healthz") as reply,
        ):
            return reply.status == 200
    except (aiohttp.ClientError, OSError):
        return False
