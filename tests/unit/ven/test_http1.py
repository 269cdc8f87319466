"""The VEN's HTTP/1.1 client against real servers on 127.0.0.1: the reply framings a VTN may
use, one kept-alive connection, a fresh one when the server closed it, and clear failures for
broken, oversize or late replies. The TLS side (mutual TLS, fingerprint pinning) is exercised
against our VTN in tests/integration/test_ven_transport.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certs import tls
from certs.dev import DevPki
from ven.http1 import HttpClient, HttpError, Origin

Script = Callable[[asyncio.StreamWriter], Awaitable[None]]
XML = {"Content-Type": "application/xml"}


@asynccontextmanager
async def raw_server(answer: Script) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A TCP server that reads one request per connection, lets `answer` write whatever it
    wants, and closes; yields its URL and the heads of the requests it read."""
    heads: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            heads.append(head)
            length = next(
                (int(line.split(b":")[1]) for line in head.split(b"\r\n")
                 if line.lower().startswith(b"content-length:")),
                0,
            )  # fmt: skip
            await reader.readexactly(length)
            await answer(writer)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", heads
    finally:
        server.close()
        await server.wait_closed()


def writes(data: bytes) -> Script:
    async def answer(writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await writer.drain()

    return answer


def client(url: str, timeout_s: float = 5.0) -> HttpClient:
    return HttpClient(url, None, timeout_s=timeout_s, max_body_bytes=1024)


@asynccontextmanager
async def aiohttp_server(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[tuple[str, list[int]]]:
    """A real aiohttp server (what our VTN and OpenLEADR's run); yields its URL and the client
    ports of the requests it saw (one port: one kept-alive connection)."""
    ports: list[int] = []

    async def recorded(request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        ports.append(peer[1] if peer else -1)
        return await handler(request)

    app = web.Application()
    app.router.add_post("/{tail:.*}", recorded)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}", ports
    finally:
        await runner.cleanup()


async def echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.Response(body=request.path.encode() + b" " + body, content_type="application/xml")


async def test_replies_come_back_over_one_kept_alive_connection() -> None:
    async with aiohttp_server(echo) as (url, ports):
        http = client(url + "/prefix")
        try:
            first = await http.post("/OpenADR2/Simple/2.0b/EiEvent", b"<a/>", XML)
            second = await http.post("/OpenADR2/Simple/2.0b/OadrPoll", b"<b/>", XML)
        finally:
            await http.close()
    assert (first.status, first.body) == (200, b"/OpenADR2/Simple/2.0b/EiEvent <a/>")
    assert second.body == b"/OpenADR2/Simple/2.0b/OadrPoll <b/>"
    assert first.headers["content-type"].startswith("application/xml")
    assert "date" in first.headers  # the VTN's clock, for the session's skew check
    assert len(ports) == 2 and ports[0] == ports[1]


async def test_a_chunked_reply_is_reassembled() -> None:
    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for part in (b"<oadr", b"Payload", b"/>"):
            await response.write(part)
        await response.write_eof()
        return response

    async with aiohttp_server(chunked) as (url, _):
        http = client(url)
        try:
            reply = await http.post("/x", b"", XML)
            again = await http.post("/x", b"", XML)
        finally:
            await http.close()
    assert reply.body == again.body == b"<oadrPayload/>"


async def test_a_close_delimited_reply_is_read_to_the_end_and_the_next_request_reconnects() -> None:
    http10 = writes(b"HTTP/1.0 200 OK\r\nContent-Type: application/xml\r\n\r\n<whole/>")
    async with raw_server(http10) as (url, heads):
        http = client(url)
        try:
            first = await http.post("/x", b"<q/>", XML)
            second = await http.post("/x", b"<q/>", XML)
        finally:
            await http.close()
    assert first.body == second.body == b"<whole/>"
    assert len(heads) == 2
    assert heads[0].startswith(b"POST /x HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"Content-Length: 4\r\n" in heads[0]


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    # answers as if keeping the connection, then closes it anyway (an idle timeout)
    once = writes(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n<a/>")
    async with raw_server(once) as (url, heads):
        http = client(url)
        try:
            await http.post("/x", b"", XML)
            await asyncio.sleep(0.05)  # the server's FIN arrives while the VEN is idle
            reply = await http.post("/x", b"", XML)
        finally:
            await http.close()
    assert reply.body == b"<a/>" and len(heads) == 2


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n", "exceeds the 1024 byte limit"),
        (CHUNKED + b"200\r\n" + b"x" * 512 + b"\r\n201\r\n" + b"x" * 513 + b"\r\n0\r\n\r\n",
         "a reply of 1025 bytes exceeds"),
        (b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * 1025, "a reply of 1025 bytes exceeds"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n<a/>", "without sending complete"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: +4\r\n\r\n<a/>", "bad Content-Length"),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "illegal status line"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "illegal header line"),
        (CHUNKED + b"4\r\n<a/>XX\r\n", "malformed chunk footer"),
        (b"HTTP/1.1 200 OK\r\n" + b"X-Padding: 0123456789abcdef\r\n" * 9000, "buffer too long"),
    ],
    ids=[
        "oversize",
        "oversize-chunked",
        "oversize-close-delimited",
        "cut-short",
        "bad-length",
        "not-http",
        "bad-header",
        "chunk",
        "header-too-large",
    ],
)  # fmt: skip
async def test_a_broken_reply_is_an_http_error(answer: bytes, problem: str) -> None:
    async with raw_server(writes(answer)) as (url, _):
        http = client(url)
        try:
            with pytest.raises(HttpError, match=problem):
                await http.post("/x", b"", XML)
        finally:
            await http.close()


async def test_a_server_that_never_answers_times_out() -> None:
    async def silent(writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async with raw_server(silent) as (url, _):
        http = client(url, timeout_s=0.2)
        try:
            with pytest.raises(HttpError, match=r"no complete reply within 0\.2 s"):
                await http.post("/x", b"", XML)
        finally:
            await http.close()


async def test_an_interim_100_continue_is_skipped() -> None:
    continuing = writes(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n"
    )
    async with raw_server(continuing) as (url, _):
        http = client(url)
        try:
            reply = await http.post("/x", b"", XML)
        finally:
            await http.close()
    assert (reply.status, reply.body) == (503, b"")


def test_origins_keep_the_url_spelling_for_the_host_header() -> None:
    assert Origin.of("https://[::1]:8443/a") == Origin(True, "::1", 8443, "[::1]:8443")
    assert Origin.of("http://vtn.example") == Origin(False, "vtn.example", 80, "vtn.example")
    with pytest.raises(ValueError, match="not an http"):
        Origin.of("ftp://vtn.example")


async def test_a_new_tls_connection_resumes_the_last_session_and_still_checks_the_peer(
    pki: DevPki,
) -> None:
    """A VTN that closes connections (idle, or after each reply as here): each reconnect offers
    the session of the last connection (certs.tls.ClientContext), and `check_peer` still gets
    the VTN's certificate every time (a pin cannot be skipped by resuming)."""
    resumed: list[bool] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"hello")
            resumed.append(writer.get_extra_info("ssl_object").session_reused)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        finally:
            writer.close()

    server_context = tls.server_context(pki.vtn, pki.trust_store())
    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    seen: list[bytes | None] = []
    http = HttpClient(
        f"https://127.0.0.1:{port}",
        tls.client_context(pki.vens[0], pki.trust_store()),
        timeout_s=5.0,
        max_body_bytes=1024,
        check_peer=seen.append,
    )
    try:
        for _ in range(3):
            reply = await http.post("/x", b"hello", XML)
            assert reply.status == 200 and reply.body == b"ok"
    finally:
        await http.close()
        server.close()
        await server.wait_closed()
    assert resumed == [False, True, True]
    vtn_der = x509.load_pem_x509_certificate(pki.vtn.cert.read_bytes()).public_bytes(
        serialization.Encoding.DER
    )
    assert seen == [vtn_der] * 3
