"""OpenLEADR's VTN (`openleadr.OpenADRServer`) as the benchmark's reference, in its own process.

    python -m benchmarks.load.openleadr_vtn --port P --manifest vens.json --tls-cert C --tls-key K
        --ca-file ROOT [--sign]

Mutual TLS with the same PKI as ours; VENs are known from an in-memory `ven_lookup` (venID =
the VEN's name, its certificate fingerprint, a registration id), which is what OpenLEADR offers:
it keeps no registrations of its own, so it is not durable. `--sign`: replies are signed with
the VTN's key and incoming signatures verified (`verify_message_signatures=True`); without it
neither (OpenLEADR cannot accept unsigned messages from a TLS client otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from pathlib import Path
from typing import Any

from openleadr import OpenADRServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--tls-cert", required=True)
    parser.add_argument("--tls-key", required=True)
    parser.add_argument("--ca-file", required=True)
    parser.add_argument("--sign", action="store_true")
    args = parser.parse_args()
    lookup = {
        item["name"]: {
            "ven_id": item["name"],
            "ven_name": item["name"],
            "fingerprint": item["fingerprint"],
            "registration_id": "reg-" + item["name"],
        }
        for item in json.loads(args.manifest.read_text())
    }

    def ven_lookup(ven_id: str) -> dict[str, Any] | None:
        return lookup.get(ven_id)

    server = OpenADRServer(
        vtn_id="bench-vtn",
        cert=args.tls_cert if args.sign else None,
        key=args.tls_key if args.sign else None,
        http_cert=args.tls_cert,
        http_key=args.tls_key,
        http_ca_file=args.ca_file,
        http_host="127.0.0.1",
        http_port=args.port,
        ven_lookup=ven_lookup,
        show_fingerprint=False,
        verify_message_signatures=args.sign,
    )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await server.run()
        await stop.wait()
        await server.stop()

    asyncio.run(run())


if __name__ == "__main__":
    main()
