"""What a new TLS connection costs on this machine, at each end: the floor under a push fan-out.

    .venv/bin/python -m benchmarks.tls_handshakes [--connections 2000] [--key p256|rsa2048]

A push to a VEN that is its own host is a new connection (issue 11: one event to 10,000 push
VENs within 10 s). Measured here, one exchange per connection (a small HTTP POST and its answer),
client and server in processes of their own on uvloop, as the VTN runs; CPU per connection:

  plain TCP        no TLS: the baseline
  TLS, full        mutual TLS as the VTN pushes: the VTN's client context (vtn.serve), the
                   endpoint's server context requiring a client certificate (benchmarks.load)
  TLS, resumed     the same connections again, each offering the session of its first one
                   (certs.tls.ClientContext.resuming); the server issued the tickets
  openssl s_time   full handshakes by the same TLS library with no Python at all: `openssl
                   s_time -new` against `openssl s_server -Verify`, when the openssl command
                   uses the library Python's ssl module does (its `-reuse` is left out: with
                   TLS 1.3 it offers a session before the server's ticket came, and so measures
                   full handshakes again)

Then the floor: how long 10,000 new connections take at both ends on this machine's cores, with
nothing else to do (no HTTP, no XML, no database, no load generator).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.load import pki, servers
from benchmarks.load.push import server_context
from certs.keys import KeyType
from certs.tls import ClientContext
from vtn.serve import client_ssl_context, trust_store

CONCURRENCY = 32
REQUEST = b"POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello"
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
FAN_OUT = 10_000  # VENs in the floor arithmetic


@dataclass(frozen=True)
class Row:
    label: str
    connections: int
    client_ms: float  # CPU per connection
    server_ms: float
    per_s: float  # connections per second of wall time (client and server on the same box)

    @property
    def both_ms(self) -> float:
        return self.client_ms + self.server_ms


# --- the server process ------------------------------------------------------------------------


def _serve(material: pki.BenchPki, tls: bool, batch: int, ports: Any, cpu: Any) -> None:
    """Accept connections; after every `batch` of them, report this process's CPU seconds."""
    import uvloop

    context = None
    if tls:
        endpoint = material.push_endpoint
        context = server_context(endpoint.chain, endpoint.key, material.root_pem)

    async def main() -> None:
        served = 0
        start = time.process_time()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal served, start
            try:
                await reader.readuntil(b"hello")
                writer.write(ANSWER)
                await writer.drain()
            finally:
                writer.close()
            served += 1
            if served % batch == 0:
                now = time.process_time()
                cpu.put(now - start)
                start = now

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context, backlog=1024)
        ports.put(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()  # until the parent terminates this process

    uvloop.run(main())


# --- the client ---------------------------------------------------------------------------------


async def _connect(port: int, context: ssl.SSLContext | None, origins: Sequence[str]) -> float:
    """One connection per origin, CONCURRENCY at a time, each offering the session of the last
    connection to its origin (none the first time); returns the wall seconds."""
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def one(origin: str) -> None:
        async with semaphore:
            if isinstance(context, ClientContext):
                with context.resuming(origin):
                    await _exchange(port, context)
            else:
                await _exchange(port, context)

    started = time.perf_counter()
    await asyncio.gather(*(one(origin) for origin in origins))
    return time.perf_counter() - started


async def _exchange(port: int, context: ssl.SSLContext | None) -> None:
    hostname = "127.0.0.1" if context is not None else None
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname=hostname
    )
    writer.write(REQUEST)
    await reader.read()  # to EOF: the server closes
    writer.close()


def _measure(material: pki.BenchPki, tls: bool, count: int) -> list[Row]:
    """Plain TCP (tls False): one row. TLS: full handshakes, then the same origins resumed."""
    import uvloop

    spawn = multiprocessing.get_context("spawn")
    ports, cpu = spawn.Queue(), spawn.Queue()
    server = spawn.Process(target=_serve, args=(material, tls, count, ports, cpu))
    server.start()
    try:
        port = ports.get(timeout=60)
        context = None
        if tls:
            context = client_ssl_context(
                material.vtn.chain, material.vtn.key, trust_store(list(material.ca_files))
            )
        origins = [f"https://ven-{i}.example:443" for i in range(count)]
        rows = []
        for label in ("TLS, full", "TLS, resumed") if tls else ("plain TCP",):
            before = time.process_time()
            wall = uvloop.run(_connect(port, context, origins))
            client_s = time.process_time() - before
            server_s = cpu.get(timeout=120)
            rows.append(
                Row(label, count, 1000 * client_s / count, 1000 * server_s / count, count / wall)
            )
        if isinstance(context, ClientContext) and context.sessions.offered != count:
            raise RuntimeError(
                f"{context.sessions.offered} of {count} connections offered a session"
            )
        return rows
    finally:
        server.terminate()
        server.join(timeout=10)


