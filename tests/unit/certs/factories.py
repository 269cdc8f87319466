"""Plain factories for certificate tests: a fixed NOW and certificates our CA would refuse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509

from certs import keys, templates
from certs.ca import CertificateAuthority, Issued
from certs.keys import KeyType
from certs.roles import Role
from certs.templates import Validity

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def make_rogue_leaf(ca_dir: Path, role: Role, name: str, now: datetime = NOW) -> Issued:
    """A leaf signed with a CA's key but outside the CA's role scope, as a compromised or buggy
    issuer would make it: `CertificateAuthority.issue` refuses to, so build it directly."""
    ca = CertificateAuthority.open(ca_dir)
    key = keys.generate(KeyType.P256)
    certificate = templates.leaf(
        name,
        role,
        key,
        ca.certificate,
        ca.key,
        x509.random_serial_number(),
        Validity.starting(now, 365 * DAY),
    )
    return Issued(certificate, key, ca.intermediates, ca.root)


def make_foreign_root(directory: Path, name: str, now: datetime = NOW) -> CertificateAuthority:
    """A root nobody in the test trusts (its name may even copy a trusted CA's)."""
    return CertificateAuthority.create_root(directory, name, now)
