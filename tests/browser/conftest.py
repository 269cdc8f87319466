"""Headless Chromium for the console's browser tests: Debian's `chromium`, driven by
Playwright's async API with its executablePath. Where there is no chromium, the tests skip with
the reason, unless FLEX4GRID_REQUIRE_SERVICES=1 (CI), which makes that a failure (as
tests/integration/conftest.py does for PostgreSQL)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

REQUIRE_SERVICES = os.environ.get("FLEX4GRID_REQUIRE_SERVICES") == "1"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def _unavailable(why: str) -> None:
    message = f"chromium not available: {why}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " (FLEX4GRID_REQUIRE_SERVICES=1)")
    pytest.skip(message)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        _unavailable("no `chromium` on PATH (apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:
        _unavailable(f"python playwright is not installed ({exc})")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
