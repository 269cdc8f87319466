"""Footprint of one VEN process: resident memory and CPU, idle-polling and with an event running.

Runs `flex4grid ven run --simulate typical --poll-interval 10` as a subprocess against our VTN
(in this process: SQLite, mutual TLS from a throwaway dev PKI, the VTN's default telemetry
requests: 1-minute readings every 5 minutes), first idle for `--seconds`, then for as long again
with a SIMPLE event in force. RSS comes from psutil when installed, else /proc/<pid>/status
(VmRSS); CPU time from /proc/<pid>/stat (utime + stime). A bare asyncio process sleeping in the
same run gives the interpreter's own baseline. Targets (issue 6): under 60 MB RSS, under 1 % of
one core while idle. Each entry point is measured: `python -m flex4grid.cli ven run` and
`python -m ven.cli run` (both load only the VEN's CLI). `--breakdown` adds the VEN process's
largest memory mappings (/proc/<pid>/smaps) at the end of the idle phase.

What it measured (2 cores, Python 3.11): 70.5 MB before, with pydantic (store, MQTT JSON) and
aiohttp's client on the gateway's path; 49.8 MB after `ven.jsonform` and `ven.http1` replaced
them (idle CPU 0.10 % both); 50.8 MB at most over 11 minutes with UpdateReports flowing
(`--seconds 330`). Of the rest: ~20 MB is the interpreter with asyncio and ssl, ~10 MB
`cryptography` (certificate checks, XML signatures), ~3 MB the compiled 2.0b XSDs.
MALLOC_ARENA_MAX=2 changes nothing measurable: one SQLite worker thread allocates little.

    .venv/bin/python -m benchmarks.ven_footprint --seconds 60 [--breakdown]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web

from certs import fingerprint
from certs.dev import DevPki, make_dev_pki
from oadr.enums import EventStatus, SignalName, SignalType
from oadr.model import (
    ActivePeriod,
    Event,
    EventId,
    EventInterval,
    EventSignal,
    Target,
    VenId,
)
from ven.gateway import STORE_FILE
from ven.session import Phase, SessionState
from ven.store import GatewayStore
from vtn.app import CONTEXT, VtnConfig, build_app
from vtn.config import VtnSettings
from vtn.services import operator

REPO = Path(__file__).resolve().parents[1]
ENTRY_POINTS = {
    "flex4grid": ["-m", "flex4grid.cli", "ven", "run"],
    "ven.cli": ["-m", "ven.cli", "run"],
}
TARGET_RSS_MB = 60.0
TARGET_IDLE_CPU_PERCENT = 1.0
_TICKS = os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    try:
        import psutil  # type: ignore[import-untyped]

        return float(psutil.Process(pid).memory_info().rss) / 2**20
    except ImportError:
        pass
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    # The command name may hold spaces: the fields we want follow its closing parenthesis.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _TICKS


def largest_mappings(pid: int, count: int = 8) -> list[tuple[str, float]]:
    """The mappings holding the most resident memory (MB): shared libraries by path, the
    Python heap as [heap] and [anon]."""
    sizes: dict[str, float] = {}
    name = "[anon]"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if fields and not fields[0].endswith(":"):  # a mapping's header line
            name = fields[5] if len(fields) > 5 else "[anon]"
        elif fields and fields[0] == "Rss:":
            sizes[name] = sizes.get(name, 0.0) + int(fields[1]) / 1024
    return sorted(sizes.items(), key=lambda item: -item[1])[:count]


@dataclass(frozen=True)
class Sample:
    label: str
    seconds: float
    rss_mb: float  # the largest seen in the window
    rss_last_mb: float
    cpu_s: float

    @property
    def cpu_percent(self) -> float:
        return 100.0 * self.cpu_s / self.seconds

    @property
    def cpu_s_per_hour(self) -> float:
        return self.cpu_s * 3600.0 / self.seconds


async def measure(label: str, pid: int, seconds: float, every_s: float = 1.0) -> Sample:
    start_cpu, start = cpu_seconds(pid), time.monotonic()
    peak = last = rss_mb(pid)
    while (elapsed := time.monotonic() - start) < seconds:
        await asyncio.sleep(min(every_s, seconds - elapsed))
        last = rss_mb(pid)
        peak = max(peak, last)
    return Sample(label, time.monotonic() - start, peak, last, cpu_seconds(pid) - start_cpu)


async def serve_vtn(pki: DevPki, directory: Path) -> tuple[web.AppRunner, web.Application, str]:
    config = VtnConfig(
        settings=VtnSettings(),
        database_url=f"sqlite+aiosqlite:///{directory / 'vtn.db'}",
        trust=pki.trust_store(),
    )
    app = build_app(config)
    await app[CONTEXT].store.create_all()
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=pki.server_context()).start()
    host, port = runner.addresses[0][:2]
    return runner, app, f"https://{host}:{port}"


async def registered(state_dir: Path, timeout_s: float = 60.0) -> VenId:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (state_dir / STORE_FILE).exists():
            store: GatewayStore[SessionState] = GatewayStore(state_dir / STORE_FILE, SessionState)
            try:
                state = store.load()
            finally:
                store.close()
            if state is not None and state.phase == Phase.REGISTERED and state.ven_id:
                return state.ven_id
        await asyncio.sleep(0.5)
    raise RuntimeError("the VEN did not register in time")


def event_for(ven_id: VenId, length: timedelta) -> Event:
    now = datetime.now(UTC)
    return Event(
        event_id=EventId(f"bench-{uuid.uuid4().hex[:8]}"),
        modification_number=0,
        market_context="http://flex4grid.example/benchmark",
        created=now,
        status=EventStatus.FAR,
        active_period=ActivePeriod(start=now + timedelta(seconds=2), duration=length),
        signals=(
            EventSignal(
                signal_name=SignalName.SIMPLE,
                signal_type=SignalType.LEVEL,
                signal_id="level",
                intervals=(EventInterval(uid=0, duration=length, value=1.0),),
                current_value=0.0,
            ),
        ),
        target=Target(ven_ids=(ven_id,)),
    )


async def baseline(seconds: float) -> Sample:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", f"import asyncio; asyncio.run(asyncio.sleep({seconds + 5}))"
    )
    try:
        await asyncio.sleep(1.0)  # past interpreter start-up
        return await measure("bare asyncio sleep", process.pid, min(seconds, 10.0))
    finally:
        process.kill()
        await process.wait()


async def run(
    seconds: float, poll_interval_s: float, entry: str, breakdown: bool = False
) -> list[Sample]:
    with tempfile.TemporaryDirectory(prefix="ven-footprint-") as tmp:
        directory = Path(tmp)
        pki = make_dev_pki(directory / "pki")
        bundle = directory / "ca-bundle.pem"
        bundle.write_text(pki.trust_store().pem_bundle())
        site, app, url = await serve_vtn(pki, directory)
        state_dir = directory / "ven-state"
        identity = pki.vens[0]
        command = [
            sys.executable, *ENTRY_POINTS[entry], "--vtn-url", url,
            "--ven-name", "benchmark-house", "--cert", str(identity.chain),
            "--key", str(identity.key), "--ca-file", str(bundle),
            "--vtn-fingerprint", fingerprint.of_certificate(pki.vtn.load_certificate()),
            "--state", str(state_dir), "--simulate", "typical",
            "--poll-interval", str(poll_interval_s),
        ]  # fmt: skip
        log = (directory / "ven.log").open("wb")
        process = await asyncio.create_subprocess_exec(
            *command, cwd=REPO, stdout=log, stderr=log, env={**os.environ, "PYTHONPATH": str(REPO)}
        )
        try:
            ven_id = await registered(state_dir)
            await asyncio.sleep(3)  # registration, metadata and report requests settle
            idle = await measure(f"{entry}: idle (polling)", process.pid, seconds)
            if breakdown:
                print(f"{entry}: largest mappings after the idle phase:", file=sys.stderr)
                for name, size_mb in largest_mappings(process.pid):
                    print(f"  {size_mb:6.1f} MB  {name}", file=sys.stderr)
            event = event_for(ven_id, timedelta(seconds=seconds + 60))
            await operator.create_event(
                app[CONTEXT], event, actor="benchmark", now=datetime.now(UTC)
            )
            busy = await measure(f"{entry}: event running", process.pid, seconds)
            async with app[CONTEXT].store.transaction() as tx:
                deliveries = await tx.deliveries.for_event(event.event_id)
                readings = await tx.readings.query(ven_id=ven_id, limit=100_000)
            opt = deliveries[0].opt_type if deliveries else None
            print(f"event answered: {opt}; readings at the VTN: {len(readings)}", file=sys.stderr)
        finally:
            process.terminate()
            await process.wait()
            log.close()
            await site.cleanup()
        return [idle, busy]


def report(samples: Sequence[Sample], poll_interval_s: float) -> str:
    lines = [
        f"one VEN process, --simulate typical, poll every {poll_interval_s:g} s",
        f"{'':28} {'window':>8} {'RSS max':>9} {'RSS end':>9} {'CPU':>8} {'CPU s/h':>9}",
    ]
    for s in samples:
        lines.append(
            f"{s.label:28} {s.seconds:7.0f}s {s.rss_mb:7.1f}MB {s.rss_last_mb:7.1f}MB"
            f" {s.cpu_percent:7.2f}% {s.cpu_s_per_hour:9.1f}"
        )
    for idle, busy in zip(samples[0:-1:2], samples[1:-1:2], strict=True):
        entry = idle.label.split(":")[0]
        rss = max(idle.rss_mb, busy.rss_mb)
        rss_ok = rss < TARGET_RSS_MB
        cpu_ok = idle.cpu_percent < TARGET_IDLE_CPU_PERCENT
        lines.append(
            f"{entry}: RSS < {TARGET_RSS_MB:g} MB {'met' if rss_ok else 'NOT met'} ({rss:.1f} MB);"
            f" idle CPU < {TARGET_IDLE_CPU_PERCENT:g} % of one core"
            f" {'met' if cpu_ok else 'NOT met'} ({idle.cpu_percent:.2f} %)"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="per phase (default 60)")
    parser.add_argument("--poll-interval", type=float, default=10.0, help="default 10")
    parser.add_argument(
        "--entry",
        choices=sorted(ENTRY_POINTS),
        action="append",
        help="entry point(s) to measure (default: both)",
    )
    parser.add_argument(
        "--breakdown", action="store_true", help="the VEN's largest memory mappings (stderr)"
    )
    args = parser.parse_args(argv)

    async def everything() -> list[Sample]:
        samples: list[Sample] = []
        for entry in args.entry or list(ENTRY_POINTS):
            samples += await run(args.seconds, args.poll_interval, entry, args.breakdown)
        return [*samples, await baseline(args.seconds)]

    samples = asyncio.run(everything())
    print(report(samples, args.poll_interval))
    return 0


if __name__ == "__main__":
    sys.exit(main())
