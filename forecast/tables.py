"""The forecast's database tables (SQLAlchemy Core) on the VTN's own `metadata`: one database,
one Alembic history (migrations/versions/0004_forecast.py creates them; migrations/env.py
imports this module so Alembic sees them). Kept apart from forecast/store.py so migrating does
not load the models' numerical stack.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, Index, Integer, String, Table

from vtn.store.tables import ID, SERIAL, TIME, metadata

forecasts = Table(
    "forecasts",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("point_id", ID, nullable=False),
    Column("model", String(64), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("data_version", String(64), nullable=False),
    Column("issued_at", TIME, nullable=False),  # the origin: readings known up to here
    Column("created_at", TIME, nullable=False),
    Column("starts_at", TIME, nullable=False),
    Column("isp_s", Integer, nullable=False),
    Column("body", JSON, nullable=False),  # p10/p50/p90, capacity and lights per ISP
    Index(None, "point_id", "created_at"),
)

forecast_actions = Table(
    "forecast_actions",
    metadata,
    Column("point_id", ID, primary_key=True),
    Column("window_start", TIME, primary_key=True),
    Column("window_end", TIME, nullable=False),
    Column("action", String(16), nullable=False),  # congestion.Action
    Column("reference", ID, nullable=False),  # the flex request's or the event's id
    Column("forecast_id", Integer, nullable=False),
    Column("needed_kw", JSON, nullable=False),
    Column("created_at", TIME, nullable=False),
)
