"""How many PostgreSQL connections `vtn serve` may open, and when the server has too few."""

from __future__ import annotations

import pytest

from vtn.serve import ServeOptions, connection_shortfall, connections_needed

PG = "postgresql://flex4grid@db/flex4grid"


@pytest.mark.parametrize(
    ("workers", "per_worker", "needed"),
    [(1, 30, 30), (2, 30, 62), (4, 10, 44)],  # several workers: + 1 each for wake-ups
)
def test_connections_needed(workers: int, per_worker: int, needed: int) -> None:
    options = ServeOptions(database_url=PG, workers=workers, db_connections=per_worker)
    assert connections_needed(options) == needed


def test_the_default_pools_of_two_workers_fit_a_default_server() -> None:
    needed = connections_needed(ServeOptions(database_url=PG, workers=2))
    assert connection_shortfall(needed, max_connections=100, reserved=3, others=5) is None


def test_too_few_connections_are_explained() -> None:
    needed = connections_needed(ServeOptions(database_url=PG, workers=4))  # 4 x 31
    text = connection_shortfall(needed, max_connections=100, reserved=3, others=7)
    assert text is not None
    assert "may open 124" in text and "room for 90" in text and "max_connections 100" in text
    # Exactly enough room is enough.
    assert connection_shortfall(90, max_connections=100, reserved=3, others=7) is None
