"""The master key's home: a file (0600, 32 random bytes as base64) or the environment.

FLEX4GRID_DATA_KEY holds the key itself (base64); FLEX4GRID_DATA_KEY_FILE names the file. The
database never holds it, so a copy of the database (or a backup) opens nothing.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from dataservice.crypto import KEY_BYTES, CryptoError, MasterKey, new_key

KEY_ENV = "FLEX4GRID_DATA_KEY"
KEY_FILE_ENV = "FLEX4GRID_DATA_KEY_FILE"


def _decode(text: str, where: str) -> MasterKey:
    try:
        secret = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise CryptoError(f"{where}: not base64") from None
    if len(secret) != KEY_BYTES:
        raise CryptoError(f"{where}: the key must be {KEY_BYTES} bytes, not {len(secret)}")
    return MasterKey(secret)


def create_file(path: Path) -> MasterKey:
    """A new random master key in a new file readable by its owner only."""
    key = new_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.b64encode(key).decode("ascii") + "\n")
    return MasterKey(key)


def load_file(path: Path) -> MasterKey:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CryptoError(f"{path}: the master key file must not be readable by group or others "
                          "(chmod 600)")  # fmt: skip
    return _decode(path.read_text(), str(path))


def load(path: Path | None = None, environ: Mapping[str, str] = os.environ) -> MasterKey:
    """The master key from `path`, else $FLEX4GRID_DATA_KEY_FILE, else $FLEX4GRID_DATA_KEY."""
    if path is not None:
        return load_file(path)
    if environ.get(KEY_FILE_ENV):
        return load_file(Path(environ[KEY_FILE_ENV]))
    if environ.get(KEY_ENV):
        return _decode(environ[KEY_ENV], KEY_ENV)
    raise CryptoError(f"no master key: pass --key-file or set {KEY_FILE_ENV} or {KEY_ENV}")
