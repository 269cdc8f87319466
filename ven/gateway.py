"""The gateway's wiring: its configuration, and `build_gateway`, the one place a `Runner` is made.

Configuration comes from CLI flags and, optionally, a TOML file (`--config FILE`); flags win.
Every key of the file is optional; relative paths are relative to the file:

    vtn_url = "https://vtn.example:8080"      ven_name = "house-17"
    cert = "ven/chain.pem"   key = "ven/key.pem"   ca_file = "ca-bundle.pem"
    vtn_fingerprint = "AB:CD:..."             state = "/var/lib/flex4grid-ven"
    mqtt = "mqtt://127.0.0.1:1883"            simulate = "typical"     gateway = "house-17"
    poll_interval_s = 10     sample_period_s = 10     push_port = 8443     sign = false
    [preferences]            # ven.policy.Preferences.from_dict keys
    comfort_min_c = 19.5
    [[devices]]              # what the VEN reports on and commands (default: the simulation's)
    id = "heat-pump"
    kind = "heat_pump"

`--ca-file` holds the CA certificates the gateway trusts for the VTN: the root, and for HTTP
push also the CA that issued the VTN's certificate (a push is checked against them per request).
"""

from __future__ import annotations

import dataclasses
import math
import re
import ssl
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from certs import roles, tls
from certs.files import check_key_matches, load_certificates, load_key
from certs.trust import TrustedCa, TrustStore
from oadr.model import Event
from oadr.signing import SigningKey
from ven import policy
from ven.han import household
from ven.han.bus import HomeBus, InProcessBus
from ven.han.household import EnvironmentSource, Household
from ven.model import Decision, DeviceKind
from ven.policy import Preferences
from ven.reporting import ResourceSpec
from ven.runner import Clock, PushEndpoint, Runner, utc_now
from ven.session import Retry, Session, SessionConfig, SessionState
from ven.store import GatewayStore
from ven.transport import VtnClient

STORE_FILE = "gateway.db"
PROFILES: dict[str, Callable[[datetime, EnvironmentSource], Household]] = {
    "typical": household.typical,
}


