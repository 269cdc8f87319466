"""Running the VTN as a server: database ready, TLS from files, signals, graceful shutdown.

TLS: the server presents `--tls-cert` (leaf then intermediates) and asks every client for a
certificate that chains to a `--ca-file` CA. The certificate is optional at the TLS layer so
the admin API (bearer tokens) shares the port; the OpenADR edge itself refuses a request without
a trusted VEN certificate (463), and checks role, revocation and rotation on every request.

SIGTERM or SIGINT stops accepting connections, lets requests in flight finish (up to
`shutdown_timeout`), closes the database and exits 0. `--workers N` runs N processes that
share the port (SO_REUSEPORT) and one PostgreSQL database; wake-ups, and the choice of the one
worker that pushes, go through PostgreSQL (vtn/wakeups.py), so any worker may stop or die.
"""

from __future__ import annotations

import asyncio.sslproto
import dataclasses
import importlib
import logging
import multiprocessing
import signal
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.context import SpawnProcess
from pathlib import Path
from types import FrameType
from typing import cast

from aiohttp import web
from sqlalchemy import text

from certs import roles
from certs.files import CaFiles, CertFileError, check_key_matches, load_certificates, load_key
from certs.roles import Role
from certs.tls import DEFAULT_SESSIONS, TLS12_CIPHERS, ClientContext
from certs.trust import TrustedCa, TrustStore
from oadr.signing import SigningKey
from vtn.app import Extension, VtnConfig, build_app
from vtn.config import VtnSettings
from vtn.push import PushConfig
from vtn.store import migrate
from vtn.store.db import POOL_CONNECTIONS, POOL_WAIT_S, Store, normalize_url

log = logging.getLogger("flex4grid.vtn")

DEFAULT_DATABASE = "sqlite:///./flex4grid-vtn.db"

# The parts built on the VTN that `vtn serve --with NAME` loads, named only by where their
# factory lives: the VTN never imports them (imports point from them to the VTN).
EXTENSIONS: dict[str, str] = {
    "market": "flex4grid.serving:market",
    "forecast": "flex4grid.serving:forecast",
    "data": "flex4grid.serving:data",
    "console": "flex4grid.serving:console",
}
_CLIENT_ROLES = frozenset([Role.VEN, Role.AGGREGATOR])


class ServeError(Exception):
    """A configuration the server will not start with; the message is one line for the user."""


@dataclass(frozen=True)
class ServeOptions:
    database_url: str = DEFAULT_DATABASE
    host: str = "127.0.0.1"
    port: int = 8080
    tls_cert: Path | None = None
    tls_key: Path | None = None
    ca_files: tuple[Path, ...] = ()
    insecure_http: bool = False
    settings: VtnSettings = dataclasses.field(default_factory=VtnSettings)
    workers: int = 1
    shutdown_timeout: float = 10.0
    extensions: tuple[str, ...] = ()  # names in EXTENSIONS
    event_loop: str = "auto"  # one of EVENT_LOOPS
    db_connections: int = POOL_CONNECTIONS  # per worker, PostgreSQL
    db_wait_s: float = POOL_WAIT_S
    push_tls_sessions: int = DEFAULT_SESSIONS  # per worker; certs.tls.SessionCache

    @property
    def scheme(self) -> str:
        return "http" if self.insecure_http else "https"


