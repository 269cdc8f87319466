"""`flex4grid vtn ...` and `flex4grid event ...`: run the VTN, manage admin tokens, and drive the
admin API (VENs, events) over HTTP(S).

`vtn serve` and `vtn token` work on the server and its database directly; `vtn ven` and `event`
are clients of the admin API (`--url`, `--token` or FLEX4GRID_TOKEN, `--ca-file` for the
server's certificate). A problem is one line on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import re
import ssl
import sys
import typing
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import SQLAlchemyError

from certs.files import CertsError
from certs.tls import DEFAULT_SESSIONS
from oadr.enums import SignalName, SignalType
from oadr.model import VtnId
from vtn import serve as server
from vtn.admin import tokens
from vtn.admin.schemas import DEFAULT_MARKET_CONTEXT, Unit
from vtn.config import DEFAULT_VTN_ID, VtnSettings
from vtn.store.db import POOL_CONNECTIONS, POOL_WAIT_S, Store
from vtn.vens import Policy, Status

DEFAULT_URL = "https://127.0.0.1:8080"
TOKEN_ENV = "FLEX4GRID_TOKEN"
_DURATION = TypeAdapter(timedelta)
_UNITS: tuple[str, ...] = typing.get_args(Unit)


class CliError(Exception):
    """What the user gets told, in one line."""


Subparsers: typing.TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def register(subparsers: Subparsers) -> None:
    vtn = subparsers.add_parser("vtn", help="the DSO's OpenADR 2.0b server (VTN)")
    commands = vtn.add_subparsers(dest="vtn_command", metavar="VTN_COMMAND", required=True)
    _serve_parser(commands)
    _token_parsers(commands)
    _ven_parsers(commands)
    _event_parsers(subparsers)


def _guarded(prog: str, handler: Callable[[argparse.Namespace], int]) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (CliError, server.ServeError, CertsError) as err:
            print(f"{prog}: error: {err}", file=sys.stderr)
        except SQLAlchemyError as err:
            reason = str(getattr(err, "orig", None) or err).splitlines()[0]
            print(f"{prog}: error: database: {reason}", file=sys.stderr)
        except OSError as err:
            print(f"{prog}: error: {err.strerror or err}", file=sys.stderr)
        return 1

    return run


# --- vtn serve ------------------------------------------------------------------------------------


def _serve_parser(commands: Subparsers) -> None:
    p = commands.add_parser("serve", help="run the VTN (OpenADR services + admin API)")
    p.add_argument(
        "--db",
        default=server.DEFAULT_DATABASE,
        metavar="URL",
        help=f"database URL (default {server.DEFAULT_DATABASE}; "
        "postgresql://user@host/db for production)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument(
        "--tls-cert",
        type=Path,
        metavar="CHAIN.pem",
        help="the VTN's certificate, then its intermediate CAs",
    )
    p.add_argument("--tls-key", type=Path, metavar="KEY.pem")
    p.add_argument(
        "--ca-file",
        type=Path,
        action="append",
        default=[],
        metavar="CA.pem",
        help="CA certificate(s) trusted for VEN client certificates (repeatable)",
    )
    p.add_argument(
        "--insecure-http",
        action="store_true",
        help="plain HTTP without client certificates (development only)",
    )
    p.add_argument("--registration", choices=[x.value for x in Policy], default=Policy.AUTO.value)
    p.add_argument("--vtn-id", default=DEFAULT_VTN_ID)
    p.add_argument(
        "--poll-interval",
        type=float,
        default=10,
        metavar="SECONDS",
        help="oadrRequestedOadrPollFreq given to VENs (default 10)",
    )
    p.add_argument(
        "--require-signatures", action="store_true", help="refuse unsigned OpenADR messages (463)"
    )
    p.add_argument("--workers", type=int, default=1, help="processes (above 1: PostgreSQL only)")
    p.add_argument(
        "--db-connections",
        type=int,
        default=POOL_CONNECTIONS,
        metavar="N",
        help=f"PostgreSQL connections each worker opens at most (default "
        f"{POOL_CONNECTIONS}); max_connections must cover workers x (N + 1)",
    )
    p.add_argument(
        "--push-tls-sessions",
        type=int,
        default=DEFAULT_SESSIONS,
        metavar="N",
        help=f"TLS sessions each worker keeps to resume pushes to VENs (default "
        f"{DEFAULT_SESSIONS:,}, ~12 KB each; 0: every push a full handshake)",
    )
    p.add_argument(
        "--db-wait",
        type=float,
        default=POOL_WAIT_S,
        metavar="SECONDS",
        help=f"how long a request waits for a free database connection before it is refused "
        f"(default {POOL_WAIT_S:g})",
    )
    p.add_argument(
        "--loop",
        choices=server.EVENT_LOOPS,
        default="auto",
        help="event loop: uvloop where installed (auto), or asyncio's own",
    )
    p.add_argument(
        "--with",
        dest="parts",
        action="append",
        default=[],
        choices=[*server.EXTENSIONS, "all"],
        help="also serve this part (repeatable): market (/admin/v1/market), forecast "
        "(/admin/v1/forecast), data (/admin/v1/data; needs $FLEX4GRID_DATA_KEY_FILE), console "
        "(/console/); all: every one",
    )
    p.set_defaults(handler=_guarded("flex4grid vtn serve", _serve))  # fmt: skip


def _serve(args: argparse.Namespace) -> int:
    if args.poll_interval < 1 or args.poll_interval != int(args.poll_interval):
        # oadrRequestedOadrPollFreq is a 2.0b duration: whole seconds.
        raise CliError("--poll-interval must be a whole number of seconds, at least 1")
    options = server.ServeOptions(
        database_url=args.db,
        host=args.host,
        port=args.port,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        ca_files=tuple(args.ca_file),
        insecure_http=args.insecure_http,
        settings=VtnSettings(
            vtn_id=VtnId(args.vtn_id),
            registration=Policy(args.registration),
            poll_interval=timedelta(seconds=args.poll_interval),
            require_signatures=args.require_signatures,
        ),
        workers=args.workers,
        db_connections=args.db_connections,
        db_wait_s=args.db_wait,
        push_tls_sessions=args.push_tls_sessions,
        event_loop=args.loop,
        extensions=tuple(server.EXTENSIONS)
        if "all" in args.parts
        else tuple(dict.fromkeys(args.parts)),
    )
    server.check(options)
    server.configure_logging()
    server.run(options)
    return 0


# --- vtn token ------------------------------------------------------------------------------------


def _token_parsers(commands: Subparsers) -> None:
    token = commands.add_parser("token", help="admin API tokens (run on the VTN's host)")
    sub = token.add_subparsers(dest="token_command", metavar="TOKEN_COMMAND", required=True)
    p = sub.add_parser("create", help="make a token; it is printed once, only its hash is kept")
    p.add_argument("--db", default=server.DEFAULT_DATABASE, metavar="URL")
    p.add_argument("--name", required=True, help="who uses it; the audit log's actor")
    p.add_argument("--role", choices=[r.value for r in tokens.TokenRole],
                   default=tokens.TokenRole.OPERATOR.value)  # fmt: skip
    p.add_argument("--subject", metavar="AGGREGATOR_ID",
                   help="the aggregator an `aggregator` token acts for")  # fmt: skip
    p.set_defaults(handler=_guarded("flex4grid vtn token", _token_create))
    p = sub.add_parser("list", help="tokens (never their secrets)")
    p.add_argument("--db", default=server.DEFAULT_DATABASE, metavar="URL")
    p.set_defaults(handler=_guarded("flex4grid vtn token", _token_list))
    p = sub.add_parser("revoke", help="revoke a token at once")
    p.add_argument("token_id", metavar="TOKEN_ID")
    p.add_argument("--db", default=server.DEFAULT_DATABASE, metavar="URL")
    p.set_defaults(handler=_guarded("flex4grid vtn token", _token_revoke))


def _cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


async def _with_store(url: str, work: Callable[[Store], Any]) -> Any:
    store = Store(url)
    try:
        await server.prepare_database(store)
        return await work(store)
    finally:
        await store.close()


def _token_create(args: argparse.Namespace) -> int:
    if not args.name.strip():
        raise CliError("--name must not be empty")
    role = tokens.TokenRole(args.role)
    if (role is tokens.TokenRole.AGGREGATOR) != (args.subject is not None):
        raise CliError("--subject (an aggregator id) goes with --role aggregator, and only with it")

    async def work(store: Store) -> str:
        return await tokens.create(
            store, args.name, role, actor=_cli_actor(), now=datetime.now(UTC), subject=args.subject
        )

    token = asyncio.run(_with_store(args.db, work))
    print(token)
    print(f"token for {args.name!r} ({role.value}); shown once, keep it safe", file=sys.stderr)
    return 0


def _token_list(args: argparse.Namespace) -> int:
    async def work(store: Store) -> list[Any]:
        async with store.transaction() as tx:
            return await tx.tokens.page()

    rows = [
        [t.token_id, t.name, t.role, _when(t.created_at),
         "revoked " + _when(t.revoked_at) if t.revoked_at else "active"]
        for t in asyncio.run(_with_store(args.db, work))
    ]  # fmt: skip
    _table(["TOKEN_ID", "NAME", "ROLE", "CREATED", "STATUS"], rows)
    return 0


def _token_revoke(args: argparse.Namespace) -> int:
    async def work(store: Store) -> bool:
        return await tokens.revoke(store, args.token_id, actor=_cli_actor(), now=datetime.now(UTC))

    if not asyncio.run(_with_store(args.db, work)):
        raise CliError(f"no active token {args.token_id!r}")
    print(f"revoked {args.token_id}")
    return 0


# --- admin API client -----------------------------------------------------------------------------


def _client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=os.environ.get("FLEX4GRID_URL", DEFAULT_URL),
        help=f"the VTN (default {DEFAULT_URL})",
    )
    parser.add_argument("--token", help=f"admin API token (default: ${TOKEN_ENV})")
    parser.add_argument("--ca-file", type=Path, metavar="CA.pem",
                        help="CA of the VTN's certificate (default: system CAs)")  # fmt: skip


class Api:
    def __init__(self, args: argparse.Namespace) -> None:
        token = args.token or os.environ.get(TOKEN_ENV)
        if not token:
            raise CliError(f"no token: give --token or set {TOKEN_ENV}")
        self.base = args.url.rstrip("/") + "/admin/v1"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.ssl: ssl.SSLContext | bool = True
        if args.ca_file is not None:
            try:
                self.ssl = ssl.create_default_context(cafile=str(args.ca_file))
            except (OSError, ssl.SSLError) as err:
                raise CliError(f"--ca-file {args.ca_file}: cannot load ({err})") from None

    async def call(
        self, session: aiohttp.ClientSession, method: str, path: str, **kwargs: Any
    ) -> Any:
        try:
            async with session.request(
                method, self.base + path, headers=self.headers, ssl=self.ssl, **kwargs
            ) as response:
                try:
                    data = await response.json(content_type=None)
                except ValueError:
                    data = None
                if response.status >= 400:
                    message = str(data.get("error") if isinstance(data, dict) else response.reason)
                    details = data.get("detail") if isinstance(data, dict) else None
                    if details:
                        message += ": " + "; ".join(
                            f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in details
                        )
                    raise CliError(f"{response.status} {message}")
                return data
        except aiohttp.ClientConnectorCertificateError as err:
            raise CliError(f"TLS: the VTN's certificate is not trusted ({err.certificate_error}); "
                           "give --ca-file") from None  # fmt: skip
        except aiohttp.ClientConnectorError as err:
            raise CliError(f"cannot reach {self.base}: {err.strerror or err}") from None
        except aiohttp.ClientError as err:
            raise CliError(f"{self.base}: {err}") from None

    def run(self, *calls: tuple[str, str, dict[str, Any]]) -> list[Any]:
        async def go() -> list[Any]:
            async with aiohttp.ClientSession() as session:
                return [await self.call(session, m, p, **kw) for m, p, kw in calls]

        return asyncio.run(go())

    def one(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.run((method, path, kwargs))[0]


# --- vtn ven --------------------------------------------------------------------------------------


def _ven_parsers(commands: Subparsers) -> None:
    ven = commands.add_parser("ven", help="VENs known to the VTN (admin API)")
    sub = ven.add_subparsers(dest="ven_command", metavar="VEN_COMMAND", required=True)
    p = sub.add_parser("list", help="VENs and their registration status")
    p.add_argument("--status", choices=[s.value for s in Status])
    p.add_argument("--limit", type=int, default=100)
    _client_options(p)
    p.set_defaults(handler=_guarded("flex4grid vtn ven", _ven_list))
    for action, text in (
        ("approve", "approve a VEN waiting for approval"),
        ("reject", "reject a VEN (cancels its registration)"),
        ("deregister", "cancel a VEN's registration (oadrCancelPartyRegistration)"),
    ):
        p = sub.add_parser(action, help=text)
        p.add_argument("ven_id", metavar="VEN_ID")
        _client_options(p)
        p.set_defaults(handler=_guarded("flex4grid vtn ven", _ven_action), action=action)


def _ven_list(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": args.limit}
    if args.status:
        params["status"] = args.status
    page = Api(args).one("GET", "/vens", params=params)
    rows = [
        [v["ven_id"], v["ven_name"], v["status"], ",".join(v["groups"]) or "-",
         _when(v["last_seen_at"]), v["fingerprint"][:23] + "…"]
        for v in page["items"]
    ]  # fmt: skip
    _table(["VEN_ID", "NAME", "STATUS", "GROUPS", "LAST_SEEN", "FINGERPRINT"], rows)
    return 0


def _ven_action(args: argparse.Namespace) -> int:
    reply = Api(args).one("POST", f"/vens/{args.ven_id}/{args.action}")
    print(reply.get("detail") or f"{reply['ven_id']}: {reply['status']}")
    return 0


# --- event ----------------------------------------------------------------------------------------


def _event_parsers(subparsers: Subparsers) -> None:
    event = subparsers.add_parser("event", help="OpenADR events on the VTN (admin API)")
    sub = event.add_subparsers(dest="event_command", metavar="EVENT_COMMAND", required=True)
    guarded = _guarded

    p = sub.add_parser("create", help="create an event")
    _event_options(p, creating=True)
    p.add_argument("--id", dest="event_id", help="eventID (default: assigned by the VTN)")
    _client_options(p)
    p.set_defaults(handler=guarded("flex4grid event", _event_create))

    p = sub.add_parser("modify", help="change an event (modificationNumber + 1)")
    p.add_argument("event_id", metavar="EVENT_ID")
    _event_options(p, creating=False)
    p.add_argument("--reason", help="modificationReason")
    _client_options(p)
    p.set_defaults(handler=guarded("flex4grid event", _event_modify))

    p = sub.add_parser("cancel", help="cancel an event")
    p.add_argument("event_id", metavar="EVENT_ID")
    _client_options(p)
    p.set_defaults(handler=guarded("flex4grid event", _event_cancel))

    p = sub.add_parser("list", help="events with their VENs' answers")
    p.add_argument("--status", choices=["all", "active", "pending"], default="all")
    p.add_argument("--limit", type=int, default=50)
    _client_options(p)
    p.set_defaults(handler=guarded("flex4grid event", _event_list))

    p = sub.add_parser("show", help="one event and each VEN's delivery and opt")
    p.add_argument("event_id", metavar="EVENT_ID")
    _client_options(p)
    p.set_defaults(handler=guarded("flex4grid event", _event_show))


def _event_options(p: argparse.ArgumentParser, *, creating: bool) -> None:
    p.add_argument("--ven", action="append", default=[], metavar="VEN_ID", help="target a VEN")
    p.add_argument("--group", action="append", default=[], metavar="GROUP_ID")
    p.add_argument("--resource", action="append", default=[], metavar="RESOURCE_ID")
    p.add_argument(
        "--signal", choices=[s.value for s in SignalName], default="SIMPLE" if creating else None
    )
    p.add_argument("--signal-type", choices=[t.value for t in SignalType])
    p.add_argument(
        "--unit",
        choices=_UNITS,
        help="of the interval values (default kW for LOAD_DISPATCH setpoints)",
    )
    p.add_argument(
        "--start", help="ISO 8601 time, `now` or `now+15m`", default="now+5m" if creating else None
    )
    p.add_argument("--duration", help="e.g. 1h, 90m, PT1H", default="1h" if creating else None)
    p.add_argument(
        "--intervals",
        metavar="V1,V2,...",
        default="1" if creating else None,
        help="interval values; the duration is split equally",
    )
    p.add_argument("--priority", type=int)
    p.add_argument("--randomize", metavar="DURATION", help="startafter window, e.g. 5m")
    if creating:
        p.add_argument("--market-context", default=DEFAULT_MARKET_CONTEXT)
        p.add_argument("--test", action="store_true", help="a test event")
        p.add_argument("--no-response", action="store_true", help="responseRequired never")


_SIMPLE_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`90m`, `1h30m`, `45s`, `2d` or ISO 8601 (`PT1H`)."""
    text = text.strip()
    if text.upper().startswith("P"):
        try:
            return _DURATION.validate_python(text.upper())
        except ValidationError:
            raise CliError(f"not a duration: {text!r}") from None
    parts = _SIMPLE_DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise CliError(f"not a duration: {text!r} (use e.g. 15m, 1h, 1h30m, PT1H)")
    return timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in parts))


