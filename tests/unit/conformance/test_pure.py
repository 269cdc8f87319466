"""The harness's pure modules (cases, verdicts, reports, the table) import no I/O framework."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FORBIDDEN = ("aiohttp", "sqlalchemy", "asyncio")


@pytest.mark.parametrize("module", ["conformance.model", "conformance.report", "conformance.table"])
def test_pure_module_imports_no_io_framework(module: str) -> None:
    code = (
        f"import importlib, json, sys\nimportlib.import_module({module!r})\n"
        f"print(json.dumps([m for m in {FORBIDDEN!r} if m in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(result.stdout) == []
