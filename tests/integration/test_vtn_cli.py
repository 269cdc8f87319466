"""`flex4grid vtn ...` and `flex4grid event ...`: a real `vtn serve` process on 127.0.0.1 with
TLS from the dev PKI, stopped by SIGTERM; the client commands run in-process against it."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from certs.dev import DevPki
from flex4grid.cli import main
from oadr.enums import OptType
from oadr.model import (
    CreatedEvent,
    DistributeEvent,
    EiResponse,
    EventResponse,
    Poll,
)
from tests.integration.test_admin_api import bootstrap
from tests.integration.vtn_harness import VenClient
from tests.ports import free_port
from vtn.cli import parse_duration, parse_start, split_intervals

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Served:
    url: str
    db: str
    process: subprocess.Popen[bytes]
    pki: DevPki

    def client_args(self) -> list[str]:
        return ["--url", self.url, "--ca-file", str(self.pki.vtn.root)]

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        _, err = self.process.communicate(timeout=20)
        return self.process.returncode, err.decode()


def serve_command(pki: DevPki, db: str, port: int, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "flex4grid.cli", "vtn", "serve", "--db", db, "--port", str(port),
        "--tls-cert", str(pki.vtn.chain), "--tls-key", str(pki.vtn.key),
        "--ca-file", str(pki.root / "ca.pem"), "--ca-file", str(pki.dso_ca / "ca.pem"),
        "--ca-file", str(pki.aggregator_ca / "ca.pem"), "--poll-interval", "5", *extra,
    ]  # fmt: skip


def wait_healthy(url: str, pki: DevPki, process: subprocess.Popen[bytes]) -> None:
    context = ssl.create_default_context(cafile=str(pki.vtn.root))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"vtn serve exited: {process.communicate()[1].decode()}")
        try:
            with urllib.request.urlopen(url + "/healthz", context=context, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("vtn serve did not answer /healthz in 30 s")


@pytest.fixture
def served(tmp_path: Path, pki: DevPki) -> Iterator[Served]:
    db = f"sqlite:///{tmp_path / 'vtn.db'}"
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        serve_command(pki, db, port), cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"https://127.0.0.1:{port}"
    try:
        wait_healthy(url, pki, process)
        yield Served(url, db, process, pki)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def make_token(capsys: pytest.CaptureFixture[str], served: Served, *extra: str) -> str:
    code, out, _ = run(capsys, "vtn", "token", "create", "--db", served.db, "--name", "ops",
                       *extra)  # fmt: skip
    assert code == 0
    return out.strip()


# --- serve ----------------------------------------------------------------------------------------


def test_serve_shuts_down_gracefully_on_sigterm(served: Served) -> None:
    code, log = served.stop()
    assert code == 0, log
    assert "serving on https://127.0.0.1" in log and "VTN stopped" in log
    assert "Traceback" not in log


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        pytest.param([], "refusing to start without TLS", id="no-tls"),
        pytest.param(["--insecure-http", "--tls-cert", "x.pem"], "cannot be combined",
                     id="insecure-with-tls"),
        pytest.param(["--insecure-http", "--workers", "2"], "needs a PostgreSQL", id="workers"),
        pytest.param(["--insecure-http", "--poll-interval", "0.5"], "whole number of seconds",
                     id="half-second-polls"),
        pytest.param(["--tls-cert", "missing.pem", "--tls-key", "k.pem", "--ca-file", "c.pem"],
                     "c.pem", id="missing-file"),
        pytest.param(["--insecure-http", "--db-connections", "1"], "at least 2", id="one-conn"),
        pytest.param(["--insecure-http", "--push-tls-sessions", "-1"], "0 or more",
                     id="tls-sessions"),
        pytest.param(["--insecure-http", "--db-wait", "0"], "more than 0", id="no-wait"),
    ],
)  # fmt: skip
def test_serve_refuses_bad_configuration_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    db = f"sqlite:///{tmp_path / 'vtn.db'}"
    code, _, err = run(capsys, "vtn", "serve", "--db", db, *flags)
    assert code == 1
    assert message in err and len(err.strip().splitlines()) == 1, err


# --- tokens ---------------------------------------------------------------------------------------


def test_token_create_list_revoke(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    token = make_token(capsys, served)
    token_id, secret = token.split(".")
    code, out, _ = run(capsys, "vtn", "token", "list", "--db", served.db)
    assert code == 0 and token_id in out and "ops" in out and "active" in out
    assert secret not in out

    assert run(capsys, "event", "list", "--token", token, *served.client_args())[0] == 0
    code, out, _ = run(capsys, "vtn", "token", "revoke", token_id, "--db", served.db)
    assert code == 0 and token_id in out
    code, _, err = run(capsys, "event", "list", "--token", token, *served.client_args())
    assert code == 1 and "401" in err and "revoked" in err
    code, _, err = run(capsys, "vtn", "token", "revoke", token_id, "--db", served.db)
    assert code == 1 and "no active token" in err


def test_viewer_token_cannot_create_events(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    viewer = make_token(capsys, served, "--role", "viewer")
    code, _, err = run(capsys, "event", "create", "--token", viewer, *served.client_args())
    assert code == 1 and err.startswith("flex4grid event: error: 403")


# --- events and VENs ------------------------------------------------------------------------------


def test_event_session_from_the_command_line(
    served: Served, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEX4GRID_TOKEN", make_token(capsys, served))
    ven = VenClient(served.url, served.pki.client_context(served.pki.vens[0]))
    ven_id = asyncio.run(bootstrap(ven))

    code, out, _ = run(capsys, "vtn", "ven", "list", *served.client_args())
    assert code == 0 and ven_id in out and "approved" in out

    code, out, err = run(
        capsys, "event", "create", "--id", "peak-1", "--ven", ven_id, "--signal", "LOAD_DISPATCH",
        "--start", "now+1h", "--duration", "1h", "--intervals=-2,-4,-6", "--randomize", "5m",
        "--priority", "1", *served.client_args(),
    )  # fmt: skip
    assert code == 0, err
    assert "created event peak-1" in out

    async def answer() -> DistributeEvent:
        delivered = await ven.send(Poll(ven_id=ven_id))
        assert isinstance(delivered, DistributeEvent)
        await ven.send(
            CreatedEvent(
                response=EiResponse(code=200, request_id=delivered.request_id),
                ven_id=ven_id,
                event_responses=tuple(
                    EventResponse(
                        code=200,
                        request_id=delivered.request_id,
                        event_id=e.event_id,
                        modification_number=e.modification_number,
                        opt_type=OptType.OPT_IN,
                    )
                    for e in delivered.events
                ),
            )
        )
        return delivered

    delivered = asyncio.run(answer())
    (event,) = delivered.events
    assert [i.value for i in event.signals[0].intervals] == [-2, -4, -6]
    assert [i.duration for i in event.signals[0].intervals] == [timedelta(minutes=20)] * 3

    code, out, _ = run(capsys, "event", "list", *served.client_args())
    assert code == 0
    header, row = out.strip().splitlines()
    assert header.split()[:3] == ["EVENT_ID", "STATUS", "MOD"]
    assert row.split()[:3] == ["peak-1", "far", "0"] and "1 in, 0 out, 0 waiting" in row

    code, out, _ = run(capsys, "event", "show", "peak-1", *served.client_args())
    assert code == 0 and f"{ven_id}  0" in out and "optIn" in out

    code, out, _ = run(capsys, "event", "modify", "peak-1", "--intervals=-1,-1",
                       *served.client_args())  # fmt: skip
    assert code == 0 and "modification 1" in out
    modified = asyncio.run(ven.send(Poll(ven_id=ven_id)))
    assert isinstance(modified, DistributeEvent)
    signal_ = modified.events[0].signals[0]
    assert signal_.signal_name == "LOAD_DISPATCH" and [i.value for i in signal_.intervals] == [
        -1,
        -1,
    ]

    code, out, _ = run(capsys, "event", "cancel", "peak-1", *served.client_args())
    assert code == 0 and "cancelled event peak-1 (modification 2)" in out

    code, _, err = run(capsys, "event", "cancel", "nope", *served.client_args())
    assert code == 1 and err.strip() == "flex4grid event: error: 404 no event 'nope'"
    code, _, err = run(capsys, "vtn", "ven", "approve", ven_id, *served.client_args())
    assert code == 1 and "422" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["event", "list", "--token", "a.b", "--url", "https://127.0.0.1:9"],
                     "cannot reach", id="unreachable"),
        pytest.param(["event", "create", "--token", "a.b", "--duration", "soon"],
                     "not a duration", id="bad-duration"),
        pytest.param(["event", "create", "--token", "a.b", "--start", "tomorrow"],
                     "not a start time", id="bad-start"),
        pytest.param(["event", "create", "--token", "a.b", "--intervals", "1,x"],
                     "--intervals must be numbers", id="bad-intervals"),
        pytest.param(["vtn", "ven", "list"], "no token", id="no-token"),
    ],
)  # fmt: skip
def test_client_errors_are_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.delenv("FLEX4GRID_TOKEN", raising=False)
    code, _, err = run(capsys, *argv)
    assert code == 1 and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_untrusted_server_certificate_is_one_line(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "event", "list", "--token", "a.b", "--url", served.url)
    assert code == 1 and "not trusted" in err and "--ca-file" in err


# --- argument parsing -----------------------------------------------------------------------------

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90m", timedelta(minutes=90)), ("1h30m", timedelta(minutes=90)), ("45s", timedelta(45)
     / 86400), ("PT1H", timedelta(hours=1)), ("2d", timedelta(days=2))],
)  # fmt: skip
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_parse_start() -> None:
    assert parse_start("now", NOW) == NOW
    assert parse_start("now+15m", NOW) == NOW + timedelta(minutes=15)
    assert parse_start("2026-01-15T13:00:00+01:00", NOW) == NOW


def test_intervals_split_the_duration_exactly() -> None:
    intervals = split_intervals([1, 2, 3], timedelta(hours=1, seconds=1))
    durations = [parse_duration(i["duration"]) for i in intervals]
    assert sum(durations, timedelta(0)) == timedelta(hours=1, seconds=1)
    assert [i["value"] for i in intervals] == [1, 2, 3]


def test_workers_share_the_port_on_postgresql_only(
    tmp_path: Path, pki: DevPki, database_url: str
) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if database_url.startswith("sqlite"):
        refused = subprocess.run(
            serve_command(pki, database_url, port, "--workers", "2"), cwd=tmp_path, env=env,
            capture_output=True, check=False,
        )  # fmt: skip
        assert refused.returncode == 1 and b"needs a PostgreSQL" in refused.stderr
        return
    process = subprocess.Popen(
        serve_command(pki, database_url, port, "--workers", "2"), cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    started = b""
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 30
        while started.count(b"serving on https://") < 2 and time.monotonic() < deadline:
            if select.select([process.stderr], [], [], 1)[0]:
                started += process.stderr.readline()
        wait_healthy(f"https://127.0.0.1:{port}", pki, process)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    log = (started + err).decode()
    assert process.returncode == 0, log
    assert log.count("serving on https://") == 2 and log.count("VTN stopped") == 2, log


def test_serve_warns_when_postgresql_cannot_cover_its_pools(
    tmp_path: Path, pki: DevPki, database_url: str
) -> None:
    # 500 connections for one worker: more than any default max_connections (100) allows.
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        serve_command(pki, database_url, port, "--db-connections", "500", "--db-wait", "5"),
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_healthy(f"https://127.0.0.1:{port}", pki, process)  # it serves all the same
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    log = err.decode()
    assert process.returncode == 0, log
    warned = "PostgreSQL may refuse connections under load: this VTN may open 500" in log
    assert warned == database_url.startswith("postgresql"), log  # SQLite: one connection
