"""The gateway stays small: what `flex4grid ven run` loads leaves out the heavy libraries.

A VEN runs on a small box (issue 6: under 60 MB resident). Each library below costs several MB
there and has no job on the gateway's pull path: pydantic (the store writes JSON with
`ven.jsonform`), SQLAlchemy (the VTN's database), OpenLEADR (only its XSD files are read, from
disk), signxml (our own `oadr.signing` signs), aiohttp (`ven.http1` is the pull client; the
server half is loaded only when HTTP push is configured; the pull client's HTTP/1.1 framing
is h11's, a small pure-Python library). A fresh interpreter imports the gateway as the CLI
does, compiles the schema as the codec does, and lists what came along.
benchmarks/ven_footprint.py measures the running process.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("pydantic", "pydantic_core", "sqlalchemy", "openleadr", "signxml", "aiohttp")

GATEWAY = """
from flex4grid.cli import build_parser
build_parser(["ven", "run"])  # what `flex4grid ven run` imports
import ven.gateway, ven.runner, ven.transport, ven.store, ven.cli
from oadr import schema
schema.xml_schema()  # the 2.0b XSDs, compiled from openleadr's files on disk
"""


def _heavy_after(code: str, modules: tuple[str, ...] = HEAVY) -> list[str]:
    """Which of `modules` a fresh interpreter has loaded after running `code`."""
    probe = (
        f"{code}\nimport json, sys\nprint(json.dumps([m for m in {modules!r} if m in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    found: list[str] = json.loads(result.stdout.splitlines()[-1])
    return found


def test_the_pull_gateway_loads_none_of_the_heavy_libraries() -> None:
    assert _heavy_after(GATEWAY) == []


def test_the_pull_gateway_frames_http_with_h11_not_aiohttp() -> None:
    assert _heavy_after(GATEWAY, ("h11", "aiohttp")) == ["h11"]


def test_the_mqtt_bridge_loads_no_pydantic_either() -> None:
    """A real household's devices are reached over MQTT: that path reads JSON without pydantic
    too (aiomqtt itself is needed)."""
    assert _heavy_after("import ven.han.mqtt") == []


def test_push_loads_the_aiohttp_server_only_when_a_push_app_is_made() -> None:
    code = "from ven.transport import push_app\npush_app(lambda m, now: None, None)"
    assert _heavy_after(code) == ["aiohttp"]


def test_the_check_sees_a_heavy_import() -> None:
    """The probe can fail: the VTN's application does bring SQLAlchemy and pydantic."""
    assert {"sqlalchemy", "pydantic"} <= set(_heavy_after("import vtn.app"))