def configure_logging() -> None:
    """Plain-text logs on stderr unless the host application configured logging already."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )


def check(options: ServeOptions) -> None:
    """Refuse an unsafe or impossible configuration before anything starts."""
    tls_given = options.tls_cert is not None or options.tls_key is not None
    if options.insecure_http and (tls_given or options.ca_files):
        raise ServeError("--insecure-http cannot be combined with --tls-cert/--tls-key/--ca-file")
    if not options.insecure_http and (
        options.tls_cert is None or options.tls_key is None or not options.ca_files
    ):
        raise ServeError(
            "refusing to start without TLS: give --tls-cert, --tls-key and --ca-file "
            "(or --insecure-http for plain HTTP, development only)"
        )
    if options.workers < 1:
        raise ServeError("--workers must be at least 1")
    if options.workers > 1 and not normalize_url(options.database_url).startswith("postgresql"):
        raise ServeError("--workers above 1 needs a PostgreSQL --db URL (SQLite is one process)")
    if options.db_connections < 2:
        raise ServeError("--db-connections must be at least 2")
    if not options.db_wait_s > 0:
        raise ServeError("--db-wait must be more than 0 seconds")
    if options.push_tls_sessions < 0:
        raise ServeError("--push-tls-sessions must be 0 or more")


def connections_needed(options: ServeOptions) -> int:
    """PostgreSQL connections `vtn serve` may open at once: each worker's pool, plus the one it
    keeps for wake-ups and its push shards (`vtn.wakeups`) when there are several workers."""
    dedicated = 1 if options.workers > 1 else 0
    return options.workers * (options.db_connections + dedicated)


def connection_shortfall(
    needed: int, max_connections: int, reserved: int, others: int
) -> str | None:
    """Why the server may refuse connections under load (None: it has room for all of ours)."""
    room = max_connections - reserved - others
    if needed <= room:
        return None
    return (
        f"PostgreSQL may refuse connections under load: this VTN may open {needed} "
        f"(workers x (--db-connections + 1 when several)), the server has room for {room} "
        f"(max_connections {max_connections}, {reserved} reserved, {others} in use by others); "
        f"raise max_connections or lower --db-connections"
    )


async def check_connection_budget(store: Store, options: ServeOptions) -> None:
    """Log a warning at startup when PostgreSQL's max_connections cannot cover our pools."""
    if store.is_sqlite:
        return
    async with store.engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT current_setting('max_connections')::int, "
                    "current_setting('superuser_reserved_connections')::int, "
                    "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
                    " AND pid <> pg_backend_pid())"
                )
            )
        ).one()
    shortfall = connection_shortfall(connections_needed(options), row[0], row[1], row[2])
    if shortfall is not None:
        log.warning("%s", shortfall)


async def prepare_database(store: Store) -> None:
    """Bring the schema up to date before serving: `alembic upgrade head`, a no-op at head."""
    await migrate.upgrade(store.url)


def trust_store(ca_files: tuple[Path, ...]) -> TrustStore:
    """The CAs whose client certificates we accept, from PEM files of one or more certificates.

    A CA read from a CA directory (`ca.pem` beside its `crl.pem`) gets its CRL and rotations
    followed. A CA certificate without a role constraint vouches for the client roles a VTN
    accepts (VEN, aggregator).
    """
    cas: list[TrustedCa] = []
    for path in ca_files:
        certificates = load_certificates(path)
        if not certificates:
            raise CertFileError(path, "contains no certificate")
        ca_dir = CaFiles(path.parent)
        for certificate in certificates:
            published = (
                ca_dir.crl.exists()
                and ca_dir.cert.exists()
                and load_certificates(ca_dir.cert)[:1] == [certificate]
            )
            scope = roles.permitted_roles(certificate)
            cas.append(
                TrustedCa(
                    certificate,
                    frozenset(scope)
                    if scope is not None
                    else frozenset([Role.VEN, Role.AGGREGATOR]),
                    path.parent if published else None,
                )
            )
    try:
        return TrustStore(cas)
    except ValueError as err:
        raise ServeError(f"--ca-file: {err} (add the root CA's certificate)") from None


