"""Upstream: each virtual end node is one of our VENs towards the DSO's VTN (issue 9).

The node's VEN is the gateway's own `ven.runner.Runner` with the node's certificate, its own
state directory, and two stand-ins for a household:

- `NodeBus`, its home bus, has one device: the node itself (resource `<node id>`, kind
  base_load so `ven.control` never commands it), whose power is the members' telemetry summed
  (`NodeBus.set_power`). The runner samples it like any device and the session reports it at
  whatever granularity the DSO's report request asks (`ven.reporting`).
- `NodePolicy`, its opt policy, answers optIn when the members can give what the event asks
  (`disaggregation.plan` within the tolerance) and optOut, with the reason, when they cannot.

What the DSO's events ask is carried out by `market.aggregator.service`, which reads the
runner's session state; it opts out of an accepted event later only when re-dispatch cannot
make up for members that fell away (`Session.opt_out`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType, TracebackType
from typing import Self

from market.aggregator import disaggregation
from market.aggregator.config import NodeConfig, UpstreamConfig
from market.aggregator.disaggregation import MemberFlex
from oadr.enums import OptType
from oadr.model import Event
from ven.gateway import GatewayConfig, client_tls, make_config, offered_period
from ven.model import Decision, DeviceCommand, DeviceKind, DeviceState
from ven.policy import Preferences
from ven.reporting import ResourceSpec
from ven.runner import Clock, Runner, utc_now
from ven.session import Retry, Session, SessionConfig, SessionState
from ven.store import GatewayStore
from ven.transport import VtnClient

log = logging.getLogger("flex4grid.aggregator")
REPLAY_WINDOW = timedelta(minutes=5)  # VtnClient's own default


class NodeBus:
    """The node as the runner's only device: its power is what the service last summed."""

    def __init__(self, node_id: str, clock: Clock) -> None:
        self.node_id = node_id
        self._clock = clock
        self._state: DeviceState | None = None

    def set_power(self, power_kw: float, at: datetime) -> None:
        self._state = DeviceState(
            device_id=self.node_id, kind=DeviceKind.BASE_LOAD, power_kw=power_kw, at=at
        )

    async def send(self, command: DeviceCommand) -> None:
        log.debug("node %s: ignoring device command %s", self.node_id, command.kind)

    def states(self) -> Mapping[str, DeviceState]:
        return MappingProxyType({} if self._state is None else {self.node_id: self._state})

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


@dataclass
class Outlook:
    """What the node's members can give, as the service last saw it; the policy reads it."""

    flexes: tuple[MemberFlex, ...] = ()
    baseline_kw: float = 0.0  # the members' power summed (mean over the telemetry window)


class NodePolicy:
    """optIn when the members can deliver what the event asks (module docstring)."""

    def __init__(self, outlook: Outlook, tolerance: float) -> None:
        self._outlook = outlook
        self._tolerance = tolerance

    def __call__(self, event: Event, now: datetime) -> Decision:
        needed = disaggregation.requested_kw(event, self._outlook.baseline_kw)
        if needed is None:
            return Decision(opt=OptType.OPT_OUT, reason="optOut (signal): no kW amount to share")
        flexes = self._outlook.flexes
        result = disaggregation.plan(needed, flexes)
        available = sum(f.available_kw for f in flexes if not f.opted_out)
        if disaggregation.can_deliver(result, needed, self._tolerance):
            return Decision(
                opt=OptType.OPT_IN,
                reason=f"optIn: {max(needed, default=0):.3f} kW from {len(flexes)} members "
                f"who can give {available:.3f} kW",
            )
        return Decision(
            opt=OptType.OPT_OUT,
            reason=f"optOut (capacity): asked {max(needed, default=0):.3f} kW, members can "
            f"give {available:.3f} kW",
        )


def gateway_config(node: NodeConfig, upstream: UpstreamConfig) -> GatewayConfig:
    """The node's VEN as a gateway configuration (TLS, pinning and state as a gateway's)."""
    return make_config(
        vtn_url=upstream.vtn_url,
        ven_name=node.ven_name,
        state_dir=upstream.state_dir / node.node_id,
        cert=node.cert,
        key=node.key,
        ca_file=upstream.ca_file,
        vtn_fingerprint=upstream.vtn_fingerprint,
        poll_interval=upstream.poll_interval,
        sample_period=upstream.sample_period,
    )


def build_node_runner(
    node: NodeConfig,
    upstream: UpstreamConfig,
    bus: NodeBus,
    policy: NodePolicy,
    *,
    clock: Clock = utc_now,
    clock_speed: float = 1.0,
    retry: Retry | None = None,
) -> Runner:
    config = gateway_config(node, upstream)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    resource = ResourceSpec(
        resource_id=node.node_id,
        kind=DeviceKind.BASE_LOAD,
        min_period=offered_period(upstream.sample_period),
        status=False,
    )
    session_config = SessionConfig(
        ven_name=node.ven_name,
        poll_interval=upstream.poll_interval,
        resources=(resource,),
        retry=retry or Retry(base=timedelta(seconds=1), maximum=timedelta(seconds=30)),
    )
    store: GatewayStore[SessionState] = GatewayStore(config.store_path, SessionState)
    client = VtnClient(
        config.vtn_url,
        client_tls(config),
        vtn_fingerprint=config.vtn_fingerprint,
        # A signed reply's timestamp is checked against our clock: on a simulated one (`clock_
        # speed` times real time) the same real-time tolerance spans that much more of it.
        replay_window=REPLAY_WINDOW * clock_speed,
    )
    return Runner(
        session=Session(session_config, policy, store.load()),
        store=store,
        client=client,
        bus=bus,
        preferences=Preferences(),
        resources=(resource,),
        sample_period=upstream.sample_period,
        clock=clock,
        clock_speed=clock_speed,
    )
