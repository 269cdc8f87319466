"""Certificates made at a fixed NOW, so unit tests never read the clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from certs.dev import DevPki, make_dev_pki
from tests.unit.certs.factories import NOW


@pytest.fixture(scope="module")
def fixed_pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    """Read-only: made at NOW, shared by a module."""
    return make_dev_pki(tmp_path_factory.mktemp("fixed-pki"), now=NOW)


@pytest.fixture
def own_pki(tmp_path: Path) -> DevPki:
    """A PKI this test may revoke and rotate in."""
    return make_dev_pki(tmp_path / "pki", now=NOW)
