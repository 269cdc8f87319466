"""Ingest from the VTN's report store: the readings VENs send become prosumers' encrypted days.

A VEN maps to a prosumer (`data_prosumers.ven_id`). Readings are taken in id order after a
durable mark, so each is added exactly once (a quarter-hour's minute readings may arrive over
several runs and are summed). Power readings (W, the mean over the reading's interval, which is
what our VENs report) become energy: W x seconds / 3.6e6 kWh. With `purge_source` the VTN's
plaintext copies of what was ingested are deleted in the same transaction, so the readings then
exist only encrypted. Readings of VENs that belong to no prosumer are left alone, and the mark
moves past them: a VEN mapped to a prosumer later contributes from then on, not before.

Ids are handed out before commit, so on PostgreSQL a reading with a lower id can become visible
after one with a higher id. Only readings received more than `settle` ago are taken, so a
mark never passes a reading whose transaction was still open (the VTN's take milliseconds).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from dataservice import series
from dataservice.service import DataService, entry
from dataservice.store.repository import DataRepository

SOURCE = "vtn-readings"
_LOCK_KEY = 0x46344744617461  # "F4GData": one ingest at a time on PostgreSQL
SETTLE = timedelta(minutes=1)


class Unit(StrEnum):
    W = "W"  # mean power over the reading's interval
    WH = "Wh"
    KWH = "kWh"


def energy_kwh(value: float, duration: timedelta, unit: Unit) -> float:
    if unit is Unit.W:
        return value * duration.total_seconds() / 3.6e6
    if unit is Unit.WH:
        return value / 1000
    return value


@dataclass(frozen=True, slots=True)
class Ingested:
    readings: int
    prosumers: int
    days: int
    unmapped: int  # readings of VENs that belong to no prosumer (left in place)
    purged: int


async def from_vtn(
    service: DataService,
    now: datetime,
    *,
    r_id: str | None = None,
    unit: Unit = Unit.W,
    purge_source: bool = False,
    batch: int = 5000,
    settle: timedelta = SETTLE,
) -> Ingested:
    total = Ingested(0, 0, 0, 0, 0)
    while True:
        done = await _batch(service, now, r_id, unit, purge_source, batch, now - settle)
        total = Ingested(*(a + b for a, b in zip(_astuple(total), _astuple(done), strict=True)))
        if done.readings + done.unmapped < batch:
            return total


def _astuple(value: Ingested) -> tuple[int, int, int, int, int]:
    return (value.readings, value.prosumers, value.days, value.unmapped, value.purged)


async def _batch(
    service: DataService,
    now: datetime,
    r_id: str | None,
    unit: Unit,
    purge: bool,
    batch: int,
    received_before: datetime,
) -> Ingested:
    async with service.store.transaction() as tx:
        repo = DataRepository(tx.connection)
        if repo.is_postgresql:
            await tx.connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
        mark = await repo.ingest_mark(SOURCE)
        rows = await repo.vtn_readings_after(mark, r_id, batch, received_before)
        if not rows:
            return Ingested(0, 0, 0, 0, 0)
        owners: dict[str, str | None] = {}
        per_prosumer: dict[str, list[series.Reading]] = defaultdict(list)
        ingested_ids: list[int] = []
        unmapped = 0
        for reading_id, ven_id, start, duration_s, value in rows:
            if ven_id not in owners:
                prosumer = await repo.prosumer_of_ven(ven_id)
                live = prosumer is not None and prosumer.erased_at is None
                owners[ven_id] = prosumer.prosumer_id if live and prosumer else None
            owner = owners[ven_id]
            if owner is None:
                unmapped += 1
                continue
            duration = timedelta(seconds=duration_s)
            per_prosumer[owner].append(
                series.Reading(start, duration, energy_kwh(value, duration, unit))
            )
            ingested_ids.append(reading_id)
        days = 0
        for prosumer_id, readings in per_prosumer.items():
            days += await service.put_days(
                repo, prosumer_id, series.to_days(readings), now, add=True
            )
        await repo.set_ingest_mark(SOURCE, rows[-1][0], now)
        purged = await repo.delete_vtn_readings_by_id(ingested_ids) if purge else 0
        await repo.log(
            entry(
                now,
                "service:ingest",
                "ingest",
                detail={"readings": len(ingested_ids), "prosumers": len(per_prosumer),
                        "days": days, "unmapped": unmapped, "purged": purged},
            )
        )  # fmt: skip
    return Ingested(len(ingested_ids), len(per_prosumer), days, unmapped, purged)
