"""Fixtures for the interop tests: the integration tests' databases (SQLite and PostgreSQL)."""

from __future__ import annotations

from tests.integration.conftest import database_url

__all__ = ["database_url"]
