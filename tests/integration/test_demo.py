"""`flex4grid demo` end to end, small and fast: the real CLI in a subprocess, the real VTN and VEN
gateways over mutual TLS on 127.0.0.1, a simulated day in about half a minute.

What a user cares about: every VEN registered, every VEN that opted in acknowledged the event,
the feeder's peak in the event window came down, the plots were written; and Ctrl-C stops the
whole pilot cleanly. In market mode: the households registered at the aggregator, its bid was
cleared, dispatched and accepted, the peak came down and the settlement pays the aggregator.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import pytest

HOUSEHOLDS = 10
# Today: its warm-up (from 22:00 the evening before) lies before the real time, so the pilot's
# certificates must be valid before they were made (`pilot.certificates_from`).
DAY = date.today().isoformat()
SPEED = 3000.0  # a simulated day in 29 s
MARKET_SPEED = 2000.0  # a simulated day in 43 s
ROOT = Path(__file__).resolve().parents[2]


def demo(*args: str, keep: Path, out: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "flex4grid.cli", "demo", "--households", str(HOUSEHOLDS)]
    command += ["--feeders", "1", "--speed", str(SPEED), "--seed", "7", "--day", DAY]
    command += ["--keep", str(keep), "--out", str(out), *args]
    env = os.environ | {"PYTHONWARNINGS": "error"}
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen[str], timeout_s: float) -> tuple[str, str]:
    """Its stdout and stderr once it ended; killed (and the test failed) if it runs on."""
    try:
        return process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()  # not left running (nor its pipes open) for the tests after this one
        _, stderr = process.communicate()
        pytest.fail(f"the demo did not end within {timeout_s:.0f} s:\n{stderr[-3000:]}")


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str, dict[str, Any]]:
    base = tmp_path_factory.mktemp("demo")
    keep, out = base / "keep", base / "out"
    process = demo(keep=keep, out=out)
    stdout, stderr = finish(process, 240)
    assert process.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr
    return keep, out, stdout, json.loads((out / "summary.json").read_text())


def test_every_ven_registers_at_the_vtn(finished: tuple[Path, Path, str, dict[str, Any]]) -> None:
    keep, _, _, summary = finished
    assert summary["registered"] == HOUSEHOLDS
    with sqlite3.connect(keep / "vtn.db") as db:  # the VTN's own record, kept by --keep
        (registered,) = db.execute(
            "SELECT count(*) FROM vens WHERE registration_id IS NOT NULL"
            " AND xml_signature AND NOT http_pull_model"  # signed, by HTTP push
        ).fetchone()
    assert registered == HOUSEHOLDS


def test_everyone_who_opted_in_acknowledged_the_event(
    finished: tuple[Path, Path, str, dict[str, Any]],
) -> None:
    _, _, _, summary = finished
    answers = summary["answers"]
    assert len(answers) == HOUSEHOLDS  # the feeder's every VEN was targeted
    assert all(a["opted_in"] is not None for a in answers), "every VEN answered"
    opted_in = [a for a in answers if a["opted_in"]]
    assert opted_in, "some households take part"
    assert all(a["latency_s"] is not None and a["latency_s"] < 30 for a in opted_in)
    # Who opted out says why (the household policy's rule), and the rate adds up.
    outs = [a for a in answers if not a["opted_in"]]
    assert all(a["reason"] for a in outs)
    assert summary["opt_out_rate"] == pytest.approx(len(outs) / len(answers))


def test_the_feeder_peak_in_the_event_window_comes_down(
    finished: tuple[Path, Path, str, dict[str, Any]],
) -> None:
    _, _, stdout, summary = finished
    (feeder,) = summary["feeders"]
    assert feeder["window"] is not None, "the forecast overloads the feeder"
    without, with_flex = (
        feeder["peak_in_window_without_flex_kw"],
        feeder["peak_in_window_with_flex_kw"],
    )
    assert without > feeder["capacity_kw"]
    assert 0 < with_flex < without
    assert feeder["shifted_kwh"] > 0
    # The measured load is telemetry the VTN stored, and before the event it tracks the forecast.
    assert feeder["coverage"] > 0.9
    assert feeder["tracking_error_kw"] < 0.1 * feeder["capacity_kw"]
    assert re.search(r"peak in window, with flex\s+[\d.]+ kW \(-[\d.]+ %\)", stdout)


def test_the_plots_are_written(finished: tuple[Path, Path, str, dict[str, Any]]) -> None:
    _, out, stdout, _ = finished
    png, html = out / "feeder-load.png", out / "feeder-load.html"
    assert png.read_bytes().startswith(b"\x89PNG")
    page = html.read_text()
    assert "plotly" in page and "without flexibility" in page
    assert len(page) > 1_000_000, "plotly.js is inlined, so the page works offline"
    assert f"plot: {png.resolve()}" in stdout and f"plot: {html.resolve()}" in stdout


def lines_of(stream: IO[str]) -> queue.Queue[str | None]:
    """The stream's lines as they come, None at its end; read by a thread, so a test waiting for
    a line keeps its own deadline when none comes."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


