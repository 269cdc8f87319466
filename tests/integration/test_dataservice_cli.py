"""`flex4grid data ...` on a migrated SQLite database, in-process: a prosumer's life from
registration through ingest, consent, audit and export to erasure."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from dataservice.store.tables import data_days, data_prosumer_keys
from flex4grid.cli import main
from oadr.model import VenId
from tests.factories import make_data_report
from vtn.store import migrate
from vtn.store.db import Store
from vtn.vens import Status, VenRecord

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
START = NOW.replace(hour=0, minute=0) - timedelta(days=1)


async def prepare(url: str) -> None:
    await migrate.upgrade(url)
    store = Store(url)
    try:
        async with store.transaction() as tx:
            await tx.vens.save(
                VenRecord(
                    ven_id=VenId("ven-1"),
                    fingerprint="F" * 29,
                    ven_name="house",
                    status=Status.APPROVED,
                    created_at=NOW,
                )
            )
            await tx.readings.add(
                "ven-1",
                make_data_report(values=[4000.0] * 30, start=START),
                {},
                NOW - timedelta(minutes=5),
            )
    finally:
        await store.close()


async def count(url: str, table: sa.Table) -> int:
    store = Store(url)
    try:
        async with store.transaction() as tx:
            query = sa.select(sa.func.count()).select_from(table)
            return int((await tx.connection.execute(query)).scalar_one())
    finally:
        await store.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["data", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_prosumers_life_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'vtn.db'}"
    asyncio.run(prepare(url))
    db = ["--db", url]
    key = tmp_path / "master.key"
    assert run(capsys, "keygen", str(key))[0] == 0
    assert key.stat().st_mode & 0o777 == 0o600

    # Without the master key nothing can be encrypted; the error is one line.
    code, _, err = run(capsys, "prosumer", "add", "home-1", "--ven", "ven-1", *db)
    assert code == 1 and "no master key" in err and "Traceback" not in err

    monkeypatch.setenv("FLEX4GRID_DATA_KEY_FILE", str(key))
    assert run(capsys, "prosumer", "add", "home-1", "--ven", "ven-1", "--area", "cp-1", *db)[0] == 0
    assert run(capsys, "recipient", "add", "lab", "--name", "Uni lab", *db)[0] == 0
    code, out, _ = run(capsys, "ingest", "--purge-source", *db)
    assert code == 0 and "ingested 30 reading(s) of 1 prosumer(s)" in out and "30 purged" in out

    code, out, _ = run(
        capsys,
        "grant",
        "home-1",
        "lab",
        "--purpose",
        "study",
        "--level",
        "DAILY",
        "--access",
        "individual",
        *db,
    )
    assert code == 0
    grant_id = out.split()[1].rstrip(":")
    code, out, _ = run(capsys, "grants", "home-1", *db)
    assert grant_id in out and "live" in out
    assert run(capsys, "revoke", grant_id, *db)[0] == 0
    assert "revoked" in run(capsys, "grants", "home-1", *db)[1]

    code, out, _ = run(capsys, "export", "home-1", "--format", "csv", *db)
    rows = list(csv.DictReader(io.StringIO(out)))
    # 30 minutes at 4 kW: 1 kWh in each of two quarter-hours.
    assert [(r["start"], float(r["energy_kwh"])) for r in rows] == [
        (START.isoformat(), pytest.approx(1.0)),
        ((START + timedelta(minutes=15)).isoformat(), pytest.approx(1.0)),
    ]

    new_key = tmp_path / "master-2.key"
    assert run(capsys, "keygen", str(new_key))[0] == 0
    code, out, _ = run(capsys, "rotate-key", "--new-key-file", str(new_key), *db)
    assert code == 0 and "re-wrapped 1 prosumer and 1 recipient key(s)" in out
    monkeypatch.setenv("FLEX4GRID_DATA_KEY_FILE", str(new_key))
    code, _, err = run(capsys, "export", "home-1", "--key-file", str(key), *db)
    assert code == 1 and "wrapped by master key" in err  # the old key no longer opens it
    assert run(capsys, "export", "home-1", *db)[0] == 0

    code, out, _ = run(capsys, "audit", "--prosumer", "home-1", *db)
    actions = [line.split()[2] for line in out.splitlines()]
    assert actions == ["prosumer.add", "grant", "revoke", "export", "export"]  # not the failed one

    code, _, err = run(capsys, "erase", "home-1", *db)
    assert code == 1 and "--yes" in err
    code, out, _ = run(capsys, "erase", "home-1", "--yes", *db)
    assert code == 0 and "key shredded" in out
    assert asyncio.run(count(url, data_days)) == 0
    assert asyncio.run(count(url, data_prosumer_keys)) == 0
    code, _, err = run(capsys, "export", "home-1", *db)
    assert code == 1 and "no prosumer" in err