# --- openssl s_time: the library alone ----------------------------------------------------------


def _openssl_row(material: pki.BenchPki, seconds: float) -> list[Row]:
    binary = shutil.which("openssl")
    if binary is None:
        print("openssl command not found: the library-alone row is skipped")
        return []
    version = subprocess.run([binary, "version"], capture_output=True, text=True).stdout.strip()
    if version.split()[:2] != ssl.OPENSSL_VERSION.split()[:2]:
        print(f"openssl command is {version!r}, Python's ssl uses {ssl.OPENSSL_VERSION!r}: skipped")
        return []
    endpoint, vtn = material.push_endpoint, material.vtn
    with tempfile.TemporaryDirectory() as directory:
        ca_file = Path(directory) / "cas.pem"
        ca_file.write_bytes(b"".join(path.read_bytes() for path in material.ca_files))
        port = servers.free_port()
        server = subprocess.Popen(
            [binary, "s_server", "-quiet", "-www", "-accept", f"127.0.0.1:{port}",
             "-cert", str(endpoint.chain), "-key", str(endpoint.key),
             "-Verify", "3", "-CAfile", str(ca_file)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            time.sleep(0.5)
            server_before = servers.cpu_s(server.pid)
            children_before = os.times()
            run = subprocess.run(
                [binary, "s_time", "-connect", f"127.0.0.1:{port}", "-new",
                 "-cert", str(vtn.chain), "-key", str(vtn.key), "-CAfile", str(ca_file),
                 "-time", f"{seconds:g}"],
                capture_output=True, text=True, timeout=seconds + 60,
            )  # fmt: skip
            children = os.times()
            server_s = servers.cpu_s(server.pid) - server_before
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=10)
    client_s = (children.children_user - children_before.children_user) + (
        children.children_system - children_before.children_system
    )
    match = re.search(r"(\d+) connections in (\d+) real seconds", run.stdout)
    if match is None:
        print(f"openssl s_time printed no count ({run.stderr.strip()[:200]}): skipped")
        return []
    count, wall = int(match.group(1)), max(1, int(match.group(2)))
    label = "openssl s_time, full"
    return [Row(label, count, 1000 * client_s / count, 1000 * server_s / count, count / wall)]


# --- report --------------------------------------------------------------------------------------


def table(rows: Sequence[Row], baseline: Row) -> str:
    lines = [
        "| connection | connections | client ms CPU | server ms CPU | both | x plain TCP | per s |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.label} | {row.connections:,} | {row.client_ms:.3f} | {row.server_ms:.3f} | "
            f"{row.both_ms:.3f} | {row.both_ms / baseline.both_ms:.1f} | {row.per_s:,.0f} |"
        )
    return "\n".join(lines)


def floor_lines(rows: Sequence[Row], cores: int) -> list[str]:
    lines = []
    for row in rows:
        if not row.label.startswith("TLS"):
            continue
        cpu_s = FAN_OUT * row.both_ms / 1000
        lines.append(
            f"{row.label}: {FAN_OUT:,} new connections take {cpu_s:.1f} CPU-s at both ends, "
            f"at least {cpu_s / cores:.1f} s on {cores} cores with nothing else running"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.tls_handshakes", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--connections", type=int, default=2000, help="per measurement")
    parser.add_argument("--key", choices=[k.value for k in KeyType], default=KeyType.P256.value)
    parser.add_argument("--seconds", type=float, default=4.0, help="per openssl s_time run")
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    print(f"TLS handshakes, {args.key} certificates, {ssl.OPENSSL_VERSION}, {cores} cores; "
          f"client and server share the machine")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="flex4grid-tls-") as directory:
        material = pki.make(Path(directory), 1, KeyType(args.key), processes=1)
        plain = _measure(material, False, args.connections)
        rows = plain + _measure(material, True, args.connections)
        rows += _openssl_row(material, args.seconds)
    print(table(rows, plain[0]))
    print("\n".join(floor_lines(rows, cores)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
