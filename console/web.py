"""The console's HTTP edge: the VTN extension that mounts it under /console/, sessions from the
cookie, role checks, CSRF checks, security headers and page rendering.

Every page handler is wrapped by `page(roles)`: no session, no page (a redirect to the login);
the wrong role, 403; a POST without the session's CSRF token, 403 and nothing changes. Which
rows a role may see (ownership) is each page module's business, from `Viewer.account.subject`.
"""

from __future__ import annotations

import hmac
import importlib.resources
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from aiohttp import web
from multidict import MultiDictProxy

from console import auth
from console.accounts import Account, AddressThrottle, Policy, Role, Session
from vtn.admin.openapi import Route
from vtn.services.context import Context

PREFIX = "/console"
CONTEXT = web.AppKey("flex4grid.console.context", Context)

TEMPLATES = web.AppKey("flex4grid.console.templates", jinja2.Environment)
THROTTLE = web.AppKey("flex4grid.console.throttle", AddressThrottle)

# Scripts only from our own origin (no inline script: page data travels as JSON in
# <script type="application/json">). plotly.js sets inline styles, hence style-src.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
HOME = {
    Role.OPERATOR: f"{PREFIX}/operator/vens",
    Role.AGGREGATOR: f"{PREFIX}/aggregator",
    Role.PROSUMER: f"{PREFIX}/prosumer",
}


