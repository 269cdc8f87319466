"""UFTP (Shapeshifter) trading with the market over real HTTP on 127.0.0.1 with real libsodium
signatures: our DSO service against an aggregator built on the library's own
`ShapeshifterAgrService`, both on the library's servers. A request goes out as a FlexRequest,
the aggregator's FlexOffer becomes a bid, clearing sends it a FlexOrder with the awarded power,
settlement a FlexSettlement whose figures are our statement's; a refused offer is answered
Rejected with the market's reason and changes nothing."""

from __future__ import annotations

import asyncio
import io
import queue
import uuid
from base64 import b64decode, b64encode
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any, Final, TypeVar

import aiohttp
from nacl.bindings import crypto_sign, crypto_sign_keypair
from shapeshifter_uftp import ShapeshifterAgrService, transport
from shapeshifter_uftp.uftp import (
    AcceptedRejected,
    DPrognosis,
    DPrognosisISP,
    DPrognosisResponse,
    FlexOfferResponse,
    FlexOfferRevocation,
    FlexOfferRevocationResponse,
    FlexOrder,
    FlexOrderResponse,
    FlexRequest,
    FlexSettlement,
    PayloadMessage,
    SignedMessage,
)

from certs.dev import DevPki
from market import service, uftp, uftp_service
from market.accounts import Actor
from market.clearing import clear
from market.model import AggregatorId, BidId, CongestionPointId, Delivery, NodeId, RequestStatus
from market.settlement import settle
from market.store import Market
from market.uftp import Envelope, UftpContext
from market.uftp_service import DsoUftpService, UftpConfig, UftpPeer
from tests.factories import make_bid, make_flex_request
from tests.integration.test_market_api import (
    GATE,
    START,
    Clock,
    MarketVtn,
    grid,
    market_vtn,
    snapshot,
)

D = Decimal
CTX = UftpContext(dso_domain="dso.flex4grid.test", ea_prefix="ea1.2030-03.flex4grid.test")
AGR_DOMAIN = "agr-a.uftp.test"
M = TypeVar("M", bound=PayloadMessage)


def keypair() -> tuple[str, str]:
    """(public, private) base64 libsodium signing keys, as the library's CLI makes them."""
    public, private = crypto_sign_keypair()
    return b64encode(public).decode(), b64encode(private).decode()


class Aggregator(ShapeshifterAgrService):  # type: ignore[misc]
    """A UFTP aggregator, the library's own service on a free port, that keeps what the DSO
    sends it for the test to read in order."""

    def __init__(self, *, private_key: str, dso_public_key: str) -> None:
        self.inbox: queue.Queue[PayloadMessage] = queue.Queue()
        self.dso_url = ""
        uftp_service.library_types_only()  # it unseals FlexRequests: not ours (see there)
        super().__init__(
            sender_domain=AGR_DOMAIN,
            signing_key=private_key,
            key_lookup_function=lambda domain, role: dso_public_key,
            endpoint_lookup_function=lambda domain, role: self.dso_url,
            host="127.0.0.1",
            port=0,
        )

    @property
    def url(self) -> str:
        return uftp_service.endpoint_url(self)

    def _keep(self, message: PayloadMessage) -> None:
        self.inbox.put(message)

    process_d_prognosis_response = _keep
    process_flex_request = _keep
    process_flex_offer_response = _keep
    process_flex_offer_revocation_response = _keep
    process_flex_order = _keep
    process_flex_reservation_update = _keep
    process_flex_settlement = _keep
    process_metering_response = _keep
    process_agr_portfolio_query_response = _keep
    process_agr_portfolio_update_response = _keep

    async def receive(self, kind: type[M]) -> M:
        message = await asyncio.to_thread(self.inbox.get, timeout=10)
        assert isinstance(message, kind), message
        return message

    async def send(self, method: str, message: PayloadMessage) -> None:
        await asyncio.to_thread(getattr(self.dso_client(CTX.dso_domain), method), message)


@dataclass
class Pair:
    dso: DsoUftpService
    agr: Aggregator


