"""The admin API route table: the one list aiohttp and the OpenAPI document are built from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from oadr.model import Event, Report, ReportRequest
from vtn.admin import handlers, openapi, schemas
from vtn.admin.middleware import ADMIN, PREFIX, Admin, admin_middleware
from vtn.admin.openapi import Param, Route
from vtn.admin.tokens import Verifier
from vtn.services.context import Context
from vtn.vens import Status, VenRecord

_PAGING = (
    Param("offset", "items to skip", "integer"),
    Param("limit", f"page size, 1..{handlers.MAX_LIMIT} (default {handlers.DEFAULT_LIMIT})",
          "integer"),
)  # fmt: skip
_V = PREFIX + "/vens/{ven_id}"
_E = PREFIX + "/events/{event_id}"


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(request.app[DOCUMENT_KEY])


DOCUMENT_KEY = web.AppKey("flex4grid.vtn.admin.openapi", dict[str, Any])


ROUTES: tuple[Route, ...] = (
    Route("GET", PREFIX + "/openapi.json", openapi_json, "this document", dict[str, Any],
          public=True),
    # VENs
    Route("GET", PREFIX + "/vens", handlers.list_vens, "list VENs", schemas.VenPage,
          query=(Param("status", "only VENs in this state", enum=tuple(Status)), *_PAGING)),
    Route("GET", _V, handlers.get_ven, "one VEN with its reports, requests and opts",
          schemas.VenDetail),
    Route("POST", _V + "/approve", handlers.approve_ven, "approve a waiting VEN", VenRecord),
    Route("POST", _V + "/reject", handlers.reject_ven, "reject a VEN", VenRecord),
    Route("POST", _V + "/deregister", handlers.deregister_ven,
          "cancel its registration (oadrCancelPartyRegistration)", schemas.Done, 202),
    Route("POST", _V + "/reregister", handlers.reregister_ven,
          "ask it to register again (oadrRequestReregistration)", schemas.Done, 202),
    Route("PUT", _V + "/groups", handlers.set_groups, "set its groupIDs", VenRecord,
          body=schemas.GroupsBody),
    Route("POST", PREFIX + "/provisioned", handlers.provision,
          "allow a certificate fingerprint (allow-list policy)", schemas.Done, 201,
          body=schemas.ProvisionBody),
    # events
    Route("POST", PREFIX + "/events", handlers.create_event, "create an event", Event, 201,
          body=schemas.EventCreate),
    Route("GET", PREFIX + "/events", handlers.list_events, "list events", schemas.EventPage,
          query=(Param("status", "which events (default all)", enum=("all", "active",
                                                                      "pending")), *_PAGING)),
    Route("GET", _E, handlers.get_event, "one event with per-VEN delivery and opt status",
          schemas.EventDetail),
    Route("PATCH", _E, handlers.modify_event, "modify (modificationNumber + 1)", Event,
          body=schemas.EventPatch),
    Route("POST", _E + "/cancel", handlers.cancel_event, "cancel the event", Event),
    # reports and telemetry
    Route("GET", _V + "/reports", handlers.registered_reports, "reports the VEN registered",
          list[Report]),
    Route("GET", _V + "/report-requests", handlers.report_requests,
          "active report requests to the VEN", list[ReportRequest]),
    Route("POST", _V + "/report-requests", handlers.request_report,
          "request a registered report (oadrCreateReport)", ReportRequest, 201,
          body=schemas.ReportRequestBody),
    Route("DELETE", _V + "/report-requests/{report_request_id}",
          handlers.cancel_report_request, "cancel a report request (oadrCancelReport)",
          schemas.Done, 202),
    Route("GET", PREFIX + "/readings", handlers.readings, "telemetry readings",
          schemas.ReadingPage,
          query=(Param("ven_id", "only this VEN"), Param("r_id", "only this rID"),
                 Param("resource_id", "only this resource"),
                 Param("start", "readings starting at or after", format="date-time"),
                 Param("end", "readings starting before", format="date-time"), *_PAGING)),
    # opts and audit
    Route("GET", PREFIX + "/opts", handlers.opts, "active opts", schemas.OptPage,
          query=(Param("ven_id", "only this VEN"), *_PAGING)),
    Route("GET", PREFIX + "/audit", handlers.audit, "who changed what, newest first",
          schemas.AuditPage, query=(Param("subject", "only this subject"), *_PAGING)),
)  # fmt: skip

DOCUMENT = openapi.document(ROUTES, title="Flex4Grid VTN admin API", version="1")


def setup(app: web.Application, context: Context, extra: Sequence[Route] = ()) -> None:
    """Add the admin API to the VTN's app: its routes, and auth + JSON errors under /admin/v1.

    `extra` are routes of the parts built on the VTN (market, forecast, ...): they sit under the
    same prefix, authentication and error handling, and in the same OpenAPI document.
    """
    routes = (*ROUTES, *extra)
    public = frozenset((r.method, r.path) for r in routes if r.public)
    app[ADMIN] = Admin(context=context, verifier=Verifier(context.store), public=public)
    app.middlewares.append(admin_middleware)
    app[DOCUMENT_KEY] = (
        DOCUMENT if not extra else
        openapi.document(routes, title="Flex4Grid admin API", version="1")
    )  # fmt: skip
    for route in routes:
        app.router.add_route(route.method, route.path, route.handler)
