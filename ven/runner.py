"""The gateway's one loop: the VEN session, its VTN link, the home bus and the household policy.

The shape is STYLE.md's runner. Each turn: save the session state (before anything is sent or
acknowledged), then send the session's next request and feed the reply back, else apply its next
action (signals -> `ven.control` commands on the home bus; decisions -> the journal), else wait
for the earliest of the session's timer, a pushed message and the next telemetry sample.

The runner owns everything the pure parts may not: the clock (one `clock()` for the session, the
devices and the waits; a simulated clock runs `clock_speed` times faster than real time), the
random draws (`random.random()`), the threads SQLite writes run in, and signals. Pushed messages
(HTTP push) reach the loop through a queue: the loop hands them to the session, saves, and only
then answers the VTN, so a push answer is durable like a pulled one.

Manual opt-outs (`flex4grid ven opt-out`) arrive through the store: the CLI writes a journal
entry of kind `opt-out-request`; the loop looks for new ones every turn, calls
`session.opt_out`, and journals the outcome as `manual-opt-out` (its `request_at` names the
request it answers, so each request is taken once, even across restarts).
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from certs.trust import TrustStore
from oadr import exchanges
from oadr.model import EventId, Payload, RequestReregistration, ResourceStatus, Response
from oadr.signing import DEFAULT_WINDOW
from ven import control
from ven.han.bus import HomeBus
from ven.model import ActiveSignal, DeviceCommand, DeviceState
from ven.policy import Preferences
from ven.reporting import ResourceSpec, power_rid, status_rid
from ven.session import ApplySignals, DecisionMade, Phase, Session, SessionState
from ven.store import GatewayStore
from ven.transport import TransportError, VtnClient, push_app

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger("flex4grid.ven")

Clock = Callable[[], datetime]
OPT_OUT_REQUEST = "opt-out-request"  # written by `flex4grid ven opt-out`
OPT_OUT_DONE = "manual-opt-out"  # written by the runner once it acted on a request
_MIN_WAIT_S = 0.005


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class PushEndpoint:
    """Where the VEN serves HTTP push: host, port, its TLS server context, who may push."""

    host: str
    port: int
    ssl_context: Any  # ssl.SSLContext | None (None: plain HTTP, tests of the loop only)
    trust: TrustStore | None
    # How far a signed push's timestamp may be from our clock (wider on a fast simulated clock).
    replay_window: timedelta = DEFAULT_WINDOW


@dataclass(slots=True)
class _Pushed:
    message: Payload
    answer: asyncio.Future[Payload | None]


def _command_key(commands: Sequence[DeviceCommand]) -> tuple[Any, ...]:
    """What a device is told, without the prose: a plan repeated with new wording is no change."""
    return tuple(
        (c.kind, None if c.value is None else round(c.value, 2), c.until) for c in commands
    )


def describe(command: DeviceCommand) -> str:
    """One command in words, e.g. `ev-charger power_limit 5.5 until 12:30:00`."""
    value = "" if command.value is None else f" {command.value:g}"
    until = "" if command.until is None else f" until {command.until.isoformat()}"
    return f"{command.device_id} {command.kind}{value}{until}"


class Runner:
    """Drives one `Session` until `stop()`; see the module docstring."""

    def __init__(
        self,
        *,
        session: Session,
        store: GatewayStore[SessionState],
        client: VtnClient,
        bus: HomeBus,
        preferences: Preferences,
        resources: Sequence[ResourceSpec],
        sample_period: timedelta = timedelta(seconds=10),
        clock: Clock = utc_now,
        clock_speed: float = 1.0,
        push: PushEndpoint | None = None,
        companions: Sequence[Callable[[], Coroutine[Any, Any, Any]]] = (),
        draw: Callable[[], float] = random.random,
    ) -> None:
        if sample_period <= timedelta(0) or clock_speed <= 0:
            raise ValueError("sample_period and clock_speed must be positive")
        self.session = session
        self.store = store
        self.bus = bus
        self.preferences = preferences
        self._client = client
        self._resources = tuple(resources)
        self._sample_period = sample_period
        self._clock = clock
        self._speed = clock_speed
        self._push = push
        self._companions = tuple(companions)
        self._draw = draw
        self._inbox: asyncio.Queue[_Pushed] = asyncio.Queue()
        self._stop = asyncio.Event()
        self._signals: tuple[ActiveSignal, ...] = ()
        self._told: dict[str, tuple[Any, ...]] = {}  # per device: the commands last sent
        self._next_sample: datetime | None = None
        self._stale_timer: datetime | None = None
        self._opt_outs_taken: set[str] | None = None
        self.push_url: str | None = None

    # --- control ----------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish its turn, save, and close everything (signal-handler safe)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def run(self, *, handle_signals: bool = False) -> None:
        """Run until `stop()` (or SIGTERM/SIGINT with `handle_signals`), then save and close."""
        loop = asyncio.get_running_loop()
        if handle_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self.stop)
        companions = [asyncio.create_task(c()) for c in self._companions]
        site_runner: web.AppRunner | None = None
        self._next_sample = self._clock()  # the first sample right away
        try:
            async with self.bus:
                site_runner = await self._serve_push()
                await self._journal("start", f"gateway started ({self.session.state.phase})")
                while not self._stop.is_set():
                    try:
                        await self._turn()
                    except Exception:  # a bug must not stop the gateway: log it, carry on
                        log.exception("a gateway turn failed; carrying on")
                        await asyncio.sleep(1.0)
        finally:
            if site_runner is not None:
                await site_runner.cleanup()
            for pending in self._drain_inbox():
                pending.answer.cancel()
            for task in companions:
                task.cancel()
            await asyncio.gather(*companions, return_exceptions=True)
            await self._save()
            await self._client.close()
            self.store.close()
            if handle_signals:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(signum)
            log.info("gateway stopped; state saved")

    # --- one turn ---------------------------------------------------------------------------------

    async def _turn(self) -> None:
        await self._save()  # durable before anything is sent or acknowledged
        await self._take_opt_outs()
        now = self._clock()
        if (request := self.session.next_request(now)) is not None:
            await self._send(request)
        elif (action := self.session.next_action()) is not None:
            await self._apply(action)
        elif (pushed := await self._wait(now)) is not None:
            await self._receive_pushed(pushed)
        else:
            now = self._clock()
            if self._next_sample is None or self._next_sample <= now:
                await self._sample(now)
            timer = self.session.timer()
            if timer is not None and timer <= now and timer != self._stale_timer:
                self.session.handle_timer(now)
                # A timer still due after handling would spin the loop: wait for something else.
                self._stale_timer = timer if self.session.timer() == timer else None

    async def _send(self, request: Payload) -> None:
        phase = self.session.state.phase
        service = (
            exchanges.service_for(request, answering=RequestReregistration)
            if isinstance(request, Response)
            else None
        )
        try:
            reply = await self._client.send(request, self._clock(), service)
        except TransportError as err:
            first = self.session.state.failures == 0
            self.session.failed(request, self._clock(), self._draw())
            log.warning("%s not delivered: %s", type(request).__name__, err)
            if first:
                await self._journal("outage", f"VTN unreachable: {err}")
            return
        except Exception:  # a bug must not stop the gateway: back off, keep the rest running
            log.exception("%s could not be sent", type(request).__name__)
            self.session.failed(request, self._clock(), self._draw())
            return
        failures = self.session.state.failures
        self.session.receive(reply.payload, self._clock(), self._draw(), vtn_time=reply.vtn_time)
        if failures:
            await self._journal("outage", f"VTN reachable again after {failures} failure(s)")
        await self._note_phase(phase)

    async def _receive_pushed(self, pushed: _Pushed) -> None:
        phase = self.session.state.phase
        try:
            self.session.receive(pushed.message, self._clock(), self._draw())
            answer = self.session.reply_to_push()
            await self._save()  # what we answer is durable before the VTN hears it
        except Exception as err:
            if not pushed.answer.done():  # the push gets an error reply; the VTN retries
                pushed.answer.set_exception(err)
            raise
        if not pushed.answer.done():
            pushed.answer.set_result(answer)
        await self._note_phase(phase)

    async def _note_phase(self, before: Phase) -> None:
        state = self.session.state
        if state.phase != before:
            text = f"registration {before} -> {state.phase}"
            if state.phase == Phase.REGISTERED:
                text += f" (venID {state.ven_id}, VTN {state.vtn_id})"
            log.info("%s", text)
            await self._journal("registration", text, ven_id=state.ven_id, vtn_id=state.vtn_id)

    async def _apply(self, action: ApplySignals | DecisionMade) -> None:
        now = self._clock()
        if isinstance(action, DecisionMade):
            decision = action.decision
            log.info(
                "event %s modification %d: %s",
                action.event_id,
                action.modification_number,
                decision.reason,
            )
            await self._journal(
                "decision",
                decision.reason,
                event_id=action.event_id,
                modification_number=action.modification_number,
                opt=decision.opt.value,
            )
            return
        self._signals = action.signals
        names = ", ".join(f"{s.event_id} {s.signal_name} {s.value:g}" for s in action.signals)
        log.info("signals in force: %s", names or "none")
        await self._command(now)

    # --- devices ----------------------------------------------------------------------------------

    async def _command(self, now: datetime) -> None:
        """Plan for the signals in force and the latest telemetry; send what changed per device."""
        household = tuple(self.bus.states().values())
        plan = control.plan(self._signals, household, self.preferences, now)
        by_device: dict[str, list[DeviceCommand]] = {}
        for command in plan:
            by_device.setdefault(command.device_id, []).append(command)
        for device_id, commands in by_device.items():
            key = _command_key(commands)
            if self._told.get(device_id) == key:
                continue
            for command in commands:
                await self.bus.send(command)
            self._told[device_id] = key
            told = [c for c in commands if c.kind != "release"] or commands
            text = "; ".join(describe(c) for c in told)
            log.info("devices: %s (%s)", text, told[-1].reason)
            await self._journal(
                "command",
                text,
                device_id=device_id,
                commands=[
                    {"kind": c.kind, "value": c.value, "until": c.until, "reason": c.reason}
                    for c in commands
                ],
            )

    async def _sample(self, now: datetime) -> None:
        """Record each resource's power and status, then re-plan on the new telemetry."""
        states: Mapping[str, DeviceState] = self.bus.states()
        for spec in self._resources:
            state = states.get(spec.resource_id)
            if state is not None:
                self.session.record_reading(power_rid(spec.resource_id), state.power_kw, now)
            if spec.status:
                status = ResourceStatus(
                    online=state is not None and state.online,
                    manual_override=state is not None and state.manual_override,
                )
                self.session.record_reading(status_rid(spec.resource_id), status, now)
        nxt = (self._next_sample or now) + self._sample_period
        self._next_sample = nxt if nxt > now else now + self._sample_period
        await self._command(now)

    # --- waiting ----------------------------------------------------------------------------------

    async def _wait(self, now: datetime) -> _Pushed | None:
        """The next pushed message, or None when the timer, the next sample or a stop comes."""
        if not self._inbox.empty():
            return self._inbox.get_nowait()
        moments = [self.session.timer(), self._next_sample]
        due = [m for m in moments if m is not None and m != self._stale_timer]
        if not due:
            due = [now + self._sample_period]
        if min(due) <= now:
            return None
        delay_s = max((min(due) - now).total_seconds() / self._speed, _MIN_WAIT_S)
        getter = asyncio.ensure_future(self._inbox.get())
        stopper = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait(
                {getter, stopper}, timeout=delay_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stopper.cancel()
            if not getter.done():
                getter.cancel()
        await asyncio.gather(
            stopper, return_exceptions=True
        )  # a cancel of this call is not swallowed
        if getter.done() and not getter.cancelled():
            return getter.result()
        return None

    def _drain_inbox(self) -> list[_Pushed]:
        drained = []
        while not self._inbox.empty():
            drained.append(self._inbox.get_nowait())
        return drained

    async def _on_push(self, message: Payload, now: datetime) -> Payload | None:
        """The push endpoint's handler: the loop answers once the session took it and saved."""
        answer: asyncio.Future[Payload | None] = asyncio.get_running_loop().create_future()
        await self._inbox.put(_Pushed(message, answer))
        return await answer

    async def _serve_push(self) -> web.AppRunner | None:
        if self._push is None:
            return None
        from aiohttp import web  # the server half of aiohttp (~2 MB) only when push is served

        app = push_app(
            self._on_push,
            self._push.trust,
            clock=self._clock,
            replay_window=self._push.replay_window,
            signing_key=self._client.signing_key,
        )
        site_runner = web.AppRunner(app, access_log=None)
        await site_runner.setup()
        site = web.TCPSite(
            site_runner, self._push.host, self._push.port, ssl_context=self._push.ssl_context
        )
        await site.start()
        host, port = site_runner.addresses[0][:2]
        scheme = "https" if self._push.ssl_context is not None else "http"
        self.push_url = f"{scheme}://{host}:{port}"
        log.info("push endpoint at %s", self.push_url)
        return site_runner

    # --- store ------------------------------------------------------------------------------------

    async def _save(self) -> None:
        await asyncio.to_thread(self.store.save, self.session.state, self._clock())

    async def _journal(self, kind: str, text: str, **detail: Any) -> None:
        await asyncio.to_thread(self.store.journal, self._clock(), kind, text, **detail)

    async def _take_opt_outs(self) -> None:
        """Act on `flex4grid ven opt-out` requests not taken yet (see the module docstring)."""
        requests = await asyncio.to_thread(self.store.recent, 50, OPT_OUT_REQUEST)
        if not requests:
            return
        if self._opt_outs_taken is None:
            done = await asyncio.to_thread(self.store.recent, 200, OPT_OUT_DONE)
            self._opt_outs_taken = {str(d.detail.get("request_at")) for d in done}
        for request in reversed(requests):  # oldest first
            key = request.at.isoformat()
            if key in self._opt_outs_taken:
                continue
            self._opt_outs_taken.add(key)
            event_id = EventId(str(request.detail.get("event_id", "")))
            reason = str(request.detail.get("reason") or "manual opt-out")
            try:
                self.session.opt_out(event_id, self._clock(), reason)
            except (KeyError, ValueError) as err:
                text = f"opt-out of {event_id} refused: {err}"
                log.warning("%s", text)
                await self._journal(OPT_OUT_DONE, text, request_at=key, event_id=event_id, ok=False)
                continue
            text = f"opted out of {event_id} by hand: {reason}"
            log.info("%s", text)
            await self._journal(OPT_OUT_DONE, text, request_at=key, event_id=event_id, ok=True)
