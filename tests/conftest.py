"""Fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path

import pytest

from certs.dev import DevPki, make_dev_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    """One development PKI for the session (`certs.dev`): read it, do not revoke or rotate in it.

    A test that changes a CA makes its own with `make_dev_pki(tmp_path)`.
    """
    directory: Path = tmp_path_factory.mktemp("pki")
    return make_dev_pki(directory)
