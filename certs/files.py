"""Certificates, keys and CRLs as PEM files on disk.

Private keys are written with mode 0600 (optionally encrypted with a passphrase) and every file is
replaced atomically, so a server re-reading a CRL never sees half of one. A problem with a file is
raised as `CertFileError`, one line naming the file and what is wrong with it; the message never
contains key material or a passphrase.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from certs.keys import PrivateKey, as_private_key

PUBLIC_MODE = 0o644
PRIVATE_MODE = 0o600


class CertsError(Exception):
    """Something the user can fix: the message is one line, fit for stderr."""


class CertFileError(CertsError):
    """A file is missing, unreadable, or not what it should be."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path


def write_atomic(path: Path, data: bytes, mode: int = PUBLIC_MODE) -> None:
    """Write to a temporary file beside `path`, then rename it over `path`.

    The temporary file is created 0600 by mkstemp, so a private key is never readable by
    others, not even for a moment.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CertFileError(path, "no such file") from None
    except IsADirectoryError:
        raise CertFileError(path, "is a directory, not a file") from None
    except PermissionError:
        raise CertFileError(path, "permission denied") from None


def read_passphrase(path: Path) -> bytes:
    """A passphrase file holds the passphrase on its first line."""
    lines = read_bytes(path).splitlines()
    if not lines or not lines[0]:
        raise CertFileError(path, "passphrase file is empty")
    return lines[0]


def certificate_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def certificates_pem(certificates: Sequence[x509.Certificate]) -> bytes:
    return b"".join(certificate_pem(c) for c in certificates)


def load_certificates(path: Path) -> list[x509.Certificate]:
    """All certificates in a PEM file (a chain file holds the leaf first); empty is allowed."""
    data = read_bytes(path)
    if b"-----BEGIN CERTIFICATE-----" not in data:
        if data.strip():
            raise CertFileError(path, "not a PEM certificate file")
        return []
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CertFileError(path, "corrupt PEM certificate") from None


def load_certificate(path: Path) -> x509.Certificate:
    """The first certificate in a PEM file."""
    certificates = load_certificates(path)
    if not certificates:
        raise CertFileError(path, "contains no certificate")
    return certificates[0]


def load_crl(path: Path) -> x509.CertificateRevocationList:
    try:
        return x509.load_pem_x509_crl(read_bytes(path))
    except ValueError:
        raise CertFileError(path, "corrupt PEM certificate revocation list") from None


def key_pem(key: PrivateKey, passphrase: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def write_key(path: Path, key: PrivateKey, passphrase: bytes | None = None) -> None:
    write_atomic(path, key_pem(key, passphrase), PRIVATE_MODE)


def load_key(path: Path, passphrase: bytes | None = None) -> PrivateKey:
    data = read_bytes(path)
    encrypted = b"ENCRYPTED PRIVATE KEY" in data or b"Proc-Type: 4,ENCRYPTED" in data
    if encrypted and not passphrase:
        raise CertFileError(path, "private key is encrypted; give its passphrase")
    try:
        key = serialization.load_pem_private_key(data, passphrase if encrypted else None)
    except ValueError:
        problem = "wrong passphrase" if encrypted else "corrupt or unsupported private key"
        raise CertFileError(path, problem) from None
    except (TypeError, UnsupportedAlgorithm):
        raise CertFileError(path, "corrupt or unsupported private key") from None
    try:
        return as_private_key(key)
    except TypeError:
        raise CertFileError(path, "unsupported key type (want RSA or ECDSA P-256)") from None


def check_key_matches(key: PrivateKey, certificate: x509.Certificate, key_path: Path) -> None:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, spki) != certificate.public_key().public_bytes(der, spki):
        raise CertFileError(key_path, "private key does not match the certificate")


@dataclass(frozen=True)
class IdentityFiles:
    """One stakeholder's credentials in a directory of their own.

    `chain.pem` (leaf, then its intermediate CAs) is what the stakeholder presents in TLS;
    `root.pem` is the root it trusts for its peers (OpenLEADR's `ca_file`).
    """

    directory: Path

    @property
    def cert(self) -> Path:
        return self.directory / "cert.pem"

    @property
    def key(self) -> Path:
        return self.directory / "key.pem"

    @property
    def chain(self) -> Path:
        return self.directory / "chain.pem"

    @property
    def root(self) -> Path:
        return self.directory / "root.pem"

    def write(
        self,
        certificate: x509.Certificate,
        key: PrivateKey,
        intermediates: Sequence[x509.Certificate],
        root: x509.Certificate,
        passphrase: bytes | None = None,
    ) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        write_key(self.key, key, passphrase)
        write_atomic(self.cert, certificate_pem(certificate))
        write_atomic(self.chain, certificates_pem([certificate, *intermediates]))
        write_atomic(self.root, certificate_pem(root))

    def load_certificate(self) -> x509.Certificate:
        return load_certificate(self.cert)

    def load_key(self, passphrase: bytes | None = None) -> PrivateKey:
        """The private key, checked against the certificate beside it."""
        key = load_key(self.key, passphrase)
        check_key_matches(key, self.load_certificate(), self.key)
        return key


@dataclass(frozen=True)
class CaFiles:
    """A certificate authority's directory.

    Public (copy these to whoever trusts the CA): `ca.pem`, `root.pem`, `crl.pem`,
    `rotations.json`. Secret: `ca.key.pem` (0600). The CA's own bookkeeping: `issued.json`, the
    record of every serial it has signed, and `.lock`, which serialises concurrent runs.
    """

    directory: Path

    @property
    def cert(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def key(self) -> Path:
        return self.directory / "ca.key.pem"

    @property
    def root(self) -> Path:
        return self.directory / "root.pem"

    @property
    def intermediates(self) -> Path:
        """This CA and the CAs above it, root excluded: what a leaf's chain.pem appends."""
        return self.directory / "intermediates.pem"

    @property
    def crl(self) -> Path:
        return self.directory / "crl.pem"

    @property
    def rotations(self) -> Path:
        return self.directory / "rotations.json"

    @property
    def issued(self) -> Path:
        return self.directory / "issued.json"

    @property
    def lock(self) -> Path:
        return self.directory / ".lock"
