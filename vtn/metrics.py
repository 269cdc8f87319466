"""Prometheus metrics of one VTN process, served at /metrics.

Counted at the OpenADR edge from what went in and out (services know nothing of metrics):
requests by service and response code, latency per service, events delivered (event entries
in DistributeEvents sent) and acknowledged (eventResponses received). VEN counts by status are
read from the database when /metrics is scraped, so every worker reports the same truth.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from oadr.model import CreatedEvent, DistributeEvent, Payload
from vtn.vens import Status


class VtnMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "flex4grid_oadr_requests",
            "OpenADR requests answered, by service and response code",
            ["service", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "flex4grid_oadr_request_seconds",
            "Time from request body read to reply encoded, by service",
            ["service"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.events_delivered = Counter(
            "flex4grid_events_delivered",
            "Event entries sent to VENs in oadrDistributeEvent",
            registry=self.registry,
        )
        self.events_acknowledged = Counter(
            "flex4grid_events_acknowledged",
            "eventResponses (optIn/optOut) received from VENs",
            ["opt"],
            registry=self.registry,
        )
        self.vens = Gauge(
            "flex4grid_vens",
            "VENs known to the VTN, by registration status",
            ["status"],
            registry=self.registry,
        )
        self.vens_seen = Gauge(
            "flex4grid_vens_seen_last_5_minutes",
            "VENs that sent any message in the last five minutes",
            registry=self.registry,
        )

    def observe(
        self,
        service: str,
        message: Payload | None,
        reply: Payload,
        code: int,
        seconds: float,
    ) -> None:
        self.requests.labels(service=service, code=str(code)).inc()
        self.latency.labels(service=service).observe(seconds)
        if isinstance(reply, DistributeEvent):
            self.events_delivered.inc(len(reply.events))
        if isinstance(message, CreatedEvent):
            for answer in message.event_responses:
                self.events_acknowledged.labels(opt=answer.opt_type.value).inc()

    def render(self, counts: dict[Status, int], seen_recently: int) -> web.Response:
        for status in Status:
            self.vens.labels(status=status.value).set(counts.get(status, 0))
        self.vens_seen.set(seen_recently)
        return web.Response(
            body=generate_latest(self.registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )
