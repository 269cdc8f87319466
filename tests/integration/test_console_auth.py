"""The console's accounts and sessions over real HTTPS, on SQLite and PostgreSQL: a login sets
a Secure, HttpOnly, SameSite=Strict cookie; a POST without the session's CSRF token changes
nothing; wrong passwords lock the account; sessions expire when idle; each role reaches only its
own pages; logging out ends the session."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import aiohttp

from certs.dev import DevPki
from console.accounts import Policy, Role
from tests.browser.harness import PASSWORD, ConsoleSite, browser_session, console_vtn


async def login(session: aiohttp.ClientSession, username: str, password: str = PASSWORD) -> int:
    response = await session.post(
        "/console/login",
        data={"username": username, "password": password},
        allow_redirects=False,
    )
    return response.status


async def csrf(session: aiohttp.ClientSession, path: str) -> str:
    text = await (await session.get(path)).text()
    match = re.search(r'name="csrf_token" value="([^"]+)"', text)
    assert match is not None
    return match.group(1)


async def audit_actions(site: ConsoleSite) -> list[str]:
    async with site.running.context.store.transaction() as tx:
        return [e.action for e in await tx.audit.page()]


async def test_login_sets_a_strict_cookie_and_csrf_guards_every_post(
    pki: DevPki, database_url: str
) -> None:
    async with console_vtn(pki, database_url) as site:
        await site.user("dso", Role.OPERATOR)
        async with browser_session(site) as session:
            response = await session.post(
                "/console/login",
                data={"username": "dso", "password": PASSWORD},
                allow_redirects=False,
            )
            assert response.status == 303
            assert response.headers["Location"] == "/console/operator/vens"
            cookie = response.headers["Set-Cookie"]
            assert cookie.startswith("__Host-f4g-console=")
            for flag in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
                assert flag in cookie
            page = await session.get("/console/operator/events")
            assert "default-src 'self'" in page.headers["Content-Security-Policy"]

            form = {
                "start": "2099-01-01T10:00",
                "signal": "SIMPLE",
                "interval_minutes": "60",
                "values": "1",
            }
            refused = await session.post("/console/operator/events", data=form)
            assert refused.status == 403
            wrong = await session.post("/console/operator/events", data=form | {"csrf_token": "x"})
            assert wrong.status == 403
            async with site.running.context.store.transaction() as tx:
                assert await tx.events.listing(now=datetime.now(UTC)) == []
            token = await csrf(session, "/console/operator/events")
            elsewhere = await session.post(
                "/console/operator/events",
                data=form | {"csrf_token": token},
                headers={"Origin": "https://evil.example"},
            )
            assert elsewhere.status == 403
            async with site.running.context.store.transaction() as tx:
                assert await tx.events.listing(now=datetime.now(UTC)) == []
            done = await session.post("/console/operator/events", data=form | {"csrf_token": token})
            assert done.status == 200 and "Event created." in await done.text()
        assert "event.create" in await audit_actions(site)


async def test_wrong_passwords_lock_the_account(pki: DevPki, database_url: str) -> None:
    policy = Policy(max_failures=3, lockout=timedelta(minutes=15))
    async with console_vtn(pki, database_url, policy=policy) as site:
        await site.user("dso", Role.OPERATOR)
        async with browser_session(site) as session:
            assert await login(session, "nobody") == 401
            for _ in range(3):
                assert await login(session, "dso", "wrong password!") == 401
            # Locked: even the right password is refused, with a message that says so.
            response = await session.post(
                "/console/login", data={"username": "dso", "password": PASSWORD}
            )
            assert response.status == 401
            assert "locked" in await response.text()
        assert (await audit_actions(site)).count("console.login.fail") == 3


async def test_an_idle_session_ends_and_logout_ends_it_too(pki: DevPki, database_url: str) -> None:
    async with console_vtn(pki, database_url, policy=Policy(idle=timedelta(seconds=1))) as site:
        await site.user("dso", Role.OPERATOR)
        async with browser_session(site) as session:
            assert await login(session, "dso") == 303
            assert (
                await session.get("/console/operator/vens", allow_redirects=False)
            ).status == 200
            async with site.running.context.store.transaction() as tx:
                from console.tables import console_sessions

                await tx.connection.execute(
                    console_sessions.update().values(
                        last_seen_at=datetime.now(UTC) - timedelta(seconds=5)
                    )
                )
            expired = await session.get("/console/operator/vens", allow_redirects=False)
            assert expired.status == 303
            assert expired.headers["Location"].startswith("/console/login")
    async with console_vtn(pki, database_url) as site, browser_session(site) as session:
        assert await login(session, "dso") == 303
        token = await csrf(session, "/console/operator/vens")
        await session.post("/console/logout", data={"csrf_token": token})
        after = await session.get("/console/operator/vens", allow_redirects=False)
        assert after.status == 303


async def test_each_role_reaches_only_its_own_pages(pki: DevPki, database_url: str) -> None:
    async with console_vtn(pki, database_url) as site:
        await site.user("dso", Role.OPERATOR)
        await site.user("agg", Role.AGGREGATOR, "agg-a")
        await site.user("pat", Role.PROSUMER, "ven-1")
        pages = {
            "dso": "/console/operator/audit",
            "agg": "/console/aggregator",
            "pat": "/console/prosumer",
        }
        for user, own in pages.items():
            async with browser_session(site) as session:
                assert await login(session, user) == 303
                assert (await session.get(own)).status == 200
                for other in set(pages.values()) - {own}:
                    assert (await session.get(other)).status == 403, (user, other)
