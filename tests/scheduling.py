"""How the suite is shared out among pytest-xdist's workers (`-n`, `--dist loadgroup` in
pyproject.toml): which tests run first, and which must run on one worker.

Each worker is a process of its own, so a fixture wider than a test (module, class, package) is
made once per worker that runs one of its tests; a demo run or a 22-VEN PKI made four times costs
minutes. The tests that share such a fixture therefore go to one worker as one unit; every other
test goes to whichever worker is free. xdist's own `loadgroup` reads `xdist_group` marks through
the node id, which pytest 9.2 no longer lets a plugin change (pytest-xdist issue #1386): the marks
are silently ignored. So this module decides the units by node id, in the controller, where the
scheduler runs; `tests/test_scheduling.py` fails when a test that shares a fixture is missing here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from xdist.scheduler import LoadScopeScheduling

# Real-time tests that each need most of a core to keep to their clocks (pilots of 10 households
# at 2000-3000x, 21 gateways polling every second, a load benchmark). Beside three busy workers
# on two cores their telemetry falls behind and they fail (seen in CI: the market demo and the
# aggregator chain, on a day the machine ran at half its usual speed). They are marked
# `realtime` (tests/conftest.py), and `scripts/dev test` runs them after the rest, two at a time
# (one per core), each file on one worker (module fixtures: the pilots' runs, chain_pki).
REALTIME = (
    "tests/integration/test_demo.py::",
    "tests/integration/test_aggregator_chain.py::",
    "tests/integration/test_benchmarks_quick.py::",
)

# Tests whose node id starts with one of these share a fixture wider than a test; each file's
# run on one worker, so the fixture is made once.
SHARE_A_WORKER = (
    "tests/integration/test_forecast_congestion.py::",  # predictor
    "tests/integration/test_market_e2e.py::",  # market_pki
    "tests/integration/test_vtn_faults.py::",  # vens_pki
    "tests/interop/test_signing_openleadr.py::",  # pem_keys
    "tests/unit/certs/test_ca.py::",  # fixed_pki
    "tests/unit/certs/test_fingerprint.py::",  # fixed_pki
    "tests/unit/certs/test_trust.py::",  # fixed_pki
    "tests/unit/forecast/test_models.py::",  # history
    "tests/unit/oadr/test_codec.py::",  # signing_key
    "tests/unit/oadr/test_hostile.py::",  # keys
    "tests/unit/oadr/test_signing.py::",  # keys
    "tests/unit/oadr/test_templates.py::",  # key
)

# The longest tests, longest first (alone on two cores: the demos ~100 s together, the chain
# ~50 s, then 33 s, 32 s, 30 s, 25 s and less). Workers take units in
# collection order, so these start at once and the many short tests fill in around them;
# otherwise the run ends waiting on a long test that started last. Most of their time is spent
# waiting on real peers, timers and subprocesses, not CPU. This changes only when a test runs,
# also in a serial run.
SLOWEST_FIRST = (
    "tests/integration/test_demo.py::test_market_",
    "tests/integration/test_demo.py::",
    "tests/integration/test_aggregator_chain.py::",
    "tests/interop/test_aggregator_openleadr.py::",
    "tests/interop/test_conformance_openleadr.py::",
    "tests/integration/test_benchmarks_quick.py::",
    "tests/integration/test_ven_outage.py::",
    "tests/integration/test_vtn_faults.py::",
    "tests/integration/test_conformance_ours.py::",
    "tests/integration/test_conformance_broken.py::",
    "tests/interop/test_ven_openleadr_vtn.py::",
    "tests/integration/test_ven_gateway.py::",
    "tests/integration/test_vtn_crash.py::",
    "tests/integration/test_forecast_congestion.py::",
    "tests/unit/forecast/test_models.py::",
)

WIDER_THAN_A_TEST = frozenset({"module", "class", "package"})


def unit_of(nodeid: str) -> str:
    """The unit a worker takes this test in: its file for a REALTIME test, its SHARE_A_WORKER
    prefix, or the test alone."""
    return next((p for p in REALTIME + SHARE_A_WORKER if nodeid.startswith(p)), nodeid)


def is_realtime(nodeid: str) -> bool:
    return nodeid.startswith(REALTIME)


def rank(item: pytest.Item) -> int:
    return next(
        (n for n, prefix in enumerate(SLOWEST_FIRST) if item.nodeid.startswith(prefix)),
        len(SLOWEST_FIRST),
    )


def shared_fixtures(item: pytest.Item) -> list[str]:
    """The fixtures wider than a test (not session: each worker has its own) this test uses."""
    info = getattr(item, "_fixtureinfo", None)  # pytest's FuncFixtureInfo, on every Function
    if info is None:
        return []
    return sorted(
        name
        for name, definitions in info.name2fixturedefs.items()
        if definitions and definitions[-1].scope in WIDER_THAN_A_TEST
    )


def unshared(items: list[pytest.Item]) -> list[str]:
    """Tests that use a fixture wider than a test but would go to a worker alone."""
    return [
        f"{item.nodeid} uses {', '.join(fixtures)}"
        for item in items
        if (fixtures := shared_fixtures(item)) and unit_of(item.nodeid) == item.nodeid
    ]


def make_scheduler(config: pytest.Config, log: Any) -> LoadScopeScheduling:
    from xdist.scheduler import LoadScopeScheduling

    class SharedFixtureScheduling(LoadScopeScheduling):
        """xdist's load-by-scope scheduling with `unit_of` as the scope."""

        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

    return SharedFixtureScheduling(config, log)
