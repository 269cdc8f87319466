"""Encryption at rest: envelope encryption with AES-256-GCM (`cryptography`).

    master key (file or environment, never in the database)
      └─ wraps each prosumer's data key and each recipient's pseudonym key
           └─ a prosumer's data key encrypts its day blobs

Every ciphertext is bound by its associated data to what it is (`prosumer-key/<id>`,
`day/<id>/<date>`), so rows copied between prosumers or days fail to decrypt instead of
showing someone else's data. Nonces are random 96-bit values: a prosumer key encrypts a few
hundred blobs a year, far below the 2^32 messages where random GCM nonces become a concern.
Erasing a prosumer deletes its wrapped data key: every copy of its blobs (backups, dead rows
not yet vacuumed) is then noise.

Not pure (it draws random keys and nonces) but does no I/O; loading the master key is
`dataservice.keys`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import date
from functools import cached_property, lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
_NONCE = 12


class CryptoError(Exception):
    """A ciphertext that does not open: wrong key, tampered, or bound to something else."""


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(hashes.SHA256(), KEY_BYTES, salt=None, info=b"flex4grid/data/" + purpose).derive(
        master
    )


@dataclass(frozen=True)
class MasterKey:
    """The service's key-encryption key. `key_id` names it without revealing it."""

    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) != KEY_BYTES:
            raise CryptoError(f"the master key must be {KEY_BYTES} bytes")

    def __repr__(self) -> str:  # never print the secret, not even in a traceback
        return f"MasterKey(key_id={self.key_id!r})"

    @property
    def key_id(self) -> str:
        return hashlib.sha256(_derive(self.secret, b"key-id")).hexdigest()[:16]

    @cached_property
    def _wrapping_key(self) -> bytes:
        return _derive(self.secret, b"wrap")

    def wrap(self, key: bytes, label: str) -> bytes:
        return seal(self._wrapping_key, key, f"wrapped/{label}".encode())

    def unwrap(self, wrapped: bytes, label: str) -> bytes:
        return open_sealed(self._wrapping_key, wrapped, f"wrapped/{label}".encode())


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(_NONCE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    if len(sealed) < _NONCE + 16:
        raise CryptoError("ciphertext too short")
    try:
        return AESGCM(key).decrypt(sealed[:_NONCE], sealed[_NONCE:], aad)
    except InvalidTag:
        raise CryptoError("ciphertext does not open with this key and binding") from None


class Opener:
    """`open_sealed` for many ciphertexts under one key (the cipher is set up once)."""

    def __init__(self, key: bytes) -> None:
        self._cipher = AESGCM(key)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        if len(sealed) < _NONCE + 16:
            raise CryptoError("ciphertext too short")
        try:
            return self._cipher.decrypt(sealed[:_NONCE], sealed[_NONCE:], aad)
        except InvalidTag:
            raise CryptoError("ciphertext does not open with this key and binding") from None


def prosumer_key_label(prosumer_id: str) -> str:
    return f"prosumer-key/{prosumer_id}"


def recipient_key_label(recipient_id: str) -> str:
    return f"pseudonym-key/{recipient_id}"


def day_aad(prosumer_id: str, day: date) -> bytes:
    return b"day/" + prosumer_id.encode() + _iso(day)


@lru_cache(maxsize=4096)  # a few days, for every prosumer of an aggregate
def _iso(day: date) -> bytes:
    return b"/" + day.isoformat().encode()
