"""Bearer-token authentication and JSON errors for everything under /admin/v1/.

Every refusal is `{"error": ..., "code": ...}`: 400 bad input (with pydantic's detail), 401 no
or invalid token, 403 a viewer writing (or an aggregator's token off /admin/v1/market/), 404
unknown thing or path, 409 conflict, 422 an OpenADR rule refused (`code` is its response code,
e.g. 454). Anything unexpected is logged with a reference id and answered 500 with that id.
Other paths (the OpenADR edge) pass untouched.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy.exc import IntegrityError

from oadr.errors import OadrError
from vtn.admin.tokens import TokenError, TokenRole, Verifier
from vtn.services.context import Context
from vtn.services.operator import NotFound
from vtn.store.audit import TokenRecord

log = logging.getLogger("flex4grid.vtn.admin")

PREFIX = "/admin/v1"
# The only routes an aggregator token may call (the market's handlers check what it owns).
AGGREGATOR_PREFIX = f"{PREFIX}/market/"
PUBLIC_PATHS = frozenset({f"{PREFIX}/openapi.json"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class Admin:
    context: Context
    verifier: Verifier
    # (method, path) of routes marked `public`: no admin token; they authenticate their callers
    # themselves (the data service's recipients and prosumers) or need none (openapi.json).
    public: frozenset[tuple[str, str]] = frozenset()


def _public(request: web.Request) -> bool:
    resource = request.match_info.route.resource
    canonical = request.path if resource is None else resource.canonical
    return request.path in PUBLIC_PATHS or (request.method, canonical) in request.app[ADMIN].public


ADMIN = web.AppKey("flex4grid.vtn.admin", Admin)
TOKEN = web.RequestKey("flex4grid.vtn.admin.token", TokenRecord)


class ApiError(Exception):
    def __init__(self, status: int, message: str, detail: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail


def error_response(
    status: int, message: str, code: int | None = None, detail: list[dict[str, Any]] | None = None
) -> web.Response:
    body: dict[str, Any] = {"error": message, "code": status if code is None else code}
    if detail is not None:
        body["detail"] = detail
    headers = {"WWW-Authenticate": 'Bearer realm="flex4grid-vtn"'} if status == 401 else None
    return web.json_response(body, status=status, headers=headers)


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError("missing bearer token (Authorization: Bearer <token>)")
    return token.strip()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def admin_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path != PREFIX and not request.path.startswith(PREFIX + "/"):
        return await handler(request)
    try:
        if not _public(request):
            try:
                token = await request.app[ADMIN].verifier.authenticate(_bearer(request))
            except TokenError as err:
                return error_response(401, f"not authenticated: {err}")
            if token.role == TokenRole.AGGREGATOR:
                if not request.path.startswith(AGGREGATOR_PREFIX):
                    return error_response(
                        403, f"token {token.name!r} is an aggregator's: market routes only"
                    )
            elif token.role != TokenRole.OPERATOR and request.method not in READ_METHODS:
                return error_response(403, f"token {token.name!r} is a viewer: read-only")
            request[TOKEN] = token
        return await handler(request)
    except ApiError as err:
        return error_response(err.status, err.message, detail=err.detail)
    except NotFound as err:
        return error_response(404, err.message, code=int(err.code))
    except OadrError as err:
        return error_response(422, err.message, code=int(err.code))
    except IntegrityError:
        return error_response(409, "conflicts with what the VTN already has")
    except web.HTTPException as err:
        if err.status < 400:
            raise
        return error_response(err.status, err.reason)
    except Exception:
        reference = uuid.uuid4().hex[:12]
        log.exception("admin API failure on %s %s, reference %s", request.method, request.path,
                      reference)  # fmt: skip
        return error_response(500, f"internal error; reference {reference}")
