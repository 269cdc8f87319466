"""The aggregator's configuration: its nodes, its members, both links, and how it steers.

`flex4grid aggregator run --config FILE` reads a TOML file; relative paths are relative to it:

    [upstream]                          # towards the DSO's VTN: one VEN per node
    vtn_url = "https://dso-vtn:8443"    ca_file = "dso-ca-bundle.pem"   state = "state"
    vtn_fingerprint = "AB:CD:..."       poll_interval_s = 10   sample_period_s = 10
    [downstream]                        # the aggregator's own VTN, for its prosumers' gateways
    host = "0.0.0.0"   port = 8443      database = "aggregator.db"      # a SQLite file
    cert = "agg/chain.pem"   key = "agg/key.pem"   ca_file = "aggregator-ca-bundle.pem"
    poll_interval_s = 10     telemetry_granularity_s = 10     report_back_s = 60
    [control]
    tick_s = 5   tolerance = 0.1   grace_s = 30   telemetry_window_s = 30
    [market]                            # optional: bids on the DSO's flex requests
    url = "https://dso-vtn:8443"   token = "..."   price_floor_eur_per_kwh = "0.10"
    ca_file = "dso-ca-bundle.pem"  cert = "agg/chain.pem"   key = "agg/key.pem"
    price_share_of_cap = "0.9"     derating = "0.9"
    [[nodes]]
    id = "node-1"   ven_name = "agg-node-1"   cert = "node-1/chain.pem"   key = "node-1/key.pem"
    [[members]]
    ven_name = "house-17"   node = "node-1"   max_shift_minutes = 120
    devices = [{ id = "ev-charger", kind = "ev_charger", rating_kw = 11 }]

Members are known by the venName their gateway registers with at the downstream VTN.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from market.aggregator.bidding import Strategy
from market.aggregator.disaggregation import DeviceInfo
from ven.model import DeviceKind


class ConfigError(ValueError):
    """The configuration cannot work; the message says which setting and why (one line)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeConfig:
    node_id: str  # the market's virtual end node id
    ven_name: str  # what its upstream VEN registers as
    cert: Path
    key: Path


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberConfig:
    ven_name: str
    node_id: str
    devices: tuple[DeviceInfo, ...]
    max_shift: timedelta = timedelta(hours=2)


@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamConfig:
    vtn_url: str
    state_dir: Path
    ca_file: Path | None = None
    vtn_fingerprint: str | None = None
    poll_interval: timedelta = timedelta(seconds=10)
    sample_period: timedelta = timedelta(seconds=10)


@dataclass(frozen=True, slots=True, kw_only=True)
class DownstreamConfig:
    database: Path
    cert: Path
    key: Path
    ca_file: Path
    host: str = "127.0.0.1"
    port: int = 0
    poll_interval: timedelta = timedelta(seconds=10)
    telemetry_granularity: timedelta = timedelta(seconds=10)
    report_back: timedelta = timedelta(seconds=60)

    @property
    def database_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.database}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlConfig:
    tick: timedelta = timedelta(seconds=5)  # how often shares are checked and telemetry summed
    tolerance: float = 0.1  # accepted shortfall, as a fraction of what is asked
    grace: timedelta = timedelta(seconds=30)  # a member's time to follow a (new) share
    telemetry_window: timedelta = timedelta(seconds=30)  # "recent" telemetry


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketConfig:
    url: str
    token: str
    strategy: Strategy
    ca_file: Path | None = None
    cert: Path | None = None  # a client certificate, where the DSO's VTN asks for one
    key: Path | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AggregatorConfig:
    upstream: UpstreamConfig
    downstream: DownstreamConfig
    nodes: tuple[NodeConfig, ...]
    members: tuple[MemberConfig, ...]
    control: ControlConfig = field(default_factory=ControlConfig)
    market: MarketConfig | None = None

    def __post_init__(self) -> None:
        ids = [n.node_id for n in self.nodes]
        if not ids:
            raise ConfigError("no [[nodes]]: the aggregator needs at least one virtual end node")
        if len(set(ids)) != len(ids):
            raise ConfigError(f"node ids must be unique: {ids}")
        names = [m.ven_name for m in self.members]
        if len(set(names)) != len(names):
            raise ConfigError("member ven_names must be unique")
        for member in self.members:
            if member.node_id not in ids:
                raise ConfigError(f"member {member.ven_name!r}: no node {member.node_id!r}")
        if not 0 <= self.control.tolerance < 1:
            raise ConfigError("control.tolerance must be within 0..1")

    def members_of(self, node_id: str) -> tuple[MemberConfig, ...]:
        return tuple(m for m in self.members if m.node_id == node_id)


# --- the TOML file --------------------------------------------------------------------------------


def _table(data: dict[str, Any], name: str, known: set[str]) -> dict[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"[{name}] must be a table")
    if unknown := set(table) - known:
        raise ConfigError(f"[{name}]: unknown setting(s): {', '.join(sorted(unknown))}")
    return table


def _need(table: dict[str, Any], name: str, key: str) -> Any:
    if key not in table:
        raise ConfigError(f"[{name}] needs {key}")
    return table[key]


def _seconds(table: dict[str, Any], key: str, default: timedelta) -> timedelta:
    if key not in table:
        return default
    value = timedelta(seconds=float(table[key]))
    if value <= timedelta(0):
        raise ConfigError(f"{key} must be positive")
    return value


