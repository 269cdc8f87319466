"""A free TCP port on 127.0.0.1 for a server a test starts where port 0 cannot be used (another
process, a restart on the same address).

Not from the kernel's bind(0): that hands out ports from the ephemeral range (32768-60999 on
Linux), which every outgoing connection on the machine draws from too, so with the suite's
parallel workers (and others' runs) a connection could take the port between the probe and the
server's bind ("address already in use"). These come from below that range, at random, so only
another test picking the same port could take it, and the probe turns down any port in use.
"""

from __future__ import annotations

import random
import socket

LOWEST, HIGHEST = 20000, 32767
_pick = random.SystemRandom()  # not the `random` that Hypothesis seeds alike in every worker


def free_port() -> int:
    for _ in range(200):
        port = _pick.randint(LOWEST, HIGHEST)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:  # in use, or still in TIME_WAIT
                continue
        return port
    raise RuntimeError(f"no free TCP port on 127.0.0.1 in {LOWEST}-{HIGHEST}")
