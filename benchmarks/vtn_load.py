"""VTN load benchmark: N VENs, each with its own certificate, polling our VTN over mutual TLS,
and the same workload against OpenLEADR's VTN in the same run (issue 11).

    .venv/bin/python -m benchmarks.vtn_load                    # the full matrix, < 10 minutes
    .venv/bin/python -m benchmarks.vtn_load --quick            # seconds; what CI runs
    .venv/bin/python -m benchmarks.vtn_load --vens 10000 --db postgresql --workers 2 \\
        --key ec --signed --rate 2000 --fan-out 30 --ingest 5 --json out.json --plot out.png
    .venv/bin/python -m benchmarks.vtn_load --vens 10000 --db postgresql --no-signed \\
        --no-unsigned --push-fan-out                           # push fan-out only

Each scenario starts a server subprocess (`flex4grid vtn serve`, TLS from a throwaway PKI, a
fresh SQLite file or a fresh PostgreSQL database created and dropped at 127.0.0.1:5432), gets
its N VENs registered (over the wire, oadrCreatePartyRegistration on each VEN's own connection;
above `--register-limit` preloaded into the database) and connected, then runs its phases:
saturation with unsigned and with signed polls, an offered rate, report ingest (oadrUpdateReport,
readings/s, checked against the rows stored), a pull fan-out (admin API event to every VEN's
oadrCreatedEvent). A push fan-out is a scenario of its own: its VENs register a transport
address served by the load generator (`benchmarks/load/push.py`), the VTN pushes the event to
each and stores the oadrCreatedEvent that comes back in the HTTP response. See
`benchmarks/load/client.py` for connections, handshakes and how messages are prebuilt outside
the timed window, and benchmarks/README.md for the latest figures.
Printed: requests/s, p50/p99/max latency, errors, server RSS and CPU, database size, the
ours/OpenLEADR ratio; written: JSON and a PNG plot.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import re
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.load import client, fanout, pki, push, report, servers
from benchmarks.load.report import NOTE, ScenarioFigures
from certs.keys import KeyType

# Prebuilt signatures must stay fresh: our VTN's replay window is 30 s, and signing a segment's
# messages itself takes seconds at 1,000+ signed polls/s (a 15 s segment's oldest messages were
# sent 30+ s after signing and refused 463), so a quarter of the window.
OUR_SEGMENT_S = 7.5
OPENLEADR_SEGMENT_S = 2.5  # OpenLEADR refuses signatures older than 5 s
# Report ingest: an oadrUpdateReport of 60 readings takes ~2 ms to build, so its first segment is
# sized for this many readings/s (above the target of 20,000) and the others by the rate measured.
INGEST_SEGMENT_S = 4.0
INGEST_HINT_READINGS_PER_S = 25_000.0
PUSH_TARGET_S = 10.0  # issue 11: one event acknowledged by 10,000 push VENs within 10 s
WATCH_S = 0.25  # push fan-out: how often the database is asked how many answers it recorded
ENDPOINTS_PER_PROCESS = 5000  # listeners + their connections must fit the file-descriptor limit


@dataclass(frozen=True)
class PhaseSpec:
    label: str
    signed: bool
    rate_per_s: float | None = None
    fan_out_interval_s: float | None = None  # a fan-out (pull) at this poll interval instead
    readings: int = 0  # above 0: report ingest, oadrUpdateReport with this many readings
    push_timeout_s: float | None = None  # a push fan-out, waiting at most this long, instead


@dataclass(frozen=True)
class Scenario:
    server: str  # "flex4grid" | "openleadr"
    database: str  # "sqlite" | "postgresql" | "memory"
    workers: int
    key: KeyType
    vens: int
    phases: tuple[PhaseSpec, ...]
    # Push VENs (oadrHttpPullModel=false) with an endpoint each ("per-ven") or one per
    # load-generator process ("shared"), see benchmarks/load/push.py; None: pull VENs.
    push_endpoints: str | None = None

    @property
    def name(self) -> str:
        key = "ec" if self.key is KeyType.P256 else "rsa"
        if self.server == "openleadr":
            return f"openleadr mem {key} N={self.vens:,}"
        mode = "" if self.push_endpoints is None else " push"
        return f"ours {self.database[:6]} w{self.workers} {key} N={self.vens:,}{mode}"

    @property
    def signed_push(self) -> bool:
        return any(p.signed for p in self.phases if p.push_timeout_s is not None)


UNSIGNED = PhaseSpec("unsigned", signed=False)
SIGNED = PhaseSpec("signed", signed=True)
AT_2000 = PhaseSpec("signed @2000/s", signed=True, rate_per_s=2000.0)  # 100,000 VENs, 1/min
AT_100 = PhaseSpec("signed @100/s", signed=True, rate_per_s=100.0)
FAN_OUT_30 = PhaseSpec("fan-out, pull every 30 s", signed=False, fan_out_interval_s=30.0)
INGEST_5 = PhaseSpec("ingest, 5 readings/report", signed=False, readings=5)
INGEST_60 = PhaseSpec("ingest, 60 readings/report", signed=False, readings=60)
FAN_OUT_2 = PhaseSpec("fan-out, pull every 2 s", signed=False, fan_out_interval_s=2.0)


def push_phase(endpoints: str, signed: bool, timeout_s: float, again: bool = False) -> PhaseSpec:
    """`again`: then a modification of that event (the same size), once the endpoints closed
    the connections of the first push: each push a new connection again, resuming the TLS
    session the VTN kept from the first (certs.tls)."""
    where = "an endpoint per VEN" if endpoints == "per-ven" else "one shared endpoint"
    label = f"fan-out, push to {where}{', signed' if signed else ''}"
    if again:
        label = f"modification, push to {where}{', signed' if signed else ''} (TLS resumed)"
    return PhaseSpec(label, signed, push_timeout_s=timeout_s)


# Push fan-out, an endpoint per VEN. Capped at 30 s (the target is 10 s): on this machine the
# VTN's pusher needs minutes for 10,000 VENs, and the full matrix must stay near 10 minutes.
PUSH_30 = push_phase("per-ven", signed=False, timeout_s=30.0)
PUSH_AGAIN_30 = push_phase("per-ven", signed=False, timeout_s=30.0, again=True)
PUSH_SIGNED = push_phase("per-ven", signed=True, timeout_s=20.0)
PUSH_SIGNED_AGAIN = push_phase("per-ven", signed=True, timeout_s=20.0, again=True)


def full_matrix() -> list[Scenario]:
    ec, rsa = KeyType.P256, KeyType.RSA2048
    push = (PUSH_30, PUSH_AGAIN_30)
    return [
        Scenario("flex4grid", "sqlite", 1, ec, 1000, (UNSIGNED, SIGNED)),
        Scenario("flex4grid", "postgresql", 1, ec, 1000, (UNSIGNED, SIGNED)),
        Scenario("flex4grid", "postgresql", 2, ec, 1000, (UNSIGNED, SIGNED, INGEST_5, INGEST_60)),
        Scenario("flex4grid", "postgresql", 2, ec, 10_000, (UNSIGNED, SIGNED, FAN_OUT_30, AT_2000)),
        Scenario("flex4grid", "postgresql", 2, rsa, 1000, (SIGNED,)),
        Scenario("flex4grid", "postgresql", 2, ec, 10_000, push, push_endpoints="per-ven"),
        Scenario("openleadr", "memory", 1, ec, 1000, (UNSIGNED,)),
        Scenario("openleadr", "memory", 1, ec, 1000, (SIGNED,)),
    ]


def quick_matrix() -> list[Scenario]:
    ec = KeyType.P256
    push = (PUSH_SIGNED, PUSH_SIGNED_AGAIN)
    return [
        Scenario("flex4grid", "sqlite", 1, ec, 20, (UNSIGNED, SIGNED, AT_100, INGEST_5, FAN_OUT_2)),
        Scenario("flex4grid", "sqlite", 1, ec, 20, push, push_endpoints="per-ven"),
        Scenario("openleadr", "memory", 1, ec, 20, (UNSIGNED,)),
        Scenario("openleadr", "memory", 1, ec, 20, (SIGNED,)),
    ]


def custom_matrix(args: argparse.Namespace) -> list[Scenario]:
    phases: list[PhaseSpec] = []
    if args.unsigned:
        phases.append(UNSIGNED)
    if args.signed:
        phases.append(SIGNED)
    if args.rate:
        signed = args.signed
        label = f"{'signed' if signed else 'unsigned'} @{args.rate:g}/s"
        phases.append(PhaseSpec(label, signed, args.rate))
    if args.ingest:
        phases.append(
            PhaseSpec(f"ingest, {args.ingest} readings/report", False, readings=args.ingest)
        )
    if args.fan_out:
        phases.append(
            PhaseSpec(f"fan-out, pull every {args.fan_out:g} s", False, None, args.fan_out)
        )
    key = KeyType.P256 if args.key == "ec" else KeyType.RSA2048
    scenarios = []
    if phases:
        scenarios.append(
            Scenario("flex4grid", args.db, args.workers, key, args.vens, tuple(phases))
        )
    if args.push_fan_out is not None:  # push VENs are a scenario of their own
        # Signed when the run is signed only: --signed --push-fan-out signs pushes and answers.
        signed = args.signed and not args.unsigned
        push_specs = tuple(
            push_phase(args.push_endpoints, signed, args.push_fan_out, again)
            for again in (False, True)[: 2 if args.push_again else 1]
        )
        scenarios.append(Scenario("flex4grid", args.db, args.workers, key, args.vens,
                                  push_specs, push_endpoints=args.push_endpoints))  # fmt: skip
    if not args.no_openleadr:
        for phase in phases:  # the saturation phases: OpenLEADR has no admin API, no ingest
            if phase.rate_per_s is None and phase.fan_out_interval_s is None and not phase.readings:
                scenarios.append(Scenario("openleadr", "memory", 1, key, args.vens, (phase,)))
    return scenarios


# --- running one scenario -------------------------------------------------------------------------


@dataclass
class Clients:
    processes: list[Any]
    pipes: list[Any]
    barrier: Any

    def ask(self, command: str, argument: Any) -> list[Any]:
        self.tell(command, argument)
        return self.answers()

    def tell(self, command: str, argument: Any) -> None:
        for pipe in self.pipes:
            pipe.send((command, argument))

    def answers(self) -> list[Any]:
        replies = [pipe.recv() for pipe in self.pipes]
        for reply in replies:
            if isinstance(reply, dict) and client.CLIENT_ERROR in reply:
                raise RuntimeError(f"a load client failed:\n{reply[client.CLIENT_ERROR]}")
        return replies

    def close(self) -> None:
        try:
            if all(p.is_alive() for p in self.processes):
                self.ask("close", None)
        finally:
            for process in self.processes:
                process.join(timeout=10)
                if process.is_alive():
                    process.kill()


def start_clients(bench_pki: pki.BenchPki, vens: int, count: int, pull: bool = True) -> Clients:
    """`count` load-generator processes, each with its slice of the VENs; they learn the
    server's port later (`server`): push VENs need their endpoints before the server starts."""
    spawn = multiprocessing.get_context("spawn")
    count = max(1, min(count, vens))
    barrier = spawn.Barrier(count)
    processes, pipes = [], []
    bounds = [vens * i // count for i in range(count + 1)]
    for first, last in itertools.pairwise(bounds):
        spec = client.ClientSpec(
            manifest=bench_pki.manifest(),
            first=first,
            last=last,
            root_pem=bench_pki.root_pem,
            host="127.0.0.1",
            port=0,
            push_endpoint=(bench_pki.push_endpoint.chain, bench_pki.push_endpoint.key),
            pull=pull,
        )
        ours, theirs = spawn.Pipe()
        process = spawn.Process(target=client.main, args=(spec, theirs, barrier), daemon=True)
        process.start()
        processes.append(process)
        pipes.append(ours)
    return Clients(processes, pipes, barrier)


@dataclass(frozen=True)
class Options:
    duration_s: float
    clients: int
    concurrency: int
    work_dir: Path
    profile: Path | None
    register_limit: int  # above this many VENs, preload them into the database instead


def run_scenario(
    scenario: Scenario, bench_pki: pki.BenchPki, options: Options, log: Any
) -> ScenarioFigures:
    database = (
        servers.create_database(scenario.database, options.work_dir)
        if scenario.server == "flex4grid"
        else None
    )
    server: servers.Server | None = None
    clients: Clients | None = None
    try:
        preload = database is not None and scenario.vens > options.register_limit
        setup: dict[str, Any] = {"how": "connected (in-memory lookup)"}
        count = min(options.clients, scenario.vens)
        addresses: list[str] | None = None
        if scenario.push_endpoints is not None:
            count = max(count, -(-scenario.vens // ENDPOINTS_PER_PROCESS))
        clients = start_clients(bench_pki, scenario.vens, count, scenario.push_endpoints is None)
        if scenario.push_endpoints is not None:
            started = time.perf_counter()
            endpoints = push.PushSetup(scenario.push_endpoints == "per-ven", scenario.signed_push)
            addresses = [a for made in clients.ask("listen", endpoints) for a in made]
            listen_s = time.perf_counter() - started
            ports = len({a.split("/")[2] for a in addresses})
            log(f"  {len(addresses):,} push endpoints on {ports:,} ports ({listen_s:.1f} s)")
        if database is not None and preload:
            seconds = servers.preload_vens(
                database, bench_pki.vens[: scenario.vens], addresses, scenario.signed_push
            )
            setup = {"how": "preloaded into the database", "preload_s": round(seconds, 2)}
        if database is not None:
            profile = None
            if options.profile is not None and scenario.workers == 1:
                profile = options.profile.with_suffix(f".{scenario.database}.prof")
            server = servers.start_ours(
                bench_pki, database, scenario.workers, options.work_dir, profile
            )
        else:
            server = servers.start_openleadr(bench_pki, scenario.phases[0].signed, options.work_dir)
        idle = server.usage()
        clients.ask("server", server.port)
        token: servers.TokenJob | None = None
        if addresses is not None and database is not None:
            # No timed phase before a push fan-out: make its token while the VENs register.
            token = servers.admin_token_started(database)
        per_client = max(1, options.concurrency // count)
        first_signed = scenario.phases[0].signed
        if addresses is not None and preload:
            clients.ask("assume_push_registered", None)  # push VENs do not poll: no connection
        elif database is not None and not preload:
            setups = clients.ask("register", per_client)
            registered = sum(s["registered"] for s in setups)
            register_s = max(s["register_s"] for s in setups)
            setup = {
                "how": "registered over the wire (oadrCreatePartyRegistration)",
                "registered": registered,
                "register_s": round(register_s, 2),
                "registrations_per_s": round(registered / register_s, 1),
                "errors": _merge([s["errors"] for s in setups]),
            }
        else:
            started = time.perf_counter()
            setups = clients.ask("assume_registered", (per_client, first_signed))
            connect_s = time.perf_counter() - started
            setup["connect_s"] = round(connect_s, 2)
            # each VEN's first poll: one TLS handshake with its certificate, then the poll
            setup["handshakes_per_s"] = round(scenario.vens / connect_s, 1)
            setup["errors"] = _merge([s["errors"] for s in setups])
        connected = server.usage()
        figures = ScenarioFigures(
            name=scenario.name, server=scenario.server, database=scenario.database,
            workers=scenario.workers, key=scenario.key.value, vens=scenario.vens,
            distinct_keys=bench_pki.distinct_keys if scenario.key is KeyType.RSA2048
            else scenario.vens,
            clients=count, concurrency=per_client * count, setup=setup,
            rss_idle_kb=idle.rss_kb, rss_connected_kb=connected.rss_kb,
        )  # fmt: skip
        log(f"  setup: {setup}")
        rate_hint = 1000.0 / count
        reports_registered = False
        pushed_event: str | None = None
        segment_max = OUR_SEGMENT_S if database is not None else OPENLEADR_SEGMENT_S
        for spec in scenario.phases:
            if spec.push_timeout_s is not None:
                assert database is not None and addresses is not None, "push needs push VENs"
                token = token or servers.admin_token_started(database)
                modify = pushed_event is not None  # a modification of the event pushed before
                pushed_event = pushed_event or f"bench-push-{uuid.uuid4().hex[:12]}"
                measured_fan_out = push_fan_out(
                    server, database, bench_pki, clients, spec, scenario.vens, setup, token,
                    pushed_event, modify,
                )  # fmt: skip
                figures.fan_outs.append(measured_fan_out)
                log(f"  {spec.label}: the VTN recorded {measured_fan_out.acked:,}/"
                    f"{measured_fan_out.vens:,} answers, all within "
                    f"{measured_fan_out.all_acked_s} s (target {measured_fan_out.target_s:g} s); "
                    f"{measured_fan_out.answered:,} endpoints answered, last after "
                    f"{measured_fan_out.all_answered_s} s; "
                    f"{measured_fan_out.pushes:,} pushes, {measured_fan_out.handshakes:,} new TLS "
                    f"connections ({measured_fan_out.resumed:,} resumed), server CPU "
                    f"{measured_fan_out.server_cpu_s:.1f} s, errors "
                    f"{measured_fan_out.errors or 0}")  # fmt: skip
                continue
            if spec.fan_out_interval_s is not None:
                assert database is not None, "fan-out needs our admin API"
                measured_fan_out = fan_out(server, database, bench_pki, clients, spec)
                figures.fan_outs.append(measured_fan_out)
                log(f"  {spec.label}: {measured_fan_out.acked:,}/{measured_fan_out.vens:,} "
                    f"acknowledged, all within {measured_fan_out.all_acked_s} s "
                    f"(target {measured_fan_out.target_s:g} s)")  # fmt: skip
                continue
            if spec.readings and not reports_registered:
                assert database is not None, "report ingest needs our VTN"
                made = clients.ask("register_reports", per_client)
                setup["registered_reports"] = sum(m["registered_reports"] for m in made)
                setup["errors"] = _merge([setup["errors"], *(m["errors"] for m in made)])
                reports_registered = True
            phase = client.Phase(
                signed=spec.signed,
                duration_s=options.duration_s,
                concurrency=per_client,
                rate_per_s=None if spec.rate_per_s is None else spec.rate_per_s / count,
                segment_max_s=min(segment_max, INGEST_SEGMENT_S) if spec.readings else segment_max,
                rate_hint_per_s=min(rate_hint, INGEST_HINT_READINGS_PER_S / count / spec.readings)
                if spec.readings
                else rate_hint,
                readings=spec.readings,
            )
            before = server.usage()
            results = clients.ask("phase", phase)
            after = server.usage()
            measured = report.merge_phase(
                spec.label, spec.signed, spec.rate_per_s, results, after.cpu_s - before.cpu_s,
                readings=spec.readings,
            )  # fmt: skip
            figures.phases.append(measured)
            if spec.rate_per_s is None and not spec.readings:
                rate_hint = max(10.0, measured.polls_per_s / count)
            rate = (f"{measured.readings_per_s:,.0f} readings/s" if spec.readings
                    else f"{measured.polls_per_s:,.0f} polls/s")  # fmt: skip
            log(f"  {spec.label}: {rate}, p50 {measured.p50_ms} ms, "
                f"p99 {measured.p99_ms} ms, errors {measured.errors or 0}")  # fmt: skip
        if reports_registered and database is not None:
            # durable: every reading acknowledged is a row (the VTN commits before it answers)
            figures.setup["readings_stored"] = database.count_rows("readings")
            figures.setup["readings_acknowledged"] = sum(
                p.completed * p.readings_per_request for p in figures.phases
            )
        figures.rss_after_kb = server.usage().rss_kb
        # Every VEN known and none connected (glibc rarely returns the freed buffers to the OS,
        # so this shows the high-water mark rather than what idle VENs cost).
        clients.ask("disconnect", None)
        if addresses is None:  # push VENs hold no connection to the VTN
            time.sleep(1.0)
        figures.rss_disconnected_kb = server.usage().rss_kb
        if database is not None:
            figures.db_size_bytes = database.size_bytes()
        return figures
    finally:
        try:
            if clients is not None:
                clients.close()
        finally:
            try:
                if server is not None:
                    server.stop()
            finally:
                if database is not None:
                    database.drop()


def fan_out(
    server: servers.Server,
    database: servers.Database,
    bench_pki: pki.BenchPki,
    clients: Clients,
    spec: PhaseSpec,
) -> report.FanOutFigures:
    """One event for every VEN, created through the admin API while the VENs poll at
    `spec.fan_out_interval_s`: time from the API call until the last oadrCreatedEvent."""
    assert spec.fan_out_interval_s is not None
    interval = spec.fan_out_interval_s
    target = 2 * interval + 10
    token = servers.admin_token(database)
    clients.tell(
        "fan_out", fanout.FanOut(interval, timeout_s=target + interval, signed=spec.signed)
    )
    time.sleep(min(2.0, interval / 2))  # let the polling settle first
    before = server.usage()
    created = servers.create_event(server, bench_pki, token)
    results = clients.answers()
    cpu_s = server.usage().cpu_s - before.cpu_s
    return report.merge_fan_out(spec.label, interval, target, created, results, cpu_s)


def push_fan_out(
    server: servers.Server,
    database: servers.Database,
    bench_pki: pki.BenchPki,
    clients: Clients,
    spec: PhaseSpec,
    vens: int,
    setup: dict[str, Any],
    token_job: servers.TokenJob,
    event_id: str,
    modify: bool,
) -> report.FanOutFigures:
    """One event for every (push) VEN, created through the admin API (`modify`: a modification
    of that event, patched through the admin API): time from the API call
    until the VTN had committed the last VEN's oadrCreatedEvent (which came back in the HTTP
    response to its push). The database is asked every WATCH_S how many it has; each count is
    timed when its answer arrived, so the figures are upper bounds by at most WATCH_S plus a
    query. Also what the VTN logged meanwhile: pushes it had to retry."""
    assert spec.push_timeout_s is not None
    modification = 1 if modify else 0
    if modify:  # the endpoints close idle connections: each push needs a new one
        time.sleep(push.IDLE_CLOSE_S + 1.0)
    elif "registered" in setup:  # over the wire: the VTN pushed each VEN an oadrRegisterReport
        time.sleep(1.0)  # let those finish first
    token = token_job.wait()
    log_offset = server.log.stat().st_size
    clients.tell("push_fan_out", push.PushFanOut(timeout_s=spec.push_timeout_s))
    before = server.usage()
    if modify:
        created = servers.modify_event(server, bench_pki, token, event_id)
    else:
        created = servers.create_event(server, bench_pki, token, event_id)
    samples: list[tuple[float, int]] = []
    refused: dict[str, int] = {}
    while True:
        try:
            count = servers.count_responses(database, event_id, modification)
            samples.append((time.time() - created, count))
        except Exception as err:  # e.g. PostgreSQL's connection limit, shared with the VTN
            refused[type(err).__name__] = refused.get(type(err).__name__, 0) + 1
        last_s = time.time() - created
        if (samples and samples[-1][1] >= vens) or last_s > spec.push_timeout_s:
            break
        time.sleep(WATCH_S)
    cpu_s = server.usage().cpu_s - before.cpu_s
    results = clients.answers()
    figures = report.merge_push_fan_out(spec.label, PUSH_TARGET_S, created, samples, results, cpu_s)
    with server.log.open("rb") as logged:
        logged.seek(log_offset)
        text = logged.read().decode("utf-8", "replace")
    retried = len(_PUSH_FAILED.findall(text))
    unexpected = text.count("unexpected push failure")
    if retried:
        figures.errors["VTN log: push failed, retried"] = retried
    if unexpected:
        figures.errors["VTN log: unexpected push failure"] = unexpected
    for name, count in refused.items():
        figures.errors[f"watching the database: {name}"] = count
    return figures


_PUSH_FAILED = re.compile(r"push to VEN \S+ failed")


def _merge(dicts: Sequence[dict[str, int]]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for d in dicts:
        for key, value in d.items():
            merged[key] = merged.get(key, 0) + value
    return merged


# --- command line ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.vtn_load", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="tiny scenarios, seconds (CI)")
    parser.add_argument("--vens", type=int, help="one custom scenario with N VENs")
    parser.add_argument("--db", choices=["sqlite", "postgresql"])
    parser.add_argument("--workers", type=int, choices=[1, 2])
    parser.add_argument("--key", choices=["ec", "rsa"])
    parser.add_argument("--signed", action=argparse.BooleanOptionalAction, default=None,
                        help="signed polls (--no-signed: skip them)")  # fmt: skip
    parser.add_argument("--unsigned", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--rate", type=float, help="add an open-loop phase at this many polls/s")
    parser.add_argument(
        "--ingest", type=int, metavar="READINGS",
        help="add report ingest: oadrUpdateReport with this many 1-minute readings each",
    )  # fmt: skip
    parser.add_argument(
        "--fan-out", type=float, metavar="SECONDS",
        help="add a pull fan-out: one event, VENs polling at this interval, time to all acks",
    )  # fmt: skip
    parser.add_argument(
        "--push-fan-out", type=float, nargs="?", const=60.0, metavar="TIMEOUT",
        help="add a push fan-out: push VENs (their own scenario), one event, time until the VTN "
             "recorded every VEN's answer; waits at most TIMEOUT s (default 60)",
    )  # fmt: skip
    parser.add_argument(
        "--push-again", action=argparse.BooleanOptionalAction, default=True,
        help="push fan-out: then a second event, each push resuming the TLS session of the first",
    )  # fmt: skip
    parser.add_argument(
        "--push-endpoints", choices=["per-ven", "shared"], default="per-ven",
        help="push fan-out: an HTTPS endpoint (port) per VEN, or one per load-generator process",
    )  # fmt: skip
    parser.add_argument("--duration", type=float, help="seconds per phase (default 12; quick 1)")
    parser.add_argument("--clients", type=int, default=1, help="load generator processes")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--no-openleadr", action="store_true")
    parser.add_argument(
        "--register-limit", type=int, default=2000, metavar="N",
        help="scenarios with more VENs preload them into the database (default 2000)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, default=Path("vtn_load.json"))
    parser.add_argument("--plot", type=Path, default=Path("vtn_load.png"))
    parser.add_argument(
        "--profile", type=Path, help="run our single-worker servers under cProfile: F.<db>.prof"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    given = ("vens", "db", "workers", "key", "rate", "fan_out", "ingest", "push_fan_out")
    custom = any(getattr(args, a) is not None for a in given)
    custom = custom or args.signed is not None or args.unsigned is not None
    args.custom = custom
    if custom:
        args.vens = args.vens or 1000
        args.db = args.db or "sqlite"
        args.workers = args.workers or (2 if args.db == "postgresql" else 1)
        args.key = args.key or "ec"
        if args.signed is None and args.unsigned is None:
            args.signed = args.unsigned = True
        args.signed = bool(args.signed)
        args.unsigned = bool(args.unsigned) if args.unsigned is not None else not args.signed
        if args.workers > 1 and args.db == "sqlite":
            parser.error("--workers 2 needs --db postgresql")
        fan_outs = args.fan_out is not None or args.push_fan_out is not None
        if not (args.signed or args.unsigned or fan_outs):
            parser.error("nothing to run: --no-signed and --no-unsigned")
    if args.duration is None:
        args.duration = 1.0 if args.quick else 12.0
    return args


def _terminated(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds: servers stopped, databases dropped


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminated)
    scenarios = quick_matrix() if args.quick else full_matrix()
    if args.custom:
        scenarios = custom_matrix(args)
    if args.no_openleadr:
        scenarios = [s for s in scenarios if s.server != "openleadr"]
    unavailable = servers.postgres_available() if any(
        s.database == "postgresql" for s in scenarios) else None  # fmt: skip
    if unavailable is not None:
        print(f"PostgreSQL not available ({unavailable}): its scenarios are skipped")
        scenarios = [s for s in scenarios if s.database != "postgresql"]
    work = Path(tempfile.mkdtemp(prefix="flex4grid-bench-"))
    machine = report.machine()  # before the run: the load average says what else was running
    cores = machine["cores"]
    note = NOTE.format(cores=cores)
    print(f"VTN load benchmark: {len(scenarios)} scenarios, {args.duration:g} s per phase; {note}")
    started = time.monotonic()
    results: list[ScenarioFigures] = []
    try:
        pkis: dict[KeyType, pki.BenchPki] = {}
        for key in sorted({s.key for s in scenarios}):
            count = max(s.vens for s in scenarios if s.key is key)
            t0 = time.perf_counter()
            pkis[key] = pki.make(work / f"pki-{key.value}", count, key)
            made = pkis[key]
            print(f"PKI {key.value}: {count:,} VEN certificates, {made.distinct_keys:,} distinct "
                  f"keys, {time.perf_counter() - t0:.1f} s")  # fmt: skip
        options = Options(
            args.duration, args.clients, args.concurrency, work, args.profile, args.register_limit
        )
        for scenario in scenarios:
            print(f"{scenario.name}:", flush=True)
            results.append(
                run_scenario(scenario, pkis[scenario.key], options, lambda m: print(m, flush=True))
            )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    total_s = time.monotonic() - started
    print()
    print(report.table(results))
    print()
    print(report.setup_table(results))
    print()
    if fan_outs := report.fan_out_table(results):
        print(fan_outs)
        print()
    for ratio in report.ratios(results):
        ours, theirs = ratio["ours_polls_per_s"], ratio["openleadr_polls_per_s"]
        print(f"ours/OpenLEADR {ratio['scenario']} {ratio['phase']}: {ratio['ratio']:.2f}x "
              f"({ours:,.0f} vs {theirs:,.0f} polls/s)")  # fmt: skip
    print(f"\n{note}. Total {total_s:.0f} s.")
    meta = {
        "command": " ".join(["python -m benchmarks.vtn_load", *(argv or sys.argv[1:])]),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "note": note,
        "duration_per_phase_s": args.duration,
        "total_s": round(total_s, 1),
    }
    report.to_json(results, meta, args.json)
    report.plot(results, args.plot, f"{meta['command']} — {note}")
    print(f"wrote {args.json} and {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
