"""Throughput of the data service's anonymised interface (issue 13): an aggregate over 10,000
prosumers' quarter-hour data for a month, on PostgreSQL.

Ingests first (not timed as the query): one recipient, N prosumers in one area, each with an
aggregate-use grant and D days of synthetic quarter-hour energy, encrypted as the service does
(one AES-GCM blob per prosumer-day under the prosumer's own key, wrapped by the master key).
Then it times `queries.aggregate` end to end (consent of every member, 10,000 key unwraps,
N x D blob reads and decryptions, per-bucket 15/15 checks, the differencing check against the
recipient's earlier releases, the release and its member list and log row written) at each
level, and once with DP noise.

    .venv/bin/python -m benchmarks.data_service                       # PostgreSQL, 10,000 x 30
    .venv/bin/python -m benchmarks.data_service --quick --db sqlite   # CI-sized, SQLite

PostgreSQL: a fresh database on FLEX4GRID_PG_URL (default postgresql://127.0.0.1:5432/test),
dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from dataservice import crypto, queries, series
from dataservice.consent import Access, GrantId, Level, ProsumerId, RecipientId, make_grant
from dataservice.crypto import MasterKey
from dataservice.service import DataService
from dataservice.store.repository import DataRepository, Prosumer, Recipient, WrappedKey
from dataservice.store.tables import data_days
from vtn.store.db import Store

PG_URL = os.environ.get("FLEX4GRID_PG_URL", "postgresql://127.0.0.1:5432/test")
MONTH = datetime(2026, 4, 1, tzinfo=UTC)  # April: 30 days
AREA = "substation-1"


@dataclass(frozen=True)
class Timing:
    label: str
    seconds: float
    detail: str
    # CPU used, this process and PostgreSQL's backends: what a loaded machine cannot inflate.
    cpu_seconds: float = 0.0
    server_cpu_seconds: float = 0.0


@asynccontextmanager
async def database(kind: str) -> AsyncIterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
        return
    import asyncpg

    url = make_url(PG_URL)
    admin = await asyncpg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or os.environ.get("USER", "postgres"),
        password=url.password,
        database=url.database or "postgres",
    )
    name = f"flex4grid_bench_{uuid.uuid4().hex[:10]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield (
            url.set(drivername="postgresql+asyncpg", database=name).render_as_string(
                hide_password=False
            )
        )
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def profile(rng: np.random.Generator, days: int) -> np.ndarray:
    """Quarter-hour kWh: a household's base load, an evening peak, noise; never dominant."""
    hours = np.arange(96) / 4
    shape = 0.08 + 0.25 * np.exp(-((hours - 19) ** 2) / 6) + 0.1 * np.exp(-((hours - 8) ** 2) / 3)
    scale = rng.uniform(0.6, 1.6)
    return np.clip(scale * shape * rng.uniform(0.7, 1.3, size=(days, 96)), 0, None)


async def ingest(store: Store, master: MasterKey, prosumers: int, days: int) -> Timing:
    started = time.perf_counter()
    now = MONTH + timedelta(days=40)
    rng = np.random.default_rng(13)
    first = MONTH.date()
    async with store.transaction() as tx:
        repo = DataRepository(tx.connection)
        wrapped = master.wrap(crypto.new_key(), crypto.recipient_key_label("bench"))
        await repo.add_recipient(
            Recipient(RecipientId("bench"), "benchmark", None, wrapped, master.key_id, 100.0, now)
        )
        rows: list[dict[str, object]] = []
        for n in range(prosumers):
            prosumer_id = ProsumerId(f"p{n:06d}")
            key = crypto.new_key()
            await repo.add_prosumer(
                Prosumer(prosumer_id, None, (AREA,), now, None),
                WrappedKey(master.wrap(key, crypto.prosumer_key_label(prosumer_id)), master.key_id),
            )
            await repo.add_grant(
                make_grant(
                    GrantId(f"g{n:06d}"),
                    prosumer_id,
                    RecipientId("bench"),
                    "planning",
                    Level.QUARTER_HOUR,
                    Access.AGGREGATE,
                    now,
                    now + timedelta(days=300),
                )
            )
            for d, values in enumerate(profile(rng, days)):
                day: date = first + timedelta(days=d)
                blob = crypto.seal(key, series.pack(values), crypto.day_aad(prosumer_id, day))
                rows.append(
                    {"prosumer_id": prosumer_id, "day": day, "blob": blob, "updated_at": now}
                )
            if len(rows) >= 5000:
                await tx.connection.execute(sa.insert(data_days), rows)
                rows = []
        if rows:
            await tx.connection.execute(sa.insert(data_days), rows)
    seconds = time.perf_counter() - started
    return Timing(
        "ingest",
        seconds,
        f"{prosumers} prosumers x {days} days = {prosumers * days} encrypted blobs",
    )


