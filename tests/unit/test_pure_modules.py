"""Pure modules stay pure: importing one in a fresh interpreter brings in no I/O framework.

The protocol and market rules must be usable (and testable) without aiohttp, SQLAlchemy or an
event loop; only the thin adapters may pull those in.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

import oadr

FORBIDDEN = ("aiohttp", "sqlalchemy", "asyncio")

# Every module of the protocol core, found rather than listed, so a new one is covered too;
# plus the pure rules of the other packages.
PURE_MODULES = sorted(
    [f"oadr.{m.name}" for m in pkgutil.iter_modules(oadr.__path__)]
    + ["vtn.vens", "vtn.delivery", "vtn.reporting", "ven.model", "ven.han.devices",
       "ven.han.household", "ven.session", "ven.state", "ven.schedule", "ven.reporting",
       "ven.outbox", "ven.policy", "ven.control"]
)  # fmt: skip


def _imported_after(module: str) -> list[str]:
    code = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        f"print(json.dumps([m for m in {FORBIDDEN!r} if m in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    found: list[str] = json.loads(result.stdout)
    return found


def test_the_protocol_core_is_found() -> None:
    assert {"oadr.model", "oadr.codec", "oadr.signing"} <= set(PURE_MODULES)


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_module_imports_no_io_framework(module: str) -> None:
    assert _imported_after(module) == []


def test_the_check_detects_an_impure_import() -> None:
    """The check itself can fail: a module that imports asyncio is caught."""
    assert _imported_after("asyncio.queues") == ["asyncio"]