def parse_start(text: str, now: datetime) -> datetime:
    text = text.strip()
    if text == "now":
        return now
    if text.startswith("now+"):
        return now + parse_duration(text[4:])
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"not a start time: {text!r} (ISO 8601, now or now+15m)") from None
    if value.tzinfo is None:
        raise CliError(f"start {text!r} needs a UTC offset, e.g. 2026-01-15T12:00:00Z")
    return value


def split_intervals(values: Sequence[float], total: timedelta) -> list[dict[str, Any]]:
    """Equal intervals adding up to `total` exactly (the last takes any remainder)."""
    if total <= timedelta(0):
        raise CliError("--duration must be positive")
    each = total // len(values)
    durations = [each] * (len(values) - 1) + [total - each * (len(values) - 1)]
    return [
        {"duration": _DURATION.dump_python(d, mode="json"), "value": v}
        for d, v in zip(durations, values, strict=True)
    ]


def _values(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CliError(f"--intervals must be numbers separated by commas, not {text!r}") from None
    if not values:
        raise CliError("--intervals needs at least one value")
    return values


def _iso(value: timedelta) -> Any:
    return _DURATION.dump_python(value, mode="json")


def _signal(args: argparse.Namespace, name: str, duration: timedelta) -> dict[str, Any]:
    signal: dict[str, Any] = {
        "name": name,
        "intervals": split_intervals(_values(args.intervals), duration),
    }
    if args.signal_type:
        signal["type"] = args.signal_type
    if args.unit:
        signal["unit"] = args.unit
    return signal


def _targets(args: argparse.Namespace) -> dict[str, list[str]] | None:
    if not (args.ven or args.group or args.resource):
        return None
    return {"ven_ids": args.ven, "group_ids": args.group, "resource_ids": args.resource}


def _event_create(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    duration = parse_duration(args.duration)
    body: dict[str, Any] = {
        "start": parse_start(args.start, now).isoformat(),
        "duration": _iso(duration),
        "signals": [_signal(args, args.signal, duration)],
        "market_context": args.market_context,
        "test_event": args.test,
        "response_required": "never" if args.no_response else "always",
    }
    if args.event_id:
        body["event_id"] = args.event_id
    if (targets := _targets(args)) is not None:
        body["targets"] = targets
    if args.priority is not None:
        body["priority"] = args.priority
    if args.randomize:
        body["start_after"] = _iso(parse_duration(args.randomize))
    event = Api(args).one("POST", "/events", json=body)
    print(f"created event {event['event_id']} ({event['status']}, starts "
          f"{_when(event['active_period']['start'])})")  # fmt: skip
    return 0


def _event_modify(args: argparse.Namespace) -> int:
    api = Api(args)
    body: dict[str, Any] = {}
    if args.start:
        body["start"] = parse_start(args.start, datetime.now(UTC)).isoformat()
    if args.duration:
        body["duration"] = _iso(parse_duration(args.duration))
    if args.intervals or args.signal:
        current = api.one("GET", f"/events/{args.event_id}")["event"]
        signal = current["signals"][0]
        duration = (
            parse_duration(args.duration)
            if args.duration
            else _DURATION.validate_python(current["active_period"]["duration"])
        )
        if args.intervals is None:
            args.intervals = ",".join(str(i["value"]) for i in signal["intervals"])
        body["signals"] = [_signal(args, args.signal or signal["signal_name"], duration)]
        if not args.signal_type and not args.signal:
            body["signals"][0]["type"] = signal["signal_type"]
    if (targets := _targets(args)) is not None:
        body["targets"] = targets
    if args.priority is not None:
        body["priority"] = args.priority
    if args.randomize:
        body["start_after"] = _iso(parse_duration(args.randomize))
    if args.reason:
        body["modification_reason"] = args.reason
    if not body:
        raise CliError("nothing to change: give --start, --duration, --intervals, ...")
    event = api.one("PATCH", f"/events/{args.event_id}", json=body)
    print(f"modified event {event['event_id']} (modification {event['modification_number']})")
    return 0


def _event_cancel(args: argparse.Namespace) -> int:
    event = Api(args).one("POST", f"/events/{args.event_id}/cancel")
    print(f"cancelled event {event['event_id']} (modification {event['modification_number']})")
    return 0


def _opt_summary(deliveries: list[dict[str, Any]]) -> str:
    counts = {"optIn": 0, "optOut": 0}
    waiting = 0
    for d in deliveries:
        if d["opt_type"] in counts:
            counts[d["opt_type"]] += 1
        else:
            waiting += 1
    return f"{counts['optIn']} in, {counts['optOut']} out, {waiting} waiting"


def _event_list(args: argparse.Namespace) -> int:
    api = Api(args)
    page = api.one("GET", "/events", params={"status": args.status, "limit": args.limit})
    details = api.run(*(("GET", f"/events/{e['event_id']}", {}) for e in page["items"]))
    rows = []
    for event, detail in zip(page["items"], details, strict=True):
        signal = event["signals"][0]
        values = ",".join(f"{i['value']:g}" for i in signal["intervals"])
        rows.append(
            [event["event_id"], event["status"], str(event["modification_number"]),
             _when(event["active_period"]["start"]),
             _span(event["active_period"]["duration"]),
             f"{signal['signal_name']} {values}", _target_text(event["target"]),
             _opt_summary(detail["deliveries"])]
        )  # fmt: skip
    _table(["EVENT_ID", "STATUS", "MOD", "START", "DURATION", "SIGNAL", "TARGET", "VENS"], rows)
    return 0


def _event_show(args: argparse.Namespace) -> int:
    detail = Api(args).one("GET", f"/events/{args.event_id}")
    event = detail["event"]
    period = event["active_period"]
    print(f"event {event['event_id']}  status {event['status']}  "
          f"modification {event['modification_number']}")  # fmt: skip
    print(f"  market context {event['market_context']}")
    randomize = f"  randomize {_span(period['start_after'])}" if period["start_after"] else ""
    print(f"  start {_when(period['start'])}  duration {_span(period['duration'])}{randomize}")
    for signal in event["signals"]:
        values = ", ".join(f"{_span(i['duration'])}={i['value']:g}" for i in signal["intervals"])
        print(f"  signal {signal['signal_name']}/{signal['signal_type']}: {values}")
    print(f"  target {_target_text(event['target'])}")
    rows = [
        [d["ven_id"], "-" if d["delivered_modification"] is None
         else str(d["delivered_modification"]), d["opt_type"] or "-",
         "-" if d["opt_modification_number"] is None else str(d["opt_modification_number"]),
         _when(d["responded_at"])]
        for d in detail["deliveries"]
    ]  # fmt: skip
    print()
    _table(["VEN_ID", "SENT_MOD", "OPT", "OPT_MOD", "ANSWERED"], rows)
    return 0


# --- output ---------------------------------------------------------------------------------------


def _when(value: Any) -> str:
    if value is None:
        return "-"
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _span(value: Any) -> str:
    seconds = int(_DURATION.validate_python(value).total_seconds())
    if seconds == 0:
        return "open"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{n}{u}" for n, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if n)


def _target_text(target: dict[str, list[str]]) -> str:
    parts = [
        f"{label}:{','.join(target[key])}"
        for key, label in (("ven_ids", "ven"), ("group_ids", "group"),
                           ("resource_ids", "resource"), ("party_ids", "party"))
        if target.get(key)
    ]  # fmt: skip
    return " ".join(parts) or "all"


def _table(header: list[str], rows: list[list[str]]) -> None:
    if not rows:
        print("(none)")
        return
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