def _device(raw: Any) -> DeviceInfo:
    if not isinstance(raw, dict) or set(raw) != {"id", "kind", "rating_kw"}:
        raise ConfigError(f"a member device needs exactly id, kind and rating_kw: {raw!r}")
    try:
        kind = DeviceKind(raw["kind"])
    except ValueError as err:
        raise ConfigError(f"device {raw['id']!r}: unknown kind {raw['kind']!r}") from err
    return DeviceInfo(device_id=str(raw["id"]), kind=kind, rating_kw=float(raw["rating_kw"]))


def load(path: Path) -> AggregatorConfig:
    """The configuration in `path` (module docstring); a problem is a one-line ConfigError."""
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except OSError as err:
        raise ConfigError(f"{path}: {err.strerror or err}") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err
    if unknown := set(data) - {"upstream", "downstream", "control", "market", "nodes", "members"}:
        raise ConfigError(f"{path}: unknown section(s): {', '.join(sorted(unknown))}")
    try:
        return _parse(data, path.parent)
    except (TypeError, ValueError) as err:
        if isinstance(err, ConfigError):
            raise ConfigError(f"{path}: {err}") from err
        raise ConfigError(f"{path}: {err}") from err


def _parse(data: dict[str, Any], base: Path) -> AggregatorConfig:
    def path(value: Any) -> Path:
        return (base / str(value)).resolve()

    up = _table(data, "upstream", {"vtn_url", "ca_file", "vtn_fingerprint", "state",
                                   "poll_interval_s", "sample_period_s"})  # fmt: skip
    upstream = UpstreamConfig(
        vtn_url=str(_need(up, "upstream", "vtn_url")),
        state_dir=path(up.get("state", "state")),
        ca_file=path(up["ca_file"]) if "ca_file" in up else None,
        vtn_fingerprint=up.get("vtn_fingerprint"),
        poll_interval=_seconds(up, "poll_interval_s", timedelta(seconds=10)),
        sample_period=_seconds(up, "sample_period_s", timedelta(seconds=10)),
    )
    down = _table(data, "downstream", {"host", "port", "database", "cert", "key", "ca_file",
                                       "poll_interval_s", "telemetry_granularity_s",
                                       "report_back_s"})  # fmt: skip
    downstream = DownstreamConfig(
        database=path(down.get("database", "aggregator.db")),
        cert=path(_need(down, "downstream", "cert")),
        key=path(_need(down, "downstream", "key")),
        ca_file=path(_need(down, "downstream", "ca_file")),
        host=str(down.get("host", "127.0.0.1")),
        port=int(down.get("port", 0)),
        poll_interval=_seconds(down, "poll_interval_s", timedelta(seconds=10)),
        telemetry_granularity=_seconds(down, "telemetry_granularity_s", timedelta(seconds=10)),
        report_back=_seconds(down, "report_back_s", timedelta(seconds=60)),
    )
    ctl = _table(data, "control", {"tick_s", "tolerance", "grace_s", "telemetry_window_s"})
    control = ControlConfig(
        tick=_seconds(ctl, "tick_s", timedelta(seconds=5)),
        tolerance=float(ctl.get("tolerance", 0.1)),
        grace=_seconds(ctl, "grace_s", timedelta(seconds=30)),
        telemetry_window=_seconds(ctl, "telemetry_window_s", timedelta(seconds=30)),
    )
    market = None
    if "market" in data:
        mk = _table(data, "market", {"url", "token", "ca_file", "cert", "key",
                                     "price_floor_eur_per_kwh",
                                     "price_share_of_cap", "derating"})  # fmt: skip
        try:
            strategy = Strategy(
                price_floor_eur_per_kwh=Decimal(
                    str(_need(mk, "market", "price_floor_eur_per_kwh"))
                ),
                price_share_of_cap=Decimal(str(mk.get("price_share_of_cap", "0.9"))),
                derating=Decimal(str(mk.get("derating", "0.9"))),
            )
        except InvalidOperation as err:
            raise ConfigError("[market]: prices and shares must be numbers") from err
        market = MarketConfig(
            url=str(_need(mk, "market", "url")),
            token=str(_need(mk, "market", "token")),
            strategy=strategy,
            ca_file=path(mk["ca_file"]) if "ca_file" in mk else None,
            cert=path(mk["cert"]) if "cert" in mk else None,
            key=path(mk["key"]) if "key" in mk else None,
        )
    nodes = tuple(
        NodeConfig(
            node_id=str(_need(n, "nodes", "id")),
            ven_name=str(n.get("ven_name", n.get("id"))),
            cert=path(_need(n, "nodes", "cert")),
            key=path(_need(n, "nodes", "key")),
        )
        for n in data.get("nodes", [])
    )
    members = tuple(
        MemberConfig(
            ven_name=str(_need(m, "members", "ven_name")),
            node_id=str(_need(m, "members", "node")),
            devices=tuple(_device(d) for d in m.get("devices", [])),
            max_shift=timedelta(minutes=float(m.get("max_shift_minutes", 120))),
        )
        for m in data.get("members", [])
    )
    return AggregatorConfig(
        upstream=upstream,
        downstream=downstream,
        nodes=nodes,
        members=members,
        control=control,
        market=market,
    )
