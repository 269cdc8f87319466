"""The load generator: one process drives a slice of the VENs, each over its own TLS connection.

Every VEN has its own `ssl.SSLContext` with its own certificate and one persistent HTTP/1.1
connection (keep-alive): the handshake happens once, when the VEN first connects (registration,
outside any timed window), and again only if the server closes the connection; both are
counted. The HTTP client is a few lines over `asyncio` streams, not aiohttp's client, so that
little of the shared CPU goes to the load generator.

Messages are built before each timed window: unsigned polls are one fixed body per VEN; signed
polls need a fresh ReplayProtect nonce and timestamp each, so they are signed in a batch per
segment, and a segment is kept shorter than the server's replay window (our VTN 30 s, OpenLEADR
5 s) so that none is stale when it is sent. All client processes start each segment together
(a `multiprocessing.Barrier`).

Two load shapes:
  saturation  closed loop: `concurrency` workers, each owning a share of the VENs, send the
              next poll as soon as the last reply arrived; latency = reply - send.
  rate        open loop at `rate` polls/s (per process: rate / processes): poll k goes to VEN
              k mod n at t0 + k / rate, i.e. every VEN polls every n / rate seconds, staggered;
              latency = reply - scheduled time (a late send counts against the server).

Push VENs (`listen`) get HTTPS endpoints the VTN pushes to, served in this process
(`benchmarks/load/push.py`); they connect to the VTN only to register.
"""

from __future__ import annotations

import array
import asyncio
import re
import ssl
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from benchmarks.load import fanout, ingest, push
from benchmarks.load.pki import VenIdentity, load_vens
from benchmarks.load.wire import RequestFailed, http_request
from certs import keys
from oadr import codec, exchanges
from oadr.enums import ReadingType
from oadr.model import (
    CreatedPartyRegistration,
    CreatePartyRegistration,
    Poll,
    RegisteredReport,
    ReportRequest,
    ReportRequestId,
    RequestId,
    SpecifierPayload,
    VenId,
)
from oadr.signing import SigningKey

_PROBE_REQUEST = ReportRequest(
    report_request_id=ReportRequestId("probe"),
    report_specifier_id=ingest.SPECIFIER,
    granularity=ingest.MINUTE,
    report_back_duration=5 * ingest.MINUTE,
    specifier_payloads=(SpecifierPayload(r_id=ingest.R_ID, reading_type=ReadingType.DIRECT_READ),),
)
_RESPONSE_CODE = re.compile(rb"responseCode>\s*(\d{3})\s*<")
_CONTENT_LENGTH = re.compile(rb"(?im)^content-length:\s*(\d+)")
CLIENT_ERROR = "client_error"
DRAIN_S = 10.0
_CLOSE = re.compile(rb"(?im)^connection:\s*close")


@dataclass(frozen=True)
class ClientSpec:
    manifest: Path
    first: int  # this process drives VENs [first, last)
    last: int
    root_pem: Path
    host: str
    port: int  # 0 until the parent says which (the `server` command)
    server_name: str = "localhost"
    push_endpoint: tuple[Path, Path] | None = None  # chain and key the push endpoints present
    pull: bool = True  # False: push VENs, which connect only to register (TLS contexts lazily)


@dataclass(frozen=True)
class Phase:
    signed: bool
    duration_s: float
    concurrency: int  # saturation: workers in this process; rate: ignored
    rate_per_s: float | None  # None: saturation
    segment_max_s: float  # signed: below the server's replay window; ingest: a few seconds
    rate_hint_per_s: float  # expected requests/s of this process, to size prebuilt batches
    readings: int = 0  # above 0: oadrUpdateReport with this many readings instead of oadrPoll


@dataclass
class PhaseResult:
    latencies_s: array.array[float]
    completed: int
    errors: Counter[str]
    elapsed_s: float
    handshakes: int
    open_connections: int
    build_s: float
    ran_out: int
    segments: int

    def to_wire(self) -> dict[str, Any]:
        return {
            "latencies": self.latencies_s.tobytes(),
            "completed": self.completed,
            "errors": dict(self.errors),
            "elapsed_s": self.elapsed_s,
            "handshakes": self.handshakes,
            "open_connections": self.open_connections,
            "build_s": self.build_s,
            "ran_out": self.ran_out,
            "segments": self.segments,
        }


@dataclass
class Ven:
    identity: VenIdentity
    context: ssl.SSLContext | None  # None until first needed (push VENs)
    ven_id: VenId | None = None
    signing_key: SigningKey | None = None
    report_request: ReportRequest | None = None  # the VTN's telemetry request (ingest)
    next_minute: int = 0  # the next reading's minute after ingest.EPOCH
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None


