"""`flex4grid market ...`: the flexibility market over the VTN's admin API (issue 8).

The DSO defines the grid (`point create`), opens aggregator accounts (`aggregator create`
prints the aggregator's token once), publishes flex requests (`request create|list`), clears
them at gate closure (`clear`, with `--dispatch` to send the awards as OpenADR events) and
settles them (`settle`: measure against a baseline, then statements). Aggregators, with their
own token, register nodes (`node create|add-member|list`) and bid (`bid submit|list`).

Quantities are given as decimal text and sent as such, so `--price 0.1234` is never a float.
Like `flex4grid event`: `--url`, `--token` or $FLEX4GRID_TOKEN, `--ca-file`; a problem is one
line on stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import typing
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from vtn.cli import DEFAULT_URL, TOKEN_ENV, Api, CliError, parse_duration, parse_start

Subparsers: typing.TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
PROG = "flex4grid market"
BASELINES = ("10-of-10", "high-x-of-y", "meter-before-meter-after")


def register(subparsers: Subparsers) -> None:
    market = subparsers.add_parser("market", help="the local flexibility market (admin API)")
    commands = market.add_subparsers(dest="market_command", metavar="MARKET_COMMAND",
                                     required=True)  # fmt: skip
    _point_parsers(commands)
    _aggregator_parsers(commands)
    _node_parsers(commands)
    _request_parsers(commands)
    _bid_parsers(commands)
    p = commands.add_parser("clear", help="clear a request after its gate closure (DSO)")
    p.add_argument("request_id", metavar="REQUEST_ID")
    p.add_argument("--dispatch", action="store_true", help="then send the awards as events")
    _command(p, _clear)
    p = commands.add_parser("settle", help="measure delivery and issue statements (DSO)")
    p.add_argument("request_id", metavar="REQUEST_ID")
    p.add_argument("--baseline", choices=BASELINES, default="10-of-10")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a baseline parameter, e.g. x=5 (repeatable)",
    )
    p.add_argument("--tolerance", default="0.1", help="shortfall not penalized (fraction)")
    p.add_argument("--penalty", metavar="EUR_PER_KWH", help="default: the award's price")
    p.add_argument("--csv", action="store_true", help="print the statements as CSV")
    _command(p, _settle)  # fmt: skip


def _command(parser: argparse.ArgumentParser, handler: Callable[[argparse.Namespace], int]) -> None:
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the VTN (default {DEFAULT_URL})")
    parser.add_argument("--token", help=f"admin API token (default: ${TOKEN_ENV})")
    parser.add_argument("--ca-file", type=Path, metavar="CA.pem",
                        help="CA of the VTN's certificate (default: system CAs)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the API's JSON reply")

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except CliError as err:
            print(f"{PROG}: error: {err}", file=sys.stderr)
        except OSError as err:
            print(f"{PROG}: error: {err.strerror or err}", file=sys.stderr)
        return 1

    parser.set_defaults(handler=run)


def decimal(text: str, what: str) -> str:
    """Decimal text as typed (checked, not rounded: the market refuses too many decimals)."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise CliError(f"{what} must be a decimal number, not {text!r}") from None
    if not value.is_finite():
        raise CliError(f"{what} must be a finite number")
    return str(value)


def decimals(text: str, what: str) -> list[str]:
    values = [decimal(v, what) for v in text.split(",") if v.strip()]
    if not values:
        raise CliError(f"{what} needs at least one value (comma-separated)")
    return values


def _print(args: argparse.Namespace, reply: Any, text: str) -> int:
    print(json.dumps(reply, indent=2) if args.json else text)
    return 0


def _table(header: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return "(none)"
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )


def _when(text: str | None) -> str:
    if text is None:
        return "-"
    return datetime.fromisoformat(text).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


# --- grid model and accounts (DSO) ----------------------------------------------------------------


def _point_parsers(commands: Subparsers) -> None:
    point = commands.add_parser("point", help="congestion points of the grid model (DSO)")
    sub = point.add_subparsers(dest="point_command", metavar="POINT_COMMAND", required=True)
    p = sub.add_parser("create", help="define a congestion point and the resources under it")
    p.add_argument("point_id", metavar="POINT_ID")
    p.add_argument("--name", required=True)
    p.add_argument("--capacity-kw", required=True)
    p.add_argument(
        "--resource",
        action="append",
        default=[],
        metavar="PROSUMER[=VEN_ID]",
        help="a prosumer resource under it, with its gateway's venID (repeatable)",
    )
    _command(p, _point_create)  # fmt: skip
    p = sub.add_parser("list", help="congestion points and their resources")
    _command(p, _point_list)


