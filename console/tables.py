"""The console's database schema (SQLAlchemy Core) on the VTN's own `metadata`: one database, one
Alembic history (migrations/versions/0006_console.py creates these tables).

Passwords and session ids are stored only as hashes: a copy of the database logs nobody in.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, Table

from vtn.store.tables import ID, TIME, metadata

console_users = Table(
    "console_users",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("password_hash", String(128), nullable=False),  # scrypt$n$r$p$salt$hash
    Column("role", String(16), nullable=False),  # console.accounts.Role
    Column("subject", ID),  # aggregator id (aggregator) or venID (prosumer); None: operator
    Column("created_at", TIME, nullable=False),
    Column("disabled_at", TIME),
    Column("failed_logins", Integer, nullable=False),  # consecutive, since the last success
    Column("locked_until", TIME),
)

console_sessions = Table(
    "console_sessions",
    metadata,
    Column("session_hash", String(64), primary_key=True),  # sha256 of the cookie's random id
    Column(
        "username",
        String(64),
        ForeignKey("console_users.username", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", TIME, nullable=False),
    Column("last_seen_at", TIME, nullable=False),
    Index(None, "username"),
)

# A prosumer's own settings (how involved it wants to be); keyed by its venID.
console_preferences = Table(
    "console_preferences",
    metadata,
    Column("ven_id", ID, primary_key=True),
    Column("body", JSON, nullable=False),
    Column("updated_at", TIME, nullable=False),
)

__all__ = ["console_preferences", "console_sessions", "console_users"]
