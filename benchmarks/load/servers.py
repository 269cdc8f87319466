"""The servers under test, as subprocesses: our VTN (`flex4grid vtn serve`) and OpenLEADR's VTN
(`benchmarks.load.openleadr_vtn`); their databases; their RSS and CPU from /proc.

psutil is not a dependency: RSS is VmRSS from /proc/PID/status and CPU time is utime + stime
from /proc/PID/stat, summed over the process and its descendants (`--workers 2` runs a parent
that spawns two worker processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import make_url

from benchmarks.load.pki import BenchPki, VenIdentity
from oadr.model import CreatePartyRegistration, RegistrationId, RequestId, VenId
from vtn import vens as vtn_vens
from vtn.store import migrate
from vtn.store.db import Store

REPO = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("FLEX4GRID_PG_URL", "postgresql://127.0.0.1:5432/test")
_TICKS = os.sysconf("SC_CLK_TCK")
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """An unused port now (the server binds it a moment later; a clash is reported, not hidden)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- /proc ----------------------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            pids += process_tree(int(child))
    return pids


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_s(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


@dataclass(frozen=True)
class Usage:
    rss_kb: int
    cpu_s: float
    processes: int


def usage(pid: int) -> Usage:
    pids = process_tree(pid)
    return Usage(sum(rss_kb(p) for p in pids), sum(cpu_s(p) for p in pids), len(pids))


# --- databases ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Database:
    kind: str  # "sqlite" | "postgresql"
    url: str
    name: str  # file path or database name

    def size_bytes(self) -> int:
        if self.kind == "sqlite":
            return sum(
                Path(self.name + suffix).stat().st_size
                for suffix in ("", "-wal")
                if Path(self.name + suffix).exists()
            )
        return asyncio.run(_pg_size(self.name))

    def count_rows(self, table: str) -> int:
        """Rows in one of our tables (e.g. `readings`: what report ingest made durable)."""
        if self.kind == "sqlite":
            with contextlib.closing(sqlite3.connect(self.name)) as connection:
                return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        return asyncio.run(_pg_count(self.name, table))

    def drop(self) -> None:
        if self.kind == "postgresql":
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))


async def _pg_connect(database: str | None = None) -> object:
    import asyncpg

    url = make_url(PG_URL)
    return await asyncpg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or os.environ.get("USER", "postgres"),
        password=url.password,
        database=database or url.database or "postgres",
        timeout=5,
    )


async def _pg_admin(statement: str) -> None:
    connection = await _pg_connect()
    try:
        await connection.execute(statement)  # type: ignore[attr-defined]
    finally:
        await connection.close()  # type: ignore[attr-defined]


async def _pg_size(name: str) -> int:
    connection = await _pg_connect(name)
    try:
        return int(await connection.fetchval("SELECT pg_database_size(current_database())"))  # type: ignore[attr-defined]
    finally:
        await connection.close()  # type: ignore[attr-defined]


async def _pg_count(name: str, table: str) -> int:
    connection = await _pg_connect(name)
    try:
        return int(await connection.fetchval(f"SELECT count(*) FROM {table}"))  # type: ignore[attr-defined]
    finally:
        await connection.close()  # type: ignore[attr-defined]


def create_database(kind: str, directory: Path) -> Database:
    """A fresh, empty database: a SQLite file, or a new PostgreSQL database (dropped after)."""
    if kind == "sqlite":
        path = directory / f"vtn-{uuid.uuid4().hex[:8]}.db"
        return Database("sqlite", f"sqlite:///{path}", str(path))
    name = f"flex4grid_bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(drivername="postgresql", database=name)
    return Database("postgresql", url.render_as_string(hide_password=False), name)


