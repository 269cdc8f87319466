"""Push-mode event fan-out, the VEN side: HTTPS endpoints the VTN pushes to, and their answers.

A push VEN registers with oadrHttpPullModel=false and an oadrTransportAddress; the VTN
(`vtn/push.py`) POSTs `<address>/OpenADR2/Simple/2.0b/EiEvent` to it over mutual TLS with the
VTN's own certificate and expects the VEN's answer in the HTTP response: oadrCreatedEvent for an
oadrDistributeEvent (signed by the VEN's own key when the VEN registered for XML signatures),
oadrResponse for anything else. That is what these endpoints answer.

Endpoints (`per_ven`):
  True   one listener, so one address (`https://127.0.0.1:PORT/ven/<index>`), per VEN: the VTN's
         HTTP client opens a connection, with its TLS handshake, per VEN, as it would for VENs
         that are separate hosts. The default, and what the figures in benchmarks/README.md use.
  False  one listener per load-generator process, VENs told apart by path: the VTN's client
         pools connections per host and port, so it reuses a few (aiohttp: at most 100 at a
         time) across all VENs and hardly ever handshakes. Shows what the handshakes cost.

Every endpoint presents one shared server certificate (`BenchPki.push_endpoint`: the DSO CA,
VEN role, SAN localhost/127.0.0.1). That is faithful to what the VTN checks: its push client
verifies the chain to its trusted CAs and the hostname only, and does not pin the endpoint to the
fingerprint the VEN registered with (`vtn/push.py`'s docstring); the VENs' own certificates carry
no SAN, so the hostname check would refuse them. The endpoint requires the VTN's client
certificate, as a VEN's push endpoint does.

The HTTP server is a few lines over asyncio streams (keep-alive, Content-Length bodies: what
aiohttp's client sends), so little of the shared CPU goes to the load generator. Like the pull
client, it does not validate what the VTN sends (the first oadrDistributeEvent is decoded in full
to check that the ids read here are right): it reads the requestID and each event's eventID and
modificationNumber, and encodes a full oadrCreatedEvent (optIn for every event) as its answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import ssl
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oadr import codec
from oadr.enums import OptType
from oadr.exchanges import ok_response
from oadr.model import (
    CreatedEvent,
    DistributeEvent,
    EventId,
    EventResponse,
    Payload,
    RequestId,
    Response,
)

if TYPE_CHECKING:
    from benchmarks.load.client import Driver, Ven

# The oadrRequestID comes before the events in oadrDistributeEvent; each event's descriptor holds
# its eventID, then its modificationNumber (the 2.0b schema's element order).
_REQUEST_ID = re.compile(rb"<(?:\w+:)?requestID>\s*([^<\s]+)\s*</")
_EVENT = re.compile(
    rb"<(?:\w+:)?eventID>\s*([^<\s]+)\s*</(?:\w+:)?eventID>\s*"
    rb"<(?:\w+:)?modificationNumber>\s*(\d+)\s*</"
)
_CONTENT_LENGTH = re.compile(rb"(?im)^content-length:\s*(\d+)")
_PATH = re.compile(rb"^POST /ven/(\d+)/")
IDLE_CLOSE_S = 5.0  # an idle kept-alive connection is closed after this (file descriptors)


@dataclass(frozen=True)
class PushSetup:
    """How the endpoints run: one per VEN or one per process (module docstring), and whether
    the VENs registered for XML signatures (then they sign their answers)."""

    per_ven: bool
    signed: bool


@dataclass(frozen=True)
class PushFanOut:
    """Wait until every VEN answered a pushed oadrDistributeEvent, or `timeout_s`."""

    timeout_s: float


@dataclass
class Tally:
    pushes: Counter[str] = field(default_factory=Counter)  # POSTs received, by service
    acked: dict[int, float] = field(default_factory=dict)  # VEN index -> wall time answered
    connections: int = 0  # accepted TLS connections (one handshake each)
    resumed: int = 0  # of which resumed a TLS session (no certificates, no signatures)
    errors: Counter[str] = field(default_factory=Counter)


def server_context(endpoint_pem: Path, endpoint_key: Path, root_pem: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED  # only the VTN (a certificate from our CAs) pushes
    context.load_verify_locations(cafile=str(root_pem))
    context.load_cert_chain(str(endpoint_pem), str(endpoint_key))
    return context


class Endpoints:
    """The push endpoints of one load-generator process's VENs."""

    def __init__(self, driver: Driver, setup: PushSetup, context: ssl.SSLContext) -> None:
        self.driver = driver
        self.setup = setup
        self.context = context
        self.tally = Tally()
        self.addresses: list[str] = []  # per VEN of this process, in order
        self._servers: list[asyncio.Server] = []
        self._open: set[asyncio.StreamWriter] = set()
        self._checked = False  # the first oadrDistributeEvent is decoded in full
        self._validated = False  # the first answer is validated against the schema
        self._done = asyncio.Event()
        self._expected = 0

    async def start(self) -> list[str]:
        vens = self.driver.vens
        first = self.driver.spec.first
        if self.setup.signed:
            self.driver.load_signing_keys()
        if self.setup.per_ven:
            for offset in range(len(vens)):
                serve = functools.partial(self._serve, offset=offset)
                server = await asyncio.start_server(
                    serve, "127.0.0.1", 0, ssl=self.context, backlog=64
                )
                self._servers.append(server)
                port = server.sockets[0].getsockname()[1]
                self.addresses.append(f"https://127.0.0.1:{port}/ven/{first + offset}")
        else:
            serve = functools.partial(self._serve, offset=None)
            server = await asyncio.start_server(
                serve, "127.0.0.1", 0, ssl=self.context, backlog=1024
            )
            self._servers.append(server)
            port = server.sockets[0].getsockname()[1]
            self.addresses = [f"https://127.0.0.1:{port}/ven/{first + i}" for i in range(len(vens))]
        return self.addresses

    async def close(self) -> None:
        """Stop listening and close the VTN's open connections (their handlers then end)."""
        for server in self._servers:
            server.close()
        self._servers.clear()
        for writer in list(self._open):
            writer.close()
        for _ in range(200):  # at most 2 s
            if not self._open:
                break
            await asyncio.sleep(0.01)

    async def fan_out(self, spec: PushFanOut) -> dict[str, Any]:
        """Count from now: every VEN's answer to a pushed oadrDistributeEvent, until all of this
        process's VENs answered one or `timeout_s` passed."""
        self.tally = Tally()
        self._expected = len(self.driver.vens)
        self._done.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(spec.timeout_s):
                await self._done.wait()
        tally = self.tally
        return {
            "vens": self._expected,
            "acked": len(tally.acked),
            "ack_times": sorted(tally.acked.values()),
            "pushes": dict(tally.pushes),
            "connections": tally.connections,
            "resumed": tally.resumed,
            "errors": dict(tally.errors),
        }

    # --- the HTTP server ------------------------------------------------------------------------

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, offset: int | None
    ) -> None:
        self.tally.connections += 1
        ssl_object = writer.get_extra_info("ssl_object")
        self.tally.resumed += bool(ssl_object is not None and ssl_object.session_reused)
        self._open.add(writer)
        try:
            while True:
                try:
                    async with asyncio.timeout(IDLE_CLOSE_S):
                        head = await reader.readuntil(b"\r\n\r\n")
                except (TimeoutError, asyncio.IncompleteReadError):
                    return  # idle, or the VTN closed its end
                length = _CONTENT_LENGTH.search(head)
                body = await reader.readexactly(int(length.group(1)) if length else 0)
                index = self._index(head, offset)
                status, reply = self._answer(index, head, body)
                writer.write(
                    b"HTTP/1.1 %s\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n\r\n"
                    % (status, len(reply))
                    + reply
                )
                await writer.drain()
                if status.startswith(b"200") and index is not None and b"CreatedEvent" in reply:
                    self._acked(index)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as err:
            self.tally.errors[f"endpoint: {type(err).__name__}"] += 1
        except asyncio.CancelledError:
            # The load generator is exiting while the VTN still pushes. Ending quietly: Python
            # 3.11's stream server logs a cancelled handler as an error (fixed in 3.12).
            return
        finally:
            writer.close()
            self._open.discard(writer)

    def _index(self, head: bytes, offset: int | None) -> int | None:
        """The VEN (index into this process's VENs) a request is for: its port, or its path."""
        if offset is not None:
            return offset
        match = _PATH.match(head)
        if match is None:
            return None
        index = int(match.group(1)) - self.driver.spec.first
        return index if 0 <= index < len(self.driver.vens) else None

    def _acked(self, index: int) -> None:
        if index not in self.tally.acked:
            self.tally.acked[index] = time.time()
            if self._expected and len(self.tally.acked) >= self._expected:
                self._done.set()

    def _answer(self, index: int | None, head: bytes, body: bytes) -> tuple[bytes, bytes]:
        service = head.split(b" ", 2)[1].rsplit(b"/", 1)[-1].decode("ascii", "replace")
        self.tally.pushes[service] += 1
        if index is None:
            self.tally.errors["endpoint: unknown VEN"] += 1
            return b"404 Not Found", b""
        ven = self.driver.vens[index]
        request_id = _REQUEST_ID.search(body)
        if ven.ven_id is None or request_id is None:
            self.tally.errors["endpoint: no venID or requestID"] += 1
            return b"400 Bad Request", b""
        request = RequestId(request_id.group(1).decode())
        reply: Payload
        if b"oadrDistributeEvent" in body:
            events = [(EventId(e.decode()), int(m)) for e, m in _EVENT.findall(body)]
            if not self._checked and not self._check(body, request, events):
                self.tally.errors["endpoint: misread the event ids"] += 1
                return b"500 Internal Server Error", b""
            reply = CreatedEvent(
                response=ok_response(request),
                ven_id=ven.ven_id,
                event_responses=tuple(
                    EventResponse(
                        code=200,
                        request_id=request,
                        event_id=event_id,
                        modification_number=modification,
                        opt_type=OptType.OPT_IN,
                    )
                    for event_id, modification in events
                ),
            )
        else:  # oadrRegisterReport after a registration, ...: acknowledged, as our VEN does
            reply = Response(response=ok_response(request), ven_id=ven.ven_id)
        return b"200 OK", self._encode(ven, reply)

    def _encode(self, ven: Ven, reply: Payload) -> bytes:
        validate, self._validated = not self._validated, True
        if not self.setup.signed:
            return codec.encode(reply, validate=validate)
        return codec.encode(
            reply,
            signing_key=ven.signing_key,
            now=datetime.now(UTC),
            nonce=uuid.uuid4().hex,
            validate=validate,
        )

    def _check(self, body: bytes, request: RequestId, events: list[tuple[EventId, int]]) -> bool:
        """Once: whether the ids read from the raw bytes are those the full decoder finds."""
        decoded = codec.decode(body)
        if not isinstance(decoded, DistributeEvent):
            return False
        expected = [(e.event_id, e.modification_number) for e in decoded.events]
        self._checked = decoded.request_id == request and expected == events
        return self._checked
