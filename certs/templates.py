"""What each certificate we sign contains: root CA, intermediate CA, leaf, and the CRL.

Pure: keys, serial numbers, validity dates and `now` come in as arguments. The profile follows
RFC 5280 closely enough for `cryptography.x509.verification` (web-PKI defaults) and OpenSSL:
critical basicConstraints and keyUsage, subject/authority key identifiers everywhere, SHA-256
signatures. Roles are marked as `certs.roles` describes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from certs import roles
from certs.keys import PrivateKey
from certs.roles import Role

YEAR = timedelta(days=365)
# Backdating absorbs a peer whose clock runs a little behind ours.
BACKDATE = timedelta(minutes=5)


@dataclass(frozen=True)
class Lifetimes:
    root: timedelta = 20 * YEAR
    intermediate: timedelta = 10 * YEAR
    leaf: timedelta = 2 * YEAR
    crl: timedelta = timedelta(days=30)


DEFAULT_LIFETIMES = Lifetimes()


@dataclass(frozen=True)
class Validity:
    not_before: datetime
    not_after: datetime

    @classmethod
    def starting(cls, now: datetime, lifetime: timedelta) -> Validity:
        return cls(now - BACKDATE, now + lifetime)


def subject_name(common_name: str, role: Role | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if role is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role.value))
    return x509.Name(attributes)


def parse_san(text: str) -> x509.GeneralName:
    """`127.0.0.1` -> IPAddress, anything else -> DNSName."""
    try:
        return x509.IPAddress(ipaddress.ip_address(text))
    except ValueError:
        return x509.DNSName(text)


_CA_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def _leaf_key_usage(key: PrivateKey) -> x509.KeyUsage:
    # RSA key transport (AES128-SHA256, an OpenADR 2.0b suite) encrypts to the server's RSA key.
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=isinstance(key, rsa.RSAPrivateKey),
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    key: PrivateKey,
    serial: int,
    validity: Validity,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(validity.not_before)
        .not_valid_after(validity.not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def _authority(issuer_key: PrivateKey) -> x509.AuthorityKeyIdentifier:
    return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())


def root(name: str, key: PrivateKey, serial: int, validity: Validity) -> x509.Certificate:
    """A self-signed root; path length 1: it certifies intermediates, they certify leaves."""
    subject = subject_name(name)
    return (
        _builder(subject, subject, key, serial, validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .sign(key, hashes.SHA256())
    )


def intermediate(
    name: str,
    key: PrivateKey,
    issuer: x509.Certificate,
    issuer_key: PrivateKey,
    role_scope: Iterable[Role],
    serial: int,
    validity: Validity,
) -> x509.Certificate:
    """A CA that may only issue leaves (path length 0) for the roles in `role_scope`."""
    return (
        _builder(subject_name(name), issuer.subject, key, serial, validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(roles.ca_usage(role_scope), critical=False)
        .add_extension(_authority(issuer_key), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


def leaf(
    name: str,
    role: Role,
    key: PrivateKey,
    issuer: x509.Certificate,
    issuer_key: PrivateKey,
    serial: int,
    validity: Validity,
    sans: Sequence[x509.GeneralName] = (),
) -> x509.Certificate:
    builder = (
        _builder(subject_name(name, role), issuer.subject, key, serial, validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(key), critical=True)
        .add_extension(roles.leaf_usage(role), critical=False)
        .add_extension(_authority(issuer_key), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass(frozen=True)
class Revocation:
    serial: int
    revoked_at: datetime
    reason: x509.ReasonFlags = x509.ReasonFlags.unspecified


def crl(
    issuer: x509.Certificate,
    issuer_key: PrivateKey,
    revocations: Iterable[Revocation],
    number: int,
    now: datetime,
    lifetime: timedelta,
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(now)
        .next_update(now + lifetime)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(_authority(issuer_key), critical=False)
    )
    for revocation in revocations:
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(revocation.serial)
            .revocation_date(revocation.revoked_at)
            .add_extension(x509.CRLReason(revocation.reason), critical=False)
            .build()
        )
        builder = builder.add_revoked_certificate(entry)
    return builder.sign(issuer_key, hashes.SHA256())