@dataclass(frozen=True)
class ConsoleExtension:
    """`VtnConfig(extensions=(ConsoleExtension(),))`: the console on the VTN's own server.

    `secure_cookies=False` only for a VTN on plain HTTP (--insecure-http); the cookie is then
    not `__Host-` prefixed. `direct_event_rate_eur_per_kwh` is the operator's incentive for
    energy delivered in a direct DSO event (not a market award); 0: direct events are not paid
    (`console.rewards`).
    """

    policy: Policy = field(default_factory=Policy)
    secure_cookies: bool = True
    direct_event_rate_eur_per_kwh: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        if not self.direct_event_rate_eur_per_kwh.is_finite() or (
            self.direct_event_rate_eur_per_kwh < 0
        ):
            raise ValueError("the direct event rate must be a price >= 0 EUR/kWh")

    @property
    def routes(self) -> Sequence[Route]:
        return ()  # no admin API routes: the console is HTML under /console/

    @property
    def cookie_name(self) -> str:
        return "__Host-f4g-console" if self.secure_cookies else "f4g-console"

    def setup(self, app: web.Application, context: Context) -> None:
        from console import aggregator_pages, operator_pages, prosumer_pages

        app[CONTEXT] = context
        app[SETTINGS] = self
        app[THROTTLE] = AddressThrottle(self.policy)
        app[TEMPLATES] = jinja2.Environment(
            loader=jinja2.PackageLoader("console", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        app[TEMPLATES].filters["when"] = _when
        app[TEMPLATES].filters["short"] = _short
        app[TEMPLATES].filters["day"] = _day
        app.router.add_get(PREFIX, _home)
        app.router.add_get(PREFIX + "/", _home)
        app.router.add_get(PREFIX + "/login", _login_form)
        app.router.add_post(PREFIX + "/login", _login)
        app.router.add_post(PREFIX + "/logout", page(*Role)(_logout))
        app.router.add_get(PREFIX + "/vendor/plotly.min.js", _plotly)
        app.router.add_static(PREFIX + "/static/", _package_path("static"))
        operator_pages.add_routes(app)
        aggregator_pages.add_routes(app)
        prosumer_pages.add_routes(app)
        app.on_response_prepare.append(_security_headers)


SETTINGS = web.AppKey("flex4grid.console.settings", ConsoleExtension)


def _package_path(name: str) -> Path:
    return Path(str(importlib.resources.files("console") / name))


def _when(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _short(value: datetime | None) -> str:
    """For a phone: "26 Nov 14:05" (UTC)."""
    return "—" if value is None else value.strftime("%d %b %H:%M")


def _day(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%d %b %Y")


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    if not request.path.startswith(PREFIX):
        return
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if not request.path.startswith((PREFIX + "/static/", PREFIX + "/vendor/")):
        response.headers.setdefault("Cache-Control", "no-store")


# --- who is asking --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Viewer:
    account: Account
    session: Session
    form: MultiDictProxy[Any] | None = None  # a POST's fields, CSRF already checked

    @property
    def actor(self) -> str:
        return f"console:{self.account.username}"

    @property
    def subject(self) -> str:
        assert self.account.subject is not None  # aggregators and prosumers always have one
        return self.account.subject

    def field(self, name: str, default: str = "") -> str:
        value = default if self.form is None else self.form.get(name, default)
        return value.strip() if isinstance(value, str) else default


class NotFound(Exception):
    """What the URL names does not exist (or is not this account's: the same answer)."""


PageHandler = Callable[[web.Request, Viewer], Awaitable[web.StreamResponse]]


def settings_of(request: web.Request) -> ConsoleExtension:
    return request.app[SETTINGS]


def context_of(request: web.Request) -> Context:
    return request.app[CONTEXT]


def now_of(request: web.Request) -> datetime:
    return request.app[CONTEXT].clock()


async def _viewer(request: web.Request) -> tuple[Account, Session] | None:
    settings = request.app[SETTINGS]
    session_id = request.cookies.get(settings.cookie_name)
    if not session_id:
        return None
    return await auth.resume(
        context_of(request).store, session_id, policy=settings.policy, now=now_of(request)
    )


def page(*roles: Role) -> Callable[[PageHandler], Callable[[web.Request], Awaitable[Any]]]:
    """Only for a live session of one of `roles`; a POST must carry the session's CSRF token."""

    def wrap(handler: PageHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def guarded(request: web.Request) -> web.StreamResponse:
            found = await _viewer(request)
            if found is None:
                if request.method != "GET":  # a form from an expired session: log in again
                    raise web.HTTPSeeOther(f"{PREFIX}/login")
                raise web.HTTPSeeOther(f"{PREFIX}/login?next={quote(request.path_qs)}")
            account, session = found
            if account.role not in roles:
                return render(
                    request,
                    "error.html",
                    None,
                    status=403,
                    message="This page is not for your account.",
                )
            form = None
            if request.method == "POST" and not _same_origin(request):
                return render(
                    request,
                    "error.html",
                    None,
                    status=403,
                    message="This form was sent from another site.",
                )
            if request.method == "POST":
                form = await request.post()
                token = form.get("csrf_token")
                if not isinstance(token, str) or not hmac.compare_digest(
                    token.encode(), session.csrf_token.encode()
                ):
                    return render(
                        request,
                        "error.html",
                        None,
                        status=403,
                        message="The form had expired. Reload the page and try again.",
                    )
            try:
                return await handler(request, Viewer(account, session, form))
            except NotFound as missing:
                return render(
                    request,
                    "error.html",
                    Viewer(account, session),
                    status=404,
                    message=str(missing),
                )

        return guarded

    return wrap


def render(
    request: web.Request, template: str, viewer: Viewer | None, *, status: int = 200, **values: Any
) -> web.Response:
    text = (
        request.app[TEMPLATES]
        .get_template(template)
        .render(
            viewer=viewer,
            csrf_token=None if viewer is None else viewer.session.csrf_token,
            role=None if viewer is None else viewer.account.role.value,
            path=request.path,
            **values,
        )
    )
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def see_other(location: str, notice: str | None = None) -> web.Response:
    """303 to a page after a POST (post/redirect/get); `notice` is shown there once."""
    target = location + ("" if notice is None else f"?notice={quote(notice)}")
    return web.Response(status=303, headers={"Location": target})


# --- login, logout, home --------------------------------------------------------------------------


def _same_origin(request: web.Request) -> bool:
    """A browser's POST names the page's origin; one from another site is refused (OWASP:
    verifying origin with standard headers, beside the synchronizer token)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser form (or a very old browser): the CSRF token still guards
    return urlsplit(origin).netloc == request.host


def _safe_next(value: str | None) -> str | None:
    # Only our own pages: no scheme, no host, no "//evil" (open redirect).
    if (
        value
        and value.startswith(PREFIX + "/")
        and not value.startswith("//")
        and "\\" not in value
    ):
        return value
    return None


async def _home(request: web.Request) -> web.StreamResponse:
    found = await _viewer(request)
    if found is None:
        raise web.HTTPSeeOther(f"{PREFIX}/login")
    raise web.HTTPSeeOther(HOME[found[0].role])


async def _login_form(request: web.Request) -> web.Response:
    return render(
        request,
        "login.html",
        None,
        error=None,
        username="",
        next=_safe_next(request.query.get("next")) or "",
    )


async def _login(request: web.Request) -> web.StreamResponse:
    if not _same_origin(request):  # login CSRF: no logging a victim into someone's account
        return render(
            request, "error.html", None, status=403, message="This form was sent from another site."
        )
    form = await request.post()
    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    next_page = _safe_next(str(form.get("next", "")))
    settings = request.app[SETTINGS]
    throttle = request.app[THROTTLE]
    address = request.remote or "?"
    now = now_of(request)
    if not throttle.allowed(address, now):
        return render(
            request,
            "login.html",
            None,
            status=429,
            username=username,
            next=next_page or "",
            error="Too many failed logins from here: wait a few minutes.",
        )
    try:
        logged = await auth.login(
            context_of(request).store, username, password, policy=settings.policy, now=now
        )
    except auth.LoginRefused as refused:
        throttle.failed(address, now)
        return render(
            request,
            "login.html",
            None,
            status=401,
            error=str(refused),
            username=username,
            next=next_page or "",
        )
    response = see_other(next_page or HOME[logged.account.role])
    response.set_cookie(
        settings.cookie_name,
        logged.session_id,
        path="/",
        secure=settings.secure_cookies,
        httponly=True,
        samesite="Strict",
    )
    return response


async def _logout(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    session_id = request.cookies.get(settings.cookie_name, "")
    await auth.logout(context_of(request).store, session_id, now=now_of(request))
    response = see_other(f"{PREFIX}/login")
    response.del_cookie(settings.cookie_name, path="/")
    return response


async def _plotly(request: web.Request) -> web.FileResponse:
    """plotly.js as the installed `plotly` package ships it: no CDN, no build step."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    response = web.FileResponse(path)
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response
