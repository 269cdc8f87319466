"""Codec speed: ours against OpenLEADR's on the same messages, in the same run.

    .venv/bin/python -m benchmarks.codec [--seconds 0.5]

Receive path (decode + schema validation + signature verification + replay check):
  ours       oadr.codec.receive(data, now=..., replay_guard=...)
  OpenLEADR  messaging.validate_xml_schema + parse_message + validate_xml_signature
             (what its VTN does with every signed request)
Send path (encode + sign):
  ours       oadr.codec.encode(payload, signing_key=..., now=..., nonce=...)
  OpenLEADR  messaging.create_message(type, cert=..., key=..., **fields)
Both receivers read the same bytes (signed by us; each verifies the other's signatures, see
tests/interop). Printed: microseconds per message and the ratio OpenLEADR / ours (>1: we are
faster). Goal of issue 3: receive at least 3x faster than OpenLEADR on signed messages.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.keys import KEY_TYPES, SigningMaterial, make_signing_material
from oadr import codec, signing
from oadr.model import Payload

# Messages of realistic size: the poll every VEN sends, an event, telemetry, an opt-in.
MESSAGES = (
    "oadrPoll/basic",
    "oadrDistributeEvent/load-dispatch",
    "oadrUpdateReport/telemetry-usage",
    "oadrCreatedEvent/opt-in-and-out",
)


def per_call_us(function: Callable[[], object], seconds: float) -> float:
    """Median of five timed batches, each run until `seconds / 5` has passed."""
    function()  # warm caches (schema compile, imports)
    batch_times = []
    budget = seconds / 5
    for _ in range(5):
        calls = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < budget or calls == 0:
            function()
            calls += 1
        batch_times.append(elapsed / calls)
    return statistics.median(batch_times) * 1e6


def _cycle(items: Sequence[bytes]) -> Callable[[], bytes]:
    iterator = itertools.cycle(items)
    return lambda: next(iterator)


class _Receiver:
    """Our receive path over pre-signed messages, replay check included: the guard is renewed
    each time the list wraps around, as OpenLEADR's nonce cache is cleared on its side."""

    def __init__(self, messages: Sequence[bytes], now: datetime) -> None:
        self.messages, self.now, self.index = messages, now, 0
        self.guard = signing.ReplayGuard(window=timedelta(hours=1))

    def __call__(self) -> object:
        if self.index == len(self.messages):
            self.index = 0
            self.guard = signing.ReplayGuard(window=timedelta(hours=1))
        data = self.messages[self.index]
        self.index += 1
        return codec.receive(data, now=self.now, replay_guard=self.guard)


def _other_paths(
    messaging: Any,
    payload: Payload,
    material: SigningMaterial,
    signed: Sequence[bytes],
    now: datetime,
) -> tuple[Callable[[], object], Callable[[], object], Callable[[], object]]:
    from tests.interop.openleadr_bridge import to_openleadr

    theirs_next = _cycle(signed)
    message_type, fields = to_openleadr(payload)

    def theirs_receive() -> object:
        data = theirs_next()
        tree = messaging.validate_xml_schema(data)
        messaging.parse_message(data)
        messaging.validate_xml_signature(tree)
        messaging.NONCE_CACHE.clear()  # we cycle through the same messages
        return tree

    def ours_send() -> object:
        return codec.encode(
            payload, signing_key=material.signing_key, now=now, nonce=uuid.uuid4().hex
        )

    def theirs_send() -> object:
        return messaging.create_message(
            message_type, cert=material.cert_pem, key=material.key_pem, **fields
        )

    return theirs_receive, ours_send, theirs_send


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args(argv)

    from openleadr import messaging

    from tests.payload_examples import REPRESENTATIVE_PAYLOADS

    # OpenLEADR keeps a 5 s replay window in a module global; widen it so pre-made messages stay
    # acceptable for the whole run (it only makes their side cheaper, not ours).
    messaging.REPLAY_PROTECT_MAX_TIME_DELTA = timedelta(hours=1)
    payloads: dict[str, Payload] = {name: REPRESENTATIVE_PAYLOADS[name] for name in MESSAGES}

    print(f"{'message':34} {'key':8} {'path':16} {'ours µs':>10} {'OpenLEADR µs':>13} {'ratio':>7}")
    ratios: dict[str, list[float]] = {"receive": [], "send": []}
    for key_type in KEY_TYPES:
        material = make_signing_material(key_type)
        for name, payload in payloads.items():
            now = datetime.now(UTC)
            signed = [
                codec.encode(
                    payload, signing_key=material.signing_key, now=now, nonce=uuid.uuid4().hex
                )
                for _ in range(4000)
            ]
            ours_receive = _Receiver(signed, now)
            theirs_receive, ours_send, theirs_send = _other_paths(
                messaging, payload, material, signed, now
            )
            for path, ours, theirs in (
                ("receive (signed)", ours_receive, theirs_receive),
                ("send (signed)", ours_send, theirs_send),
            ):
                ours_us = per_call_us(ours, args.seconds)
                theirs_us = per_call_us(theirs, args.seconds)
                ratio = theirs_us / ours_us
                ratios["receive" if path.startswith("receive") else "send"].append(ratio)
                print(
                    f"{name:34} {key_type:8} {path:16} {ours_us:10.1f} {theirs_us:13.1f} "
                    f"{ratio:6.1f}x",
                    flush=True,
                )
    for path, values in ratios.items():
        print(f"geometric mean ratio, {path}: {statistics.geometric_mean(values):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
