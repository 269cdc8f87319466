"""A flex request's life: open → closed → cleared → dispatched → measured → settled (issue 8).

Transitions are a table, so an unlisted pair is an error rather than a silent fall-through; the
DSO may cancel a request only before it is cleared (once awards exist, aggregators hold orders).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from market.errors import InvalidTransition
from market.model import FlexRequest, RequestStatus

_S = RequestStatus
_NEXT: Final[frozenset[tuple[RequestStatus, RequestStatus]]] = frozenset(
    {
        (_S.OPEN, _S.CLOSED),
        (_S.CLOSED, _S.CLEARED),
        (_S.CLEARED, _S.DISPATCHED),
        (_S.DISPATCHED, _S.MEASURED),
        (_S.MEASURED, _S.SETTLED),
        (_S.OPEN, _S.CANCELLED),
        (_S.CLOSED, _S.CANCELLED),
    }
)


def allowed(status: RequestStatus) -> frozenset[RequestStatus]:
    """The statuses a request in `status` may move to."""
    return frozenset(to for frm, to in _NEXT if frm is status)


def advance(status: RequestStatus, to: RequestStatus) -> RequestStatus:
    """Return `to` if the table allows `status` → `to`; raise `InvalidTransition` otherwise."""
    if (status, to) not in _NEXT:
        nexts = ", ".join(sorted(allowed(status))) or "nothing (final)"
        raise InvalidTransition(
            f"a request that is {status.value} cannot become {to.value}; allowed: {nexts}"
        )
    return to


def is_gate_closed(request: FlexRequest, now: datetime) -> bool:
    """Bids are accepted strictly before gate closure; at the instant itself the gate is shut."""
    return now >= request.gate_closure
