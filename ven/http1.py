"""A small HTTP/1.1 client for the VEN's pull link: POST a body, read the reply, keep the
connection for the next one.

The VEN talks to one VTN, one request at a time: it needs keep-alive over (mutual) TLS, the
VTN's certificate pinned by fingerprint, a total timeout, and replies by Content-Length, chunked
or close-delimited (RFC 9112 section 6). asyncio's streams do all of that; aiohttp's client
brings ~10 MB of resident memory more (its parsers, yarl, multidict, cookies, compression), a
sixth of a small gateway's 60 MB budget (issue 6; benchmarks/ven_footprint.py). aiohttp's
server half is still used for HTTP push, loaded only when push is configured.

No proxies (as aiohttp's default, `trust_env=False`), no redirects, no compression: an
OpenADR VTN answers each POST with an XML body.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_HEADER_BYTES = 64 * 1024
_LINE_LIMIT = 8 * 1024
_CLOSE_TIMEOUT_S = 5.0
_DIGITS = {10: frozenset("0123456789"), 16: frozenset("0123456789abcdefABCDEF")}


class HttpError(Exception):
    """The exchange failed: no connection, a broken or oversize reply, a timeout."""


class PinMismatch(HttpError):
    """The server's certificate is not the one whose fingerprint the client was given."""


@dataclass(frozen=True, slots=True)
class HttpReply:
    status: int
    headers: dict[str, str]  # names in lower case; a repeated header keeps its last value
    body: bytes


@dataclass(frozen=True, slots=True)
class Origin:
    """Where requests go: scheme, host and port of a base URL (`https://vtn.example:8080`)."""

    tls: bool
    host: str
    port: int
    host_header: str  # as the URL spelled it, e.g. "[::1]:8080"

    @classmethod
    def of(cls, url: str) -> Origin:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        return cls(tls, parts.hostname, port, parts.netloc.rpartition("@")[2])