def _point_create(args: argparse.Namespace) -> int:
    api = Api(args)
    body = {"point_id": args.point_id, "name": args.name,
            "capacity_kw": decimal(args.capacity_kw, "--capacity-kw")}  # fmt: skip
    calls: list[tuple[str, str, dict[str, Any]]] = [("POST", "/market/points", {"json": body})]
    for item in args.resource:
        prosumer, _, ven_id = item.partition("=")
        calls.append(("POST", f"/market/points/{args.point_id}/resources",
                      {"json": {"prosumer_id": prosumer, "ven_id": ven_id or None}}))  # fmt: skip
    replies = api.run(*calls)
    return _print(args, replies, f"congestion point {args.point_id} "
                  f"({body['capacity_kw']} kW) with {len(args.resource)} resource(s)")  # fmt: skip


def _point_list(args: argparse.Namespace) -> int:
    points = Api(args).one("GET", "/market/points")
    rows = [
        [
            p["point"]["point_id"],
            p["point"]["name"],
            p["point"]["capacity_kw"],
            ", ".join(r["prosumer_id"] for r in p["resources"]) or "-",
        ]
        for p in points
    ]
    return _print(args, points, _table(["POINT", "NAME", "CAPACITY_KW", "RESOURCES"], rows))


def _aggregator_parsers(commands: Subparsers) -> None:
    aggregator = commands.add_parser("aggregator", help="aggregator accounts (DSO)")
    sub = aggregator.add_subparsers(dest="aggregator_command", metavar="AGGREGATOR_COMMAND",
                                    required=True)  # fmt: skip
    p = sub.add_parser("create", help="open an account; prints its API token once")
    p.add_argument("aggregator_id", metavar="AGGREGATOR_ID")
    p.add_argument("--name", required=True)
    p.add_argument("--fingerprint", help="its certificate's SHA-256 fingerprint, if any")
    _command(p, _aggregator_create)
    p = sub.add_parser("list", help="aggregator accounts")
    _command(p, _aggregator_list)


def _aggregator_create(args: argparse.Namespace) -> int:
    body = {"aggregator_id": args.aggregator_id, "name": args.name,
            "fingerprint": args.fingerprint}  # fmt: skip
    made = Api(args).one("POST", "/market/aggregators", json=body)
    if args.json:
        return _print(args, made, "")
    print(made["token"])
    print(f"token for aggregator {args.aggregator_id}; shown once, keep it safe", file=sys.stderr)
    return 0


def _aggregator_list(args: argparse.Namespace) -> int:
    found = Api(args).one("GET", "/market/aggregators")
    rows = [[a["aggregator_id"], a["name"], a["fingerprint"] or "-"] for a in found]
    return _print(args, found, _table(["AGGREGATOR", "NAME", "FINGERPRINT"], rows))


# --- virtual end nodes (aggregators) --------------------------------------------------------------


def _node_parsers(commands: Subparsers) -> None:
    node = commands.add_parser("node", help="virtual end nodes (aggregators)")
    sub = node.add_subparsers(dest="node_command", metavar="NODE_COMMAND", required=True)
    p = sub.add_parser("create", help="register a virtual end node under a congestion point")
    p.add_argument("node_id", metavar="NODE_ID")
    p.add_argument("--point", required=True, metavar="POINT_ID")
    p.add_argument("--name", required=True)
    p.add_argument("--ven-id", help="the venID its upstream VEN registered with")
    p.add_argument("--aggregator", help="whose node (DSO tokens only)")
    _command(p, _node_create)
    p = sub.add_parser("add-member", help="a prosumer joins the node, with consent")
    p.add_argument("node_id", metavar="NODE_ID")
    p.add_argument("prosumer_id", metavar="PROSUMER_ID")
    p.add_argument("--consent", required=True, metavar="REF", help="where the consent is kept")
    _command(p, _node_add_member)
    p = sub.add_parser("list", help="your nodes (the DSO: all)")
    _command(p, _node_list)


def _node_create(args: argparse.Namespace) -> int:
    body = {"node_id": args.node_id, "point_id": args.point, "name": args.name,
            "ven_id": args.ven_id, "aggregator_id": args.aggregator}  # fmt: skip
    made = Api(args).one("POST", "/market/nodes", json=body)
    return _print(args, made, f"node {made['node_id']} of {made['aggregator_id']} under "
                  f"{made['point_id']}")  # fmt: skip