def preload_vens(
    database: Database,
    vens: Sequence[VenIdentity],
    transport_addresses: Sequence[str] | None = None,
    xml_signature: bool = False,
) -> float:
    """Enrol VENs straight into the database, as registration would have (venID = the VEN's
    name), for scenarios too large to register over the wire in the time budget; seconds taken.
    With `transport_addresses` (one per VEN) they registered for HTTP push there. The schema is
    brought to head first, as `vtn serve` would."""
    addresses: Sequence[str | None] = transport_addresses or [None] * len(vens)

    async def run() -> None:
        store = Store(database.url)
        try:
            await migrate.upgrade(store.url)
            now = datetime.now(UTC)
            async with store.transaction() as tx:
                for ven, address in zip(vens, addresses, strict=True):
                    request = CreatePartyRegistration(
                        request_id=RequestId("preload"),
                        ven_name=ven.name,
                        http_pull_model=address is None,
                        transport_address=address,
                        xml_signature=xml_signature,
                    )
                    record = vtn_vens.register(
                        request,
                        fingerprint=ven.fingerprint,
                        existing=None,
                        provisioned=None,
                        policy=vtn_vens.Policy.AUTO,
                        new_ids=vtn_vens.NewIds(VenId(ven.name), RegistrationId(uuid.uuid4().hex)),
                        now=now,
                    )
                    await tx.vens.save(record)
        finally:
            await store.close()

    started = time.perf_counter()
    asyncio.run(run())
    return time.perf_counter() - started


def postgres_available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        asyncio.run(_pg_admin("SELECT 1"))
    except Exception as err:  # any failure means: skip the PostgreSQL scenarios
        return f"{PG_URL}: {err}"
    return None


# --- server processes -----------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def usage(self) -> Usage:
        return usage(self.pid)

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM (graceful: a profiled server writes its profile), SIGKILL if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the benchmark dies (PR_SET_PDEATHSIG), so an
    interrupted run leaves no server behind."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _spawn(name: str, command: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with log.open("wb") as out:
        return subprocess.Popen(
            command, cwd=log.parent, env=env, stdout=out, stderr=out,
            preexec_fn=_die_with_parent,  # only prctl: safe between fork and exec
        )  # fmt: skip


def _wait_ready(server: Server, root_pem: Path, path: str | None, timeout_s: float = 60.0) -> None:
    """Until GET `path` answers (our /healthz), or, without a path, until the port accepts TLS."""
    context = ssl.create_default_context(cafile=str(root_pem))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited: {server.log.read_text()[-2000:]}")
        try:
            if path is not None:
                url = f"https://localhost:{server.port}{path}"
                with urllib.request.urlopen(url, context=context, timeout=2) as reply:
                    if reply.status == 200:
                        return
            else:
                with socket.create_connection(("127.0.0.1", server.port), timeout=2):
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(
        f"{server.name} not ready in {timeout_s:g} s: {server.log.read_text()[-2000:]}"
    )


def start_ours(
    pki: BenchPki, database: Database, workers: int, log_dir: Path, profile: Path | None = None
) -> Server:
    port = free_port()
    python = [sys.executable]
    if profile is not None:
        python += ["-m", "cProfile", "-o", str(profile)]
    ca_files = [arg for path in pki.ca_files for arg in ("--ca-file", str(path))]
    command = [
        *python, "-m", "flex4grid.cli", "vtn", "serve", "--db", database.url,
        "--host", "127.0.0.1", "--port", str(port),
        "--tls-cert", str(pki.vtn.chain), "--tls-key", str(pki.vtn.key), *ca_files,
        "--workers", str(workers), "--poll-interval", "60",
    ]  # fmt: skip
    log = log_dir / f"vtn-{port}.log"
    server = Server("flex4grid vtn serve", _spawn("vtn", command, log), port, log)
    _wait_ready(server, pki.root_pem, "/healthz")
    return server


def admin_token(database: Database) -> str:
    """An operator token for the admin API, made the way an operator would (the CLI)."""
    return admin_token_started(database).wait()


