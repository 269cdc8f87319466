"""The aggregator's page: its virtual end nodes and their members, the DSO's flex requests, its
own bids and awards, delivery against baseline, and its settlement statements.

Ownership: every list is read with the account's subject as the aggregator id
(`console.views.market`), so an aggregator never sees another aggregator's rows.
"""

from __future__ import annotations

from aiohttp import web

from console import views
from console.accounts import Role
from console.web import PREFIX, Viewer, context_of, page, render


def add_routes(app: web.Application) -> None:
    app.router.add_get(PREFIX + "/aggregator", page(Role.AGGREGATOR)(aggregator_page))


async def aggregator_page(request: web.Request, viewer: Viewer) -> web.Response:
    async with context_of(request).store.transaction() as tx:
        market = await views.market(tx, aggregator_id=viewer.subject)
    return render(request, "aggregator.html", viewer, market=market, aggregator_id=viewer.subject)