class Connection:
    """One HTTP/1.1 connection; `HttpClient` opens a new one when the server closed this."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @property
    def reusable(self) -> bool:
        return not (self.reader.at_eof() or self.writer.is_closing())

    async def close(self, *, graceful: bool) -> None:
        """Graceful: TLS close_notify, waited for briefly. Otherwise (after a failure, whose
        peer may not answer) the socket is simply dropped."""
        if not graceful:
            self.writer.transport.abort()
            return
        self.writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), _CLOSE_TIMEOUT_S)


class HttpClient:
    """POST to one origin, one request at a time, over one kept-alive connection.

    `check_peer` sees the server's DER certificate right after each TLS handshake, before a
    byte of the request is sent; it raises (e.g. `PinMismatch`) to refuse the server.
    """

    def __init__(
        self,
        base_url: str,
        ssl_context: ssl.SSLContext | None,
        *,
        timeout_s: float,
        max_body_bytes: int,
        check_peer: Callable[[bytes | None], None] | None = None,
    ) -> None:
        self.origin = Origin.of(base_url)
        if self.origin.tls and ssl_context is None:
            raise ValueError("an https URL needs an SSL context")
        self._ssl = ssl_context if self.origin.tls else None
        self._timeout_s = timeout_s
        self._max_body = max_body_bytes
        self._check_peer = check_peer
        self._connection: Connection | None = None
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        async with self._lock:
            await self._drop(graceful=True)

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> HttpReply:
        """The reply to one POST; HttpError for anything but a complete HTTP reply."""
        async with self._lock:
            try:
                async with asyncio.timeout(self._timeout_s):
                    return await self._exchange(path, body, headers)
            except TimeoutError:
                await self._drop()
                raise HttpError(f"no complete reply within {self._timeout_s:g} s") from None
            except HttpError:
                await self._drop()
                raise
            except (OSError, EOFError, asyncio.LimitOverrunError, ValueError) as exc:
                await self._drop()
                raise HttpError(f"{type(exc).__name__}: {exc}") from exc
            except BaseException:  # cancelled mid-exchange: the connection's state is unknown
                await self._drop()
                raise

    async def _drop(self, *, graceful: bool = False) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.close(graceful=graceful)

    async def _connect(self) -> Connection:
        origin = self.origin
        reader, writer = await asyncio.open_connection(
            origin.host,
            origin.port,
            ssl=self._ssl,
            server_hostname=origin.host if self._ssl is not None else None,
            limit=_LINE_LIMIT * 8,
        )
        connection = Connection(reader, writer)
        if self._check_peer is not None and self._ssl is not None:
            ssl_object = writer.get_extra_info("ssl_object")
            der = None if ssl_object is None else ssl_object.getpeercert(binary_form=True)
            try:
                self._check_peer(der)
            except BaseException:
                await connection.close(graceful=False)
                raise
        return connection

    async def _exchange(self, path: str, body: bytes, headers: dict[str, str]) -> HttpReply:
        if self._connection is None or not self._connection.reusable:
            await self._drop()
            self._connection = await self._connect()
        connection = self._connection
        head = [f"POST {path} HTTP/1.1", f"Host: {self.origin.host_header}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        head += [f"Content-Length: {len(body)}", "", ""]
        connection.writer.write("\r\n".join(head).encode("latin-1") + body)
        await connection.writer.drain()
        reply, keep = await self._read_reply(connection.reader)
        if not keep:
            await self._drop(graceful=True)
        return reply

    async def _read_reply(self, reader: asyncio.StreamReader) -> tuple[HttpReply, bool]:
        while True:
            status, version, headers = await _read_head(reader)
            if not 100 <= status < 200:
                break  # 1xx: an interim reply (100 Continue); the real one follows
        connection = headers.get("connection", "").lower()
        keep = "close" not in connection and (version == "HTTP/1.1" or "keep-alive" in connection)
        if status in (204, 304):
            return HttpReply(status, headers, b""), keep
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await self._read_chunked(reader)
        elif "content-length" in headers:
            length = _number(headers["content-length"], 10)
            self._check_size(length)
            body = await reader.readexactly(length)
        else:  # close-delimited
            body = await reader.read(self._max_body + 1)
            while chunk := await reader.read(self._max_body + 1 - len(body)):
                body += chunk
            self._check_size(len(body))
            keep = False
        return HttpReply(status, headers, body), keep

    async def _read_chunked(self, reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size = _number((await _read_line(reader)).split(";", 1)[0].strip(), 16)
            if size == 0:
                while await _read_line(reader):  # trailer fields, then the empty line
                    pass
                return b"".join(parts)
            total += size
            self._check_size(total)
            parts.append(await reader.readexactly(size))
            if await _read_line(reader):
                raise HttpError("a chunk is not followed by CRLF")

    def _check_size(self, size: int) -> None:
        if size > self._max_body:
            raise HttpError(f"a reply of {size} bytes exceeds the {self._max_body} byte limit")


async def _read_line(reader: asyncio.StreamReader) -> str:
    line = await reader.readuntil(b"\n")
    if len(line) > _LINE_LIMIT:
        raise HttpError("a reply line is too long")
    return line.rstrip(b"\r\n").decode("latin-1")


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, str, dict[str, str]]:
    status_line = await _read_line(reader)
    version, _, rest = status_line.partition(" ")
    if not version.startswith("HTTP/1."):
        raise HttpError(f"not an HTTP/1.x reply: {status_line[:80]!r}")
    status = _number(rest[:3], 10)
    headers: dict[str, str] = {}
    size = len(status_line)
    while line := await _read_line(reader):
        size += len(line)
        if size > MAX_HEADER_BYTES:
            raise HttpError("the reply's header is too large")
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise HttpError(f"a malformed header line: {line[:80]!r}")
        headers[name.lower()] = value.strip()
    return status, version, headers


def _number(text: str, base: int) -> int:
    if not text or not set(text) <= _DIGITS[base]:  # int() would also take "+1", "1_0", " 1"
        raise HttpError(f"not a number: {text[:20]!r}")
    return int(text, base)