@pytest.mark.parametrize("when", ["registering", "day"])
def test_ctrl_c_stops_every_ven_and_the_vtn(tmp_path: Path, when: str) -> None:
    with demo(keep=tmp_path / "keep", out=tmp_path / "out") as process:  # closes the pipes
        assert process.stderr is not None and process.stdout is not None
        stderr, stdout = lines_of(process.stderr), lines_of(process.stdout)
        deadline = time.monotonic() + 120
        # While the VENs enrol (the VTN pushing them their bootstrap RegisterReport), or once the
        # day runs: VENs registered, VTN serving.
        seen: list[str] = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = stderr.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            seen.append(line)
            online = f"VENs online {HOUSEHOLDS}/{HOUSEHOLDS}" in line
            if when == "registering" and " registering " in line and not online:
                break
            if when == "day" and online and " day " in line:
                break
        else:
            seen.append("(no such line within 120 s)\n")
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()  # not left running (nor its pipes open) for the tests after this one
            process.wait()
            pytest.fail(f"the demo did not stop within 30 s of Ctrl-C:\n{''.join(seen)[-3000:]}")
        while (line := stderr.get(timeout=10)) is not None:
            seen.append(line)
        while stdout.get(timeout=10) is not None:
            pass
        rest = "".join(seen)
        assert process.returncode == 130, rest
        assert "Traceback" not in rest
        assert "stopped; every VEN and the VTN shut down" in rest
    assert not (tmp_path / "out" / "feeder-load.png").exists()


# --- --mode market: the DSO buys the reduction from an aggregator ------------------------------


@pytest.fixture(scope="module")
def market_finished(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, str, dict[str, Any]]:
    base = tmp_path_factory.mktemp("demo-market")
    keep, out = base / "keep", base / "out"
    # Three tiers of HTTPS, each household polling and reporting every 15 simulated minutes:
    # a little slower than the event mode's clock, so telemetry keeps up on a busy machine.
    process = demo("--mode", "market", "--speed", str(MARKET_SPEED), keep=keep, out=out)
    stdout, stderr = finish(process, 240)
    assert process.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr
    return keep, stdout, json.loads((out / "summary.json").read_text())


def test_market_every_ven_registers_at_the_aggregator(
    market_finished: tuple[Path, str, dict[str, Any]],
) -> None:
    keep, _, summary = market_finished
    assert summary["registered"] == HOUSEHOLDS
    with sqlite3.connect(keep / "aggregator" / "aggregator.db") as db:
        (members,) = db.execute(
            "SELECT count(*) FROM vens WHERE registration_id IS NOT NULL"
        ).fetchone()
    with sqlite3.connect(keep / "vtn.db") as db:  # the DSO's VTN knows only the node's VEN
        (nodes,) = db.execute(
            "SELECT count(*) FROM vens WHERE registration_id IS NOT NULL"
        ).fetchone()
    assert (members, nodes) == (HOUSEHOLDS, 1)


def test_market_a_bid_is_cleared_dispatched_and_acknowledged(
    market_finished: tuple[Path, str, dict[str, Any]],
) -> None:
    _, stdout, summary = market_finished
    (trade,) = summary["market"]
    assert trade["bids"] >= 1
    cleared = [Decimal(kw) for kw in trade["cleared_kw"]]
    assert any(kw > 0 for kw in cleared)
    assert Decimal(trade["cleared_kwh"]) == sum(cleared) / 4  # 15-minute blocks
    assert Decimal(trade["cost_eur"]) > 0
    assert trade["event_id"] is not None, "the award went out as an event"
    assert trade["node_opt"] == "optIn", "the aggregator's node accepted it"
    # Its share reached households, and those that took part answered.
    opted_in = [a for a in summary["answers"] if a["opted_in"]]
    assert opted_in
    assert re.search(r"cleared volume\s+[\d. ]+ kW per 15-min block = [\d.]+ kWh", stdout)


def test_market_the_feeder_peak_comes_down_and_the_aggregator_is_paid(
    market_finished: tuple[Path, str, dict[str, Any]],
) -> None:
    _, stdout, summary = market_finished
    (feeder,) = summary["feeders"]
    without = feeder["peak_in_window_without_flex_kw"]
    assert without > feeder["capacity_kw"]
    assert 0 < feeder["peak_in_window_with_flex_kw"] < without
    # Measured from the households' telemetry at the aggregator's VTN: complete, and before
    # the request it tracks the forecast (a gap would pass for a reduction).
    assert feeder["coverage"] > 0.9
    assert feeder["tracking_error_kw"] < 0.1 * feeder["capacity_kw"]
    (trade,) = summary["market"]
    statement = trade["statement"]
    assert statement is not None and statement["methods"]
    assert statement["methods"][0].startswith("no-flex-simulation")
    totals = statement["totals"]
    assert Decimal(totals["payment_eur"]) > 0
    assert Decimal(totals["net_eur"]) == Decimal(totals["payment_eur"]) - Decimal(
        totals["penalty_eur"]
    )
    assert f"payment {totals['payment_eur']} EUR" in stdout