@asynccontextmanager
async def uftp_pair(
    vtn: MarketVtn, bridge_timeout: timedelta = timedelta(seconds=10)
) -> AsyncIterator[Pair]:
    """The aggregator first (its port goes into our peer table), then our DSO service."""
    dso_public, dso_private = keypair()
    agr_public, agr_private = keypair()
    agr = Aggregator(private_key=agr_private, dso_public_key=dso_public)
    await asyncio.to_thread(agr.run_in_thread)
    try:
        peer = UftpPeer(
            domain=AGR_DOMAIN,
            aggregator_id=AggregatorId("agg-a"),
            public_key=agr_public,
            endpoint=agr.url,
            nodes={CongestionPointId("cp-1"): NodeId("node-a")},
        )
        config = UftpConfig(context=CTX, signing_key=dso_private, peers=(peer,),
                            bridge_timeout=bridge_timeout)  # fmt: skip
        async with uftp_service.running(config, vtn.context.store, vtn.clock) as dso:
            agr.dso_url = dso.url
            yield Pair(dso, agr)
    finally:
        await asyncio.to_thread(agr.stop)
        await asyncio.to_thread(agr.inbound_executor.shutdown, wait=True)
        await asyncio.to_thread(agr.outbound_executor.shutdown, wait=True)


async def offer_for(pair: Pair, price: str, option: str = "opt-1") -> Any:
    """The DSO publishes req-1; the aggregator answers its FlexRequest with a FlexOffer of
    4 kW in each of its ISPs at `price` EUR/kWh, divisible."""
    assert await uftp_service.publish_request(pair.dso, "req-1") == [AGR_DOMAIN]
    received = await pair.agr.receive(FlexRequest)
    blocks = uftp.request_blocks(received, CTX)
    assert (blocks.point_id, blocks.start, blocks.kw) == ("cp-1", START, (D(10),) * 4)
    # what the aggregator read, as our request type: all `to_flex_offer` needs is its placement
    request = make_flex_request(point_id=blocks.point_id, start=blocks.start, isp=blocks.isp,
                                needed_kw=blocks.kw)  # fmt: skip
    bid = make_bid(bid_id=BidId(option), offered_kw=(D(4),) * 4, price_eur_per_kwh=D(price),
                   valid_until=START + timedelta(hours=2))  # fmt: skip
    envelope = Envelope.new(AGR_DOMAIN, CTX.dso_domain, pair.dso.clock())
    offer = uftp.to_flex_offer(bid, request, envelope, CTX, request_message_id=received.message_id)
    await pair.agr.send("send_flex_offer", offer)
    return offer