@dataclass
class TokenJob:
    """`flex4grid vtn token create` running in the background (its start-up takes seconds)."""

    process: subprocess.Popen[str]
    token: str | None = None

    def wait(self) -> str:
        if self.token is None:
            out, err = self.process.communicate(timeout=120)
            if self.process.returncode != 0:
                raise RuntimeError(f"vtn token create failed: {err[-2000:]}")
            self.token = out.strip().splitlines()[-1]
        return self.token


def admin_token_started(database: Database) -> TokenJob:
    command = [sys.executable, "-m", "flex4grid.cli", "vtn", "token", "create",
               "--db", database.url, "--name", "benchmark"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return TokenJob(
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    )


def create_event(server: Server, pki: BenchPki, token: str, event_id: str | None = None) -> float:
    """POST /admin/v1/events: a SIMPLE event for every VEN, starting in 5 minutes, asking
    for a response. Returns the wall-clock time just before the request was sent."""
    body: dict[str, object] = {
        **({"event_id": event_id} if event_id is not None else {}),
        "start": (datetime.now(UTC) + timedelta(minutes=5)).isoformat(),
        "duration": "PT1H",
        "signals": [{"name": "SIMPLE", "intervals": [{"duration": "PT1H", "value": 1}]}],
        "response_required": "always",
    }
    return _admin(server, pki, token, "POST", "/admin/v1/events", body)


def modify_event(server: Server, pki: BenchPki, token: str, event_id: str) -> float:
    """PATCH /admin/v1/events/{id}: raise its priority, a new modification of the event for every
    VEN (the same size as the event was). Returns the wall-clock time just before the request."""
    body = {"priority": 2, "modification_reason": "benchmark"}
    return _admin(server, pki, token, "PATCH", f"/admin/v1/events/{event_id}", body)


def _admin(
    server: Server, pki: BenchPki, token: str, method: str, path: str, body: dict[str, object]
) -> float:
    """One admin API call; the wall-clock time just before it was sent."""
    request = urllib.request.Request(
        f"https://localhost:{server.port}{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method=method,
    )
    context = ssl.create_default_context(cafile=str(pki.root_pem))
    sent = time.time()
    with urllib.request.urlopen(request, context=context, timeout=60) as reply:
        if reply.status >= 300:
            raise RuntimeError(f"admin API: {reply.status} {reply.read()[:500]!r}")
    return sent


def count_responses(database: Database, event_id: str, modification: int = 0) -> int:
    """How many VENs' answers to `event_id`, modification `modification` or later, the VTN has
    committed (event_deliveries rows with responded_at set)."""
    statement = (
        "SELECT count(*) FROM event_deliveries WHERE event_id = {} AND responded_at IS NOT NULL"
        " AND opt_modification_number >= {}"
    )
    if database.kind == "sqlite":
        with contextlib.closing(sqlite3.connect(database.name, timeout=10)) as connection:
            cursor = connection.execute(statement.format("?", "?"), (event_id, modification))
            return int(cursor.fetchone()[0])

    async def run() -> int:
        connection = await _pg_connect(database.name)
        try:
            return int(
                await connection.fetchval(statement.format("$1", "$2"), event_id, modification)
            )  # type: ignore[attr-defined]
        finally:
            await connection.close()  # type: ignore[attr-defined]

    return asyncio.run(run())


def start_openleadr(pki: BenchPki, signed: bool, log_dir: Path) -> Server:
    port = free_port()
    command = [
        sys.executable, "-m", "benchmarks.load.openleadr_vtn", "--port", str(port),
        "--manifest", str(pki.manifest()), "--tls-cert", str(pki.vtn.chain),
        "--tls-key", str(pki.vtn.key), "--ca-file", str(pki.root_pem),
        *(["--sign"] if signed else []),
    ]  # fmt: skip
    log = log_dir / f"openleadr-{port}.log"
    server = Server("OpenLEADR OpenADRServer", _spawn("openleadr", command, log), port, log)
    _wait_ready(server, pki.root_pem, None)
    return server
