"""The aggregator's TOML configuration: paths relative to the file, one-line problems."""

from __future__ import annotations

import argparse
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from market.aggregator import cli
from market.aggregator.config import ConfigError, load
from ven.model import DeviceKind

GOOD = """
[upstream]
vtn_url = "https://dso:8443"
ca_file = "dso.pem"
poll_interval_s = 2
[downstream]
cert = "agg/chain.pem"
key = "agg/key.pem"
ca_file = "members.pem"
port = 9443
telemetry_granularity_s = 5
[control]
tick_s = 1
tolerance = 0.05
[market]
url = "https://dso:8443"
token = "t"
price_floor_eur_per_kwh = "0.12"
[[nodes]]
id = "node-1"
cert = "node-1/chain.pem"
key = "node-1/key.pem"
[[members]]
ven_name = "house-1"
node = "node-1"
max_shift_minutes = 30
devices = [{ id = "ev", kind = "ev_charger", rating_kw = 11 }]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "aggregator.toml"
    path.write_text(text)
    return path


def test_a_complete_file(tmp_path: Path) -> None:
    config = load(write(tmp_path, GOOD))
    assert config.upstream.vtn_url == "https://dso:8443"
    assert config.upstream.ca_file == tmp_path / "dso.pem"
    assert config.upstream.poll_interval == timedelta(seconds=2)
    assert config.upstream.state_dir == tmp_path / "state"
    assert config.downstream.database_url == f"sqlite+aiosqlite:///{tmp_path / 'aggregator.db'}"
    assert (config.downstream.port, config.downstream.cert) == (9443, tmp_path / "agg/chain.pem")
    assert config.downstream.telemetry_granularity == timedelta(seconds=5)
    assert (config.control.tick, config.control.tolerance) == (timedelta(seconds=1), 0.05)
    assert config.market is not None
    assert config.market.strategy.price_floor_eur_per_kwh == Decimal("0.12")
    (node,) = config.nodes
    assert (node.node_id, node.ven_name, node.key) == (
        "node-1",
        "node-1",
        tmp_path / "node-1/key.pem",
    )
    (member,) = config.members_of("node-1")
    assert member.max_shift == timedelta(minutes=30)
    assert [(d.device_id, d.kind, d.rating_kw) for d in member.devices] == [
        ("ev", DeviceKind.EV_CHARGER, 11.0)
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("[control]", "[controls]"), "unknown section(s): controls"),
        (('tick_s = 1', 'tick = 1'), "[control]: unknown setting(s): tick"),
        (('node = "node-1"', 'node = "node-2"'), "member 'house-1': no node 'node-2'"),
        (('kind = "ev_charger"', 'kind = "rocket"'), "unknown kind 'rocket'"),
        (('vtn_url = "https://dso:8443"\n', ""), "[upstream] needs vtn_url"),
        (("tolerance = 0.05", "tolerance = 1.5"), "tolerance must be within 0..1"),
        (('tick_s = 1', 'tick_s = 0'), "tick_s must be positive"),
        (('price_floor_eur_per_kwh = "0.12"', 'price_floor_eur_per_kwh = "cheap"'),
         "prices and shares must be numbers"),
        (("[[nodes]]", "[[nodez]]"), "unknown section(s): nodez"),
    ],
    ids=["section", "setting", "member-node", "device-kind", "missing-url", "tolerance",
         "tick", "price", "nodes"],
)  # fmt: skip
def test_a_problem_is_one_line_naming_it(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = write(tmp_path, GOOD.replace(*change, 1))
    with pytest.raises(ConfigError) as raised:
        load(path)
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert str(path) in str(raised.value)


def test_no_nodes_is_refused(tmp_path: Path) -> None:
    text = GOOD[: GOOD.index("[[nodes]]")]
    with pytest.raises(ConfigError, match="at least one virtual end node"):
        load(write(tmp_path, text))


def test_the_cli_reports_a_bad_config_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="flex4grid")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["aggregator", "run", "--config", str(tmp_path / "missing.toml")])
    assert args.handler(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.toml" in err