async def test_an_aggregator_trades_over_uftp_from_request_to_settlement(
    pki: DevPki, database_url: str
) -> None:
    async with market_vtn(pki, database_url, Clock()) as vtn, uftp_pair(vtn) as pair:
        await grid(vtn)
        offer = await offer_for(pair, "0.2")
        answer = await pair.agr.receive(FlexOfferResponse)
        bids = await vtn.ok("GET", "/market/requests/req-1/bids")

        vtn.clock.now = GATE
        await vtn.ok("POST", "/market/requests/req-1/clear")
        orders = await uftp_service.send_orders(pair.dso, "req-1")
        order = await pair.agr.receive(FlexOrder)
        await pair.agr.send("send_flex_order_response", FlexOrderResponse(
            conversation_id=order.conversation_id, flex_order_message_id=order.message_id,
            result=AcceptedRejected.ACCEPTED))  # fmt: skip

        await vtn.ok("POST", "/market/requests/req-1/dispatch", json={})
        vtn.clock.now = START + timedelta(hours=2)
        # Metering stands in here: baseline 10 kW, actual 6, 6, 7, 10 kW (delivered 4, 4, 3, 0)
        async with vtn.context.store.transaction() as tx:
            market = Market.on(tx)
            request = await service.load_request(market, "req-1", for_update=True)
            for block, actual_kw in enumerate((D(6), D(6), D(7), D(10))):
                delivery = Delivery(bid_id=BidId(bids[0]["bid_id"]), node_id=NodeId("node-a"),
                                    block=block, baseline_kw=D(10), actual_kw=actual_kw,
                                    method="meter-before-meter-after")  # fmt: skip
                await market.deliveries.add("req-1", delivery, {}, vtn.clock.now)
            await service.advance(market, request, RequestStatus.MEASURED, Actor("dso"),
                                  vtn.clock.now)  # fmt: skip
        [statement] = await vtn.ok("POST", "/market/requests/req-1/settle", json={})
        assert await uftp_service.send_settlement(pair.dso, "req-1") == [AGR_DOMAIN]
        settlement = await pair.agr.receive(FlexSettlement)
        for _ in range(100):  # the order response reaches the DSO on a library thread
            if pair.dso.responses:
                break
            await asyncio.sleep(0.05)

    assert answer.result == AcceptedRejected.ACCEPTED and answer.rejection_reason is None
    assert answer.flex_offer_message_id == offer.message_id
    assert [
        (b["bid_id"], b["node_id"], b["offered_kw"], D(b["price_eur_per_kwh"])) for b in bids
    ] == [(f"{offer.message_id}/opt-1", "node-a", ["4", "4", "4", "4"], D("0.2"))]
    # 4 kW in each of 4 quarter hours at 0.2 EUR/kWh: 4 kWh for 0.80 EUR, all of it ordered
    assert orders == [f"req-1/{offer.message_id}/opt-1"]
    assert uftp.order_blocks(order, CTX).kw == (D(4),) * 4
    assert (order.price, order.activation_factor) == (D("0.8"), D(1))
    assert (order.flex_offer_message_id, order.option_reference) == (offer.message_id, "opt-1")
    assert [type(r) for r in pair.dso.responses] == [FlexOrderResponse]
    # Hand-computed: paid 1 + 1 + 0.75 + 0 kWh x 0.2 = 0.55 EUR; shortfall 0.25 and 1 kWh
    # beyond the 10 % tolerance (0.1 kWh) is 0.15 + 0.9 kWh x 0.2 = 0.21 EUR; net 0.34 EUR.
    totals = statement["totals"]
    assert (totals["payment_eur"], totals["penalty_eur"], totals["net_eur"]) == (
        "0.55", "0.21", "0.34"
    )  # fmt: skip
    [settled] = settlement.flex_order_settlements
    assert settled.order_reference == orders[0]
    assert (settled.price, settled.penalty, settled.net_settlement) == (
        D(totals["payment_eur"]), D(totals["penalty_eur"]), D(totals["net_eur"])
    )  # fmt: skip
    assert [(i.baseline_power, i.actual_power, i.ordered_flex_power, i.delivered_flex_power)
            for i in settled.isps] == [
        (10_000, 6_000, -4_000, -4_000),
        (10_000, 6_000, -4_000, -4_000),
        (10_000, 7_000, -4_000, -3_000),
        (10_000, 10_000, -4_000, 0),
    ]  # fmt: skip


async def test_a_refused_offer_is_rejected_with_the_reason_and_changes_nothing(
    pki: DevPki, database_url: str
) -> None:
    async with market_vtn(pki, database_url, Clock()) as vtn, uftp_pair(vtn) as pair:
        await grid(vtn)
        before = await snapshot(vtn)
        offer = await offer_for(pair, "0.6")  # the cap is 0.5 EUR/kWh
        refused = await pair.agr.receive(FlexOfferResponse)
        revocation = FlexOfferRevocation(conversation_id=offer.conversation_id,
                                         flex_offer_message_id=offer.message_id)  # fmt: skip
        await pair.agr.send("send_flex_offer_revocation", revocation)
        revoked = await pair.agr.receive(FlexOfferRevocationResponse)
        unsolicited = replace(
            offer,
            message_id=str(uuid.uuid4()),
            flex_request_message_id=None,
            unsolicited=True,
            offer_options=[replace(offer.offer_options[0], price=D("0.4"))],
        )
        await pair.agr.send("send_flex_offer", unsolicited)
        uninvited = await pair.agr.receive(FlexOfferResponse)
        prognosis = DPrognosis(
            isp_duration=offer.isp_duration,
            time_zone=offer.time_zone,
            period=offer.period,
            congestion_point=offer.congestion_point,
            revision=1,
            isps=[DPrognosisISP(power=25_000, start=45, duration=4)],
        )
        await pair.agr.send("send_d_prognosis", prognosis)
        noted = await pair.agr.receive(DPrognosisResponse)
        after = await snapshot(vtn)

    assert refused.result == AcceptedRejected.REJECTED
    assert refused.flex_offer_message_id == offer.message_id
    assert refused.rejection_reason is not None and "above the cap" in refused.rejection_reason
    assert revoked.result == AcceptedRejected.REJECTED
    assert revoked.rejection_reason is not None and "cannot be revoked" in revoked.rejection_reason
    assert uninvited.result == AcceptedRejected.REJECTED
    assert uninvited.rejection_reason is not None and "unsolicited" in uninvited.rejection_reason
    assert (noted.result, noted.d_prognosis_message_id) == (
        AcceptedRejected.ACCEPTED, prognosis.message_id
    )  # fmt: skip
    assert after == before


