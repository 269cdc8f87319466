"""`vtn serve --loop` and the TLS read buffer (vtn/serve.py): what the server process runs on."""

from __future__ import annotations

import asyncio
import asyncio.sslproto

import pytest
import uvloop

from flex4grid.cli import build_parser
from vtn import serve


@pytest.mark.parametrize(("name", "kind"), [("auto", uvloop.Loop), ("uvloop", uvloop.Loop)])
def test_uvloop_where_installed(name: str, kind: type) -> None:
    loop = serve._event_loop(name)
    try:
        assert isinstance(loop, kind)
    finally:
        loop.close()


def test_asyncio_on_request() -> None:
    loop = serve._event_loop("asyncio")
    try:
        assert not isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_the_cli_takes_the_loop_and_refuses_others() -> None:
    parser = build_parser(["vtn", "serve"])
    assert parser.parse_args(["vtn", "serve", "--loop", "asyncio"]).loop == "asyncio"
    assert parser.parse_args(["vtn", "serve"]).loop == "auto"
    with pytest.raises(SystemExit):
        parser.parse_args(["vtn", "serve", "--loop", "trio"])


def test_tls_connections_get_a_small_read_buffer() -> None:
    before = asyncio.sslproto.SSLProtocol.max_size
    try:
        serve._small_tls_read_buffers()
        assert asyncio.sslproto.SSLProtocol.max_size == serve.TLS_READ_BUFFER <= 64 * 1024
        assert serve.TLS_READ_BUFFER >= 16 * 1024 + 256, "a whole TLS record fits"
    finally:
        asyncio.sslproto.SSLProtocol.max_size = before
