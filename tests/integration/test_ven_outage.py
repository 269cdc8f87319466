"""Outages: the VTN goes away and comes back (buffered readings all arrive, in order, once), and
the VEN process is killed -9 in the middle of an event and restarted (it resumes the schedule:
the devices are told what the event says again, and nothing it had sent is sent again)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from certs import fingerprint
from certs.dev import DevPki
from oadr.enums import OptType
from oadr.model import CreatePartyRegistration, RegisterReport
from tests.integration.test_ven_gateway import (
    SECOND,
    Received,
    create,
    gateway_config,
    journal,
    readings_of,
    registered,
    running,
    simple_event,
    stored_opt,
    vtn_server,
    wait_for,
)
from ven.cli import latest_commands
from ven.gateway import STORE_FILE
from ven.session import Phase, SessionState
from ven.store import GatewayStore, JournalEntry
from vtn.config import TelemetryDefaults, VtnSettings

REPO = Path(__file__).resolve().parents[2]
GRANULARITY = 2 * SECOND
# Readings every 0.5 s, reported in 2 s slices every 4 s: no slice is ever empty.
OUTAGE_VTN = VtnSettings(
    poll_interval=SECOND,
    telemetry=TelemetryDefaults(granularity=GRANULARITY, report_back=4 * SECOND),
)


async def test_readings_buffered_while_the_vtn_is_away_all_arrive_in_order_once(
    pki: DevPki, tmp_path: Path
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'vtn.db'}"
    received = Received()
    r_id = "ev-charger.power"
    first_life = contextlib.AsyncExitStack()
    vtn = await first_life.enter_async_context(
        vtn_server(pki, database_url, received=received, settings=OUTAGE_VTN)
    )
    try:
        config = gateway_config(
            pki, vtn.running.url, tmp_path, pki.vens[0], sample_period=SECOND / 2
        )
        async with running(config) as runner:
            ven_id = await registered(runner)
            await wait_for("readings before the outage", lambda: readings_of(vtn, ven_id, r_id))
            await first_life.aclose()  # the VTN goes away ...
            away_from = datetime.now(UTC)
            await asyncio.sleep(6)
            away_until = datetime.now(UTC)
            assert runner.session.state.failures > 0
            assert runner.session.state.readings  # kept for later
            async with vtn_server(
                pki, database_url, port=vtn.port, received=received, settings=OUTAGE_VTN
            ) as back:  # ... and comes back, on the same address and database

                async def caught_up() -> bool:
                    rows = await readings_of(back, ven_id, r_id)
                    return bool(rows) and rows[-1].start > away_until + GRANULARITY

                await wait_for("the readings of the outage", caught_up)
                rows = await readings_of(back, ven_id, r_id)
    finally:
        await first_life.aclose()
    # Oldest first: the outage, then its end. (The VTN stops again before the gateway does, so a
    # third entry may follow on a slow machine.)
    outages = [e.text for e in reversed(journal(config, "outage"))]
    assert outages[0].startswith("VTN unreachable") and "reachable again" in outages[1]

    # All arrive: one reading per 2 s slice, without a gap, through the outage.
    starts = [r.start for r in rows]
    assert starts[0] < away_from and starts[-1] > away_until
    gaps = [b - a for a, b in itertools.pairwise(starts) if b - a != GRANULARITY]
    assert gaps == []
    # In order and once: what was posted, per rID, in arrival order, has rising start times.
    posted = defaultdict(list)
    for rid, start in received.intervals():
        posted[rid].append(start)
    for rid, sent in posted.items():
        assert sent == sorted(sent), rid
        assert [s for s, n in Counter(sent).items() if n > 1] == [], f"{rid} sent twice"


# --- kill -9 ----------------------------------------------------------------------------------


def ven_command(pki: DevPki, vtn_url: str, tmp_path: Path, state: Path) -> list[str]:
    preferences = tmp_path / "preferences.toml"
    preferences.write_text("ev_min_soc = 0.2\n")  # the EV (at 30 %) may give way
    bundle = tmp_path / "ca-bundle.pem"
    bundle.write_text(pki.trust_store().pem_bundle())
    identity = pki.vens[1]
    return [
        sys.executable, "-m", "flex4grid.cli", "ven", "run",
        "--vtn-url", vtn_url, "--ven-name", "house-kill-9",
        "--cert", str(identity.chain), "--key", str(identity.key), "--ca-file", str(bundle),
        "--vtn-fingerprint", fingerprint.of_certificate(pki.vtn.load_certificate()),
        "--state", str(state), "--simulate", "typical",
        "--poll-interval", "1", "--sample-period", "1", "--preferences", str(preferences),
    ]  # fmt: skip


async def start(command: list[str], log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            *command, cwd=REPO, stdout=out, stderr=out, env={**os.environ, "PYTHONPATH": str(REPO)}
        )


def read_store(state: Path) -> tuple[SessionState | None, list[JournalEntry]]:
    if not (state / STORE_FILE).exists():
        return None, []
    store: GatewayStore[SessionState] = GatewayStore(state / STORE_FILE, SessionState)
    try:
        return store.load(), store.recent(10_000)
    finally:
        store.close()


def commands_since(entries: list[JournalEntry], since: datetime) -> dict[str, Any]:
    """What each device was last told after `since`, as (kind, value, until) triples."""
    latest = latest_commands([e for e in entries if e.at > since])
    return {
        device: [(c["kind"], c["value"], c["until"]) for c in entry.detail["commands"]]
        for device, entry in latest.items()
    }


async def test_a_ven_killed_mid_event_resumes_the_schedule_and_sends_nothing_twice(
    pki: DevPki, tmp_path: Path
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'vtn.db'}"
    state_dir, log = tmp_path / "ven-state", tmp_path / "ven.log"
    async with vtn_server(pki, database_url) as vtn:
        command = ven_command(pki, vtn.running.url, tmp_path, state_dir)
        process = await start(command, log)
        try:

            async def ven_id() -> str | None:
                state, _ = read_store(state_dir)
                return state.ven_id if state and state.phase == Phase.REGISTERED else None

            found = await wait_for("the registration", ven_id)
            event = await create(vtn, simple_event(found, minutes=10))
            assert await wait_for("the optIn", lambda: stored_opt(vtn, event.event_id))

            async def driven() -> dict[str, Any] | None:
                commands = commands_since(read_store(state_dir)[1], event.active_period.start)
                return commands if {"ev-charger", "heat-pump"} <= set(commands) else None

            before = await wait_for("the event's device commands", driven)
            await asyncio.sleep(2)  # mid-event, with reports going out
            process.kill()  # SIGKILL: no goodbye, no last save
            await process.wait()
            killed_at = datetime.now(UTC)

            process = await start(command, log)

            async def resumed() -> dict[str, Any] | None:
                commands = commands_since(read_store(state_dir)[1], killed_at)
                return commands if {"ev-charger", "heat-pump"} <= set(commands) else None

            after = await wait_for("the device commands after the restart", resumed)
            await asyncio.sleep(3)  # polls and reports go on
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(process.wait(), 15) == 0, log.read_text()[-3000:]

        # The schedule resumed: the event's commands, as before the kill.
        ev_until = event.active_period.start + timedelta(minutes=10)
        for device in ("ev-charger", "heat-pump"):
            assert after[device] == before[device], device
        (limit,) = [c for c in after["ev-charger"] if c[0] == "power_limit"]
        assert limit[1] == pytest.approx(5.5)
        assert abs(datetime.fromisoformat(limit[2]) - ev_until) < 2 * SECOND
        assert await stored_opt(vtn, event.event_id) == OptType.OPT_IN
        # Nothing sent once was sent twice: one registration, one RegisterReport, one answer.
        assert vtn.received.event_responses() == Counter({(event.event_id, 0): 1})
        assert len(vtn.received.of_type(CreatePartyRegistration)) == 1
        assert len(vtn.received.of_type(RegisterReport)) == 1

    # `ven status` shows it, from the store alone.
    status = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flex4grid.cli", "ven", "status", "--state", str(state_dir),
        "--json", cwd=REPO, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await status.communicate()
    assert status.returncode == 0
    shown = json.loads(out)
    (line,) = [e for e in shown["events"] if e["event_id"] == event.event_id]
    assert (line["opt"], line["reason"].split(" ")[0]) == ("optIn", "optIn")
    assert shown["ven_id"] == found
    assert [c["kind"] for c in shown["commands"]["ev-charger"]] == ["release", "power_limit"]