async def test_an_offer_the_market_does_not_decide_in_time_is_rejected_and_not_stored(
    pki: DevPki, database_url: str
) -> None:
    """The library's worker waits for the market at most `bridge_timeout`, then gives up."""
    async with (
        market_vtn(pki, database_url, Clock()) as vtn,
        uftp_pair(vtn, bridge_timeout=timedelta(0)) as pair,
    ):
        await grid(vtn)
        before = await snapshot(vtn)
        await offer_for(pair, "0.2")
        late = await pair.agr.receive(FlexOfferResponse)
        await asyncio.sleep(0.2)  # a cancelled submission would have committed by now
        after = await snapshot(vtn)

    assert late.result == AcceptedRejected.REJECTED
    assert late.rejection_reason is not None and "did not decide" in late.rejection_reason
    assert after == before


def sealed(message: PayloadMessage, sender_domain: str, private_key: str) -> bytes:
    """A SignedMessage as the library's client makes it, signed with `private_key`."""
    body = transport.seal_message(message, private_key)
    envelope = SignedMessage(sender_domain=sender_domain, sender_role="AGR", body=body)
    return str(transport.to_xml(envelope)).encode()


async def post(url: str, body: bytes | Iterable[bytes]) -> int:
    """The HTTP status; an iterable body is sent chunked, without a Content-Length."""
    # BytesIO: aiohttp warns about large raw bytes, and still sends a Content-Length
    data: Any = io.BytesIO(body) if isinstance(body, bytes) else _stream(body)
    async with aiohttp.ClientSession() as session, session.post(url, data=data) as response:
        return response.status


