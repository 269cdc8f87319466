"""Stored forecasts and the actions taken on them, on the VTN's database (migration 0004).

A forecast row keeps what made it: the model's name and version, and the data version (a
fingerprint of the load series it was made from plus the cut-off time), so any number on the
admin API can be traced to its inputs. An action row is the DSO's decision for one red window of
one point; its key (point, window start) makes a second action for the same window fail in the
database too, not only in `congestion.plan`.

The tables (forecast/tables.py) sit on the VTN's metadata: one database, one Alembic history.
The repository maps rows to values and decides nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from forecast.congestion import Light, Taken
from forecast.models import Forecast
from forecast.series import Sample
from forecast.tables import forecast_actions, forecasts
from vtn.store.tables import readings


@dataclass(frozen=True, slots=True)
class StoredForecast:
    forecast_id: int
    point_id: str
    forecast: Forecast
    data_version: str
    created_at: datetime
    capacity_kw: tuple[float, ...]
    lights: tuple[Light, ...]


@dataclass(frozen=True, slots=True)
class ActionRecord:
    point_id: str
    window_start: datetime
    window_end: datetime
    action: str
    reference: str
    forecast_id: int
    needed_kw: tuple[float, ...]
    created_at: datetime


class Forecasts:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def add(
        self,
        point_id: str,
        forecast: Forecast,
        *,
        data_version: str,
        capacity_kw: Sequence[float],
        lights: Sequence[Light],
        now: datetime,
    ) -> int:
        body = {
            "p10_kw": list(forecast.p10_kw),
            "p50_kw": list(forecast.p50_kw),
            "p90_kw": list(forecast.p90_kw),
            "capacity_kw": list(capacity_kw),
            "lights": [light.value for light in lights],
        }
        result = await self.connection.execute(
            insert(forecasts)
            .values(
                point_id=point_id,
                model=forecast.model,
                model_version=forecast.model_version,
                data_version=data_version,
                issued_at=forecast.issued_at,
                created_at=now,
                starts_at=forecast.start,
                isp_s=int(forecast.isp.total_seconds()),
                body=body,
            )
            .returning(forecasts.c.id)
        )
        return int(result.scalar_one())

    async def latest(self, point_id: str) -> StoredForecast | None:
        row = (
            (
                await self.connection.execute(
                    select(forecasts)
                    .where(forecasts.c.point_id == point_id)
                    .order_by(forecasts.c.created_at.desc(), forecasts.c.id.desc())
                    .limit(1)
                )
            )
            .mappings()
            .first()
        )
        return None if row is None else _stored(row)

    async def latest_per_point(self) -> list[StoredForecast]:
        newest = select(func.max(forecasts.c.id)).group_by(forecasts.c.point_id)
        rows = await self.connection.execute(
            select(forecasts).where(forecasts.c.id.in_(newest)).order_by(forecasts.c.point_id)
        )
        return [_stored(row) for row in rows.mappings()]

    async def add_action(self, record: ActionRecord) -> None:
        await self.connection.execute(
            insert(forecast_actions).values(
                point_id=record.point_id,
                window_start=record.window_start,
                window_end=record.window_end,
                action=record.action,
                reference=record.reference,
                forecast_id=record.forecast_id,
                needed_kw=list(record.needed_kw),
                created_at=record.created_at,
            )
        )

    async def taken(self, point_id: str, since: datetime) -> list[Taken]:
        """Actions for the point's windows that end after `since` (older ones cannot overlap)."""
        rows = await self.connection.execute(
            select(forecast_actions).where(
                and_(
                    forecast_actions.c.point_id == point_id,
                    forecast_actions.c.window_end > since,
                )
            )
        )
        return [
            Taken(row["point_id"], row["window_start"], row["window_end"], row["reference"])
            for row in rows.mappings()
        ]

    async def actions(self, point_id: str | None = None) -> list[ActionRecord]:
        query = select(forecast_actions).order_by(forecast_actions.c.window_start)
        if point_id is not None:
            query = query.where(forecast_actions.c.point_id == point_id)
        return [
            ActionRecord(
                point_id=row["point_id"],
                window_start=row["window_start"],
                window_end=row["window_end"],
                action=row["action"],
                reference=row["reference"],
                forecast_id=row["forecast_id"],
                needed_kw=tuple(row["needed_kw"]),
                created_at=row["created_at"],
            )
            for row in (await self.connection.execute(query)).mappings()
        ]

    async def samples(
        self,
        ven_ids: Sequence[str],
        start: datetime,
        end: datetime,
        *,
        r_id_suffix: str = ".power",
        default_duration: timedelta = timedelta(minutes=15),
    ) -> list[Sample]:
        """Power readings (kW) of these VENs starting in [start, end), one member per VEN and
        rID (a VEN with a PV inverter and a heat pump reports both; they add up)."""
        if not ven_ids:
            return []
        query = select(
            readings.c.ven_id,
            readings.c.r_id,
            readings.c.starts_at,
            readings.c.duration_s,
            readings.c.value,
            readings.c.received_at,
        ).where(
            and_(
                readings.c.ven_id.in_(list(ven_ids)),
                readings.c.starts_at >= start,
                readings.c.starts_at < end,
                readings.c.value.is_not(None),
                readings.c.r_id.endswith(r_id_suffix),
            )
        )
        return [
            Sample(
                member=f"{row.ven_id}/{row.r_id}",
                start=row.starts_at,
                duration=default_duration
                if not row.duration_s
                else timedelta(seconds=row.duration_s),
                power_kw=float(row.value),
                received_at=row.received_at,
            )
            for row in await self.connection.execute(query)
        ]


def _stored(row: Any) -> StoredForecast:
    body = row["body"]
    forecast = Forecast(
        start=row["starts_at"],
        isp=timedelta(seconds=row["isp_s"]),
        p10_kw=tuple(body["p10_kw"]),
        p50_kw=tuple(body["p50_kw"]),
        p90_kw=tuple(body["p90_kw"]),
        model=row["model"],
        model_version=row["model_version"],
        issued_at=row["issued_at"],
    )
    return StoredForecast(
        forecast_id=row["id"],
        point_id=row["point_id"],
        forecast=forecast,
        data_version=row["data_version"],
        created_at=row["created_at"],
        capacity_kw=tuple(body["capacity_kw"]),
        lights=tuple(Light(light) for light in body["lights"]),
    )
