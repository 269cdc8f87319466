"""The bidding adapter: the DSO's market API (/admin/v1/market) as the aggregator calls it.

Thin: reads the open flex requests and the aggregator's own nodes, and submits the bids that
`bidding.bid` computed, with the aggregator's bearer token over HTTPS. Decides nothing.
"""

from __future__ import annotations

import ssl
from datetime import datetime
from typing import Any

import aiohttp

from market.aggregator.bidding import BidPlan
from market.model import FlexRequest, RequestStatus, VirtualEndNode
from vtn.store import jsonform

MARKET_PATH = "/admin/v1/market"


class MarketApiError(Exception):
    """The market answered with an error (status and its reason), or could not be reached
    (status 0)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"HTTP {status}: {reason}")
        self.status = status
        self.reason = reason


class MarketClient:
    def __init__(self, url: str, token: str, ssl_context: ssl.SSLContext | None) -> None:
        self._base = url.rstrip("/") + MARKET_PATH
        self._headers = {"Authorization": f"Bearer {token}"}
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else False
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.request(
                method, self._base + path, json=body, headers=self._headers, ssl=self._ssl
            ) as response:
                data = await response.json(content_type=None)
                status = response.status
        except (aiohttp.ClientError, ValueError) as err:  # unreachable, or not JSON
            raise MarketApiError(0, f"{method} {path}: {err}") from err
        if status >= 400:
            reason = data.get("error", "") if isinstance(data, dict) else str(data)
            raise MarketApiError(status, reason)
        return data

    async def open_requests(self) -> list[FlexRequest]:
        found = await self._call("GET", f"/requests?status={RequestStatus.OPEN.value}")
        return [jsonform.load(FlexRequest, item) for item in found]

    async def nodes(self) -> list[VirtualEndNode]:
        return [jsonform.load(VirtualEndNode, item) for item in await self._call("GET", "/nodes")]

    async def submit(self, request: FlexRequest, plan: BidPlan) -> dict[str, Any]:
        body = {
            "node_id": plan.node_id,
            "offered_kw": [str(kw) for kw in plan.offered_kw],
            "price_eur_per_kwh": str(plan.price_eur_per_kwh),
            "divisible": plan.divisible,
            "valid_until": _iso(plan.valid_until),
        }
        made: dict[str, Any] = await self._call(
            "POST", f"/requests/{request.request_id}/bids", body
        )
        return made


def _iso(at: datetime) -> str:
    return at.isoformat()
