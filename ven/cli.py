"""`flex4grid ven ...`: run the gateway's VEN, show what it is doing, opt out of an event by hand.

`ven run` is the long-running gateway (`ven.gateway`, `ven.runner`); `ven status` and
`ven opt-out` work on its state directory only, with or without a running VEN: status reads the
saved session state and the journal; opt-out writes a request into the journal, which a running
VEN takes on its next turn (and a stopped one when it starts). A problem is one line on stderr
and exit code 1, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import fcntl
import json
import logging
import ssl
import sys
import typing
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from certs.files import CertsError
from oadr.model import Event, EventId
from ven import jsonform, schedule
from ven.gateway import (
    STORE_FILE,
    ConfigError,
    config_file,
    make_config,
    preferences_from_file,
)
from ven.model import Decision
from ven.runner import OPT_OUT_REQUEST
from ven.session import Session, SessionConfig, SessionState, SessionStatus
from ven.store import GatewayStore, JournalEntry

Subparsers: typing.TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class CliError(Exception):
    """What the user gets told, in one line."""


def register(subparsers: Subparsers) -> None:
    ven = subparsers.add_parser("ven", help="the prosumer gateway's VEN")
    commands = ven.add_subparsers(dest="ven_command", metavar="VEN_COMMAND", required=True)
    _add_commands(commands)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m ven.cli run|status|opt-out ...`: the same commands as `flex4grid ven`, without
    loading any other package's CLI. `flex4grid ven ...` loads only this one too
    (flex4grid.cli.COMMANDS_OF), so both start the same small process; benchmarks/ven_footprint.py
    measures each."""
    parser = argparse.ArgumentParser(prog="flex4grid ven", description="the gateway's VEN")
    commands = parser.add_subparsers(dest="ven_command", metavar="VEN_COMMAND", required=True)
    _add_commands(commands)
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


def _add_commands(commands: Subparsers) -> None:
    p = commands.add_parser("run", help="run the VEN: VTN link, devices, policy, reports")
    p.add_argument("--config", type=Path, metavar="FILE", help="TOML settings (flags win)")
    p.add_argument("--vtn-url", help="the VTN's URL, e.g. https://vtn.example:8080")
    p.add_argument("--ven-name", help="oadrVenName this VEN registers with")
    p.add_argument("--cert", type=Path, metavar="CHAIN.pem", help="VEN certificate, then CAs")
    p.add_argument("--key", type=Path, metavar="KEY.pem")
    p.add_argument("--ca-file", type=Path, metavar="CA.pem", help="CA certificates trusted")
    p.add_argument("--vtn-fingerprint", help="the VTN certificate's fingerprint (pinned)")
    p.add_argument("--state", type=Path, metavar="DIR", help=f"state directory ({STORE_FILE})")
    p.add_argument("--mqtt", metavar="URL", help="MQTT broker of the devices (mqtt://host:1883)")
    p.add_argument(
        "--simulate",
        metavar="HOUSEHOLD_PROFILE",
        help="simulated devices, e.g. 'typical' (in-process, or over --mqtt when given)",
    )
    p.add_argument("--poll-interval", type=float, metavar="SECONDS", help="default 10")
    p.add_argument("--sample-period", type=float, metavar="SECONDS", help="telemetry; default 10")
    p.add_argument(
        "--push-port", type=int, metavar="PORT", help="serve HTTP push on 127.0.0.1:PORT"
    )
    p.add_argument("--sign", action="store_true", default=None, help="sign messages (XML-DSig)")
    p.add_argument("--preferences", type=Path, metavar="FILE", help="household preferences TOML")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.set_defaults(handler=_guarded("flex4grid ven run", _run))

    p = commands.add_parser("status", help="registration, events, decisions, signals, readings")
    p.add_argument("--state", type=Path, required=True, metavar="DIR")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=_guarded("flex4grid ven status", _status))

    p = commands.add_parser("opt-out", help="opt out of an event by hand (manual override)")
    p.add_argument("event_id", metavar="EVENT_ID")
    p.add_argument("--state", type=Path, required=True, metavar="DIR")
    p.add_argument("--reason", default="manual opt-out", metavar="TEXT")
    p.set_defaults(handler=_guarded("flex4grid ven opt-out", _opt_out))


def _guarded(prog: str, handler: Callable[[argparse.Namespace], int]) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (CliError, ConfigError, CertsError) as err:
            print(f"{prog}: error: {err}", file=sys.stderr)
        except ssl.SSLError as err:
            print(f"{prog}: error: TLS: {err.reason or err}", file=sys.stderr)
        except OSError as err:
            where = f"{err.filename}: " if err.filename else ""
            print(f"{prog}: error: {where}{err.strerror or err}", file=sys.stderr)
        return 1

    return run


# --- ven run --------------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    fields = config_file(args.config) if args.config is not None else {}
    flags = {
        "vtn_url": args.vtn_url,
        "ven_name": args.ven_name,
        "cert": args.cert,
        "key": args.key,
        "ca_file": args.ca_file,
        "vtn_fingerprint": args.vtn_fingerprint,
        "state_dir": args.state,
        "mqtt_url": args.mqtt,
        "simulate": args.simulate,
        "push_port": args.push_port,
        "sign": args.sign,
        "poll_interval": _seconds(args.poll_interval),
        "sample_period": _seconds(args.sample_period),
        "preferences": preferences_from_file(args.preferences) if args.preferences else None,
    }
    fields.update({k: v for k, v in flags.items() if v is not None})
    config = make_config(**fields)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config.state_dir.mkdir(parents=True, exist_ok=True)
    with (config.state_dir / "lock").open("w") as lock:
        try:  # one VEN per state directory; the kernel drops the lock when the process dies
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise CliError(f"another VEN is running on {config.state_dir}") from err
        asyncio.run(_serve(config))
    return 0


