"""UFTP transport for the market, DSO role: aggregators that speak Shapeshifter trade with us.

A thin adapter on `shapeshifter_uftp.ShapeshifterDsoService`: the library runs the HTTP server
(its FastAPI app and uvicorn, in its own thread; `HostileXmlGuard` in front refuses oversize and
DTD-bearing bodies), checks libsodium signatures, and sends our messages with its
DSO → AGR client; `market.uftp` maps messages to our model; `market.service` decides. Inbound:

- FlexOffer → `service.submit_bid` for the sender's virtual end node under the offer's
  congestion point, answered with a FlexOfferResponse, Rejected with the market's own refusal
  (e.g. `validate_bid`'s "above the cap") when it refuses. A refused offer stores nothing.
- FlexOfferRevocation → Rejected: our market keeps a bid until gate closure (no withdrawal).
- D-Prognosis → logged and Accepted (we do not use D-prognoses as baselines).
- Responses to what we sent (FlexRequestResponse, FlexOrderResponse, ...) are logged and kept
  in `responses`.

Outbound (`publish_request`, `send_orders`, `send_settlement`): a request to the aggregators with
a node under its point, a FlexOrder per award made from a UFTP offer, a FlexSettlement per
statement. Their message ids are UUID5s of what they carry, so a re-send is the same message
and an offer's FlexRequestMessageID leads back to our request without keeping a table.

Threads: the library calls `process_*` on its own worker threads; the market is async
(SQLAlchemy async on the VTN's loop). Each call crosses with `run_coroutine_threadsafe` and
waits at most `bridge_timeout`, on the worker thread, never on the loop. The outbound functions
run the library's blocking client in `asyncio.to_thread` for the same reason.

Participants come from a static table (`UftpPeer`: domain, public key, endpoint, and its node
per congestion point) instead of the library's DNS discovery.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final, TypeVar

from shapeshifter_uftp import ShapeshifterDsoService, transport
from shapeshifter_uftp.uftp import (
    AcceptedRejected,
    DPrognosis,
    DPrognosisResponse,
    FlexOffer,
    FlexOfferResponse,
    FlexOfferRevocation,
    FlexOfferRevocationResponse,
    PayloadMessage,
)
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from market import service, uftp
from market.accounts import Actor
from market.errors import BidRefused, Conflict, MarketError
from market.model import (
    AggregatorId,
    BidId,
    CongestionPointId,
    FlexRequest,
    NodeId,
    RequestId,
    RequestStatus,
)
from market.settlement import Statement, StatementLine
from market.store import Market
from market.uftp import Envelope, UftpContext
from vtn.store.db import Store

log = logging.getLogger(__name__)

T = TypeVar("T")

# Namespace of the UUID5 message ids we derive (uuid5 of our DSO domain would also do; fixed
# so ids survive a domain rename of the test setup).
_IDS: Final = uuid.UUID("0d8c6a36-4c55-4f7e-a1a8-4b1f0c9e5a27")
_ROLE_AGR: Final = "AGR"
_SETTLED_OR_AFTER: Final = frozenset({RequestStatus.SETTLED})
_CLEARED_OR_AFTER: Final = frozenset(
    {
        RequestStatus.CLEARED,
        RequestStatus.DISPATCHED,
        RequestStatus.MEASURED,
        RequestStatus.SETTLED,
    }
)
_PAGE: Final = 100
MESSAGE_PATH: Final = "/shapeshifter/api/v3/message"  # the library's default


def library_types_only() -> None:
    """Make the library's shared parser look for message classes only in the library.

    Still needed with the library's own service: `transport.unseal_message` parses the signed
    payload without naming its class, the library's classes have no namespace, and xsdata takes
    the last imported dataclass with the root's name, so `market.model.FlexRequest` (imported
    after the library) wins over the UFTP FlexRequest. Process-wide: the parser is the library's.
    """
    context = transport.parser.context
    if context.models_package != _LIBRARY_MODELS:
        context.models_package = _LIBRARY_MODELS
        context.reset()


_LIBRARY_MODELS: Final = "shapeshifter_uftp.uftp"


class UftpUndelivered(MarketError):
    """A UFTP peer could not be reached or refused the HTTP request (not a UFTP rejection)."""

    status = 502


@dataclass(frozen=True, slots=True, kw_only=True)
class UftpPeer:
    """An aggregator that trades over UFTP: who it is to UFTP and to our market."""

    domain: str  # its UFTP sender domain
    aggregator_id: AggregatorId
    public_key: str  # base64 libsodium verify key
    endpoint: str  # full URL of its UFTP message endpoint
    nodes: Mapping[CongestionPointId, NodeId]  # its virtual end node under each point

    @property
    def actor(self) -> Actor:
        return Actor(f"uftp:{self.domain}", self.aggregator_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class UftpConfig:
    context: UftpContext
    signing_key: str  # our base64 libsodium signing (private) key
    peers: tuple[UftpPeer, ...]
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port, read back from `DsoUftpService.url`
    path: str = MESSAGE_PATH
    max_body_bytes: int = 1 << 20  # larger bodies are answered 413 before the library reads them
    bridge_timeout: timedelta = timedelta(seconds=10)


def request_message_id(request_id: str, recipient_domain: str) -> str:
    """The FlexRequest message id for one request sent to one aggregator (unique per message)."""
    return str(uuid.uuid5(_IDS, f"flex-request/{request_id}/{recipient_domain}"))


def _derived_id(*parts: str) -> str:
    return str(uuid.uuid5(_IDS, "/".join(parts)))


class HostileXmlGuard:
    """ASGI middleware before the library's FastAPI app: refuse what its parser should not see.

    The library parses the SignedMessage with xsdata on lxml (`iterparse` with `load_dtd=False,
    resolve_entities=False`, but `recover=True`): it loads no external entity and libxml2 stops
    a billion laughs, yet internal entities are still expanded in attribute values and any
    declared encoding is honoured. UFTP messages are UTF-8 (the library's own
    `InvalidContentTypeException` says so) and need no DTD, so anything else is answered 400
    here, and a body over `max_body_bytes` 413, before the library reads it; only the message
    path is served (the library's app also has FastAPI's documentation pages). The signed payload
    inside is out of our reach (base64 in the envelope): the library parses it, with the same
    parser, only once its signature checked, i.e. from a participant we hold a key for; a bomb
    there fails in libxml2 and is answered 400 (tested), an internal entity would be expanded.
    """

    def __init__(self, app: ASGIApp, path: str, max_body_bytes: int = 1 << 20) -> None:
        self.app = app
        self.path = path
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] != self.path:  # FastAPI's /docs, /openapi.json: not for peers
            await Response(status_code=404)(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await Response(status_code=413)(scope, receive, send)
            return
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the sender left: nobody to answer
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:  # chunked, or a Content-Length that lied
                await Response(status_code=413)(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if not _plain_xml(body):
            await Response(status_code=400)(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: wait for the disconnect as before
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _plain_xml(body: bytes) -> bool:
    """UTF-8 without NUL, no non-UTF-8 encoding declaration, no DOCTYPE or ENTITY declaration.

    Checked on the decoded text: a UTF-16 or UTF-7 body could spell "<!DOCTYPE" in bytes that a
    byte search would not find, and lxml would honour its declared encoding.
    """
    try:
        text = body.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except UnicodeDecodeError:
        return False
    encoding = _ENCODING.search(text)
    return (
        "\x00" not in text
        and (encoding is None or encoding.group(1).lower() in {"utf-8", "utf8"})
        and _DECLARATION.search(text) is None
    )


_DECLARATION: Final = re.compile(r"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_ENCODING: Final = re.compile(r"""<\?xml[^>]*?encoding\s*=\s*["']([^"']*)["']""")


def endpoint_url(running_service: Any, path: str = MESSAGE_PATH) -> str:
    """The message URL a started library service listens on: its uvicorn socket's address.

    The library keeps no URL or path; uvicorn, given port 0, binds a free port we read back.
    """
    host, port = running_service.server.servers[0].sockets[0].getsockname()[:2]
    return f"http://{host}:{port}{path}"


class DsoUftpService(ShapeshifterDsoService):  # type: ignore[misc]
    """The library's DSO service, deciding with our market. Start it with `running()`.

    The library builds the FastAPI app, its one route and the uvicorn server; we only put
    `HostileXmlGuard` in front of the app before the server starts.
    """

    def __init__(
        self,
        config: UftpConfig,
        store: Store,
        loop: asyncio.AbstractEventLoop,
        clock: Callable[[], datetime],
    ) -> None:
        self.config = config
        self.market_store = store
        self.loop = loop
        self.clock = clock
        self.peers: dict[str, UftpPeer] = {p.domain: p for p in config.peers}
        self.responses: list[PayloadMessage] = []  # list.append is atomic: threads may add
        library_types_only()
        super().__init__(
            sender_domain=config.context.dso_domain,
            signing_key=config.signing_key,
            key_lookup_function=self._public_key,
            endpoint_lookup_function=self._endpoint,
            host=config.host,
            port=config.port,  # uvicorn binds port 0 to a free port: read `url` once started
            path=config.path,
        )
        self.app.add_middleware(
            HostileXmlGuard, path=config.path, max_body_bytes=config.max_body_bytes
        )

    @property
    def url(self) -> str:
        """The UFTP endpoint once started (with the real port when configured with 0)."""
        return endpoint_url(self, self.config.path)

    # --- participant lookup: a static table instead of DNS --------------------------------------

    def _peer(self, domain: str, role: str) -> UftpPeer:
        peer = self.peers.get(domain)
        if peer is None or role != _ROLE_AGR:
            # raised inside the library's request handler: the sender gets a 401, not a 500
            raise HTTPException(status_code=401, detail=f"{role} {domain} is not a participant")
        return peer

    def _public_key(self, domain: str, role: str) -> str:
        return self._peer(domain, role).public_key

    def _endpoint(self, domain: str, role: str) -> str:
        return self._peer(domain, role).endpoint

    # --- the bridge to the market's event loop ---------------------------------------------------

    def _bridge(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the market's loop and wait for it here, on a library thread."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout=self.config.bridge_timeout.total_seconds())
        except concurrent.futures.TimeoutError:
            future.cancel()  # its transaction rolls back unless it already committed
            raise

    # --- inbound ---------------------------------------------------------------------------------

    def process_flex_offer(self, message: FlexOffer) -> None:
        reason = self._decide(message, self._take_offer(message))
        self.agr_client(message.sender_domain).send_flex_offer_response(
            FlexOfferResponse(
                conversation_id=message.conversation_id,
                flex_offer_message_id=message.message_id,
                result=AcceptedRejected.ACCEPTED if reason is None else AcceptedRejected.REJECTED,
                rejection_reason=reason,
            )
        )

    def _decide(self, message: PayloadMessage, work: Coroutine[Any, Any, None]) -> str | None:
        """None when the market took `message`; else the reason it did not, for the reply."""
        try:
            self._bridge(work)
        except MarketError as err:
            log.info("UFTP %s %s refused: %s", type(message).__name__, message.message_id, err)
            return err.message
        except concurrent.futures.TimeoutError:
            log.error("UFTP %s %s: the market did not answer", type(message).__name__,
                      message.message_id)  # fmt: skip
            return f"the market did not decide within {self.config.bridge_timeout}; send again"
        except Exception:
            reference = str(uuid.uuid4())
            log.exception("UFTP %s %s failed (reference %s)", type(message).__name__,
                          message.message_id, reference)  # fmt: skip
            return f"internal error, reference {reference}"
        return None

    async def _take_offer(self, message: FlexOffer) -> None:
        peer = self.peers[message.sender_domain]  # the library verified it signed with its key
        if len(message.offer_options) != 1:
            # our bids are independent, UFTP options are alternatives: both could be awarded
            raise BidRefused("a FlexOffer must have exactly one OfferOption here")
        if message.unsolicited or not message.flex_request_message_id:
            raise BidRefused("unsolicited FlexOffers are not traded: answer a FlexRequest")
        point_id = self.config.context.point_id(message.congestion_point)
        node_id = peer.nodes.get(point_id)
        if node_id is None:
            raise BidRefused(f"{peer.domain} has no virtual end node under {point_id}")
        request = await self._request_for(message.flex_request_message_id, point_id, peer.domain)
        now = self.clock()
        bids = uftp.bids_from_offer(message, request, self.config.context, node_id=node_id,
                                    aggregator_id=peer.aggregator_id, submitted_at=now)  # fmt: skip
        for bid in bids:  # exactly one, checked above
            await service.submit_bid(self.market_store, bid, actor=peer.actor, now=now)

    async def _request_for(
        self, message_id: str, point_id: CongestionPointId, domain: str
    ) -> FlexRequest:
        """The request whose FlexRequest to `domain` had `message_id` (ids are derived)."""
        offset = 0
        while page := await service.requests(self.market_store, offset=offset, limit=_PAGE):
            for request in page:
                if request.point_id == point_id and (
                    request_message_id(request.request_id, domain) == message_id
                ):
                    return request
            offset += _PAGE
        raise BidRefused(f"FlexRequest {message_id} was not sent by us to {domain}")

    def process_flex_offer_revocation(self, message: FlexOfferRevocation) -> None:
        self.agr_client(message.sender_domain).send_flex_offer_revocation_response(
            FlexOfferRevocationResponse(
                conversation_id=message.conversation_id,
                flex_offer_revocation_message_id=message.message_id,
                result=AcceptedRejected.REJECTED,
                rejection_reason="this market keeps a bid until gate closure; it cannot be "
                "revoked (send a new FlexOffer to offer differently)",
            )
        )

    def process_d_prognosis(self, message: DPrognosis) -> None:
        log.info("UFTP D-Prognosis %s from %s for %s (not used as a baseline)",
                 message.message_id, message.sender_domain, message.congestion_point)  # fmt: skip
        self.agr_client(message.sender_domain).send_d_prognosis_response(
            DPrognosisResponse(
                conversation_id=message.conversation_id,
                d_prognosis_message_id=message.message_id,
                result=AcceptedRejected.ACCEPTED,
            )
        )

    def _record(self, message: PayloadMessage) -> None:
        log.info("UFTP %s from %s: %s", type(message).__name__, message.sender_domain,
                 getattr(message, "result", None))  # fmt: skip
        self.responses.append(message)

    process_flex_request_response = _record
    process_flex_order_response = _record
    process_flex_settlement_response = _record
    process_flex_reservation_update_response = _record
    process_dso_portfolio_query_response = _record
    process_dso_portfolio_update_response = _record
    process_metering = _record


@asynccontextmanager
async def running(
    config: UftpConfig, store: Store, clock: Callable[[], datetime]
) -> AsyncIterator[DsoUftpService]:
    """The DSO's UFTP service serving on the library's thread for the duration of the block."""
    dso = DsoUftpService(config, store, asyncio.get_running_loop(), clock)
    await asyncio.to_thread(dso.run_in_thread)  # it polls until uvicorn is up: not on the loop
    try:
        yield dso
    finally:
        await asyncio.to_thread(dso.stop)
        # a worker may wait on a bridged coroutine: the loop must stay free while they finish
        await asyncio.to_thread(dso.inbound_executor.shutdown, wait=True)
        await asyncio.to_thread(dso.outbound_executor.shutdown, wait=True)


# --- outbound: DSO → AGR --------------------------------------------------------------------------


async def _send(dso: DsoUftpService, domain: str, method: str, message: PayloadMessage) -> None:
    client = dso.agr_client(domain)
    try:
        await asyncio.to_thread(getattr(client, method), message)
    except Exception as exc:  # the library raises ClientTransportException, requests its own
        raise UftpUndelivered(f"{type(message).__name__} to {domain}: {exc}") from exc


async def _load(dso: DsoUftpService, request_id: str) -> FlexRequest:
    async with dso.market_store.transaction() as tx:
        return await service.load_request(Market.on(tx), request_id)


async def publish_request(dso: DsoUftpService, request_id: str) -> list[str]:
    """Send an open request as a UFTP FlexRequest to each peer with a node under its point.

    Returns the domains it was delivered to.
    """
    request = await _load(dso, request_id)
    if request.status is not RequestStatus.OPEN:
        raise Conflict(f"flex request {request_id!r} is {request.status.value}, not open")
    ctx, now = dso.config.context, dso.clock()
    sent: list[str] = []
    for peer in dso.peers.values():
        if request.point_id not in peer.nodes:
            continue
        envelope = Envelope(
            sender_domain=ctx.dso_domain,
            recipient_domain=peer.domain,
            message_id=request_message_id(request.request_id, peer.domain),
            conversation_id=str(uuid.uuid4()),
            time_stamp=now,
        )
        message = uftp.to_flex_request(request, envelope, ctx)
        await _send(dso, peer.domain, "send_flex_request", message)
        sent.append(peer.domain)
    return sent


def _offer_of(bid_id: BidId) -> tuple[str, str] | None:
    """(offer message id, option reference) of a bid made from a UFTP FlexOffer, else None."""
    message_id, slash, option = bid_id.partition("/")
    try:
        uuid.UUID(message_id)
    except ValueError:
        return None
    return (message_id, option) if slash and option else None


async def send_orders(dso: DsoUftpService, request_id: str) -> list[str]:
    """A FlexOrder for each award of a cleared request made from a UFTP offer of a peer.

    Returns the order references sent; awards on bids made through the REST API are not ours
    to send over UFTP and are skipped.
    """
    request = await _load(dso, request_id)
    if request.status not in _CLEARED_OR_AFTER:
        raise Conflict(f"flex request {request_id!r} is {request.status.value}, not cleared")
    async with dso.market_store.transaction() as tx:
        stored = await Market.on(tx).awards.for_request(request_id)
    by_aggregator = {p.aggregator_id: p for p in dso.peers.values()}
    ctx, now = dso.config.context, dso.clock()
    sent: list[str] = []
    for award in (s.award for s in stored):
        peer = by_aggregator.get(award.aggregator_id)
        offer = _offer_of(award.bid_id)
        if peer is None or offer is None:
            continue
        envelope = Envelope(
            sender_domain=ctx.dso_domain,
            recipient_domain=peer.domain,
            message_id=_derived_id("flex-order", request_id, award.bid_id),
            conversation_id=str(uuid.uuid4()),
            time_stamp=now,
        )
        message = uftp.to_flex_order(
            award, request, envelope, ctx, offer_message_id=offer[0], option_reference=offer[1]
        )
        await _send(dso, peer.domain, "send_flex_order", message)
        sent.append(uftp.order_reference(award))
    return sent


async def send_settlement(dso: DsoUftpService, request_id: str) -> list[str]:
    """A FlexSettlement to each peer with a statement for a settled request; returns domains."""
    request = await _load(dso, request_id)
    if request.status not in _SETTLED_OR_AFTER:
        raise Conflict(f"flex request {request_id!r} is {request.status.value}, not settled")
    async with dso.market_store.transaction() as tx:
        market = Market.on(tx)
        awards = [s.award for s in await market.awards.for_request(request_id)]
        bodies = await market.statements.page(request_id=request_id)
    by_aggregator = {p.aggregator_id: p for p in dso.peers.values()}
    ctx, now = dso.config.context, dso.clock()
    sent: list[str] = []
    for body in bodies:
        peer = by_aggregator.get(AggregatorId(body["aggregator_id"]))
        if peer is None:
            continue
        envelope = Envelope(
            sender_domain=ctx.dso_domain,
            recipient_domain=peer.domain,
            message_id=_derived_id("flex-settlement", request_id, peer.domain),
            conversation_id=str(uuid.uuid4()),
            time_stamp=now,
        )
        message = uftp.to_flex_settlement(statement_of(body), request, awards, envelope, ctx)
        await _send(dso, peer.domain, "send_flex_settlement", message)
        sent.append(peer.domain)
    return sent


def statement_of(body: Mapping[str, Any]) -> Statement:
    """A stored statement (its `Statement.to_json()` body) read back, exactly as issued."""
    totals = body["totals"]
    return Statement(
        aggregator_id=AggregatorId(body["aggregator_id"]),
        request_id=RequestId(body["request_id"]),
        period=body["period"],
        lines=tuple(_line(line) for line in body["lines"]),
        methods=tuple(body["methods"]),
        tolerance=Decimal(body["tolerance"]),
        **{name: Decimal(totals[name]) for name in _TOTALS},
    )


_TOTALS: Final = (
    "awarded_kwh",
    "delivered_kwh",
    "paid_kwh",
    "shortfall_kwh",
    "payment_eur",
    "penalty_eur",
    "net_eur",
)
_LINE_AMOUNTS: Final = (
    "price_eur_per_kwh",
    "awarded_kwh",
    "delivered_kwh",
    "paid_kwh",
    "payment_eur",
    "shortfall_kwh",
    "penalty_eur",
)


def _line(line: Mapping[str, str]) -> StatementLine:
    def measured(name: str) -> Decimal | None:
        return Decimal(line[name]) if line.get(name) else None  # "" = no delivery data

    return StatementLine(
        bid_id=BidId(line["bid_id"]),
        node_id=NodeId(line["node_id"]),
        block=int(line["block"]),
        block_start=datetime.fromisoformat(line["block_start"]),
        baseline_kw=measured("baseline_kw"),
        actual_kw=measured("actual_kw"),
        **{name: Decimal(line[name]) for name in _LINE_AMOUNTS},
    )
