"""The forecast's core is pure: importing one of its modules (and running a model, which loads
LightGBM, pvlib and demandlib) in a fresh interpreter brings in no I/O framework."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FORBIDDEN = ("aiohttp", "asyncio", "sqlalchemy")
PURE_MODULES = (
    "forecast.series",
    "forecast.features",
    "forecast.models",
    "forecast.simulate",
    "forecast.congestion",
    "forecast.backtest",
)


def _imported_after(code: str) -> list[str]:
    found_expr = f"[m for m in {FORBIDDEN!r} if m in sys.modules]"
    probe = f"import json, sys\n{code}\nprint(json.dumps({found_expr}))\n"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    found: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_module_imports_no_io_framework(module: str) -> None:
    assert _imported_after(f"import {module}") == []


def test_fitting_and_predicting_loads_no_io_framework_either() -> None:
    code = (
        "from datetime import datetime, UTC\n"
        "from forecast import models, simulate\n"
        "s = simulate.simulate(datetime(2026, 3, 2, tzinfo=UTC), 10)\n"
        "p = models.QuantileGbm(rounds=5).fit([s])\n"
        "p.predict(s, s.end, 4)"
    )
    assert _imported_after(code) == []


def test_the_probe_sees_the_store_bring_in_sqlalchemy() -> None:
    assert "sqlalchemy" in _imported_after("import forecast.store")
