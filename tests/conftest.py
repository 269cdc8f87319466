"""Fixtures shared by every test package, and the hooks that share the suite out among
pytest-xdist's workers (`tests/scheduling.py`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from certs.dev import DevPki, make_dev_pki
from tests import scheduling

# LightGBM's OpenMP threads spin while they wait for each other; beside the other workers on two
# cores that spinning takes the CPU they need (tests/unit/forecast/test_models.py: 14 s instead of
# 9 s next to two busy processes, twice the CPU). Passive waiting changes no result. Set before
# any test module loads libgomp, and inherited by the subprocesses tests start.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")


@pytest.hookimpl(tryfirst=True)  # marked before `-m` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=scheduling.rank)  # stable: every other test keeps its place
    for item in items:
        if scheduling.is_realtime(item.nodeid):
            item.add_marker(pytest.mark.realtime)


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's: absent with `-p no:xdist`
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadgroup":
        return None  # xdist's own
    return scheduling.make_scheduler(config, log)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    """One development PKI for the session (`certs.dev`): read it, do not revoke or rotate in it.

    A test that changes a CA makes its own with `make_dev_pki(tmp_path)`.
    """
    directory: Path = tmp_path_factory.mktemp("pki")
    return make_dev_pki(directory)
