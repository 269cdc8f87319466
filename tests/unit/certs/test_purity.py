"""The pure parts of `certs` must not drag in an event loop, a web framework or a database."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import certs

ADAPTERS = {"certs.aiohttp_guard"}  # the one module allowed to import aiohttp
FORBIDDEN = ("aiohttp", "asyncio", "sqlalchemy")
# Found rather than listed, so a new module is covered too.
PURE_MODULES = sorted(
    f"certs.{m.name}"
    for m in pkgutil.iter_modules(certs.__path__)
    if f"certs.{m.name}" not in ADAPTERS
)


def _imported_after(module: str) -> list[str]:
    probe = f"import sys, {module}; print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return [name for name in result.stdout.strip().split(",") if name]


def test_every_module_is_found() -> None:
    assert {"certs.ca", "certs.trust", "certs.tls", "certs.cli"} <= set(PURE_MODULES)


@pytest.mark.parametrize("module", PURE_MODULES)
def test_module_imports_nothing_impure(module: str) -> None:
    assert _imported_after(module) == []


def test_the_probe_sees_the_aiohttp_adapter_import_aiohttp() -> None:
    assert "aiohttp" in _imported_after("certs.aiohttp_guard")
