"""The data service's rules are pure: importing one brings in no I/O framework."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PURE = [
    "dataservice.consent",
    "dataservice.anonymity",
    "dataservice.pseudonyms",
    "dataservice.privacy",
    "dataservice.series",
]


@pytest.mark.parametrize("module", PURE)
def test_a_rule_module_imports_no_io_framework(module: str) -> None:
    code = (
        f"import importlib, json, sys; importlib.import_module({module!r}); "
        "print(json.dumps([m for m in ('aiohttp', 'sqlalchemy', 'asyncio') if m in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(result.stdout) == []