def _node_add_member(args: argparse.Namespace) -> int:
    body = {"prosumer_id": args.prosumer_id, "consent_ref": args.consent}
    made = Api(args).one("POST", f"/market/nodes/{args.node_id}/members", json=body)
    return _print(args, made, f"{args.prosumer_id} joined {args.node_id}")


def _node_list(args: argparse.Namespace) -> int:
    found = Api(args).one("GET", "/market/nodes")
    rows = [[n["node_id"], n["aggregator_id"], n["point_id"], n["name"], n["ven_id"] or "-"]
            for n in found]  # fmt: skip
    return _print(args, found, _table(["NODE", "AGGREGATOR", "POINT", "NAME", "VEN_ID"], rows))


# --- requests (DSO) -------------------------------------------------------------------------------


def _request_parsers(commands: Subparsers) -> None:
    request = commands.add_parser("request", help="flex requests")
    sub = request.add_subparsers(dest="request_command", metavar="REQUEST_COMMAND",
                                 required=True)  # fmt: skip
    p = sub.add_parser("create", help="publish a flex request (DSO)")
    p.add_argument("--id", dest="request_id", help="default: assigned by the VTN")
    p.add_argument("--point", required=True, metavar="POINT_ID")
    p.add_argument("--start", required=True, help="ISO 8601 with offset, or now+2h")
    p.add_argument("--isp", default="15m", help="block length (default 15m)")
    p.add_argument("--kw", required=True, metavar="KW,KW,...", help="kW needed per block")
    p.add_argument("--price-cap", required=True, metavar="EUR_PER_KWH")
    p.add_argument("--gate-closure", required=True, help="ISO 8601 with offset, or now+1h")
    p.add_argument("--pay-as-clear", action="store_true", help="default: pay-as-bid")
    _command(p, _request_create)
    p = sub.add_parser("list", help="flex requests and their status")
    p.add_argument("--status", choices=["open", "closed", "cleared", "dispatched", "measured",
                                        "settled", "cancelled"])  # fmt: skip
    _command(p, _request_list)


def _request_create(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "point_id": args.point,
        "start": parse_start(args.start, now).isoformat(),
        "isp": _iso(args.isp),
        "needed_kw": decimals(args.kw, "--kw"),
        "price_cap_eur_per_kwh": decimal(args.price_cap, "--price-cap"),
        "gate_closure": parse_start(args.gate_closure, now).isoformat(),
        "pricing": "pay-as-clear" if args.pay_as_clear else "pay-as-bid",
    }
    if args.request_id:
        body["request_id"] = args.request_id
    made = Api(args).one("POST", "/market/requests", json=body)
    return _print(args, made, f"flex request {made['request_id']}: {len(body['needed_kw'])} "
                  f"block(s) from {_when(made['start'])}, gate closure "
                  f"{_when(made['gate_closure'])}")  # fmt: skip


def _iso(text: str) -> str:
    seconds = int(parse_duration(text).total_seconds())
    return f"PT{seconds}S"


def _request_list(args: argparse.Namespace) -> int:
    path = "/market/requests" + (f"?status={args.status}" if args.status else "")
    found = Api(args).one("GET", path)
    rows = [
        [
            r["request_id"],
            r["point_id"],
            _when(r["start"]),
            ",".join(r["needed_kw"]),
            r["price_cap_eur_per_kwh"],
            _when(r["gate_closure"]),
            r["status"],
        ]
        for r in found
    ]
    header = ["REQUEST", "POINT", "START", "KW", "CAP", "GATE_CLOSURE", "STATUS"]
    return _print(args, found, _table(header, rows))  # fmt: skip


# --- bids (aggregators) ---------------------------------------------------------------------------


def _bid_parsers(commands: Subparsers) -> None:
    bid = commands.add_parser("bid", help="bids on flex requests (aggregators)")
    sub = bid.add_subparsers(dest="bid_command", metavar="BID_COMMAND", required=True)
    p = sub.add_parser("submit", help="submit a bid, or revise one (--id of an existing bid)")
    p.add_argument("request_id", metavar="REQUEST_ID")
    p.add_argument("--id", dest="bid_id", help="default: assigned by the VTN")
    p.add_argument("--node", required=True, metavar="NODE_ID")
    p.add_argument("--kw", required=True, metavar="KW,KW,...", help="kW offered per block")
    p.add_argument("--price", required=True, metavar="EUR_PER_KWH")
    p.add_argument("--all-or-nothing", action="store_true", help="default: divisible")
    p.add_argument("--valid-until", help="default: the end of the request")
    _command(p, _bid_submit)
    p = sub.add_parser("list", help="bids on a request (yours; the DSO: all)")
    p.add_argument("request_id", metavar="REQUEST_ID")
    p.add_argument("--revisions", action="store_true", help="every revision")
    _command(p, _bid_list)


