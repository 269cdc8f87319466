"""EiOpt: opt schedules and event opt-outs from a VEN (P1_2010..P1_2050, E1_1060)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from oadr import opts
from oadr.errors import InvalidId
from oadr.exchanges import ok_response
from oadr.model import CanceledOpt, CancelOpt, CreatedOpt, CreateOpt
from vtn.services.context import Caller, Context, Handler, authorized_ven


async def create_opt(
    context: Context, request: CreateOpt, caller: Caller, now: datetime
) -> CreatedOpt:
    async with context.store.transaction() as tx:
        ven = await authorized_ven(tx, request.ven_id, caller)
        opts.validate(request)
        if request.event_id is not None and await tx.events.get(request.event_id) is None:
            raise InvalidId(f"event {request.event_id!r} is not known to this VTN")
        await tx.opts.add(ven.ven_id, request, now)
        await tx.vens.touch(ven.ven_id, now)
    return CreatedOpt(response=ok_response(request.request_id), opt_id=request.opt_id)


async def cancel_opt(
    context: Context, request: CancelOpt, caller: Caller, now: datetime
) -> CanceledOpt:
    async with context.store.transaction() as tx:
        ven = await authorized_ven(tx, request.ven_id, caller)
        if not await tx.opts.cancel(ven.ven_id, request.opt_id, now):
            raise InvalidId(f"optID {request.opt_id!r} is not an active opt of this VEN")
        await tx.vens.touch(ven.ven_id, now)
    return CanceledOpt(response=ok_response(request.request_id), opt_id=request.opt_id)


HANDLERS: dict[type[Any], Handler] = {CreateOpt: create_opt, CancelOpt: cancel_opt}