async def server_cpu(store: Store) -> float:
    """CPU seconds used so far by PostgreSQL's backends for this database (same host: /proc),
    so the figure can be told apart from time spent waiting for a loaded machine."""
    if store.is_sqlite:
        return 0.0
    async with store.transaction() as tx:
        pids = (
            await tx.connection.execute(
                sa.text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            )
        ).scalars()
        return sum(_cpu_of(pid) for pid in pids)


def _cpu_of(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0  # another host, or gone
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def size(store: Store) -> str:
    if store.is_sqlite:
        return "-"
    async with store.transaction() as tx:
        value = await tx.connection.scalar(sa.text("SELECT pg_total_relation_size('data_days')"))
    return f"{int(value or 0) / 2**20:.0f} MiB"


async def run(kind: str, prosumers: int, days: int) -> list[Timing]:
    timings: list[Timing] = []
    async with database(kind) as url:
        store = Store(url)
        try:
            await store.create_all()
            master = MasterKey(crypto.new_key())
            timings.append(await ingest(store, master, prosumers, days))
            timings.append(Timing("storage", 0.0, f"data_days {await size(store)}"))
            service = DataService(store, master)
            now = MONTH + timedelta(days=40)
            end = MONTH + timedelta(days=days)
            if days % 30 == 0 and days > 0:
                cases = [
                    (Level.QUARTER_HOUR, None),
                    (Level.DAILY, None),
                    (Level.MONTHLY, None),
                    (Level.DAILY, 1.0),
                ]
            else:
                cases = [(Level.QUARTER_HOUR, None), (Level.DAILY, None), (Level.DAILY, 1.0)]
            for level, epsilon in cases:
                window_end = MONTH.replace(month=5) if level is Level.MONTHLY else end
                server = await server_cpu(store)
                started, cpu = time.perf_counter(), time.process_time()
                result = await queries.aggregate(
                    service,
                    "bench",
                    "planning",
                    level,
                    AREA,
                    MONTH,
                    window_end,
                    now,
                    epsilon=epsilon,
                )
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
                server = await server_cpu(store) - server
                label = f"aggregate {level.name}" + ("" if epsilon is None else f" eps={epsilon}")
                timings.append(
                    Timing(
                        label,
                        seconds,
                        f"{result.members} members, {len(result.buckets)} buckets",
                        cpu,
                        server,
                    )
                )
        finally:
            await store.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--prosumers", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="200 prosumers x 3 days")
    args = parser.parse_args()
    prosumers, days = (200, 3) if args.quick else (args.prosumers, args.days)
    timings = asyncio.run(run(args.db, prosumers, days))
    load = os.getloadavg()[0]
    print(f"data service benchmark on {args.db} ({os.cpu_count()} CPUs, load {load:.1f})")
    for timing in timings:
        cpu = (
            f"(CPU: here {timing.cpu_seconds:.2f} s, PostgreSQL {timing.server_cpu_seconds:.2f} s)"
            if timing.cpu_seconds
            else ""
        )
        print(f"  {timing.label:<28} {timing.seconds:8.2f} s   {timing.detail} {cpu}")


if __name__ == "__main__":
    main()
