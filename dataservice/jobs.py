"""Housekeeping that runs inside the VTN process: ingest new VEN readings and enforce the
retention limit, every `interval`.

Safe with several workers: ingest takes an advisory lock on PostgreSQL (and SQLite has one
writer), and purging what is already purged deletes nothing. A failed round is logged and the
next one tries again; the loop stops with the app.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from dataservice import ingest
from dataservice.service import DataService

log = logging.getLogger("flex4grid.dataservice")


@dataclass(frozen=True)
class Housekeeping:
    interval: timedelta = timedelta(minutes=15)
    retention: timedelta | None = None  # None: keep readings until erased
    ingest: bool = True
    purge_source: bool = True  # drop the VTN's plaintext copies once encrypted


async def round_once(service: DataService, plan: Housekeeping, now: datetime) -> None:
    if plan.ingest:
        done = await ingest.from_vtn(service, now, purge_source=plan.purge_source)
        if done.readings:
            log.info("ingested %d readings into %d prosumer-days", done.readings, done.days)
    if plan.retention is not None:
        purged = await service.purge(plan.retention, "service:retention", now)
        if purged:
            log.info("retention: purged %d prosumer-days", purged)


async def run(service: DataService, plan: Housekeeping, clock: Callable[[], datetime]) -> None:
    while True:
        try:
            await round_once(service, plan, clock())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("data service housekeeping failed; retrying in %s", plan.interval)
        await asyncio.sleep(plan.interval.total_seconds())
