"""The VTN's OpenADR services: each loads state, decides with pure rules, saves, and commits
before the reply leaves (STYLE: pure core, thin edges). `Services.handle` dispatches by payload."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from oadr.errors import NotRecognized
from oadr.model import Payload
from vtn.services import ei_event, ei_opt, ei_register_party, ei_report, oadr_poll
from vtn.services.context import Caller, Context, Handler

_HANDLERS: dict[type[Any], Handler] = {
    **ei_register_party.HANDLERS,
    **ei_event.HANDLERS,
    **ei_opt.HANDLERS,
    **ei_report.HANDLERS,
    **oadr_poll.HANDLERS,
}


async def handle(context: Context, message: Payload, caller: Caller, now: datetime) -> Payload:
    """The reply to one message a VEN sent; OadrError for anything OpenADR refuses."""
    handler = _HANDLERS.get(type(message))
    if handler is None:
        raise NotRecognized(f"a VTN does not accept {type(message).__name__} from a VEN")
    return await handler(context, message, caller, now)


__all__ = ["Caller", "Context", "handle"]