def _bid_submit(args: argparse.Namespace) -> int:
    api = Api(args)
    valid_until = args.valid_until
    if valid_until is None:
        detail = api.one("GET", f"/market/requests/{args.request_id}")["request"]
        blocks = len(detail["needed_kw"])
        end = datetime.fromisoformat(detail["start"]) + blocks * parse_duration(detail["isp"])
        valid_until = end.isoformat()
    else:
        valid_until = parse_start(valid_until, datetime.now(UTC)).isoformat()
    body: dict[str, Any] = {
        "node_id": args.node,
        "offered_kw": decimals(args.kw, "--kw"),
        "price_eur_per_kwh": decimal(args.price, "--price"),
        "divisible": not args.all_or_nothing,
        "valid_until": valid_until,
    }
    if args.bid_id:
        body["bid_id"] = args.bid_id
    made = api.one("POST", f"/market/requests/{args.request_id}/bids", json=body)
    return _print(args, made, f"bid {made['bid_id']} revision {made['revision']} on "
                  f"{made['request_id']}")  # fmt: skip


def _bid_list(args: argparse.Namespace) -> int:
    query = "?revisions=true" if args.revisions else ""
    found = Api(args).one("GET", f"/market/requests/{args.request_id}/bids{query}")
    rows = [[b["bid_id"], str(b["revision"]), b["node_id"], ",".join(b["offered_kw"]),
             b["price_eur_per_kwh"], "yes" if b["divisible"] else "no", _when(b["submitted_at"])]
            for b in found]  # fmt: skip
    header = ["BID", "REV", "NODE", "KW", "EUR_PER_KWH", "DIVISIBLE", "SUBMITTED"]
    return _print(args, found, _table(header, rows))


# --- clearing and settlement (DSO) ----------------------------------------------------------------


def _clear(args: argparse.Namespace) -> int:
    api = Api(args)
    path = f"/market/requests/{args.request_id}"
    cleared = api.one("POST", path + "/clear")
    dispatched = api.one("POST", path + "/dispatch") if args.dispatch else None
    rows = [[a["bid_id"], a["node_id"], ",".join(a["awarded_kw"]), a["price_eur_per_kwh"]]
            for a in cleared["awards"]]  # fmt: skip
    lines = [_table(["BID", "NODE", "AWARDED_KW", "EUR_PER_KWH"], rows)]
    lines += [f"rejected {bid}: {reason}" for bid, reason in
              ((r["bid_id"], r["reason"]) for r in cleared["rejected"])]  # fmt: skip
    if dispatched is not None:
        lines.append(f"dispatched {sum(1 for a in dispatched if a['event_id'])} event(s)")
    return _print(args, {"clearing": cleared, "awards": dispatched}, "\n".join(lines))


def _params(items: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise CliError(f"--param wants NAME=VALUE, not {item!r}")
        params[name] = json.loads(value) if value.lower() in ("true", "false") or \
            value.lstrip("-").isdigit() else value  # fmt: skip
    return params


def _settle(args: argparse.Namespace) -> int:
    api = Api(args)
    path = f"/market/requests/{args.request_id}"
    status = api.one("GET", path)["request"]["status"]
    if status == "dispatched":
        api.one("POST", path + "/measure",
                json={"method": args.baseline, "params": _params(args.param)})  # fmt: skip
    body: dict[str, Any] = {"tolerance": decimal(args.tolerance, "--tolerance")}
    if args.penalty is not None:
        body["penalty_eur_per_kwh"] = decimal(args.penalty, "--penalty")
    issued = api.one("POST", path + "/settle", json=body)
    if args.csv:
        print("".join(s["csv"] for s in issued), end="")
        return 0
    rows = [[s["aggregator_id"], s["totals"]["awarded_kwh"], s["totals"]["paid_kwh"],
             s["totals"]["payment_eur"], s["totals"]["penalty_eur"], s["totals"]["net_eur"]]
            for s in issued]  # fmt: skip
    header = ["AGGREGATOR", "AWARDED_KWH", "PAID_KWH", "PAYMENT_EUR", "PENALTY_EUR", "NET_EUR"]
    return _print(args, issued, _table(header, rows))