class ConfigError(ValueError):
    """The configuration cannot work; the message says which setting and why (one line)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayConfig:
    vtn_url: str
    ven_name: str
    state_dir: Path
    cert: Path | None = None  # the VEN's certificate chain (leaf first), PEM
    key: Path | None = None
    ca_file: Path | None = None
    vtn_fingerprint: str | None = None
    mqtt_url: str | None = None
    simulate: str | None = None  # a household profile: simulated devices (PROFILES)
    gateway_id: str | None = None  # the MQTT topic level; default: from ven_name
    poll_interval: timedelta = timedelta(seconds=10)
    sample_period: timedelta = timedelta(seconds=10)
    push_port: int | None = None  # serve HTTP push here instead of polling
    push_host: str = "127.0.0.1"
    sign: bool = False
    preferences: Preferences = field(default_factory=Preferences)
    devices: tuple[ResourceSpec, ...] = ()
    retry: Retry = field(default_factory=Retry)
    # How far a signed message's timestamp may be from our clock; None: the defaults (5 min for
    # the VTN's replies, 5 s for its pushes). A simulated clock running N times faster needs N
    # times the window for the same tolerance in real time (`flex4grid demo`).
    replay_window: timedelta | None = None

    @property
    def store_path(self) -> Path:
        return self.state_dir / STORE_FILE

    @property
    def mqtt_gateway(self) -> str:
        return self.gateway_id or re.sub(r"[/+#\s]+", "-", self.ven_name) or "gateway"


# --- configuration sources ------------------------------------------------------------------------

_PATHS = {"cert": "cert", "key": "key", "ca_file": "ca_file", "state": "state_dir"}
_STRINGS = {
    "vtn_url": "vtn_url",
    "ven_name": "ven_name",
    "vtn_fingerprint": "vtn_fingerprint",
    "mqtt": "mqtt_url",
    "simulate": "simulate",
    "gateway": "gateway_id",
}
_SECONDS = {"poll_interval_s": "poll_interval", "sample_period_s": "sample_period"}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except OSError as err:
        raise ConfigError(f"{path}: {err.strerror or err}") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err


def preferences_from_file(path: Path) -> Preferences:
    """A TOML file of preferences: a [preferences] table, or the keys at the top level."""
    data = _read_toml(path)
    table = data.get("preferences", data)
    try:
        return Preferences.from_dict(table)
    except ValueError as err:
        raise ConfigError(f"{path}: {err}") from err


def _device(raw: Any, sample_period: timedelta) -> ResourceSpec:
    if not isinstance(raw, Mapping) or not {"id", "kind"} <= set(raw) <= {"id", "kind", "status"}:
        raise ConfigError(f"a device needs id and kind (and may say status): {raw!r}")
    try:
        kind = DeviceKind(raw["kind"])
    except ValueError as err:
        kinds = ", ".join(k.value for k in DeviceKind)
        raise ConfigError(f"device {raw['id']!r}: kind must be one of {kinds}") from err
    return ResourceSpec(
        resource_id=str(raw["id"]),
        kind=kind,
        min_period=offered_period(sample_period),
        status=bool(raw.get("status", True)),
    )


def config_file(path: Path) -> dict[str, Any]:
    """The GatewayConfig fields a TOML file sets (see the module docstring)."""
    data = _read_toml(path)
    fields: dict[str, Any] = {}
    known = {*_PATHS, *_STRINGS, *_SECONDS, "push_port", "sign", "preferences", "devices"}
    if unknown := set(data) - known:
        raise ConfigError(f"{path}: unknown setting(s): {', '.join(sorted(unknown))}")
    for key, name in _PATHS.items():
        if key in data:
            fields[name] = (path.parent / str(data[key])).resolve()
    for key, name in _STRINGS.items():
        if key in data:
            fields[name] = str(data[key])
    for key, name in _SECONDS.items():
        if key in data:
            fields[name] = timedelta(seconds=float(data[key]))
    if "push_port" in data:
        fields["push_port"] = int(data["push_port"])
    if "sign" in data:
        fields["sign"] = bool(data["sign"])
    if "preferences" in data:
        try:
            fields["preferences"] = Preferences.from_dict(data["preferences"])
        except ValueError as err:
            raise ConfigError(f"{path}: {err}") from err
    if "devices" in data:
        period = fields.get("sample_period", timedelta(seconds=10))
        fields["devices"] = tuple(_device(d, period) for d in data["devices"])
    return fields


def make_config(**fields: Any) -> GatewayConfig:
    """A GatewayConfig from merged settings; a missing required one is a ConfigError."""
    missing = [name for name in ("vtn_url", "ven_name", "state_dir") if not fields.get(name)]
    if missing:
        flags = {"vtn_url": "--vtn-url", "ven_name": "--ven-name", "state_dir": "--state"}
        raise ConfigError(f"missing {', '.join(flags[m] for m in missing)}")
    config = GatewayConfig(**fields)
    for name in ("poll_interval", "sample_period"):
        if getattr(config, name) <= timedelta(0):
            raise ConfigError(f"{name.replace('_', ' ')} must be positive")
    if config.simulate is not None and config.simulate not in PROFILES:
        raise ConfigError(
            f"unknown household profile {config.simulate!r} (known: {', '.join(PROFILES)})"
        )
    if config.push_port is not None and not 0 < config.push_port < 65536:
        raise ConfigError("--push-port must be a port number (1-65535)")
    if config.sign and (config.cert is None or config.key is None):
        raise ConfigError("--sign needs --cert and --key")
    if (config.cert is None) != (config.key is None):
        raise ConfigError("--cert and --key go together")
    if config.push_port is not None and (config.cert is None or config.ca_file is None):
        raise ConfigError("--push-port needs --cert, --key and --ca-file (mutual TLS)")
    return config


# --- the policy adapter ---------------------------------------------------------------------------


class HouseholdPolicy:
    """The session's policy: `ven.policy.decide` on the preferences and the latest telemetry."""

    def __init__(self, preferences: Preferences, bus: HomeBus) -> None:
        self.preferences = preferences
        self._bus = bus

    def __call__(self, event: Event, now: datetime) -> Decision:
        return policy.decide(event, self.preferences, tuple(self._bus.states().values()), now)


# --- wiring ---------------------------------------------------------------------------------------


def _tls(context: ssl.SSLContext, config: GatewayConfig) -> ssl.SSLContext:
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(tls.TLS12_CIPHERS)
    if config.ca_file is not None:
        context.load_verify_locations(cafile=config.ca_file)
    elif context.verify_mode == ssl.CERT_REQUIRED:
        context.load_default_certs()
    if config.cert is not None and config.key is not None:
        chain = load_certificates(config.cert)
        if not chain:
            raise ConfigError(f"{config.cert}: contains no certificate")
        check_key_matches(load_key(config.key), chain[0], config.key)
        context.load_cert_chain(config.cert, config.key)
    return context


