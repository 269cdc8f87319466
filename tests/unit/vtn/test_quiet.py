"""The quiet-poll memory's rules (vtn/quiet.py, vtn/store/changes.py), without a database."""

from __future__ import annotations

from datetime import UTC, datetime

from vtn.quiet import QuietPolls, key_of
from vtn.store.changes import ChangeSequence
from vtn.store.db import Store
from vtn.vens import Status, VenRecord

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def ven(ven_id: str) -> VenRecord:
    return VenRecord(
        ven_id=ven_id, fingerprint=f"FP:{ven_id}", ven_name=ven_id, status=Status.APPROVED,
        created_at=NOW,
    )  # fmt: skip


def test_no_token_before_the_counter_was_read_or_once_reads_lapse() -> None:
    changes = ChangeSequence(trust_for=2.0)
    assert changes.token(at=100.0) is None
    changes.refreshed(7, at=100.0)
    assert changes.token(at=101.9) == (7, 0)
    assert changes.token(at=102.1) is None, "the database has been silent too long"


def test_a_local_commit_changes_the_token_at_once() -> None:
    changes = ChangeSequence()
    changes.refreshed(3, at=0.0)
    before = changes.token(at=0.0)
    changes.committed_locally()
    assert changes.token(at=0.0) != before


def test_memory_answers_only_under_the_token_it_was_filled_with() -> None:
    quiet = QuietPolls(Store("sqlite+aiosqlite:///unused.db"))
    key = key_of("FP:a", "a")
    quiet.remember(key, (1, 0), ven("a"))
    assert quiet.lookup(key, (1, 0)) == ven("a")
    assert quiet.lookup(key, (2, 0)) is None
    assert quiet.lookup(key, (1, 1)) is None
    assert quiet.lookup(key, None) is None
    assert quiet.lookup(key_of("FP:b", "a"), (1, 0)) is None, "another certificate"


def test_insecure_http_keys_by_ven_id_and_nothing_keys_nothing() -> None:
    assert key_of(None, "a") == ("ven_id", "a")
    assert key_of("FP", "a") == ("fingerprint", "FP")
    assert key_of(None, None) is None


def test_memory_is_bounded() -> None:
    quiet = QuietPolls(Store("sqlite+aiosqlite:///unused.db"), capacity=3)
    for name in "abcd":
        quiet.remember(key_of(None, name), (0, 0), ven(name))
    assert quiet.lookup(key_of(None, "d"), (0, 0)) == ven("d")
    assert quiet.lookup(key_of(None, "a"), (0, 0)) is None