async def _stream(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


# 10 characters, then ten references to the entity before, 8 times: 10^9 characters expanded
BILLION_LAUGHS: Final = (
    b'<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
    + b"".join(
        b'<!ENTITY %c "%s">' % (98 + level, (b"&%c;" % (97 + level)) * 10) for level in range(8)
    )
    + b"]>"
)


def with_doctype(xml: bytes, doctype: bytes) -> bytes:
    """`xml` with `doctype` after its XML declaration, where a DTD goes."""
    declaration, end, rest = xml.partition(b"?>")
    return declaration + end + doctype + rest


async def test_a_message_not_signed_by_a_known_aggregator_is_refused_at_the_door(
    pki: DevPki, database_url: str
) -> None:
    async with market_vtn(pki, database_url, Clock()) as vtn, uftp_pair(vtn) as pair:
        await grid(vtn)
        before = await snapshot(vtn)
        request = make_flex_request(point_id=CongestionPointId("cp-1"), start=START)
        bid = make_bid(offered_kw=(D(4),) * 4, valid_until=START + timedelta(hours=2))
        good = uftp.to_flex_offer(
            bid, request, Envelope.new(AGR_DOMAIN, CTX.dso_domain, vtn.clock()), CTX,
            request_message_id=uftp_service.request_message_id("req-1", AGR_DOMAIN),
        )  # fmt: skip
        _, stranger_key = keypair()
        stranger = replace(good, sender_domain="stranger.test")
        statuses = {
            "wrong key": await post(pair.dso.url, sealed(good, AGR_DOMAIN, stranger_key)),
            "unknown sender": await post(pair.dso.url, sealed(stranger, "stranger.test",
                                                              stranger_key)),
            "doctype": await post(pair.dso.url, b'<!DOCTYPE d [<!ENTITY e "x">]><SignedMessage/>'),
            "not UFTP": await post(pair.dso.url, b"<hello/>"),
        }  # fmt: skip
        await asyncio.sleep(0.2)  # were anything handed to a worker, it would be stored by now
        after = await snapshot(vtn)

    assert statuses == {"wrong key": 401, "unknown sender": 401, "doctype": 400, "not UFTP": 400}
    assert after == before
    assert pair.agr.inbox.empty()  # and nobody was answered


async def test_a_dtd_or_an_oversize_body_is_refused_before_the_library_parses_it(
    pki: DevPki, database_url: str
) -> None:
    """The guard in front of the library's app; the last case is the library's own parser."""
    async with market_vtn(pki, database_url, Clock()) as vtn, uftp_pair(vtn) as pair:
        await grid(vtn)
        before = await snapshot(vtn)
        request = make_flex_request(point_id=CongestionPointId("cp-1"), start=START)
        bid = make_bid(offered_kw=(D(4),) * 4, valid_until=START + timedelta(hours=2))
        offer = uftp.to_flex_offer(
            bid, request, Envelope.new(AGR_DOMAIN, CTX.dso_domain, vtn.clock()), CTX,
            request_message_id=uftp_service.request_message_id("req-1", AGR_DOMAIN),
        )  # fmt: skip
        # signed by the aggregator: without the guard, the library would parse past the DTD
        # and the market would take the offer
        good = sealed(offer, AGR_DOMAIN, pair.agr.signing_key)
        harmless = b'<!DOCTYPE SignedMessage [<!ENTITY e "x">]>'
        external = b'<!DOCTYPE SignedMessage [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        payload = with_doctype(str(transport.to_xml(offer)).encode(), BILLION_LAUGHS).replace(
            f'SenderDomain="{AGR_DOMAIN}"'.encode(), b'SenderDomain="&i;"'
        )
        bomb_inside = SignedMessage(
            sender_domain=AGR_DOMAIN,
            sender_role="AGR",
            body=crypto_sign(payload, b64decode(pair.agr.signing_key)),
        )
        limit = pair.dso.config.max_body_bytes
        statuses = {
            "internal entity": await post(pair.dso.url, with_doctype(good, harmless)),
            "external entity": await post(pair.dso.url, with_doctype(good, external)),
            "billion laughs": await post(pair.dso.url, with_doctype(good, BILLION_LAUGHS)),
            "UTF-16": await post(pair.dso.url, with_doctype(good, harmless).decode().replace(
                "UTF-8", "UTF-16").encode("utf-16")),
            "UTF-7": await post(pair.dso.url, good.replace(b"UTF-8", b"UTF-7").replace(
                b"?>", b"?>+ADw-!DOCTYPE SignedMessage+AD4-", 1)),
            "over the limit": await post(pair.dso.url, good + b" " * (limit + 1 - len(good))),
            "chunked over": await post(pair.dso.url, [good] + [b" " * 4096] * (limit // 4096)),
            "bomb in the signed payload": await post(pair.dso.url, str(transport.to_xml(
                bomb_inside)).encode()),
        }  # fmt: skip
        await asyncio.sleep(0.2)  # were anything handed to a worker, it would be stored by now
        after = await snapshot(vtn)
        docs_url = pair.dso.url.replace(uftp_service.MESSAGE_PATH, "/docs")
        async with aiohttp.ClientSession() as session, session.get(docs_url) as docs:
            docs_status = docs.status
        accepted = await post(pair.dso.url, good)  # the same message, without a DTD
        answer = await pair.agr.receive(FlexOfferResponse)

    assert statuses == {
        "internal entity": 400,
        "external entity": 400,
        "billion laughs": 400,
        "UTF-16": 400,
        "UTF-7": 400,
        "over the limit": 413,
        "chunked over": 413,
        "bomb in the signed payload": 400,  # SchemaException: libxml2 stops the expansion
    }
    assert after == before
    assert docs_status == 404  # only the message path is served
    assert (accepted, answer.flex_offer_message_id) == (200, offer.message_id)


def test_a_stored_statement_reads_back_as_the_statement_that_was_issued() -> None:
    """`send_settlement` works from the stored JSON; nothing may be lost on the way back."""
    request = make_flex_request(needed_kw=(D(8), D(8), D(8)))
    award = clear(request, [make_bid(offered_kw=(D(8), D(8), D(8)))], request.gate_closure).awards[
        0
    ]
    deliveries = [
        Delivery(
            bid_id=award.bid_id,
            node_id=award.node_id,
            block=block,
            baseline_kw=D(20),
            actual_kw=actual_kw,
            method="meter-before-meter-after(readings=1)",
        )
        for block, actual_kw in ((0, D("12.5")), (1, D(14)))
    ]  # fmt: skip  (block 2 unmeasured: no baseline or actual)
    (statement,) = settle(request, [award], deliveries, period="2030-03-04")
    assert uftp_service.statement_of(statement.to_json()) == statement
