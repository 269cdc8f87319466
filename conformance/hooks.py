"""Hooks: how the harness makes a VTN under test act (create an event, request a report, ...).

A VEN cannot make a VTN issue an event, so cases that need the VTN to act call a hook with an
`Action`, a JSON object:

    {"action": "create_event", "ven_ids": ["..."], "signal_name": "SIMPLE",
     "signal_type": "level", "intervals": [{"duration": "PT10M", "value": 1.0}],
     "start": "2026-01-01T12:00:00Z", "response_required": "always",
     "start_after": "PT5M" | null, "market_context": "..." | null}      -> {"event_id": "..."}
    {"action": "modify_event", "event_id": "...", "intervals": [...]}   -> {}
    {"action": "cancel_event", "event_id": "..."}                        -> {}
    {"action": "request_report", "ven_id": "...", "report_specifier_id": "...",
     "r_ids": ["..."], "granularity": "PT0S", "report_back_duration": "PT0S"}
                                                   -> {"report_request_id": "..."} (optional)
    {"action": "cancel_report", "ven_id": "...", "report_request_id": "..."} -> {}
    {"action": "deregister_ven", "ven_id": "..."}                        -> {}
    {"action": "reregister_ven", "ven_id": "..."}                        -> {}

`--hook CMD` runs CMD (through the shell) once per action with the JSON on stdin; it prints a
JSON object on stdout and exits 0, or exits 3 (UNSUPPORTED_EXIT) when it cannot do that
action, which skips the case. `--admin-url/--admin-token` maps the actions onto the Flex4Grid
admin API. Without a hook such cases are skipped, saying what the VTN must do.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Any, Protocol

import aiohttp

Action = dict[str, Any]
UNSUPPORTED_EXIT = 3
_HOOK_TIMEOUT_S = 20.0


class HookUnsupported(Exception):
    """This hook cannot perform the action: the case is skipped with this text."""


class HookFailed(Exception):
    """The hook tried and the VTN (or the command) refused: the case fails with this text."""


class Hook(Protocol):
    name: str

    async def act(self, action: Action) -> dict[str, Any]: ...


def describe(action: Action) -> str:
    """What a person would have to make the VTN do, for a skipped case."""
    what = action["action"].replace("_", " ")
    details = ", ".join(f"{k}={v}" for k, v in action.items() if k != "action" and v is not None)
    return f"{what} ({details})"


class NoHook:
    name = "none"

    async def act(self, action: Action) -> dict[str, Any]:
        raise HookUnsupported(
            f"needs the VTN to {describe(action)}: give --hook CMD or --admin-url/--admin-token"
        )


class CommandHook:
    """Runs a command per action: JSON in on stdin, JSON out on stdout."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.name = f"command {command!r}"

    async def act(self, action: Action) -> dict[str, Any]:
        process = await asyncio.create_subprocess_shell(
            self.command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(_HOOK_TIMEOUT_S):
                out, err = await process.communicate(json.dumps(action).encode())
        except TimeoutError:
            process.kill()
            await process.wait()
            raise HookFailed(f"hook {action['action']} took over {_HOOK_TIMEOUT_S:.0f} s") from None
        message = err.decode(errors="replace").strip().splitlines()
        last = message[-1] if message else ""
        if process.returncode == UNSUPPORTED_EXIT:
            raise HookUnsupported(f"the hook cannot {describe(action)}: {last}")
        if process.returncode != 0:
            raise HookFailed(f"hook {action['action']} exited {process.returncode}: {last}")
        try:
            reply = json.loads(out.decode() or "{}")
        except ValueError as exc:
            raise HookFailed(f"hook {action['action']} printed no JSON object") from exc
        if not isinstance(reply, dict):
            raise HookFailed(f"hook {action['action']} printed no JSON object")
        return reply


class AdminApiHook:
    """The Flex4Grid admin API (/admin/v1, vtn/admin/routes.py) with a bearer token."""

    def __init__(self, base_url: str, token: str, ssl_context: ssl.SSLContext | None) -> None:
        self.base_url = base_url.rstrip("/") + "/admin/v1"
        self.token = token
        self.ssl_context = ssl_context
        self.name = f"admin API {base_url}"

    async def _call(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        connector = aiohttp.TCPConnector(ssl=self.ssl_context if self.ssl_context else False)
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.request(method, self.base_url + path, json=body, headers=headers) as reply,
        ):
            text = await reply.text()
            if reply.status >= 300:
                raise HookFailed(f"{method} {path} answered {reply.status}: {text[:300]}")
            return json.loads(text) if text else {}

    async def act(self, action: Action) -> dict[str, Any]:
        kind = action["action"]
        if kind == "create_event":
            body: dict[str, Any] = {
                "start": action["start"],
                "signals": [
                    {
                        "name": action["signal_name"],
                        "type": action["signal_type"],
                        "intervals": action["intervals"],
                    }
                ],
                "targets": {"ven_ids": action["ven_ids"]},
                "response_required": action.get("response_required", "always"),
            }
            for key in ("start_after", "market_context"):
                if action.get(key) is not None:
                    body[key] = action[key]
            event = await self._call("POST", "/events", body)
            return {"event_id": event["event_id"]}
        if kind == "modify_event":
            signal = {"name": action["signal_name"], "intervals": action["intervals"]}
            if action.get("signal_type") is not None:
                signal["type"] = action["signal_type"]
            await self._call("PATCH", f"/events/{action['event_id']}", {"signals": [signal]})
            return {}
        if kind == "cancel_event":
            await self._call("POST", f"/events/{action['event_id']}/cancel", None)
            return {}
        if kind == "request_report":
            request = await self._call(
                "POST",
                f"/vens/{action['ven_id']}/report-requests",
                {
                    "report_specifier_id": action["report_specifier_id"],
                    "r_ids": action["r_ids"],
                    "granularity": action["granularity"],
                    "report_back_duration": action["report_back_duration"],
                },
            )
            return {"report_request_id": request["report_request_id"]}
        if kind == "cancel_report":
            path = f"/vens/{action['ven_id']}/report-requests/{action['report_request_id']}"
            await self._call("DELETE", path, None)
            return {}
        if kind in ("deregister_ven", "reregister_ven"):
            verb = kind.split("_")[0]
            await self._call("POST", f"/vens/{action['ven_id']}/{verb}", None)
            return {}
        raise HookUnsupported(f"the admin API has no {kind}")
