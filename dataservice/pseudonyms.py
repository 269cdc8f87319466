"""Pseudonyms: how a recipient names a prosumer without learning who it is.

A recipient sees `HMAC-SHA256(k_r, prosumer_id)` (130 bits, base32), where `k_r` is a random
32-byte key of that recipient alone (stored wrapped by the master key, `dataservice.crypto`).
Independent keys make pseudonyms unlinkable across recipients: two recipients comparing their
lists learn nothing, and one recipient's pseudonym means nothing to the service when another
recipient presents it. Nothing maps pseudonyms back in the database: the service recomputes
them for the few prosumers that granted this recipient individual access (`resolve`), so a
pseudonym outside that set is simply unknown.

Pure: keys and ids come in; no randomness here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

from dataservice.consent import ProsumerId

PREFIX = "ps-"
_DOMAIN = b"flex4grid/dataservice/pseudonym/v1\x00"
_CHARS = 26  # 26 base32 characters = 130 bits


def pseudonym(key: bytes, prosumer_id: str) -> str:
    if len(key) < 32:
        raise ValueError("a pseudonym key has at least 32 bytes")
    digest = hmac.new(key, _DOMAIN + prosumer_id.encode(), hashlib.sha256).digest()
    return PREFIX + base64.b32encode(digest).decode("ascii").lower()[:_CHARS]


def resolve(key: bytes, presented: str, candidates: Iterable[ProsumerId]) -> ProsumerId | None:
    """The candidate whose pseudonym under `key` is `presented`, or None.

    Every candidate is compared in constant time, so timing does not tell how far it got.
    """
    found: ProsumerId | None = None
    wanted = presented.strip().lower().encode()
    for candidate in candidates:
        if hmac.compare_digest(pseudonym(key, candidate).encode(), wanted):
            found = candidate
    return found
