"""The data service's REST API, under /admin/v1/data/ in the VTN's admin API and its OpenAPI
document, plugged in with `VtnConfig(extensions=(DataExtension(master),))`.

Two audiences:

* operators (admin bearer tokens, checked by the admin middleware): register prosumers and
  recipients, issue data tokens, record grants, load meter data, erase, read the access log;
* recipients and prosumers under /admin/v1/data/me/ (no admin token: these routes are `public`
  to the admin middleware and authenticate here): a data token (`Bearer d.<id>.<secret>`) or
  a client certificate the trust store accepts now, `service` for a recipient (pinned by
  fingerprint) or `ven` for the prosumer whose VEN it is. A recipient reads pseudonymous series
  and aggregates; a prosumer lists, grants and revokes consent, sees every access, exports.

Handlers read, call `dataservice.service`/`queries`, and reply; a `DataError` becomes
`{"error", "code", "reason"}` with its status here.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import csv
import io
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from certs.aiohttp_guard import peer_verdict
from certs.files import CertsError
from certs.roles import Role
from dataservice import jobs, queries, schemas
from dataservice.consent import Access, Level
from dataservice.crypto import MasterKey
from dataservice.service import Caller, DataError, DataService, Forbidden, Kind, Unauthenticated
from vtn import http as vtn_http
from vtn.admin.middleware import PREFIX, TOKEN
from vtn.admin.openapi import Param, Route
from vtn.admin.routes import DOCUMENT_KEY
from vtn.services.context import Context

log = logging.getLogger("flex4grid.dataservice")

DATA = web.AppKey("flex4grid.dataservice", DataService)
JOB = web.AppKey("flex4grid.dataservice.job", asyncio.Task[None])
VTN = web.AppKey("flex4grid.dataservice.vtn", Context)  # for its clock
_D = PREFIX + "/data"
_ME = _D + "/me"
_B = TypeVar("_B", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _errors(handler: Handler) -> Handler:
    @wraps(handler)
    async def run(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except DataError as err:
            headers = (
                {"WWW-Authenticate": 'Bearer realm="flex4grid-data"'} if err.status == 401 else None
            )
            return web.json_response(
                {"error": err.message, "code": err.status, "reason": err.reason},
                status=err.status,
                headers=headers,
            )

    return run


def _reply(value: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(value.model_dump(mode="json"), status=status)


async def _body(request: web.Request, model: type[_B]) -> _B:
    try:
        return model.model_validate(await request.json())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"the body is not JSON: {err}") from None
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise DataError(f"invalid {model.__name__}: {problems}") from None


def _query(request: web.Request, name: str) -> str:
    value = request.query.get(name)
    if not value:
        raise DataError(f"query parameter {name!r} is required")
    return value


def _time(request: web.Request, name: str) -> datetime:
    text = _query(request, name)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise DataError(f"{name} must be an ISO 8601 time, not {text!r}") from None
    if value.tzinfo is None:
        raise DataError(f"{name} needs a UTC offset")
    return value.astimezone(UTC)


def _level(name: str) -> Level:
    try:
        level = Level[name]
    except KeyError:
        raise DataError(f"unknown level {name!r}") from None
    if level is Level.NONE:
        raise DataError("level NONE has no data")
    return level


def _service(request: web.Request) -> DataService:
    return request.app[DATA]


def _now(request: web.Request) -> datetime:
    return request.app[VTN].clock()


def _operator(request: web.Request) -> str:
    return f"operator:{request[TOKEN].name}"


async def _caller(request: web.Request) -> Caller:
    """A data token, else the client certificate: a recipient's or a prosumer's, never both."""
    service = _service(request)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return await service.authenticate_token(token.strip())
    trust = request.app[vtn_http.EDGE].trust
    if trust is None:
        raise Unauthenticated(
            "a data token is required (Authorization: Bearer d.<id>.<secret>)", "no-credentials"
        )
    try:
        trust.reload()  # a CRL published since the last request takes effect now
    except CertsError as err:
        log.error("trust store not reloaded, keeping the last good CRLs: %s", err)
    verdict = peer_verdict(request, trust, (Role.SERVICE, Role.VEN), _now(request))
    if not verdict.accepted or verdict.fingerprint is None:
        raise Unauthenticated(
            f"no data token and no usable certificate ({verdict.reason.value})",
            f"certificate-{verdict.reason.value}",
        )
    kind = Kind.RECIPIENT if verdict.role is Role.SERVICE else Kind.PROSUMER
    return await service.authenticate_certificate(verdict.fingerprint, kind)


async def _as(request: web.Request, kind: Kind) -> Caller:
    caller = await _caller(request)
    if caller.kind is not kind:
        raise Forbidden(f"only a {kind.value} may do this", "wrong-holder")
    return caller


def _buckets(
    edges: Sequence[tuple[datetime, datetime]], values: Sequence[float | None]
) -> list[schemas.Bucket]:
    return [
        schemas.Bucket(start=s, end=e, energy_kwh=v)
        for (s, e), v in zip(edges, values, strict=True)
    ]


# --- operators ------------------------------------------------------------------------------------


@_errors
async def add_prosumer(request: web.Request) -> web.Response:
    body = await _body(request, schemas.ProsumerBody)
    prosumer = await _service(request).add_prosumer(
        body.prosumer_id, body.areas, body.ven_id, _operator(request), _now(request)
    )
    return _reply(schemas.Created(id=prosumer.prosumer_id), 201)


@_errors
async def add_recipient(request: web.Request) -> web.Response:
    body = await _body(request, schemas.RecipientBody)
    recipient = await _service(request).add_recipient(
        body.recipient_id,
        body.name,
        body.fingerprint,
        body.epsilon_budget,
        _operator(request),
        _now(request),
    )
    return _reply(schemas.Created(id=recipient.recipient_id), 201)


@_errors
async def create_data_token(request: web.Request) -> web.Response:
    body = await _body(request, schemas.TokenBody)
    holder = Caller(Kind(body.holder_kind), body.holder_id)
    token = await _service(request).create_token(holder, _operator(request), _now(request))
    return _reply(schemas.TokenView(token=token), 201)


@_errors
async def record_grant(request: web.Request) -> web.Response:
    body = await _body(request, schemas.OperatorGrantBody)
    return await _grant(request, body.prosumer_id, body, _operator(request))


@_errors
async def add_meter_data(request: web.Request) -> web.Response:
    body = await _body(request, schemas.MeterDataBody)
    prosumer_id = request.match_info["prosumer_id"]
    days = await _service(request).add_meter_data(
        prosumer_id, body.start, body.energy_kwh, _operator(request), _now(request)
    )
    return _reply(schemas.Stored(prosumer_id=prosumer_id, days=days), 201)


@_errors
async def erase_prosumer(request: web.Request) -> web.Response:
    prosumer_id = request.match_info["prosumer_id"]
    counts = await _service(request).erase(prosumer_id, _operator(request), _now(request))
    return _reply(schemas.Erased(prosumer_id=prosumer_id, **counts))


@_errors
async def data_access_log(request: web.Request) -> web.Response:
    entries = await _service(request).access_log(limit=1000)
    return web.json_response([schemas.AccessView.of(e).model_dump(mode="json") for e in entries])


# --- recipients -----------------------------------------------------------------------------------


@_errors
async def my_pseudonyms(request: web.Request) -> web.Response:
    caller = await _as(request, Kind.RECIPIENT)
    purpose = _query(request, "purpose")
    found = await queries.pseudonyms_for(_service(request), caller.id, purpose, _now(request))
    return _reply(schemas.Pseudonyms(purpose=purpose, pseudonyms=found))


@_errors
async def my_series(request: web.Request) -> web.Response:
    caller = await _as(request, Kind.RECIPIENT)
    result = await queries.individual(
        _service(request),
        caller.id,
        request.match_info["pseudonym"],
        _query(request, "purpose"),
        _level(_query(request, "level")),
        _time(request, "start"),
        _time(request, "end"),
        _now(request),
    )
    return _reply(
        schemas.SeriesView(
            pseudonym=result.pseudonym,
            level=result.level.name,  # type: ignore[arg-type]
            buckets=_buckets(result.buckets, result.energy_kwh),
        )
    )


@_errors
async def my_aggregate(request: web.Request) -> web.Response:
    caller = await _as(request, Kind.RECIPIENT)
    body = await _body(request, schemas.AggregateBody)
    result = await queries.aggregate(
        _service(request),
        caller.id,
        body.purpose,
        _level(body.level),
        body.area,
        body.start.astimezone(UTC),
        body.end.astimezone(UTC),
        _now(request),
        epsilon=body.epsilon,
    )
    view = schemas.AggregateView(
        area=result.area,
        purpose=result.purpose,
        level=result.level.name,  # type: ignore[arg-type]
        members=result.members,
        epsilon=result.epsilon,
        noise_scale_kwh=result.noise_scale_kwh,
        release_id=result.release_id,
        buckets=_buckets(result.buckets, list(result.energy_kwh)),
    )
    return _reply(view, 201)


# --- prosumers ------------------------------------------------------------------------------------


async def _grant(
    request: web.Request, prosumer_id: str, body: schemas.GrantBody, actor: str
) -> web.Response:
    grant = await _service(request).grant(
        prosumer_id,
        body.recipient_id,
        body.purpose,
        _level(body.level),
        Access(body.access),
        body.expires_at.astimezone(UTC),
        actor,
        _now(request),
        period_start=None if body.period_start is None else body.period_start.astimezone(UTC),
        period_end=None if body.period_end is None else body.period_end.astimezone(UTC),
    )
    return _reply(schemas.GrantView.of(grant), 201)


@_errors
async def my_grants(request: web.Request) -> web.Response:
    caller = await _as(request, Kind.PROSUMER)
    grants = await _service(request).grants_of(caller.id)
    return web.json_response([schemas.GrantView.of(g).model_dump(mode="json") for g in grants])


@_errors
async def give_consent(request: web.Request) -> web.Response:
    caller = await _as(request, Kind.PROSUMER)
    body = await _body(request, schemas.GrantBody)
    return await _grant(request, caller.id, body, caller.actor)


@_errors
async def revoke_consent(request: web.Request) -> web.Response:
    caller = await _as(request, Kind.PROSUMER)
    grant = await _service(request).revoke(
        request.match_info["grant_id"], caller.actor, _now(request), prosumer_id=caller.id
    )
    return _reply(schemas.GrantView.of(grant))


@_errors
async def my_accesses(request: web.Request) -> web.Response:
    caller = await _as(request, Kind.PROSUMER)
    entries = await _service(request).accesses_of(caller.id)
    return web.json_response([schemas.AccessView.of(e).model_dump(mode="json") for e in entries])


@_errors
async def my_export(request: web.Request) -> web.StreamResponse:
    caller = await _as(request, Kind.PROSUMER)
    kind = request.query.get("format", "json")
    if kind not in ("json", "csv"):
        raise DataError("format is json or csv")
    exported = await _service(request).export(caller.id, caller, _now(request))
    if kind == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["start", "end", "energy_kwh"])
        for start, value in exported.quarter_hours:
            end = start + timedelta(minutes=15)
            writer.writerow([start.isoformat(), end.isoformat(), f"{value:.6f}"])
        return web.Response(
            text=out.getvalue(),
            content_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{caller.id}.csv"'},
        )
    view = schemas.ExportView(
        prosumer_id=exported.prosumer.prosumer_id,
        areas=list(exported.prosumer.areas),
        quarter_hours=[
            schemas.QuarterHour(start=s, energy_kwh=v) for s, v in exported.quarter_hours
        ],
        grants=[schemas.GrantView.of(g) for g in exported.grants],
        accesses=[schemas.AccessView.of(e) for e in exported.accesses],
    )
    return _reply(view)


_ME_AUTH = "; authenticated by a data token or a client certificate, not an admin token"
_WINDOW = (
    Param("purpose", "what the data is for (must match a grant)"),
    Param("level", "MONTHLY, DAILY, QUARTER_HOUR or NEAR_REAL_TIME"),
    Param("start", "first bucket (midnight UTC)", format="date-time"),
    Param("end", "end of the last bucket (midnight UTC)", format="date-time"),
)

ROUTES: tuple[Route, ...] = (
    # operators (admin tokens)
    Route("POST", _D + "/prosumers", add_prosumer, "register a prosumer (makes its data key)",
          schemas.Created, 201, body=schemas.ProsumerBody),
    Route("POST", _D + "/recipients", add_recipient, "register a data recipient",
          schemas.Created, 201, body=schemas.RecipientBody),
    Route("POST", _D + "/tokens", create_data_token, "a data token for a recipient or prosumer",
          schemas.TokenView, 201, body=schemas.TokenBody),
    Route("POST", _D + "/grants", record_grant, "record a prosumer's consent (e.g. on paper)",
          schemas.GrantView, 201, body=schemas.OperatorGrantBody),
    Route("POST", _D + "/prosumers/{prosumer_id}/meter-data", add_meter_data,
          "quarter-hour energies from a meter", schemas.Stored, 201, body=schemas.MeterDataBody),
    Route("DELETE", _D + "/prosumers/{prosumer_id}", erase_prosumer,
          "erase a prosumer: shred its key, delete its data", schemas.Erased),
    Route("GET", _D + "/access-log", data_access_log, "every access, newest first",
          list[schemas.AccessView]),
    # recipients (data token or `service` certificate)
    Route("GET", _ME + "/pseudonyms", my_pseudonyms,
          "recipient: pseudonyms of prosumers granting individual access" + _ME_AUTH,
          schemas.Pseudonyms, query=(_WINDOW[0],), public=True),
    Route("GET", _ME + "/series/{pseudonym}", my_series,
          "recipient: one prosumer's series, as its consent allows" + _ME_AUTH,
          schemas.SeriesView, query=_WINDOW, public=True),
    Route("POST", _ME + "/aggregates", my_aggregate,
          "recipient: an anonymised aggregate over an area (15/15, differencing, optional DP)"
          + _ME_AUTH, schemas.AggregateView, 201, body=schemas.AggregateBody, public=True),
    # prosumers (data token or their VEN's certificate)
    Route("GET", _ME + "/grants", my_grants, "prosumer: my grants" + _ME_AUTH,
          list[schemas.GrantView], public=True),
    Route("POST", _ME + "/grants", give_consent, "prosumer: grant a recipient access" + _ME_AUTH,
          schemas.GrantView, 201, body=schemas.GrantBody, public=True),
    Route("POST", _ME + "/grants/{grant_id}/revoke", revoke_consent,
          "prosumer: revoke a grant" + _ME_AUTH, schemas.GrantView, public=True),
    Route("GET", _ME + "/accesses", my_accesses,
          "prosumer: who saw my data, when, at what level" + _ME_AUTH,
          list[schemas.AccessView], public=True),
    Route("GET", _ME + "/export", my_export, "prosumer: all my data (JSON or CSV)" + _ME_AUTH,
          schemas.ExportView, query=(Param("format", "json or csv", enum=("json", "csv")),),
          public=True),
)  # fmt: skip


@dataclass(frozen=True)
class DataExtension:
    """The data service as a VTN extension (`vtn.app.Extension`)."""

    master: MasterKey
    # Ingest and retention inside the VTN process; None: run `flex4grid data ingest/purge`.
    housekeeping: jobs.Housekeeping | None = None

    @property
    def routes(self) -> Sequence[Route]:
        return ROUTES

    def setup(self, app: web.Application, context: Context) -> None:
        service = DataService(context.store, self.master)
        app[DATA] = service
        app[VTN] = context
        app[DOCUMENT_KEY] = document(app[DOCUMENT_KEY])
        plan = self.housekeeping
        if plan is None:
            return

        async def start(app: web.Application) -> None:
            app[JOB] = asyncio.create_task(jobs.run(service, plan, context.clock))

        async def stop(app: web.Application) -> None:
            app[JOB].cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await app[JOB]

        app.on_startup.append(start)
        app.on_shutdown.append(stop)  # before the store closes (on cleanup)


_ERROR = {
    "type": "object",
    "required": ["error", "code", "reason"],
    "properties": {
        "error": {"type": "string"},
        "code": {"type": "integer"},
        "reason": {
            "type": "string",
            "description": "e.g. level-too-fine, revoked, "
            "differencing, too-few-members, budget-exhausted",
        },
    },
}
_ME_ERRORS = {
    400: "bad input",
    401: "no valid data token or client certificate",
    403: "refused: consent, anonymity or budget (`reason` says which), or the wrong holder",
    404: "unknown pseudonym, grant or prosumer",
}


def document(base: dict[str, Any]) -> dict[str, Any]:
    """The admin API's OpenAPI document with how the /data/me/ routes really authenticate:
    the admin middleware treats them as public, but they take a data token or a certificate."""
    doc = copy.deepcopy(base)
    doc["components"]["securitySchemes"] |= {
        "dataToken": {
            "type": "http",
            "scheme": "bearer",
            "description": "`d.<token_id>.<secret>` from `flex4grid data token`",
        },
        "clientCertificate": {
            "type": "mutualTLS",
            "description": "role `service` (a recipient, pinned by "
            "fingerprint) or `ven` (the prosumer whose VEN it is)",
        },
    }
    for route in ROUTES:
        if not route.public:
            continue
        operation = doc["paths"][route.path][route.method.lower()]
        operation["security"] = [{"dataToken": []}, {"clientCertificate": []}]
        for status, text in _ME_ERRORS.items():
            operation["responses"][str(status)] = {
                "description": text,
                "content": {"application/json": {"schema": _ERROR}},
            }
    return doc