async def _serve(config: Any) -> None:
    from ven.gateway import build_gateway  # built inside the loop that drives it

    runner = build_gateway(config)
    await runner.run(handle_signals=True)


def _seconds(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


# --- ven status -----------------------------------------------------------------------------------


def _open_store(state_dir: Path) -> GatewayStore[SessionState]:
    if not (state_dir / STORE_FILE).is_file():
        raise CliError(f"no VEN state in {state_dir} (no {STORE_FILE}); has `ven run` used it?")
    return GatewayStore(state_dir / STORE_FILE, SessionState)


def _no_policy(event: Event, now: datetime) -> Decision:
    raise AssertionError("status never decides")


def _status_of(state: SessionState, now: datetime) -> SessionStatus:
    status = Session(SessionConfig(ven_name="status"), _no_policy, state).status()
    by_id = {r.event_id: r for r in state.events}
    lines = tuple(
        dataclasses.replace(line, status=schedule.status_of(by_id[line.event_id], now))
        for line in status.events
    )
    return dataclasses.replace(status, events=lines)


def latest_commands(journal: list[JournalEntry]) -> dict[str, JournalEntry]:
    """The last command set journaled for each device (journal newest first)."""
    latest: dict[str, JournalEntry] = {}
    for entry in journal:
        if entry.kind == "command":
            latest.setdefault(str(entry.detail.get("device_id")), entry)
    return latest


def _status(args: argparse.Namespace) -> int:
    store = _open_store(args.state)
    try:
        state = store.load()
        journal = store.recent(500)
    finally:
        store.close()
    if state is None:
        raise CliError(f"{args.state}: the VEN has not saved any state yet")
    now = datetime.now(UTC)
    status = _status_of(state, now)
    commands = latest_commands(journal)
    decisions = [e for e in journal if e.kind in ("decision", "manual-opt-out")][:10]
    if args.json:
        body = jsonform.dump(status)
        body["commands"] = {d: e.detail.get("commands") for d, e in commands.items()}
        body["decisions"] = [
            {"at": e.at.isoformat(), "text": e.text, **e.detail} for e in decisions
        ]
        print(json.dumps(body, indent=2, default=str))
        return 0
    print(_table(status, now, commands, decisions))
    return 0


def _when(at: datetime | None, now: datetime) -> str:
    if at is None:
        return "-"
    ago = (now - at).total_seconds()
    text = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{text} ({ago:.0f} s ago)" if ago >= 0 else f"{text} (in {-ago:.0f} s)"


def _time(at: datetime | None) -> str:
    return "-" if at is None else at.astimezone(UTC).strftime("%m-%d %H:%M:%S")


def _columns(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1]
            for r in rows]  # fmt: skip


def _table(
    status: SessionStatus,
    now: datetime,
    commands: dict[str, JournalEntry],
    decisions: list[JournalEntry],
) -> str:
    skew = status.clock_skew
    skew_text = "-" if skew is None else f"{skew.total_seconds():+.1f} s"
    if status.clock_skew_flagged:
        skew_text += "  (over 30 s: check the clocks)"
    out = [
        f"registration   {status.phase}  venID {status.ven_id or '-'}  "
        f"VTN {status.vtn_id or '-'}  registrationID {status.registration_id or '-'}",
        f"last contact   {_when(status.last_contact, now)}   clock skew {skew_text}",
        f"poll interval  {status.poll_interval.total_seconds():g} s   "
        f"buffered readings {status.buffered_readings} (dropped {status.dropped_readings})   "
        f"queued {', '.join(status.queued) or 'nothing'}",
        f"reports        {len(status.pending_reports)} pending request(s)   "
        f"last error {status.last_error or '-'}",
        "",
    ]
    if status.events:
        rows = [["EVENT", "MOD", "STATUS", "START", "END", "OPT", "REASON"]]
        rows += [
            [
                e.event_id,
                str(e.modification_number),
                str(e.status) + (" (test)" if e.test_event else ""),
                _time(e.start_at),
                _time(e.end_at),
                str(e.opt or "-"),
                e.reason or "-",
            ]
            for e in status.events
        ]
        out += [*_columns(rows), ""]
    else:
        out += ["no events", ""]
    out.append("signals in force:" + ("" if status.signals else " none"))
    out += [
        f"  {s.event_id}  {s.signal_name} {s.signal_type} {s.value:g}  until {_time(s.until)}"
        for s in status.signals
    ]
    if commands:
        out += ["", "device commands (latest):"]
        out += [f"  {_time(e.at)}  {e.text}" for _, e in sorted(commands.items())]
    if decisions:
        out += ["", "decisions (newest first):"]
        out += [f"  {_time(e.at)}  {e.text}" for e in decisions]
    return "\n".join(out)


# --- ven opt-out ----------------------------------------------------------------------------------


def _opt_out(args: argparse.Namespace) -> int:
    store = _open_store(args.state)
    try:
        state = store.load()
        known = {r.event_id for r in state.events} if state is not None else set()
        if args.event_id not in known:
            raise CliError(f"no event {args.event_id!r} is known to this VEN")
        store.journal(
            datetime.now(UTC),
            OPT_OUT_REQUEST,
            f"opt-out of {args.event_id} requested: {args.reason}",
            event_id=EventId(args.event_id),
            reason=args.reason,
        )
    finally:
        store.close()
    print(f"opt-out of {args.event_id} requested; the VEN sends it on its next turn")
    return 0


if __name__ == "__main__":
    sys.exit(main())
