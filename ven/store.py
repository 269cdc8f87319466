"""The gateway's own durable state: one SQLite file in the VEN's state directory.

The VEN session's whole state (registration, events and their randomized starts, opt decisions,
report requests, unsent readings) is one value; the runner saves it before it sends or
acknowledges anything, so after a kill -9 or a power cut the VEN resumes exactly where its last
acknowledgement left it. A journal keeps what the household should be able to read later: each
opt decision with its reason, each device command, each outage.

SQLite in WAL mode with synchronous=FULL: a save that returned survives a power cut. Writes are
small (a few kB of JSON) and happen only when the state changed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from ven import jsonform

_S = TypeVar("_S")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS session_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    saved_at TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class JournalEntry:
    at: datetime
    kind: str  # "decision", "command", "outage", "registration", ...
    text: str
    detail: dict[str, Any]


class GatewayStore(Generic[_S]):
    """State of type `_S` (a frozen dataclass `ven.jsonform` can write) plus an append-only
    journal."""

    def __init__(self, path: Path, state_type: type[_S]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._state_type = state_type
        self._connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=FULL")
        self._connection.executescript(_SCHEMA)
        self._last_saved: bytes | None = None
        self._last_state: _S | None = None  # the value saved last (or loaded)

    def close(self) -> None:
        self._connection.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            yield self._connection
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")

    def load(self) -> _S | None:
        row = self._connection.execute("SELECT body FROM session_state WHERE id = 1").fetchone()
        if row is None:
            return None
        self._last_saved = row[0].encode()
        self._last_state = jsonform.loads(row[0], self._state_type)
        return self._last_state

    def save(self, state: _S, now: datetime) -> bool:
        """Make `state` durable; False (and no write) when it equals the last saved state."""
        if state is self._last_state:  # frozen: the very value saved last is unchanged
            return False
        body = jsonform.dumps(state)
        if body == self._last_saved:
            self._last_state = state
            return False
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO session_state (id, saved_at, body) VALUES (1, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET saved_at = excluded.saved_at, body = excluded.body",
                (now.isoformat(), body.decode()),
            )
        self._last_saved, self._last_state = body, state
        return True

    def journal(self, at: datetime, kind: str, text: str, **detail: Any) -> None:
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO journal (at, kind, text, detail) VALUES (?, ?, ?, ?)",
                (at.isoformat(), kind, text, json.dumps(detail, default=str)),
            )

    def recent(self, limit: int = 50, kind: str | None = None) -> list[JournalEntry]:
        """The newest journal entries first."""
        query = "SELECT at, kind, text, detail FROM journal"
        parameters: tuple[Any, ...] = ()
        if kind is not None:
            query += " WHERE kind = ?"
            parameters = (kind,)
        query += " ORDER BY id DESC LIMIT ?"
        rows = self._connection.execute(query, (*parameters, limit)).fetchall()
        return [
            JournalEntry(
                at=datetime.fromisoformat(at), kind=k, text=text, detail=json.loads(detail)
            )
            for at, k, text, detail in rows
        ]
