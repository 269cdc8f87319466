"""A certificate authority kept in a directory: create, issue, revoke, rotate.

Hierarchy: a root CA (20 years) certifies intermediate CAs (10 years), each limited to a set of
roles — the DSO's CA for every role, an aggregator's own CA only for its prosumers' VENs — and an
intermediate issues leaf certificates (2 years) for one role each (`certs.roles`). Lifetimes are
configurable (`templates.Lifetimes`).

Serial numbers are 159 random bits; `issued.json` records every serial a CA has signed and a
duplicate is refused rather than signed twice. After every change the CA republishes `crl.pem`
(revoked certificates, plus rotated ones whose overlap has ended) and `rotations.json` (which
old certificate stays acceptable until when), which `certs.trust.TrustStore.reload()` picks up.

Rotation: a stakeholder gets a new key and certificate under the same subject name (its
identity, e.g. the venID binding); the old certificate stays acceptable until `overlap_end`.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from certs import fingerprint, keys, roles, templates
from certs.files import (
    CaFiles,
    CertsError,
    IdentityFiles,
    certificate_pem,
    certificates_pem,
    check_key_matches,
    load_certificate,
    load_certificates,
    load_key,
    write_atomic,
    write_key,
)
from certs.keys import KeyType, PrivateKey
from certs.roles import Role
from certs.templates import DEFAULT_LIFETIMES, Lifetimes, Revocation, Validity


class CaError(CertsError):
    """The CA refuses the operation (out of scope, duplicate serial, not ours, ...)."""


class Status(StrEnum):
    VALID = "valid"
    REVOKED = "revoked"
    SUPERSEDED = "superseded"  # rotated and past the overlap
    OVERLAP = "overlap"  # rotated, still acceptable until overlap_end
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"


@dataclass(frozen=True)
class Record:
    """One certificate this CA signed, as kept in `issued.json`."""

    serial: int
    name: str
    role: Role | None  # None for a CA certificate
    fingerprint: str
    not_before: datetime
    not_after: datetime
    revoked_at: datetime | None = None
    replaced_by: int | None = None
    overlap_end: datetime | None = None

    def status(self, now: datetime) -> Status:
        if self.revoked_at is not None and self.revoked_at <= now:
            return Status.REVOKED
        if self.overlap_end is not None:
            return Status.SUPERSEDED if now > self.overlap_end else Status.OVERLAP
        if now < self.not_before:
            return Status.NOT_YET_VALID
        if now > self.not_after:
            return Status.EXPIRED
        return Status.VALID

    def to_json(self) -> dict[str, Any]:
        def when(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "serial": f"{self.serial:x}",
            "name": self.name,
            "role": None if self.role is None else self.role.value,
            "fingerprint": self.fingerprint,
            "not_before": when(self.not_before),
            "not_after": when(self.not_after),
            "revoked_at": when(self.revoked_at),
            "replaced_by": None if self.replaced_by is None else f"{self.replaced_by:x}",
            "overlap_end": when(self.overlap_end),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        def when(value: str | None) -> datetime | None:
            return None if value is None else datetime.fromisoformat(value)

        return cls(
            serial=int(data["serial"], 16),
            name=data["name"],
            role=None if data["role"] is None else Role(data["role"]),
            fingerprint=data["fingerprint"],
            not_before=datetime.fromisoformat(data["not_before"]),
            not_after=datetime.fromisoformat(data["not_after"]),
            revoked_at=when(data["revoked_at"]),
            replaced_by=None if data["replaced_by"] is None else int(data["replaced_by"], 16),
            overlap_end=when(data["overlap_end"]),
        )

    @classmethod
    def of(cls, certificate: x509.Certificate, role: Role | None) -> Record:
        return cls(
            serial=certificate.serial_number,
            name=common_name(certificate),
            role=role,
            fingerprint=fingerprint.of_certificate(certificate),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
        )


@dataclass(frozen=True)
class Issued:
    """A fresh leaf certificate with its key and the chain to present beside it."""

    certificate: x509.Certificate
    key: PrivateKey
    intermediates: tuple[x509.Certificate, ...]
    root: x509.Certificate

    def write(self, out: IdentityFiles, passphrase: bytes | None = None) -> None:
        out.write(self.certificate, self.key, self.intermediates, self.root, passphrase)


def common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else certificate.subject.rfc4514_string()


class CertificateAuthority:
    """An opened CA directory: its certificate, its key, and its record of issued serials."""

    def __init__(
        self,
        files: CaFiles,
        certificate: x509.Certificate,
        key: PrivateKey,
        root: x509.Certificate,
        intermediates: Sequence[x509.Certificate],
    ) -> None:
        self.files = files
        self.certificate = certificate
        self.key = key
        self.root = root
        self.intermediates = tuple(intermediates)

    @property
    def name(self) -> str:
        return common_name(self.certificate)

    @property
    def role_scope(self) -> frozenset[Role] | None:
        """Roles this CA may issue for; None = unrestricted (the root)."""
        return roles.permitted_roles(self.certificate)

    # -- creating and opening -------------------------------------------------------------

    @classmethod
    def create_root(
        cls,
        directory: Path,
        name: str,
        now: datetime,
        key_type: KeyType = KeyType.P256,
        lifetimes: Lifetimes = DEFAULT_LIFETIMES,
        passphrase: bytes | None = None,
    ) -> CertificateAuthority:
        files = _fresh_ca_dir(directory)
        key = keys.generate(key_type)
        certificate = templates.root(
            name, key, x509.random_serial_number(), Validity.starting(now, lifetimes.root)
        )
        ca = cls._save_new(files, certificate, key, certificate, [], passphrase)
        ca._publish(now, lifetimes.crl)
        return ca

    def create_intermediate(
        self,
        directory: Path,
        name: str,
        role_scope: frozenset[Role],
        now: datetime,
        key_type: KeyType = KeyType.P256,
        lifetimes: Lifetimes = DEFAULT_LIFETIMES,
        passphrase: bytes | None = None,
    ) -> CertificateAuthority:
        """A CA under this one that may issue only for `role_scope`."""
        constraints = self.certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        if constraints.value.path_length == 0:
            raise CaError(f"CA {self.name!r} may not certify other CAs (path length 0)")
        files = _fresh_ca_dir(directory)
        key = keys.generate(key_type)
        validity = self._capped(Validity.starting(now, lifetimes.intermediate))
        with self._locked():
            serial = self._new_serial(None)
            certificate = templates.intermediate(
                name, key, self.certificate, self.key, role_scope, serial, validity
            )
            self._add_record(Record.of(certificate, None))
        chain = [certificate, *self.intermediates]
        ca = type(self)._save_new(files, certificate, key, self.root, chain, passphrase)
        ca._publish(now, lifetimes.crl)
        return ca

    @classmethod
    def _save_new(
        cls,
        files: CaFiles,
        certificate: x509.Certificate,
        key: PrivateKey,
        root: x509.Certificate,
        intermediates: Sequence[x509.Certificate],
        passphrase: bytes | None,
    ) -> CertificateAuthority:
        write_key(files.key, key, passphrase)
        write_atomic(files.cert, certificate_pem(certificate))
        write_atomic(files.root, certificate_pem(root))
        write_atomic(files.intermediates, certificates_pem(intermediates))
        write_atomic(files.issued, _dump({"crl_number": 0, "certificates": []}))
        return cls(files, certificate, key, root, intermediates)

    @classmethod
    def open(cls, directory: Path, passphrase: bytes | None = None) -> CertificateAuthority:
        files = CaFiles(directory)
        certificate = load_certificate(files.cert)
        key = load_key(files.key, passphrase)
        check_key_matches(key, certificate, files.key)
        root = load_certificate(files.root)
        return cls(files, certificate, key, root, load_certificates(files.intermediates))

    # -- issuing ----------------------------------------------------------------------------

    def issue(
        self,
        role: Role,
        name: str,
        now: datetime,
        *,
        key_type: KeyType = KeyType.P256,
        key: PrivateKey | None = None,
        sans: Sequence[x509.GeneralName] = (),
        lifetime: timedelta = DEFAULT_LIFETIMES.leaf,
        validity: Validity | None = None,
        serial: int | None = None,
    ) -> Issued:
        """A leaf certificate for `role`; an explicit `validity` is used as given (tests)."""
        scope = self.role_scope
        if scope is not None and role not in scope:
            allowed = ", ".join(sorted(scope))
            raise CaError(f"CA {self.name!r} may issue only for roles {allowed}, not {role}")
        if now > self.certificate.not_valid_after_utc:
            raise CaError(f"CA {self.name!r} expired on {self.certificate.not_valid_after_utc}")
        key = key if key is not None else keys.generate(key_type)
        validity = validity or self._capped(Validity.starting(now, lifetime))
        with self._locked():
            serial = self._new_serial(serial)
            certificate = templates.leaf(
                name, role, key, self.certificate, self.key, serial, validity, sans
            )
            self._add_record(Record.of(certificate, role))
        return Issued(certificate, key, self.intermediates, self.root)

    def revoke(
        self,
        certificate: x509.Certificate,
        now: datetime,
        lifetimes: Lifetimes = DEFAULT_LIFETIMES,
    ) -> Record:
        with self._locked():
            record = self._own_record(certificate)
            if record.revoked_at is not None:
                raise CaError(f"certificate {record.fingerprint} was already revoked")
            record = replace(record, revoked_at=now)
            self._replace_record(record)
            self._publish(now, lifetimes.crl)
        return record

    def rotate(
        self,
        old: x509.Certificate,
        now: datetime,
        overlap: timedelta,
        *,
        key_type: KeyType | None = None,
        lifetime: timedelta = DEFAULT_LIFETIMES.leaf,
        lifetimes: Lifetimes = DEFAULT_LIFETIMES,
    ) -> Issued:
        """A new key and certificate for the same name, role and SANs; the old one stays
        acceptable until `now + overlap`."""
        record = self._own_record(old)
        if record.role is None:
            raise CaError("rotate renews leaf certificates; create a new CA instead")
        if record.revoked_at is not None:
            raise CaError(f"certificate {record.fingerprint} is revoked; issue a new one")
        if record.replaced_by is not None:
            raise CaError(f"certificate {record.fingerprint} was already rotated")
        try:
            sans = list(old.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
        except x509.ExtensionNotFound:
            sans = []
        new_type = key_type or keys.key_type_of_public(old.public_key())
        issued = self.issue(record.role, record.name, now, key_type=new_type, sans=sans,
                            lifetime=lifetime)  # fmt: skip
        with self._locked():
            self._replace_record(
                replace(
                    self._own_record(old),
                    replaced_by=issued.certificate.serial_number,
                    overlap_end=now + overlap,
                )
            )
            self._publish(now, lifetimes.crl)
        return issued

    def records(self) -> list[Record]:
        return [Record.from_json(item) for item in self._load_state()["certificates"]]

    def publish(self, now: datetime, lifetimes: Lifetimes = DEFAULT_LIFETIMES) -> None:
        """Rewrite crl.pem and rotations.json (run periodically so CRLs stay fresh)."""
        with self._locked():
            self._publish(now, lifetimes.crl)

    # -- internals --------------------------------------------------------------------------

    def _capped(self, validity: Validity) -> Validity:
        # Nothing may outlive the CA that vouches for it.
        end = min(validity.not_after, self.certificate.not_valid_after_utc)
        return Validity(validity.not_before, end)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # Two `flex4grid certs issue` runs at once must not lose each other's serial records.
        with open(self.files.lock, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _load_state(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads(self.files.issued.read_text())
        except FileNotFoundError:
            raise CaError(f"{self.files.issued}: no such file (not a CA directory?)") from None
        except (ValueError, UnicodeDecodeError):
            raise CaError(f"{self.files.issued}: corrupt issued-serial record") from None
        return state

    def _new_serial(self, serial: int | None) -> int:
        serial = serial if serial is not None else x509.random_serial_number()
        if any(r.serial == serial for r in self.records()):
            raise CaError(f"CA {self.name!r} already issued serial {serial:x}; refusing to reuse")
        return serial

    def _add_record(self, record: Record) -> None:
        state = self._load_state()
        state["certificates"].append(record.to_json())
        write_atomic(self.files.issued, _dump(state))

    def _replace_record(self, record: Record) -> None:
        state = self._load_state()
        state["certificates"] = [
            record.to_json() if int(item["serial"], 16) == record.serial else item
            for item in state["certificates"]
        ]
        write_atomic(self.files.issued, _dump(state))

    def _own_record(self, certificate: x509.Certificate) -> Record:
        try:
            certificate.verify_directly_issued_by(self.certificate)
        except (ValueError, TypeError, InvalidSignature):
            raise CaError(f"certificate was not issued by CA {self.name!r}") from None
        for record in self.records():
            if record.serial == certificate.serial_number:
                return record
        raise CaError(f"serial {certificate.serial_number:x} is not in this CA's issued record")

    def _publish(self, now: datetime, crl_lifetime: timedelta) -> None:
        state = self._load_state()
        state["crl_number"] = number = int(state["crl_number"]) + 1
        write_atomic(self.files.issued, _dump(state))
        records = self.records()
        revocations: list[Revocation] = []
        for r in records:
            if r.revoked_at is not None:
                revocations.append(Revocation(r.serial, r.revoked_at))
            elif r.overlap_end is not None and r.overlap_end < now:
                # Past the overlap a rotated certificate is as good as revoked; saying so in
                # the CRL lets stock CRL checkers (which ignore rotations.json) refuse it too.
                revocations.append(Revocation(r.serial, r.overlap_end, x509.ReasonFlags.superseded))
        crl = templates.crl(self.certificate, self.key, revocations, number, now, crl_lifetime)
        write_atomic(self.files.crl, crl.public_bytes(serialization.Encoding.PEM))
        rotations = [
            {
                "serial": f"{r.serial:x}",
                "fingerprint": r.fingerprint,
                "replaced_by": f"{r.replaced_by:x}",
                "overlap_end": r.overlap_end.isoformat(),
            }
            for r in records
            if r.replaced_by is not None and r.overlap_end is not None
        ]
        write_atomic(self.files.rotations, _dump({"rotations": rotations}))


def _fresh_ca_dir(directory: Path) -> CaFiles:
    files = CaFiles(directory)
    if files.cert.exists() or files.key.exists():
        raise CaError(f"{directory}: already holds a CA; refusing to overwrite it")
    directory.mkdir(parents=True, exist_ok=True)
    return files


def _dump(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()
