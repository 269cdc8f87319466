"""OpenLEADR's VTN (openleadr.OpenADRServer) as a conformance peer, and its hook.

OpenLEADR is a library, not a server with an API: an operator acts on it in Python. This
module is that operator. `OpenLeadrVtn` runs an OpenADRServer that registers any VEN whose
client certificate chains to the CA (venID by certificate fingerprint, so re-registration
keeps it) and performs hook actions on it (`act`): create and cancel events with its API;
modify an event the only way OpenLEADR allows, by changing its queued event object and
incrementing modificationNumber. OpenLEADR has no API to request or cancel a report after
registration, nor to cancel or re-request a registration: those actions are unsupported.

Standalone, for `flex4grid conformance vtn --hook`:

    python -m conformance.peers.openleadr_vtn serve --cert vtn/chain.pem --key vtn/key.pem \
        --ca-file root.pem --port 8081            # prints the VTN URL and the control URL
    flex4grid conformance vtn --url https://127.0.0.1:8081 ... \
        --hook "python -m conformance.peers.openleadr_vtn hook --control http://127.0.0.1:PORT"
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, web
from openleadr import OpenADRServer, objects, utils
from pydantic import TypeAdapter

from conformance.hooks import UNSUPPORTED_EXIT, Action, HookUnsupported

_DURATION = TypeAdapter(timedelta)


@dataclass
class OpenLeadrVtn:
    cert: Path
    key: Path
    ca_file: Path
    host: str = "127.0.0.1"
    port: int = 0
    vtn_id: str = "openleadr-vtn"
    poll_freq: timedelta = timedelta(seconds=1)
    by_fingerprint: dict[str, str] = field(default_factory=dict)
    registered: dict[str, dict[str, Any]] = field(default_factory=dict)
    server: Any = None

    async def start(self) -> str:
        self.server = OpenADRServer(
            vtn_id=self.vtn_id,
            cert=str(self.cert),
            key=str(self.key),
            http_cert=str(self.cert),
            http_key=str(self.key),
            http_ca_file=str(self.ca_file),
            http_host=self.host,
            http_port=self.port,
            ven_lookup=self.ven_lookup,
            show_fingerprint=False,
            requested_poll_freq=self.poll_freq,
        )
        self.server.add_handler("on_create_party_registration", self.on_create_party_registration)
        self.server.add_handler("on_register_report", self.on_register_report)
        await self.server.run()
        port = self.server.app_runner.addresses[0][1]
        return f"https://{self.host}:{port}"

    async def stop(self) -> None:
        await self.server.stop()

    async def on_create_party_registration(self, info: dict[str, Any]) -> tuple[str, str]:
        fingerprint = info["fingerprint"]
        ven_id = self.by_fingerprint.setdefault(fingerprint, f"ven-{uuid.uuid4().hex[:10]}")
        registration_id = f"reg-{uuid.uuid4().hex[:10]}"
        self.registered[ven_id] = {
            "ven_id": ven_id,
            "ven_name": info.get("ven_name"),
            "fingerprint": fingerprint,
            "registration_id": registration_id,
        }
        return ven_id, registration_id

    def ven_lookup(self, ven_id: str) -> dict[str, Any]:
        return self.registered.get(ven_id, {})

    async def on_register_report(self, report: dict[str, Any]) -> None:
        return None  # requests nothing: OpenLEADR asks for reports only here, per rID

    # --- hook actions ---------------------------------------------------------------------------

    async def act(self, action: Action) -> dict[str, Any]:
        kind = action["action"]
        if kind == "create_event":
            return {"event_id": self._create(action)}
        if kind == "cancel_event":
            ven_id = self._ven_of(action["event_id"])
            self.server.cancel_event(ven_id, action["event_id"])
            return {}
        if kind == "modify_event":
            self._modify(action)
            return {}
        raise HookUnsupported(f"OpenLEADR's VTN has no API to {kind.replace('_', ' ')}")

    def _intervals(self, action: Action, start: datetime) -> list[objects.Interval]:
        intervals = []
        for item in action["intervals"]:
            duration = _DURATION.validate_python(item["duration"])
            intervals.append(objects.Interval(dtstart=start, duration=duration,
                                              signal_payload=float(item["value"])))  # fmt: skip
            start += duration
        return intervals

    def _create(self, action: Action) -> str:
        start = datetime.fromisoformat(action["start"].replace("Z", "+00:00"))
        (ven_id,) = action["ven_ids"]
        event_id: str = self.server.add_event(
            ven_id=ven_id,
            signal_name=action["signal_name"],
            signal_type=action["signal_type"],
            intervals=self._intervals(action, start),
            callback=self._opted,
            response_required=action.get("response_required", "always"),
            market_context=action.get("market_context") or "http://flex4grid.org/market/default",
        )
        if action.get("start_after"):
            event = utils.find_by(self.server.events[ven_id], "event_descriptor.event_id", event_id)
            window = _DURATION.validate_python(action["start_after"])
            utils.setmember(event, "active_period.tolerance", {"startafter": window})
        return event_id

    async def _opted(self, ven_id: str, event_id: str, opt_type: str) -> None:
        return None

    def _ven_of(self, event_id: str) -> str:
        for ven_id, events in self.server.events.items():
            if utils.find_by(events, "event_descriptor.event_id", event_id):
                return str(ven_id)
        raise HookUnsupported(f"OpenLEADR's VTN does not know event {event_id}")

    def _modify(self, action: Action) -> None:
        ven_id = self._ven_of(action["event_id"])
        event = utils.find_by(self.server.events[ven_id], "event_descriptor.event_id",
                              action["event_id"])  # fmt: skip
        start = utils.getmember(event, "active_period.dtstart")
        signal = utils.getmember(event, "event_signals")[0]
        utils.setmember(signal, "intervals", self._intervals(action, start))
        utils.increment_event_modification_number(event)
        self.server.events_updated[ven_id] = True


# --- standalone: the server with a control endpoint, and the hook command -------------------------


async def _serve(args: argparse.Namespace) -> None:
    vtn = OpenLeadrVtn(args.cert, args.key, args.ca_file, host=args.host, port=args.port)
    url = await vtn.start()

    async def control(request: web.Request) -> web.Response:
        try:
            return web.json_response(await vtn.act(await request.json()))
        except HookUnsupported as exc:
            return web.json_response({"unsupported": str(exc)}, status=501)
        except Exception as exc:  # OpenLEADR refused: the hook command reports it
            return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=500)

    app = web.Application()
    app.router.add_post("/act", control)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.control_port).start()
    control_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    print(json.dumps({"vtn_url": url, "control_url": control_url}), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await vtn.stop()


async def _hook(control_url: str) -> int:
    action = json.loads(sys.stdin.read())
    async with ClientSession() as session, session.post(control_url + "/act", json=action) as r:
        body = await r.json()
    if r.status == 501:
        print(body["unsupported"], file=sys.stderr)
        return UNSUPPORTED_EXIT
    if r.status != 200:
        print(f"OpenLEADR: {body.get('error', r.status)}", file=sys.stderr)
        return 1
    print(json.dumps(body))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.peers.openleadr_vtn")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve")
    serve.add_argument("--cert", type=Path, required=True, help="VTN certificate chain")
    serve.add_argument("--key", type=Path, required=True)
    serve.add_argument("--ca-file", type=Path, required=True, help="CA of the VENs")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0)
    serve.add_argument("--control-port", type=int, default=0)
    hook = commands.add_parser("hook")
    hook.add_argument("--control", required=True, help="the control URL `serve` printed")
    args = parser.parse_args(argv)
    if args.command == "serve":
        asyncio.run(_serve(args))
        return 0
    return asyncio.run(_hook(args.control))


if __name__ == "__main__":
    sys.exit(main())