@dataclass
class Counters:
    handshakes: int = 0
    errors: Counter[str] = field(default_factory=Counter)


def _context(identity: VenIdentity, root_pem: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cafile=str(root_pem))
    context.load_cert_chain(str(identity.pem_file))
    return context


def _signing_key(identity: VenIdentity, cache: dict[bytes, Any]) -> SigningKey:
    data = identity.pem_file.read_bytes()
    key_end = data.index(b"-----END PRIVATE KEY-----") + len(b"-----END PRIVATE KEY-----")
    key_pem = data[:key_end]
    if key_pem not in cache:  # RSA keys are shared (see pki.py) and slow to load
        cache[key_pem] = keys.as_private_key(serialization.load_pem_private_key(key_pem, None))
    certificate = x509.load_pem_x509_certificate(data[key_end:])
    return SigningKey(cache[key_pem], certificate)


class Driver:
    def __init__(self, spec: ClientSpec) -> None:
        self.spec = spec
        identities = load_vens(spec.manifest)[spec.first : spec.last]
        self.vens = [Ven(i, _context(i, spec.root_pem) if spec.pull else None) for i in identities]
        self.counters = Counters()
        self.poll_path = exchanges.Service.OADR_POLL.path
        self.report_path = exchanges.Service.EI_REPORT.path
        self.port = spec.port
        self.host_header = f"{spec.server_name}:{spec.port}"
        self.endpoints: push.Endpoints | None = None  # push VENs: where the VTN posts to

    def set_server(self, port: int) -> None:
        self.port = port
        self.host_header = f"{self.spec.server_name}:{port}"

    async def listen(self, setup: push.PushSetup) -> list[str]:
        """Start the push endpoints of this process's VENs; their transport addresses."""
        assert self.spec.push_endpoint is not None, "push needs the endpoint certificate"
        chain, key = self.spec.push_endpoint
        context = push.server_context(chain, key, self.spec.root_pem)
        self.endpoints = push.Endpoints(self, setup, context)
        return await self.endpoints.start()

    async def _connect(self, ven: Ven) -> None:
        if ven.context is None:
            ven.context = _context(ven.identity, self.spec.root_pem)
        ven.reader, ven.writer = await asyncio.open_connection(
            self.spec.host, self.port, ssl=ven.context, server_hostname=self.spec.server_name
        )
        self.counters.handshakes += 1

    async def send(self, ven: Ven, request: bytes) -> bytes:
        """One request on the VEN's own connection; reconnects once if the server closed it."""
        for attempt in (0, 1):
            fresh = ven.writer is None
            if ven.writer is None:
                await self._connect(ven)
            assert ven.reader is not None and ven.writer is not None
            try:
                ven.writer.write(request)
                head = await ven.reader.readuntil(b"\r\n\r\n")
            except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
                self._drop(ven)
                if fresh or attempt:
                    raise
                continue  # a keep-alive connection the server had closed: retry on a new one
            match = _CONTENT_LENGTH.search(head)
            body = await ven.reader.readexactly(int(match.group(1)) if match else 0)
            if _CLOSE.search(head):
                self._drop(ven)
            status = head[9:12]
            if status != b"200":
                raise RequestFailed(f"HTTP {status.decode()}")
            return body
        raise AssertionError("unreachable")

    def _drop(self, ven: Ven) -> None:
        if ven.writer is not None:
            ven.writer.close()
        ven.reader = ven.writer = None

    def open_connections(self) -> int:
        return sum(1 for v in self.vens if v.writer is not None)

    async def close_all(self) -> None:
        for ven in self.vens:
            self._drop(ven)
        await asyncio.sleep(0.1)

    def reset_counters(self) -> None:
        self.counters = Counters()

    def answered(self, body: bytes) -> bool:
        """Whether a reply says the request succeeded (else counted as an error)."""
        if b"oadrDistributeEvent" in body:
            return True  # a poll answered with the event list (an event is in force): valid
        match = _RESPONSE_CODE.search(body)
        code = match.group(1).decode() if match else "none"
        if code != "200":
            self.counters.errors[f"responseCode {code}"] += 1
            return False
        return True

    # --- setup (untimed) --------------------------------------------------------------------

    async def register(self, concurrency: int) -> dict[str, Any]:
        """oadrCreatePartyRegistration for every VEN on its own connection, then one poll that
        fetches what registration queued (the VTN's oadrRegisterReport). Push VENs (`listen`
        first) register their transport address instead and do not poll: the VTN pushes that
        oadrRegisterReport to them."""
        started = time.perf_counter()
        path = exchanges.Service.EI_REGISTER_PARTY.path
        endpoints = self.endpoints
        addresses: dict[int, str] = {}  # id(ven) -> its push endpoint
        if endpoints is not None:
            addresses = dict(zip(map(id, self.vens), endpoints.addresses, strict=True))
        signed = endpoints is not None and endpoints.setup.signed
        queue = list(reversed(self.vens))

        async def worker() -> None:
            while queue:
                ven = queue.pop()
                address = addresses.get(id(ven))
                request = CreatePartyRegistration(
                    request_id=RequestId(uuid.uuid4().hex),
                    ven_name=ven.identity.name,
                    http_pull_model=address is None,
                    transport_address=address,
                    xml_signature=signed,
                )
                try:
                    reply = codec.decode(
                        await self.send(
                            ven, http_request(path, self.host_header, codec.encode(request))
                        )
                    )
                except (OSError, RequestFailed, asyncio.IncompleteReadError) as err:
                    self.counters.errors[f"register: {type(err).__name__}"] += 1
                    continue
                if isinstance(reply, CreatedPartyRegistration) and reply.ven_id is not None:
                    ven.ven_id = reply.ven_id
                else:
                    self.counters.errors["register: refused"] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        registered_s = time.perf_counter() - started
        if self.endpoints is None:
            await self._poll_each_once(concurrency)
        return {
            "registered": sum(1 for v in self.vens if v.ven_id is not None),
            "register_s": registered_s,
            "warmup_s": time.perf_counter() - started - registered_s,
            "errors": dict(self.counters.errors),
        }

    def assume_registered(self) -> None:
        """OpenLEADR: its in-memory VEN lookup knows every VEN by name already."""
        for ven in self.vens:
            ven.ven_id = VenId(ven.identity.name)

    async def connect_all(self, concurrency: int, signed: bool) -> dict[str, Any]:
        started = time.perf_counter()
        if signed:
            self.load_signing_keys()
        await self._poll_each_once(concurrency, signed)
        return {"warmup_s": time.perf_counter() - started, "errors": dict(self.counters.errors)}

    async def _poll_each_once(self, concurrency: int, signed: bool = False) -> None:
        queue = [v for v in self.vens if v.ven_id is not None]

        async def worker() -> None:
            while queue:
                ven = queue.pop()
                poll = self._signed_poll(ven, datetime.now(UTC)) if signed else None
                try:
                    await self.send(ven, poll or self._unsigned_poll(ven))
                except (OSError, RequestFailed, asyncio.IncompleteReadError) as err:
                    self.counters.errors[f"warm-up: {type(err).__name__}"] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    # --- messages ---------------------------------------------------------------------------

    def _unsigned_poll(self, ven: Ven) -> bytes:
        assert ven.ven_id is not None
        return http_request(self.poll_path, self.host_header, codec.encode(Poll(ven_id=ven.ven_id)))

    def _signed_poll(self, ven: Ven, now: datetime) -> bytes:
        assert ven.ven_id is not None and ven.signing_key is not None
        body = codec.encode(
            Poll(ven_id=ven.ven_id),
            signing_key=ven.signing_key,
            now=now,
            nonce=uuid.uuid4().hex,
            validate=False,  # the same shape was validated once, unsigned
        )
        return http_request(self.poll_path, self.host_header, body)

    def _update_report(self, ven: Ven, now: datetime, readings: int, signed: bool) -> bytes:
        assert ven.ven_id is not None and ven.report_request is not None
        update = ingest.update_report(
            ven.ven_id, ven.report_request, ven.next_minute, readings, now
        )
        ven.next_minute += readings
        body = codec.encode(
            update,
            signing_key=ven.signing_key if signed else None,
            now=now,
            nonce=uuid.uuid4().hex if signed else None,
            validate=False,  # the same shape was validated at setup
        )
        return http_request(self.report_path, self.host_header, body)

    async def register_reports(self, concurrency: int) -> dict[str, Any]:
        """oadrRegisterReport for every VEN; keeps the telemetry request the VTN answers with."""
        started = time.perf_counter()
        queue = [v for v in self.vens if v.ven_id is not None]
        now = datetime.now(UTC)
        if queue:  # validate the shapes once; the timed messages skip it
            assert queue[0].ven_id is not None
            probe = ingest.update_report(queue[0].ven_id, _PROBE_REQUEST, 0, 2, now)
            codec.encode(probe)

        async def worker() -> None:
            while queue:
                ven = queue.pop()
                assert ven.ven_id is not None
                body = codec.encode(ingest.register_report(ven.ven_id, now))
                try:
                    reply = codec.decode(
                        await self.send(ven, http_request(self.report_path, self.host_header, body))
                    )
                except (OSError, RequestFailed, asyncio.IncompleteReadError) as err:
                    self.counters.errors[f"register report: {type(err).__name__}"] += 1
                    continue
                if isinstance(reply, RegisteredReport) and reply.response.code == 200:
                    ven.report_request = ingest.telemetry_request(reply.report_requests)
                else:
                    self.counters.errors["register report: refused"] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return {
            "registered_reports": sum(1 for v in self.vens if v.report_request is not None),
            "register_reports_s": time.perf_counter() - started,
            "errors": dict(self.counters.errors),
        }

    def load_signing_keys(self) -> None:
        cache: dict[bytes, Any] = {}
        for ven in self.vens:
            if ven.signing_key is None:
                ven.signing_key = _signing_key(ven.identity, cache)

    # --- timed phases -----------------------------------------------------------------------

    async def run_phase(self, phase: Phase, barrier: Barrier) -> PhaseResult:
        vens = [v for v in self.vens if v.ven_id is not None]
        if phase.signed:
            self.load_signing_keys()
        # Signed polls expire and report readings are costly to build: both are prebuilt a
        # segment at a time, each sized by the rate the segment before it measured.
        segments = 1
        if phase.signed or phase.readings:
            segments = max(1, -(-int(phase.duration_s * 1000) // int(phase.segment_max_s * 1000)))
        segment_s = phase.duration_s / segments
        if phase.readings and not all(v.report_request is not None for v in vens):
            raise RuntimeError("report ingest needs register_reports first")
        self.counters = Counters(errors=Counter())
        handshakes_before = self.counters.handshakes
        result = PhaseResult(array.array("d"), 0, self.counters.errors, 0.0, 0, 0, 0.0, 0, segments)
        rate_hint = phase.rate_hint_per_s
        for _ in range(segments):
            build_started = time.perf_counter()
            if phase.rate_per_s is None:
                plan = self._saturation_plan(vens, phase, segment_s, rate_hint)
            else:
                plan = self._rate_plan(vens, phase, segment_s)
            result.build_s += time.perf_counter() - build_started
            await asyncio.get_running_loop().run_in_executor(None, barrier.wait)
            done_before = result.completed
            elapsed, ran_out = await self._run_plan(plan, phase, segment_s, result)
            result.elapsed_s += elapsed
            result.ran_out += ran_out
            if elapsed > 0:
                rate_hint = max(rate_hint, (result.completed - done_before) / elapsed)
        result.handshakes = self.counters.handshakes - handshakes_before
        result.open_connections = self.open_connections()
        return result

    def _saturation_plan(
        self, vens: list[Ven], phase: Phase, segment_s: float, rate_hint: float
    ) -> list[list[tuple[Ven, bytes]]]:
        workers = min(phase.concurrency, len(vens))
        owned = [vens[w::workers] for w in range(workers)]
        per_worker = int(rate_hint * segment_s * 1.5 / workers) + 2
        if phase.readings:
            now = datetime.now(UTC)
            return [
                [(v, self._update_report(v, now, phase.readings, phase.signed))
                 for v in _cycle(share, per_worker)]
                for share in owned
            ]  # fmt: skip
        if not phase.signed:
            return [[(v, self._unsigned_poll(v)) for v in share] for share in owned]
        now = datetime.now(UTC)
        return [
            [(v, self._signed_poll(v, now)) for v in _cycle(share, per_worker)] for share in owned
        ]

    def _rate_plan(
        self, vens: list[Ven], phase: Phase, segment_s: float
    ) -> list[list[tuple[Ven, bytes]]]:
        assert phase.rate_per_s is not None
        total = int(phase.rate_per_s * segment_s)
        plans: list[list[tuple[Ven, bytes]]] = [[] for _ in vens]
        now = datetime.now(UTC)
        unsigned = {} if phase.signed else {id(v): self._unsigned_poll(v) for v in vens}
        for k in range(total):
            ven = vens[k % len(vens)]
            request = self._signed_poll(ven, now) if phase.signed else unsigned[id(ven)]
            plans[k % len(vens)].append((ven, request))
        return plans

    async def _run_plan(
        self,
        plan: list[list[tuple[Ven, bytes]]],
        phase: Phase,
        segment_s: float,
        result: PhaseResult,
    ) -> tuple[float, int]:
        started = time.perf_counter()
        deadline = started + segment_s
        stopped_at: list[float] = []
        latencies = result.latencies_s
        cyclic = not phase.signed and not phase.readings and phase.rate_per_s is None
        in_flight = [0]

        async def one(ven: Ven, request: bytes, since: float) -> None:
            in_flight[0] += 1
            try:
                body = await self.send(ven, request)
            except (OSError, RequestFailed, asyncio.IncompleteReadError) as err:
                self.counters.errors[type(err).__name__] += 1
                return
            except asyncio.CancelledError:
                self._drop(ven)  # a half-read reply: this connection is unusable
                raise
            finally:
                in_flight[0] -= 1
            if self.answered(body):
                latencies.append(time.perf_counter() - since)
                result.completed += 1

        async def saturate(items: list[tuple[Ven, bytes]]) -> None:
            index = 0
            while not stopped_at:
                now = time.perf_counter()
                if now >= deadline:
                    return
                if index == len(items):
                    if not cyclic:
                        stopped_at.append(now)  # out of prebuilt messages: stop this process
                        return
                    index = 0
                ven, request = items[index]
                index += 1
                await one(ven, request, now)

        async def scheduled(position: int, items: list[tuple[Ven, bytes]]) -> None:
            assert phase.rate_per_s is not None
            for m, (ven, request) in enumerate(items):
                due = started + (position + m * len(plan)) / phase.rate_per_s
                if due >= deadline:
                    return
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                await one(ven, request, due)

        if phase.rate_per_s is None:
            tasks = [asyncio.create_task(saturate(items)) for items in plan]
        else:
            tasks = [asyncio.create_task(scheduled(p, items)) for p, items in enumerate(plan)]
        # An overloaded server (open loop) may never catch up: what is still unanswered
        # DRAIN_S after the window is cancelled and counted as an error.
        done, pending = await asyncio.wait(tasks, timeout=segment_s + DRAIN_S)
        for task in done:
            task.result()  # a bug in the load generator must not pass for a slow server
        if pending:
            self.counters.errors[f"unanswered {DRAIN_S:g} s after the window"] += in_flight[0]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        # Replies still in flight at the deadline (or when a worker ran out) are counted, so the
        # window ends when the last of them arrived.
        return time.perf_counter() - started, len(stopped_at)


def _cycle(share: list[Ven], count: int) -> list[Ven]:
    return [share[i % len(share)] for i in range(count)]


def main(spec: ClientSpec, pipe: Connection, barrier: Barrier) -> None:
    """A client process: obey the parent's commands until it says `close`."""

    async def serve() -> None:
        driver = Driver(spec)
        while True:
            command, argument = await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
            if command == "register":
                pipe.send(await driver.register(argument))
            elif command == "assume_registered":
                driver.assume_registered()
                pipe.send(await driver.connect_all(*argument))
            elif command == "disconnect":
                await driver.close_all()
                pipe.send(driver.open_connections())
            elif command == "register_reports":
                pipe.send(await driver.register_reports(argument))
            elif command == "fan_out":
                pipe.send(await fanout.run(driver, argument))
            elif command == "server":
                driver.set_server(argument)
                pipe.send("ok")
            elif command == "listen":
                pipe.send(await driver.listen(argument))
            elif command == "assume_push_registered":  # preloaded push VENs: nothing to connect
                driver.assume_registered()
                pipe.send({"errors": {}})
            elif command == "push_fan_out":
                assert driver.endpoints is not None, "push fan-out needs `listen` first"
                pipe.send(await driver.endpoints.fan_out(argument))
            elif command == "phase":
                try:
                    pipe.send((await driver.run_phase(argument, barrier)).to_wire())
                except Exception:
                    barrier.abort()  # the other clients must not wait for this one
                    raise
            elif command == "close":
                await driver.close_all()
                if driver.endpoints is not None:
                    await driver.endpoints.close()
                pipe.send("closed")
                return

    try:
        with asyncio.Runner(loop_factory=_event_loop_factory()) as runner:
            runner.run(serve())
    except Exception:
        pipe.send({CLIENT_ERROR: traceback.format_exc()})
        raise


def _event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop where installed, as the VTN uses: the load generator shares the 2 cores with the
    server, and every bit of CPU it saves is server capacity the figures can show."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop
