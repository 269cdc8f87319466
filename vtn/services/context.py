"""What every service needs: the store, the settings, id generation, wake-ups, the clock; and the
caller."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from oadr.errors import NotRegistered
from oadr.model import Payload, VenId
from vtn.config import VtnSettings
from vtn.quiet import QuietPolls
from vtn.store.db import Store, Tx
from vtn.vens import VenRecord, authorize

if TYPE_CHECKING:
    from vtn.groupcommit import GroupCommit
    from vtn.services.ei_report import Update


def new_id() -> str:
    return uuid.uuid4().hex


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a message: the TLS client certificate's fingerprint (None on insecure HTTP),
    and the fingerprint of the XML signature's certificate when the message was signed."""

    fingerprint: str | None
    signer_fingerprint: str | None = None
    certificate_name: str | None = None  # subject CN, kept across a certificate rotation
    certificate_issuer: str | None = None


@dataclass
class Context:
    store: Store
    settings: VtnSettings
    new_id: Callable[[], str] = new_id
    # Called after commit with a venID that has something new to deliver (push, long waits).
    notify: Callable[[VenId], None] = field(default=lambda ven_id: None)
    # The VTN's one clock (aware UTC): every `now` the edges hand the services comes from here.
    # Real time in a deployment; a simulated clock in `flex4grid demo`.
    clock: Callable[[], datetime] = utc_now
    # Quiet polls answered from memory (vtn/quiet.py); None: every poll reads the database.
    quiet: QuietPolls | None = None
    # oadrUpdateReport readings in group commits (vtn/groupcommit.py); None: a transaction each.
    updates: GroupCommit[Update, VenId] | None = None


async def authorized_ven(tx: Tx, ven_id: VenId | None, caller: Caller) -> VenRecord:
    """The registered VEN this message acts for; 463 for impersonation or no registration."""
    if caller.fingerprint is None:  # insecure HTTP: the message's venID is all we have
        record = None if ven_id is None else await tx.vens.get(ven_id)
    else:
        record = await tx.vens.by_fingerprint(caller.fingerprint)
    return authorize_caller(record, ven_id, caller)


def authorize_caller(record: VenRecord | None, ven_id: VenId | None, caller: Caller) -> VenRecord:
    """`authorized_ven` for a record already looked up (by the caller's fingerprint, or by
    `ven_id` on insecure HTTP)."""
    if caller.fingerprint is None:
        return authorize(record, ven_id, record.fingerprint if record else "")
    authorized = authorize(record, ven_id, caller.fingerprint)
    if caller.signer_fingerprint is not None and caller.signer_fingerprint != caller.fingerprint:
        raise NotRegistered("the message is signed with another certificate than the connection's")
    return authorized


# last_seen_at is written only when the stored value is older than half of min(poll interval,
# this): it serves "online / last seen" views, which tolerate that lag (vtn/services/oadr_poll.py).
_SEEN_AT_MOST = timedelta(seconds=60)


def seen_recently(ven: VenRecord, now: datetime, poll_interval: timedelta) -> bool:
    """Whether last_seen_at is fresh enough to leave alone."""
    stale_after = min(poll_interval, _SEEN_AT_MOST) / 2
    # A stored time after `now` (a simulated clock set back) is rewritten, not trusted.
    return ven.last_seen_at is not None and now - stale_after <= ven.last_seen_at <= now


async def touch_if_stale(context: Context, tx: Tx, ven: VenRecord, now: datetime) -> None:
    """Write the VEN's last-seen time unless the stored one is recent (`seen_recently`)."""
    if not seen_recently(ven, now, context.settings.poll_interval):
        await tx.vens.touch(ven.ven_id, now)


# A service: (context, the decoded message, who sent it, now) -> the reply.
Handler = Callable[[Context, Any, Caller, datetime], Awaitable[Payload]]
