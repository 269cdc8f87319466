"""The market's rules are pure: importing one in a fresh interpreter brings in no I/O framework."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FORBIDDEN = ("aiohttp", "asyncio", "sqlalchemy")
PURE_MODULES = (
    "market.model",
    "market.errors",
    "market.lifecycle",
    "market.clearing",
    "market.baseline",
    "market.settlement",
)


def _imported_after(module: str) -> list[str]:
    probe = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        f"print(json.dumps([m for m in {FORBIDDEN!r} if m in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    found: list[str] = json.loads(result.stdout)
    return found


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_module_imports_no_io_framework(module: str) -> None:
    assert _imported_after(module) == []


def test_the_probe_sees_the_uftp_adapter_bring_in_asyncio() -> None:
    # shapeshifter-uftp ships its FastAPI service in the same package: the adapter is impure,
    # which is why it is not in PURE_MODULES and the pure rules never import it.
    assert "asyncio" in _imported_after("market.uftp")
