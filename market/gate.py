"""The gate-closure task: clears (and dispatches) flex requests once their gate has closed.

Durable by construction: it keeps no state of its own but asks the database each round which
requests are past gate closure and not yet cleared (or cleared and not yet dispatched), so after
a restart every overdue request is handled on the first round. It sleeps until the next gate
closure (at most `poll`), and `wake()` makes it look at once (a new request, a test moving its
clock). Two VTN workers racing for one request are safe: the request row is locked and the
second finds it already cleared (`InvalidTransition`, logged and skipped).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from market import service
from market.accounts import Actor
from market.errors import MarketError
from market.model import RequestStatus
from market.store import Market
from vtn.services.context import Context

log = logging.getLogger("flex4grid.market.gate")

GATE_ACTOR = Actor(name="market:gate-closure")


class GateKeeper:
    def __init__(
        self,
        context: Context,
        *,
        clock: Callable[[], datetime],
        market_context: str,
        dispatch: bool = True,
        poll: timedelta = timedelta(seconds=30),
    ) -> None:
        self.context = context
        self.clock = clock
        self.market_context = market_context
        self.dispatch = dispatch
        self.poll = poll
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def run_once(self) -> list[str]:
        """One round: clear what is due, dispatch what is cleared; the request ids handled."""
        now = self.clock()
        handled: list[str] = []
        for request_id in await service.due(self.context.store, now):
            try:
                await service.clear_request(self.context.store, request_id, actor=GATE_ACTOR,
                                            now=now)  # fmt: skip
                handled.append(request_id)
            except MarketError as err:  # cleared meanwhile by someone else, cancelled, ...
                log.info("gate closure of %s: %s", request_id, err.message)
        if self.dispatch:
            async with self.context.store.transaction() as tx:
                cleared = await Market.on(tx).requests.page(status=RequestStatus.CLEARED)
            for request in cleared:
                try:
                    await service.dispatch_request(self.context, request.request_id,
                                                   actor=GATE_ACTOR,
                                                   market_context=self.market_context,
                                                   now=now)  # fmt: skip
                    handled.append(request.request_id)
                except MarketError as err:
                    log.info("dispatch of %s: %s", request.request_id, err.message)
        return handled

    async def _delay(self) -> float:
        upcoming = await service.next_gate_closure(self.context.store)
        limit = self.poll.total_seconds()
        left = None if upcoming is None else (upcoming - self.clock()).total_seconds()
        # Past due yet still open means this round failed on it: retry at the poll pace, not
        # in a busy loop.
        return limit if left is None or left <= 0 else min(limit, left)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
                delay = await self._delay()
            except Exception:  # a database hiccup must not end the task: try again later
                log.exception("market gate-closure round failed")
                delay = self.poll.total_seconds()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self._wake.clear()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="market-gate-closure")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(
                self._task, return_exceptions=True
            )  # a cancel of this call is not swallowed
            self._task = None