def server_ssl_context(cert: Path, key: Path, trust: TrustStore) -> ssl.SSLContext:
    """As `certs.tls.server_context`, from any file names, with the client certificate optional
    at the TLS layer (see the module docstring)."""
    chain = load_certificates(cert)
    if not chain:
        raise CertFileError(cert, "contains no certificate")
    check_key_matches(load_key(key), chain[0], key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.verify_mode = ssl.CERT_OPTIONAL
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.load_verify_locations(cadata=trust.pem_bundle())
    context.load_cert_chain(cert, key)
    return context


def _signing_key(cert: Path, key: Path) -> SigningKey:
    private = load_key(key)
    chain = load_certificates(cert)
    return SigningKey(key=private, certificate=chain[0])


@dataclass(frozen=True)
class _Prepared:
    config: VtnConfig
    ssl_context: ssl.SSLContext | None


def _prepare(options: ServeOptions) -> _Prepared:
    if options.insecure_http:
        settings = dataclasses.replace(options.settings, insecure=True)
        return _Prepared(VtnConfig(settings, options.database_url, trust=None), None)
    assert options.tls_cert is not None and options.tls_key is not None
    trust = trust_store(options.ca_files)
    context = server_ssl_context(options.tls_cert, options.tls_key, trust)
    # Replies to VENs that sign (or all replies, with --require-signatures) are signed with
    # the VTN's own TLS identity.
    settings = dataclasses.replace(
        options.settings, signing_key=_signing_key(options.tls_cert, options.tls_key)
    )
    # Pushing to a VEN, the VTN is the TLS client: it presents the same identity and checks the
    # VEN's server certificate against the same CAs.
    tls = client_ssl_context(options.tls_cert, options.tls_key, trust, options.push_tls_sessions)
    push = PushConfig(tls=tls)
    return _Prepared(VtnConfig(settings, options.database_url, trust=trust, push=push), context)


def client_ssl_context(
    cert: Path, key: Path, trust: TrustStore, sessions: int = DEFAULT_SESSIONS
) -> ClientContext:
    # CERT_REQUIRED and check_hostname; resumes up to `sessions` TLS sessions (vtn.push)
    context = ClientContext(sessions)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.load_verify_locations(cadata=trust.pem_bundle())
    context.load_cert_chain(cert, key)
    return context


def serve(options: ServeOptions, *, reuse_port: bool = False, worker: bool = False) -> None:
    """Run one server process until SIGTERM/SIGINT; returns after a graceful shutdown. A
    `worker` of `run` stops on SIGTERM only: Ctrl-C reaches the whole process group, and the
    parent turns it into one SIGTERM per worker (a second signal would cut the shutdown)."""
    prepared = _prepare(options)
    if options.insecure_http:
        log.warning(
            "*** PLAIN HTTP (--insecure-http): no TLS, no client certificates; VENs are known "
            "by the venID they claim. For development only. ***"
        )

    async def app() -> web.Application:
        store = Store(
            options.database_url, connections=options.db_connections, wait_s=options.db_wait_s
        )
        await prepare_database(store)
        if options.workers == 1:
            await check_connection_budget(store, options)
        config = dataclasses.replace(prepared.config, extensions=load_extensions(options, store))
        built = build_app(config, store=store)
        url = f"{options.scheme}://{options.host}:{options.port}"
        log.info("VTN %s serving on %s (database %s, registration %s)",
                 options.settings.vtn_id, url, store.engine.url.render_as_string(),
                 options.settings.registration.value)  # fmt: skip
        return built

    _small_tls_read_buffers()
    loop = _event_loop(options.event_loop)
    if worker:
        loop.add_signal_handler(signal.SIGTERM, _graceful_exit)
    web.run_app(
        app(),
        loop=loop,
        handle_signals=not worker,
        host=options.host,
        port=options.port,
        ssl_context=prepared.ssl_context,
        reuse_port=reuse_port,
        shutdown_timeout=options.shutdown_timeout,
        print=None,
        access_log=None,
    )
    log.info("VTN stopped")


# asyncio gives every TLS connection a 256 KiB read buffer (`SSLProtocol.max_size`), which was
# most of the ~300 KB a connected VEN cost the VTN (issue 11). A TLS record holds at most 16 KiB of
# plaintext, and a larger body is simply read in more than one step.
TLS_READ_BUFFER = 32 * 1024


EVENT_LOOPS = ("auto", "uvloop", "asyncio")


def _event_loop(name: str) -> asyncio.AbstractEventLoop:
    """uvloop where installed ("auto"): its TLS and socket handling in C cut the VTN's CPU per
    request (issue 11, benchmarks/README.md); asyncio's own loop otherwise."""
    if name != "asyncio":
        try:
            import uvloop
        except ImportError:
            if name == "uvloop":
                raise ServeError("--loop uvloop: uvloop is not installed") from None
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def _small_tls_read_buffers() -> None:
    asyncio.sslproto.SSLProtocol.max_size = TLS_READ_BUFFER


ExtensionFactory = Callable[[Store, ServeOptions], Extension]


def load_extensions(options: ServeOptions, store: Store) -> tuple[Extension, ...]:
    """Build the extensions `options.extensions` names; a factory refuses with ServeError."""
    built: list[Extension] = []
    for name in options.extensions:
        if name not in EXTENSIONS:
            raise ServeError(f"unknown part {name!r}; known: {', '.join(EXTENSIONS)}")
        module_name, _, factory_name = EXTENSIONS[name].partition(":")
        factory = cast(
            ExtensionFactory, getattr(importlib.import_module(module_name), factory_name)
        )
        built.append(factory(store, options))
    return tuple(built)


def _worker(options: ServeOptions) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent's to handle (`serve`)
    configure_logging()  # a spawned process starts with none
    serve(options, reuse_port=True, worker=True)


def _graceful_exit() -> None:
    raise web.GracefulExit()


async def _prepare_database_once(options: ServeOptions) -> None:
    store = Store(options.database_url)
    try:
        await prepare_database(store)
        await check_connection_budget(store, options)
    finally:
        await store.close()


# A worker killed by a signal (kill -9, the kernel's OOM killer, a crash in C) is replaced; the
# others carry on meanwhile, and SO_REUSEPORT hands new connections to the live ones. One that
# dies sooner than `RESPAWN_MIN_UPTIME_S` after it started is replaced after a pause that
# doubles each time (up to `RESPAWN_MAX_PAUSE_S`), so a worker that cannot stay up does not
# spin. A worker that exits by itself is not replaced: 0 means it was asked to stop, an error
# code is a failure it reported (at startup: database away, a part that refuses to start), and
# `run` raises it once the others have stopped, as it always did.
RESPAWN_MIN_UPTIME_S = 10.0
RESPAWN_MAX_PAUSE_S = 30.0


def run(options: ServeOptions) -> None:
    check(options)
    if options.workers == 1:
        serve(options)
        return
    try:
        _prepare(options)  # fail here, once, on bad files rather than in every worker
        asyncio.run(_prepare_database_once(options))  # not N racing schema changes
    except KeyboardInterrupt:  # Ctrl-C before any worker started: nothing to stop
        log.info("stopped before serving")
        return
    spawn = multiprocessing.get_context("spawn")
    workers: list[SpawnProcess] = []  # by slot: the process serving it now
    started_at: list[float] = []
    quick_deaths = [0] * options.workers  # by slot: deaths in a row before the minimum uptime
    replace_at: dict[int, float] = {}  # slot -> when (time.monotonic()) its replacement starts
    seen_dead: set[int] = set()  # pids whose end was handled
    replaced: set[int] = set()  # pids of those killed and replaced (or due to be, at a stop)
    told_to_stop: set[int] = set()  # pids sent SIGTERM: once, a second one cuts its shutdown
    stopping = False

    def start(slot: int) -> None:
        worker = spawn.Process(target=_worker, args=(options,), daemon=False)
        worker.start()
        if slot == len(workers):
            workers.append(worker)
            started_at.append(time.monotonic())
        else:
            workers[slot], started_at[slot] = worker, time.monotonic()

    def stop_all() -> None:
        for worker in workers:
            if worker.pid is not None and worker.pid not in told_to_stop and worker.is_alive():
                told_to_stop.add(worker.pid)
                worker.terminate()  # SIGTERM: each worker shuts down gracefully

    def forward(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        replace_at.clear()
        stop_all()

    def handle_end(slot: int, worker: SpawnProcess, now: float) -> None:
        code = worker.exitcode
        if code is None or worker.pid is None or worker.pid in seen_dead:
            return
        seen_dead.add(worker.pid)
        if stopping or code >= 0 or -code in (signal.SIGTERM, signal.SIGINT):
            return  # stopped on request, or failed by itself: not replaced (see above)
        lived_s = now - started_at[slot]
        quick_deaths[slot] = quick_deaths[slot] + 1 if lived_s < RESPAWN_MIN_UPTIME_S else 0
        quick = quick_deaths[slot]
        pause_s = min(2.0 ** (quick - 1), RESPAWN_MAX_PAUSE_S) if quick else 0.0
        log.warning("worker %d was killed by %s after %.1f s; starting another in %g s",
                    worker.pid, signal.Signals(-code).name, lived_s, pause_s)  # fmt: skip
        replace_at[slot] = now + pause_s
        replaced.add(worker.pid)

    # Before the workers start: a Ctrl-C from now on stops them, however far they got.
    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    for slot in range(options.workers):
        start(slot)
    try:
        while True:
            now = time.monotonic()
            for slot, worker in enumerate(workers):
                if slot in replace_at:
                    if now >= replace_at[slot]:
                        del replace_at[slot]
                        start(slot)
                else:
                    handle_end(slot, worker, now)
            if stopping:
                stop_all()  # also one that was starting as the signal came
            # Not "alive": one that died since handle_end() still has its end to be handled, and
            # its sentinel, ready, brings the loop straight back here.
            unhandled = [worker for worker in workers if worker.pid not in seen_dead]
            if not unhandled and not replace_at:
                break
            soonest = min(replace_at.values(), default=None)
            timeout = None if soonest is None else max(0.0, soonest - time.monotonic())
            wait([worker.sentinel for worker in unhandled], timeout)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    failed = [
        w.exitcode
        for w in workers
        # A worker still starting when Ctrl-C came (before it ignores SIGINT) dies of it.
        if w.pid not in replaced and w.exitcode not in (0, -signal.SIGTERM, -signal.SIGINT)
    ]
    if failed:
        raise ServeError(f"{len(failed)} of {len(workers)} workers failed (exit {failed})")
