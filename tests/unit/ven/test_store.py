"""The gateway's durable state: what was saved survives the process, including a kill -9."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

from oadr.model import Event
from tests.factories import make_event
from ven.store import GatewayStore

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


@dataclasses.dataclass(frozen=True)
class State:
    ven_id: str | None
    events: tuple[Event, ...]
    buffered: tuple[float, ...]


def test_saved_state_comes_back_equal(tmp_path: Path) -> None:
    state = State(ven_id="ven-1", events=(make_event(),), buffered=(1.5, 2.25))
    store = GatewayStore(tmp_path / "gateway.db", State)
    assert store.load() is None
    assert store.save(state, NOW)
    store.close()
    reopened = GatewayStore(tmp_path / "gateway.db", State)
    assert reopened.load() == state


def test_an_unchanged_state_is_not_written_again(tmp_path: Path) -> None:
    store = GatewayStore(tmp_path / "gateway.db", State)
    state = State(ven_id=None, events=(), buffered=())
    assert store.save(state, NOW)
    assert not store.save(state, NOW + timedelta(seconds=1))
    assert store.save(dataclasses.replace(state, ven_id="ven-1"), NOW)


def test_journal_lists_newest_first_and_filters_by_kind(tmp_path: Path) -> None:
    store = GatewayStore(tmp_path / "gateway.db", State)
    store.journal(NOW, "decision", "optIn: reachable", event_id="e1")
    store.journal(NOW + timedelta(seconds=1), "command", "heat pump setpoint 19.0")
    store.journal(NOW + timedelta(seconds=2), "decision", "optOut: too long", event_id="e2")
    assert [e.text for e in store.recent()] == [
        "optOut: too long",
        "heat pump setpoint 19.0",
        "optIn: reachable",
    ]
    (latest, older) = store.recent(kind="decision")
    assert latest.detail == {"event_id": "e2"} and older.at == NOW


def test_a_save_that_returned_survives_kill_9(tmp_path: Path) -> None:
    """A child process saves, says so, and is killed at once: the state is there."""
    script = textwrap.dedent(
        f"""
        import dataclasses, sys, time
        from datetime import UTC, datetime
        from pathlib import Path
        from ven.store import GatewayStore

        @dataclasses.dataclass(frozen=True)
        class State:
            counter: int

        store = GatewayStore(Path({str(tmp_path / "gateway.db")!r}), State)
        for n in range(1, 1_000_000):
            store.save(State(counter=n), datetime.now(UTC))
            print(n, flush=True)
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert child.stdout is not None
    acknowledged = 0
    for line in child.stdout:
        acknowledged = int(line)
        if acknowledged >= 50:
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()

    @dataclasses.dataclass(frozen=True)
    class Counter:
        counter: int

    store = GatewayStore(tmp_path / "gateway.db", Counter)
    recovered = store.load()
    store.close()
    assert recovered is not None and recovered.counter >= acknowledged
