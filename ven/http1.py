"""A small HTTP/1.1 client for the VEN's pull link: POST a body, read the reply, keep the
connection for the next one.

The VEN talks to one VTN, one request at a time: it needs keep-alive over (mutual) TLS, the
VTN's certificate pinned by fingerprint, a total timeout, and replies by Content-Length, chunked
or close-delimited (RFC 9112 section 6). The framing, both ways, is h11's (python-hyper's
sans-IO HTTP/1.1 protocol: one `h11.Connection` per socket, `start_next_cycle` for keep-alive);
this module only moves its bytes over asyncio streams and adds what h11 leaves to its user: the
TLS pin, a total timeout and a limit on the body. aiohttp's client brings ~10 MB of resident
memory more (its parsers, yarl, multidict, cookies, compression), a sixth of a small gateway's
60 MB budget (issue 6; benchmarks/ven_footprint.py). aiohttp's server half is still used for
HTTP push, loaded only when push is configured.

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

import h11

from certs.tls import ClientContext

MAX_HEADER_BYTES = 64 * 1024  # h11's max_incomplete_event_size: a reply's status line + header
_READ_BYTES = 64 * 1024
_CLOSE_TIMEOUT_S = 5.0


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
    """One socket and the h11 protocol state on it; `HttpClient` opens a new one when the
    server closed this."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.protocol = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BYTES)

    @property
    def reusable(self) -> bool:
        """Ready for a new request: h11 is between exchanges and the server has not closed
        (its FIN, e.g. an idle timeout, shows as EOF on the reader without reading)."""
        return (
            self.protocol.our_state is h11.IDLE
            and self.protocol.their_state is h11.IDLE
            and not (self.reader.at_eof() or self.writer.is_closing())
        )

    async def send(self, event: h11.Event) -> None:
        data = self.protocol.send(event)
        if data:
            self.writer.write(data)
        await self.writer.drain()

    async def next_event(self) -> h11.Event:
        """The next event of the reply, reading from the socket as h11 needs more bytes."""
        while True:
            event = self.protocol.next_event()
            if event is h11.NEED_DATA:
                # b"" is EOF: h11 then ends a close-delimited body or reports a cut-short reply
                self.protocol.receive_data(await self.reader.read(_READ_BYTES))
            elif event is h11.PAUSED:  # only after the reply's end, which is never read past
                raise HttpError("read past the end of the reply")
            else:
                assert isinstance(event, h11.Event)
                return event

    async def close(self, *, graceful: bool) -> None:
        """Graceful: TLS close_notify, waited for briefly. Otherwise (after a failure, whose
        peer may not answer) the socket is simply dropped."""
        if not graceful:
            self.writer.transport.abort()
            return
        self.writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
            async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                await self.writer.wait_closed()


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
            except h11.ProtocolError as exc:  # the reply broke HTTP/1.1 framing
                await self._drop()
                raise HttpError(f"a malformed reply: {exc}") from exc
            except (OSError, EOFError, ValueError) as exc:
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
        if self._connection is not None and self._connection.reusable:
            return await self._round_trip(self._connection, path, body, headers)
        await self._drop()
        # A new connection offers the TLS session of the last one to this origin (a VTN that
        # closed the idle connection then skips both certificate chains; `check_peer` still sees
        # its certificate); its own session is kept once the first reply was read.
        with self._resuming():
            self._connection = await self._connect()
            return await self._round_trip(self._connection, path, body, headers)

    def _resuming(self) -> contextlib.AbstractContextManager[None]:
        if isinstance(self._ssl, ClientContext):
            return self._ssl.resuming(f"https://{self.origin.host}:{self.origin.port}")
        return contextlib.nullcontext()

    async def _round_trip(
        self, connection: Connection, path: str, body: bytes, headers: dict[str, str]
    ) -> HttpReply:
        fields = [("Host", self.origin.host_header), *headers.items()]
        fields.append(("Content-Length", str(len(body))))
        await connection.send(h11.Request(method="POST", target=path, headers=fields))
        await connection.send(h11.Data(data=body))
        await connection.send(h11.EndOfMessage())
        reply = await self._read_reply(connection)
        if (
            connection.protocol.our_state is h11.DONE
            and connection.protocol.their_state is h11.DONE
        ):
            connection.protocol.start_next_cycle()  # keep-alive: both sides may go on
        else:  # MUST_CLOSE: HTTP/1.0, `Connection: close`, or a close-delimited body
            await self._drop(graceful=True)
        return reply

    async def _read_reply(self, connection: Connection) -> HttpReply:
        while True:
            head = await connection.next_event()
            if isinstance(head, h11.Response):
                break
            if not isinstance(head, h11.InformationalResponse):
                raise HttpError(f"no reply, but {head!r}")
            # a 1xx (100 Continue) is interim: the real reply follows
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in head.headers}
        if "content-length" in headers:  # refused before a byte of the body is read
            self._check_size(int(headers["content-length"]))
        parts: list[bytes] = []
        size = 0
        while not isinstance(event := await connection.next_event(), h11.EndOfMessage):
            if not isinstance(event, h11.Data):
                raise HttpError(f"the reply's body ended with {event!r}")
            size += len(event.data)
            self._check_size(size)  # chunked and close-delimited bodies, as they arrive
            parts.append(bytes(event.data))
        return HttpReply(head.status_code, headers, b"".join(parts))

    def _check_size(self, size: int) -> None:
        if size > self._max_body:
            raise HttpError(f"a reply of {size} bytes exceeds the {self._max_body} byte limit")
