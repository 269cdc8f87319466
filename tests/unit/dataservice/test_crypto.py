"""Envelope encryption and the master key's home."""

from __future__ import annotations

import base64
import os
from datetime import date
from pathlib import Path

import pytest

from dataservice import crypto, keys
from dataservice.crypto import CryptoError, MasterKey


def test_a_wrapped_key_opens_only_with_its_master_and_label() -> None:
    master, other = MasterKey(crypto.new_key()), MasterKey(crypto.new_key())
    data_key = crypto.new_key()
    wrapped = master.wrap(data_key, crypto.prosumer_key_label("p-1"))

    assert data_key not in wrapped
    assert master.unwrap(wrapped, crypto.prosumer_key_label("p-1")) == data_key
    with pytest.raises(CryptoError):
        other.unwrap(wrapped, crypto.prosumer_key_label("p-1"))
    with pytest.raises(CryptoError):
        master.unwrap(wrapped, crypto.prosumer_key_label("p-2"))


def test_a_day_blob_moved_to_another_day_or_prosumer_does_not_open() -> None:
    key = crypto.new_key()
    sealed = crypto.seal(key, b"readings", crypto.day_aad("p-1", date(2026, 1, 1)))
    assert crypto.open_sealed(key, sealed, crypto.day_aad("p-1", date(2026, 1, 1))) == b"readings"
    for aad in (crypto.day_aad("p-1", date(2026, 1, 2)), crypto.day_aad("p-2", date(2026, 1, 1))):
        with pytest.raises(CryptoError):
            crypto.open_sealed(key, sealed, aad)


def test_a_tampered_blob_does_not_open() -> None:
    key = crypto.new_key()
    sealed = bytearray(crypto.seal(key, b"readings", b"aad"))
    sealed[-1] ^= 1
    with pytest.raises(CryptoError):
        crypto.open_sealed(key, bytes(sealed), b"aad")


def test_the_master_key_never_shows_in_its_repr() -> None:
    master = MasterKey(crypto.new_key())
    assert master.secret.hex() not in repr(master) and master.key_id in repr(master)


def test_a_key_file_is_private_and_loads(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    made = keys.create_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert keys.load(path).key_id == made.key_id
    assert keys.load(environ={keys.KEY_FILE_ENV: str(path)}).key_id == made.key_id


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    keys.create_file(path)
    os.chmod(path, 0o644)
    with pytest.raises(CryptoError, match="chmod 600"):
        keys.load(path)


def test_the_key_from_the_environment() -> None:
    secret = crypto.new_key()
    loaded = keys.load(environ={keys.KEY_ENV: base64.b64encode(secret).decode()})
    assert loaded.secret == secret
    with pytest.raises(CryptoError, match="32 bytes"):
        keys.load(environ={keys.KEY_ENV: base64.b64encode(b"short").decode()})
    with pytest.raises(CryptoError, match="no master key"):
        keys.load(environ={})
