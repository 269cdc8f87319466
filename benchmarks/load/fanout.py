"""Pull-mode event fan-out, the VEN side: poll at an interval, answer the event list.

The parent creates one event for every VEN through the admin API while this runs; each VEN
answers the oadrDistributeEvent its poll returns with oadrCreatedEvent (optIn, every event) on
its own connection, and the wall-clock time the VTN acknowledged that answer is kept. An answer
the VTN did not take (469 while it is busy, a dropped connection) is sent again at the VEN's next
poll time instead of a poll, as a VEN does: the VTN marked the event delivered, so a poll would
not bring it back until its resend rule does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from benchmarks.load.wire import RequestFailed, http_request
from oadr import codec, exchanges
from oadr.enums import OptType
from oadr.exchanges import ok_response
from oadr.model import CreatedEvent, DistributeEvent, EventResponse, Poll

if TYPE_CHECKING:
    from benchmarks.load.client import Driver, Ven


@dataclass(frozen=True)
class FanOut:
    """Pull-mode fan-out: every VEN polls every `interval_s` (staggered) and answers the event
    list with oadrCreatedEvent (optIn) as soon as it gets it; stops when all have, or at
    `timeout_s`."""

    interval_s: float
    timeout_s: float
    signed: bool


async def run(driver: Driver, spec: FanOut) -> dict[str, Any]:
    vens = [v for v in driver.vens if v.ven_id is not None]
    if spec.signed:
        driver.load_signing_keys()
    driver.reset_counters()
    acked: dict[int, float] = {}  # index -> wall-clock time its oadrCreatedEvent was answered
    polls = [0]
    event_path = exchanges.Service.EI_EVENT.path
    started = time.perf_counter()
    deadline = started + spec.timeout_s

    def body(ven: Ven, payload: Any) -> bytes:
        if not spec.signed:
            return codec.encode(payload)
        return codec.encode(
            payload, signing_key=ven.signing_key, now=datetime.now(UTC), nonce=uuid.uuid4().hex
        )

    async def one_ven(index: int, ven: Ven) -> None:
        assert ven.ven_id is not None
        due = started + spec.interval_s * index / len(vens)
        # An oadrCreatedEvent the VTN did not take: sent again (signed anew, when signed).
        answer: CreatedEvent | None = None
        while due < deadline and len(acked) < len(vens):
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            due += spec.interval_s
            if index in acked:
                continue  # answered already; its next polls would get oadrResponse
            try:
                if answer is None:
                    answer = await poll(ven)
                request = (
                    None
                    if answer is None
                    else http_request(event_path, driver.host_header, body(ven, answer))
                )
                if request is not None and driver.answered(await driver.send(ven, request)):
                    acked[index] = time.time()
                    answer = None
                    if len(acked) == len(vens):
                        all_acked.set()
            except (OSError, RequestFailed, asyncio.IncompleteReadError) as err:
                driver.counters.errors[type(err).__name__] += 1

    async def poll(ven: Ven) -> CreatedEvent | None:
        """Poll; the oadrCreatedEvent (optIn) that answers the event list it brings, if any."""
        assert ven.ven_id is not None
        reply = await driver.send(
            ven,
            http_request(driver.poll_path, driver.host_header, body(ven, Poll(ven_id=ven.ven_id))),
        )
        polls[0] += 1
        if b"oadrDistributeEvent" not in reply:
            return None
        distribute = codec.decode(reply)
        assert isinstance(distribute, DistributeEvent)
        return CreatedEvent(
            response=ok_response(distribute.request_id),
            ven_id=ven.ven_id,
            event_responses=tuple(
                EventResponse(
                    code=200,
                    request_id=distribute.request_id,
                    event_id=event.event_id,
                    modification_number=event.modification_number,
                    opt_type=OptType.OPT_IN,
                )
                for event in distribute.events
            ),
        )

    # Done when every VEN answered: the others sleep until their next poll time, and waiting
    # for them would add up to an interval (each sleeps; none has a request in flight).
    all_acked = asyncio.Event()
    loops = asyncio.gather(*(one_ven(i, v) for i, v in enumerate(vens)))
    finished = asyncio.ensure_future(all_acked.wait())
    await asyncio.wait({loops, finished}, return_when=asyncio.FIRST_COMPLETED)
    finished.cancel()
    if loops.done():
        loops.result()  # a bug in the load generator must not pass for a slow VTN
    else:
        loops.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loops
    return {
        "vens": len(vens),
        "acked": len(acked),
        "ack_times": sorted(acked.values()),
        "polls": polls[0],
        "errors": dict(driver.counters.errors),
    }
