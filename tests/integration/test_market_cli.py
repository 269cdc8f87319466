"""`flex4grid market ...` against a real VTN with the market over HTTPS (SQLite): the DSO's and
an aggregator's sessions from the command line, from the grid model to a CSV statement, and a
refused bid told in one line with exit code 1."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest

from certs.dev import DevPki
from flex4grid.cli import main
from tests.integration.test_market_api import GATE, START, Clock, MarketVtn, market_vtn


async def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(argv))  # the CLI runs its own event loop
    out, err = capsys.readouterr()
    return code, out, err


def client(vtn: MarketVtn, who: str) -> list[str]:
    return ["--url", vtn.url, "--ca-file", str(vtn.pki.vtn.root), "--token", vtn.tokens[who]]


async def test_a_market_session_from_the_command_line(
    pki: DevPki, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path}/vtn.db"
    async with market_vtn(pki, database_url, Clock()) as vtn:
        dso = client(vtn, "dso")
        point = await run(capsys, "market", "point", "create", "cp-1", "--name", "feeder 1",
                          "--capacity-kw", "250", "--resource", "p1", "--resource", "p2=ven-p2",
                          *dso)  # fmt: skip
        made = await run(capsys, "market", "aggregator", "create", "agg-a", "--name", "A", *dso)
        vtn.tokens["agg-a"] = made[1].strip()
        agg = client(vtn, "agg-a")
        node = await run(capsys, "market", "node", "create", "node-a", "--point", "cp-1",
                         "--name", "A", *agg)  # fmt: skip
        member = await run(capsys, "market", "node", "add-member", "node-a", "p1",
                           "--consent", "consent/p1", *agg)  # fmt: skip
        request = await run(
            capsys,
            "market",
            "request",
            "create",
            "--id",
            "req-1",
            "--point",
            "cp-1",
            "--start",
            START.isoformat(),
            "--kw",
            "10,10,10,10",
            "--price-cap",
            "0.5",
            "--gate-closure",
            GATE.isoformat(),
            *dso,
        )
        refused = await run(capsys, "market", "bid", "submit", "req-1", "--node", "node-a",
                            "--kw", "4,4,4,4", "--price", "0.12345", *agg)  # fmt: skip
        bid = await run(capsys, "market", "bid", "submit", "req-1", "--id", "bid-a", "--node",
                        "node-a", "--kw", "4,4,4,4", "--price", "0.2", *agg)  # fmt: skip
        bids = await run(capsys, "market", "bid", "list", "req-1", *agg)
        listed = await run(capsys, "market", "request", "list", *agg)
        vtn.clock.now = GATE
        cleared = await run(capsys, "market", "clear", "req-1", "--dispatch", *dso)
        not_dso = await run(capsys, "market", "clear", "req-1", *agg)
        vtn.clock.now = START + timedelta(hours=2)
        settled = await run(capsys, "market", "settle", "req-1", "--baseline",
                            "meter-before-meter-after", "--csv", *dso)  # fmt: skip

    assert point[0] == 0 and "2 resource(s)" in point[1]
    assert made[0] == 0 and "shown once" in made[2]
    assert node == (0, "node node-a of agg-a under cp-1\n", "")
    assert member[0] == 0 and request[0] == 0 and "flex request req-1: 4 block(s)" in request[1]
    assert refused[0] == 1
    assert refused[2].strip() == (
        "flex4grid market: error: 422 price 0.12345 EUR/kWh has more than 4 decimals"
    )
    assert bid[0] == 0 and "bid bid-a revision 1 on req-1" in bid[1]
    assert bids[1].splitlines()[1].split()[:5] == ["bid-a", "1", "node-a", "4,4,4,4", "0.2"]
    assert "req-1" in listed[1] and "open" in listed[1]
    assert cleared[0] == 0 and "4,4,4,4" in cleared[1] and "dispatched 0 event(s)" in cleared[1]
    assert not_dso[0] == 1 and "403 only the DSO may clear a request" in not_dso[2]
    # No telemetry: nothing delivered; 1 kWh short per block, 0.1 kWh tolerated, 0.9 x 0.2.
    *lines, total = csv.DictReader(io.StringIO(settled[1]))
    assert settled[0] == 0 and len(lines) == 4 and total["bid_id"] == "TOTAL"
    assert {name: Decimal(total[name]) for name in FIGURES} == {
        "awarded_kwh": 4, "delivered_kwh": 0, "paid_kwh": 0, "payment_eur": 0,
        "shortfall_kwh": 4, "penalty_eur": Decimal("0.72"),
    }  # fmt: skip


FIGURES = ("awarded_kwh", "delivered_kwh", "paid_kwh", "payment_eur", "shortfall_kwh",
           "penalty_eur")  # fmt: skip
