"""How the suite is shared among pytest-xdist's workers (`tests/scheduling.py`)."""

from __future__ import annotations

import pytest

from tests import scheduling


def test_tests_that_share_a_fixture_run_on_one_worker(request: pytest.FixtureRequest) -> None:
    # Every test this session collected (in a parallel run each worker collects the whole suite),
    # so a run of this file alone checks only itself.
    assert scheduling.unshared(list(request.session.items)) == [], (
        "add these files to SHARE_A_WORKER in tests/scheduling.py"
    )


@pytest.mark.parametrize(
    ("nodeid", "unit"),
    [
        (
            "tests/integration/test_demo.py::test_market_every_ven_registers_at_the_aggregator",
            "tests/integration/test_demo.py::",
        ),
        (
            "tests/integration/test_aggregator_chain.py::test_aggregator_run_serves_from_a_toml_file_until_sigterm",
            "tests/integration/test_aggregator_chain.py::",
        ),
        (
            "tests/unit/oadr/test_codec.py::test_any_payload_survives_encode_then_decode",
            "tests/unit/oadr/test_codec.py::",
        ),
        (
            "tests/integration/test_market_api.py::test_steps_go_in_order[sqlite]",
            "tests/integration/test_market_api.py::test_steps_go_in_order[sqlite]",
        ),
    ],
    ids=["demo", "chain", "module-fixture", "alone"],
)
def test_a_test_goes_to_a_worker_with_its_unit(nodeid: str, unit: str) -> None:
    assert scheduling.unit_of(nodeid) == unit


def test_the_real_time_tests_are_marked(request: pytest.FixtureRequest) -> None:
    # `scripts/dev test` runs them apart (-m realtime), after the rest (-m "not realtime").
    for item in request.session.items:
        marked = item.get_closest_marker("realtime") is not None
        assert marked == scheduling.is_realtime(item.nodeid), item.nodeid
