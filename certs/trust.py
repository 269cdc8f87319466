"""Which peer certificates we accept: several CAs, each vouching only for the roles it was given.

A stock TLS context checks chain and expiry once per connection. `TrustStore.check()` is the
rest, run by a server for every request with the peer's certificate and the time: chain to a
trusted root (`cryptography.x509.verification`: signatures, validity, basicConstraints, path
length), role (`certs.roles`), each CA's scope (the roles the store gave it and the role
constraint in its own certificate), revocation (each CA's CRL) and rotation (an old certificate
is refused once `now > overlap_end`). The answer is a `Verdict` with a `Reason`.

`reload()` re-reads the CRL and rotations file of each CA whose file changed on disk, so a
revocation takes effect on the next request without a restart. A file that fails to load (bad
signature, corrupt) raises `CertFileError` and the store keeps what it had.

A server asks about the same few certificates over and over (each VEN on every request), so an
accepted verdict is kept per (certificate digest, accepted roles) together with the store's
`generation`, which changes whenever `reload()` takes in a new CRL or rotations file, and with the
interval in which it holds (every chain certificate valid, the rotation overlap not over). Outside
that interval or generation the full check runs again, so caching changes no answer. `reload()`
itself is a stat of two files per CA (~2 us each), cheap enough to run on every request.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from certs import fingerprint, roles
from certs.files import CaFiles, CertFileError, certificates_pem, load_certificate, load_crl
from certs.roles import Role, RoleError


class Reason(StrEnum):
    ACCEPTED = "accepted"
    NO_CERTIFICATE = "no-certificate"
    MALFORMED = "malformed"
    UNKNOWN_CA = "unknown-ca"
    UNTRUSTED_CHAIN = "untrusted-chain"
    NOT_YET_VALID = "not-yet-valid"
    EXPIRED = "expired"
    WRONG_ROLE = "wrong-role"
    CA_OUT_OF_SCOPE = "ca-out-of-scope"
    REVOKED = "revoked"
    SUPERSEDED = "superseded"


@dataclass(frozen=True)
class Verdict:
    reason: Reason
    detail: str
    name: str | None = None  # subject CN: the identity that survives a rotation
    role: Role | None = None
    fingerprint: str | None = None
    issuer: str | None = None  # the leaf's issuer DN (RFC 4514), for audit

    @property
    def accepted(self) -> bool:
        return self.reason is Reason.ACCEPTED


@dataclass(frozen=True)
class TrustedCa:
    """A CA certificate and the roles this store lets it vouch for in the leaves it signs.

    `directory` is where the CA publishes crl.pem and rotations.json (its CA directory or a
    copy of its public files); None = no revocation information.
    """

    certificate: x509.Certificate
    roles: frozenset[Role]
    directory: Path | None = None

    @classmethod
    def from_dir(cls, directory: Path, scope: Iterable[Role] | None = None) -> TrustedCa:
        """Defaults to the role scope written in the CA certificate (none for a root)."""
        certificate = load_certificate(CaFiles(directory).cert)
        if scope is None:
            scope = roles.permitted_roles(certificate) or frozenset()
        return cls(certificate, frozenset(scope), directory)

    @property
    def fingerprint(self) -> str:
        return fingerprint.of_certificate(self.certificate)


@dataclass(frozen=True)
class _Published:
    """What a CA published, and the file stamps it was read from."""

    stamps: tuple[tuple[int, int, int] | None, ...] = ()
    revoked: frozenset[int] = frozenset()
    overlap_ends: tuple[tuple[int, datetime], ...] = ()


@dataclass(frozen=True, slots=True)
class _Cached:
    """An accepted verdict, the trust generation it was reached in, and when it holds."""

    verdict: Verdict
    generation: int
    valid_from: datetime
    valid_until: datetime


# Enough for every VEN of a large VTN; past it the cache starts over (a check costs ~0.3 ms).
_CACHE_ENTRIES = 200_000

_CA_POLICY = ExtensionPolicy.webpki_defaults_ca()
# Leaves that are only TLS clients (most VENs) have no subjectAltName.
_EE_POLICY = ExtensionPolicy.webpki_defaults_ee().may_be_present(
    x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
)


class TrustStore:
    def __init__(self, cas: Iterable[TrustedCa]) -> None:
        self.cas = tuple(cas)
        self._by_fingerprint = {ca.fingerprint: ca for ca in self.cas}
        self._subjects = {ca.certificate.subject for ca in self.cas}
        anchors = [ca.certificate for ca in self.cas if _self_signed(ca.certificate)]
        if not anchors:
            raise ValueError("a trust store needs at least one self-signed root CA")
        self._store = Store(anchors)
        self._intermediates = [c.certificate for c in self.cas if c.certificate not in anchors]
        self._published: dict[str, _Published] = {}
        # Built once: reload() runs per request, and Path joins and CA fingerprints cost more
        # than the stat calls themselves.
        self._files = [
            (ca, ca.fingerprint, files, str(files.crl), str(files.rotations))
            for ca in self.cas
            if ca.directory is not None
            for files in (CaFiles(ca.directory),)
        ]
        self.generation = 0  # changes whenever reload() takes in new revocation information
        self._verdicts: dict[tuple[bytes, frozenset[Role]], _Cached] = {}  # by SHA-256 of DER
        self.reload()

    def pem_bundle(self) -> str:
        """Every CA certificate, for `ssl.SSLContext.load_verify_locations(cadata=...)`."""
        return certificates_pem([ca.certificate for ca in self.cas]).decode("ascii")

    def reload(self) -> bool:
        """Re-read the CRL and rotations of every CA whose files changed; True if any did."""
        fresh: dict[str, _Published] | None = None
        for ca, ca_fingerprint, files, crl_path, rotations_path in self._files:
            stamps = (_stamp(crl_path), _stamp(rotations_path))
            old = self._published.get(ca_fingerprint)
            if old is None or old.stamps != stamps:
                fresh = dict(self._published) if fresh is None else fresh
                fresh[ca_fingerprint] = _load_published(ca, files, stamps)
        if fresh is None or fresh == self._published:
            return False
        self._published = fresh  # only after every file loaded: all or nothing
        self.generation += 1
        self._verdicts.clear()
        return True

    def check(self, peer: bytes | x509.Certificate, accept: Role | Collection[Role],
              now: datetime) -> Verdict:  # fmt: skip
        """Is `peer` (DER or parsed) valid at `now`, for one of the `accept` roles, unrevoked?"""
        accepted_roles = frozenset([accept]) if isinstance(accept, Role) else frozenset(accept)
        if not isinstance(peer, bytes):
            return self._check(peer, accepted_roles, now)[0]
        key = (hashlib.sha256(peer).digest(), accepted_roles)  # 32 bytes kept, not the DER
        cached = self._verdicts.get(key)
        if (
            cached is not None
            and cached.generation == self.generation
            and cached.valid_from <= now <= cached.valid_until
        ):
            return cached.verdict
        verdict, valid = self._check(peer, accepted_roles, now)
        if valid is not None:
            if len(self._verdicts) >= _CACHE_ENTRIES:
                self._verdicts.clear()
            self._verdicts[key] = _Cached(verdict, self.generation, *valid)
        return verdict

    def _check(
        self, peer: bytes | x509.Certificate, accepted_roles: frozenset[Role], now: datetime
    ) -> tuple[Verdict, tuple[datetime, datetime] | None]:
        """The verdict, and for an accepted one the interval around `now` in which it holds."""
        try:
            leaf = (
                peer if isinstance(peer, x509.Certificate) else x509.load_der_x509_certificate(peer)
            )
        except ValueError:
            return Verdict(Reason.MALFORMED, "peer certificate is not valid DER"), None
        name = _common_name(leaf)
        fp = fingerprint.of_certificate(leaf)
        issuer_dn = leaf.issuer.rfc4514_string()

        def refuse(reason: Reason, detail: str, role: Role | None = None) -> tuple[Verdict, None]:
            return Verdict(reason, f"{name} ({fp}): {detail}", name, role, fp, issuer_dn), None

        if leaf.issuer not in self._subjects:
            return refuse(Reason.UNKNOWN_CA, f"issuer {issuer_dn} is not trusted")
        if now < leaf.not_valid_before_utc:
            return refuse(Reason.NOT_YET_VALID, f"not valid before {leaf.not_valid_before_utc}")
        if now > leaf.not_valid_after_utc:
            return refuse(Reason.EXPIRED, f"expired on {leaf.not_valid_after_utc}")
        verifier = (
            PolicyBuilder()
            .store(self._store)
            .time(now)
            .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
            .build_client_verifier()
        )
        try:
            chain = verifier.verify(leaf, self._intermediates).chain
        except VerificationError as err:
            return refuse(Reason.UNTRUSTED_CHAIN, f"no valid chain to a trusted root: {err}")

        try:
            role = roles.role_of(leaf)
        except RoleError as err:
            return refuse(Reason.WRONG_ROLE, str(err))
        issuing = self._by_fingerprint[fingerprint.of_certificate(chain[1])]
        if role not in issuing.roles:
            scope = ", ".join(sorted(issuing.roles)) or "no leaf roles"
            return refuse(
                Reason.CA_OUT_OF_SCOPE,
                f"CA {_common_name(issuing.certificate)} may vouch for {scope}, not {role}",
                role,
            )
        for ca_cert in chain[1:]:
            scope_in_cert = roles.permitted_roles(ca_cert)
            if scope_in_cert is not None and role not in scope_in_cert:
                return refuse(
                    Reason.CA_OUT_OF_SCOPE,
                    f"CA {_common_name(ca_cert)} is limited to "
                    f"{', '.join(sorted(scope_in_cert))}, not {role}",
                    role,
                )
        if role not in accepted_roles:
            wanted = ", ".join(sorted(accepted_roles))
            return refuse(Reason.WRONG_ROLE, f"role {role}, but this peer must be {wanted}", role)

        for subject, issuer in itertools.pairwise(chain):
            published = self._published.get(fingerprint.of_certificate(issuer), _Published())
            if subject.serial_number in published.revoked:
                who = "certificate" if subject is leaf else f"CA {_common_name(subject)}"
                return refuse(Reason.REVOKED, f"{who} revoked by {_common_name(issuer)}", role)
        overlap_end = dict(self._published.get(issuing.fingerprint, _Published()).overlap_ends)
        end = overlap_end.get(leaf.serial_number)
        if end is not None and now > end:
            return refuse(Reason.SUPERSEDED, f"rotated; the overlap ended at {end}", role)
        # The same answer holds while every certificate of the chain is valid and the overlap
        # lasts; revocation is covered by the generation the cache keeps beside it.
        valid_from = max(c.not_valid_before_utc for c in chain)
        valid_until = min([c.not_valid_after_utc for c in chain] + ([] if end is None else [end]))
        accepted = Verdict(
            Reason.ACCEPTED, f"{name} ({fp}): accepted as {role}", name, role, fp, issuer_dn
        )
        return accepted, (valid_from, valid_until)


def _self_signed(certificate: x509.Certificate) -> bool:
    return certificate.subject == certificate.issuer


def _common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else certificate.subject.rfc4514_string()


def _stamp(path: str) -> tuple[int, int, int] | None:
    # Files are replaced by rename, so a new inode also marks a change within one mtime tick.
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _load_published(
    ca: TrustedCa, files: CaFiles, stamps: tuple[tuple[int, int, int] | None, ...]
) -> _Published:
    crl = load_crl(files.crl)
    public_key = ca.certificate.public_key()
    if (
        not isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
        or crl.issuer != ca.certificate.subject
        or not crl.is_signature_valid(public_key)
    ):
        raise CertFileError(files.crl, f"CRL is not signed by CA {_common_name(ca.certificate)}")
    # A "superseded" entry is a rotation past its overlap (see certs.ca): it is handled like
    # the rotations.json entry it mirrors, by date, not as a revocation.
    revoked = frozenset(
        entry.serial_number for entry in crl if _reason(entry) is not x509.ReasonFlags.superseded
    )
    overlap_ends: list[tuple[int, datetime]] = []
    if stamps[1] is not None:
        try:
            rotations = json.loads(files.rotations.read_text())["rotations"]
            overlap_ends = [
                (int(r["serial"], 16), datetime.fromisoformat(r["overlap_end"])) for r in rotations
            ]
        except (ValueError, KeyError, TypeError):
            raise CertFileError(files.rotations, "corrupt rotations file") from None
    superseded = {
        e.serial_number: e.revocation_date_utc for e in crl if e.serial_number not in revoked
    }
    for serial, when in superseded.items():
        overlap_ends.append((serial, when))
    return _Published(stamps, revoked, tuple(overlap_ends))


def _reason(entry: x509.RevokedCertificate) -> x509.ReasonFlags | None:
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return None
