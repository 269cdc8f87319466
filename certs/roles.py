"""Stakeholder roles and how a certificate carries them.

Encoding (our choice; OpenADR 2.0b does not define one):

* Each role has an object identifier under our own arc
  `2.25.178228538091948111632639669767673387188` (a UUID-derived OID, ITU-T X.667, so no
  registration is needed):
  `.1.1` vtn, `.1.2` ven, `.1.3` aggregator, `.1.4` service.
* A leaf certificate lists exactly one role OID in its extendedKeyUsage, next to serverAuth and
  clientAuth ("this key may act as an OpenADR VEN"), and repeats the role name in the subject's
  organizationalUnitName so a person reading the certificate sees it too. The EKU is what counts.
* An intermediate CA lists the role OIDs it may issue for in its own extendedKeyUsage (the usual
  "EKU constraint" on a sub-CA), plus serverAuth and clientAuth so that OpenSSL's EKU chaining
  still accepts its leaves. A CA without extendedKeyUsage (our root) is not restricted by role.

Stock TLS stacks ignore our role OIDs, so `certs.trust.TrustStore` enforces them on every request.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

ARC = "2.25.178228538091948111632639669767673387188"


class Role(StrEnum):
    VTN = "vtn"
    VEN = "ven"
    AGGREGATOR = "aggregator"
    SERVICE = "service"


ROLE_OIDS: dict[Role, x509.ObjectIdentifier] = {
    Role.VTN: x509.ObjectIdentifier(f"{ARC}.1.1"),
    Role.VEN: x509.ObjectIdentifier(f"{ARC}.1.2"),
    Role.AGGREGATOR: x509.ObjectIdentifier(f"{ARC}.1.3"),
    Role.SERVICE: x509.ObjectIdentifier(f"{ARC}.1.4"),
}
_ROLE_BY_OID = {oid: role for role, oid in ROLE_OIDS.items()}

# Every leaf may be a TLS server (a push VEN is one) and a TLS client.
TLS_USAGES = (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)


class RoleError(ValueError):
    """A role name or a certificate's role marking is not what we expect."""


def parse_roles(text: str) -> frozenset[Role]:
    """`"ven,vtn"` -> {Role.VEN, Role.VTN}; unknown names raise RoleError."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    if not names:
        raise RoleError("no roles given")
    try:
        return frozenset(Role(name) for name in names)
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise RoleError(f"unknown role in {text!r}; known roles: {known}") from None


def leaf_usage(role: Role) -> x509.ExtendedKeyUsage:
    return x509.ExtendedKeyUsage([*TLS_USAGES, ROLE_OIDS[role]])


def ca_usage(roles: Iterable[Role]) -> x509.ExtendedKeyUsage:
    ordered = sorted(set(roles), key=lambda r: ROLE_OIDS[r].dotted_string)
    return x509.ExtendedKeyUsage([*TLS_USAGES, *(ROLE_OIDS[r] for r in ordered)])


def _usage_roles(certificate: x509.Certificate) -> frozenset[Role] | None:
    """Role OIDs in the EKU; None when the certificate has no extendedKeyUsage at all."""
    try:
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None
    return frozenset(_ROLE_BY_OID[oid] for oid in usage if oid in _ROLE_BY_OID)


def role_of(certificate: x509.Certificate) -> Role:
    """The one role a leaf certificate was issued for."""
    roles = _usage_roles(certificate) or frozenset()
    if len(roles) != 1:
        found = ", ".join(sorted(roles)) or "none"
        raise RoleError(f"certificate must carry exactly one Flex4Grid role (found: {found})")
    (role,) = roles
    return role


def permitted_roles(ca_certificate: x509.Certificate) -> frozenset[Role] | None:
    """Roles a CA certificate may issue for; None = not restricted (no extendedKeyUsage)."""
    return _usage_roles(ca_certificate)