def client_tls(config: GatewayConfig) -> ssl.SSLContext | None:
    if not config.vtn_url.startswith("https:"):
        return None
    # One VTN: a handful of sessions is plenty (a reconnect resumes the last one, certs.tls).
    return _tls(tls.ClientContext(sessions=4), config)


def push_trust(ca_file: Path) -> TrustStore:
    """The CAs of `ca_file`, each scoped as its certificate says (a root: any role)."""
    cas = [
        TrustedCa(c, roles.permitted_roles(c) or frozenset()) for c in load_certificates(ca_file)
    ]
    try:
        return TrustStore(cas)
    except ValueError as err:
        raise ConfigError(f"{ca_file}: {err}") from err


def signing_key(config: GatewayConfig) -> SigningKey | None:
    if not config.sign or config.cert is None or config.key is None:
        return None
    return SigningKey.from_pem(config.key.read_bytes(), config.cert.read_bytes())


def offered_period(sample_period: timedelta) -> timedelta:
    """The fastest sampling the METADATA offers: the sample period in whole seconds (xcal
    durations have none smaller), at least one."""
    return timedelta(seconds=max(1, math.ceil(sample_period.total_seconds())))


def _resources(config: GatewayConfig, home: Household | None) -> tuple[ResourceSpec, ...]:
    period = offered_period(config.sample_period)
    if config.devices:
        return tuple(dataclasses.replace(d, min_period=period) for d in config.devices)
    if home is None:
        raise ConfigError("no devices: give --simulate PROFILE or [[devices]] in --config")
    return tuple(
        ResourceSpec(resource_id=d.device_id, kind=d.kind, min_period=period) for d in home.devices
    )


def build_gateway(
    config: GatewayConfig,
    *,
    clock: Clock = utc_now,
    clock_speed: float = 1.0,
    home: Household | None = None,
) -> Runner:
    """Store, session, VTN client, home bus and policy for `config`, in one Runner.

    `home` is a simulated household built by the caller (the demo's, with its own profiles);
    otherwise `config.simulate` names a profile, or the devices are reached over MQTT.
    """
    if home is None and config.simulate is not None:
        home = PROFILES[config.simulate](clock(), household.synthetic_source())
    resources = _resources(config, home)
    companions = []
    bus: HomeBus
    if config.mqtt_url is not None:
        from ven.han.mqtt import MqttBus, simulate_over_mqtt  # aiomqtt only when it is used

        bus = MqttBus(config.mqtt_url, config.mqtt_gateway)
        if home is not None:
            simulated, url, gateway = home, config.mqtt_url, config.mqtt_gateway
            companions.append(lambda: simulate_over_mqtt(simulated, url, gateway, clock=clock))
    else:
        if home is None:
            raise ConfigError("devices need a home bus: give --mqtt URL (or --simulate PROFILE)")
        # Stepped at least as often as it is sampled, in real time: on a fast simulated clock
        # a 1 s step would be many sample periods of stale telemetry.
        interval = min(timedelta(seconds=1), config.sample_period / clock_speed)
        bus = InProcessBus(home, clock=clock, interval=interval)

    push = None
    transport_address = None
    if config.push_port is not None:
        assert config.ca_file is not None  # make_config checked it
        server = _tls(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), config)
        server.verify_mode = ssl.CERT_REQUIRED
        push = PushEndpoint(config.push_host, config.push_port, server, push_trust(config.ca_file))
        if config.replay_window is not None:
            push = dataclasses.replace(push, replay_window=config.replay_window)
        transport_address = f"https://{config.push_host}:{config.push_port}"

    session_config = SessionConfig(
        ven_name=config.ven_name,
        http_pull_model=push is None,
        transport_address=transport_address,
        xml_signature=config.sign,
        poll_interval=config.poll_interval,
        resources=resources,
        retry=config.retry,
    )
    client = VtnClient(
        config.vtn_url,
        client_tls(config),
        signing_key=signing_key(config),
        vtn_fingerprint=config.vtn_fingerprint,
        **({} if config.replay_window is None else {"replay_window": config.replay_window}),
    )
    store: GatewayStore[SessionState] = GatewayStore(config.store_path, SessionState)
    session = Session(session_config, HouseholdPolicy(config.preferences, bus), store.load())
    return Runner(
        session=session,
        store=store,
        client=client,
        bus=bus,
        preferences=config.preferences,
        resources=resources,
        sample_period=config.sample_period,
        clock=clock,
        clock_speed=clock_speed,
        push=push,
        companions=companions,
    )
