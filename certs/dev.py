"""A complete development PKI in one call, for tests and the demo.

    DIR/root/            root CA
    DIR/dso-ca/          the DSO's CA: every role
    DIR/aggregator-ca/   an aggregator's own CA: its prosumers' VENs only
    DIR/vtn/             the DSO's VTN (DSO CA; SAN localhost, 127.0.0.1, ::1)
    DIR/aggregator/      the aggregator's certificate (DSO CA; SAN localhost, 127.0.0.1, ::1)
    DIR/ven-1/           a VEN enrolled directly with the DSO (DSO CA)
    DIR/ven-2/ ...       the aggregator's prosumers' VENs (aggregator CA)

Nothing is encrypted: these keys are for development only.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from certs import tls
from certs.ca import CertificateAuthority
from certs.files import IdentityFiles
from certs.keys import KeyType
from certs.roles import Role
from certs.templates import parse_san
from certs.trust import TrustedCa, TrustStore

LOCAL_SANS = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class DevPki:
    directory: Path
    root: Path
    dso_ca: Path
    aggregator_ca: Path
    vtn: IdentityFiles
    aggregator: IdentityFiles
    vens: tuple[IdentityFiles, ...]
    # When its certificates start to be valid; later ones (`issue`) start then too.
    issued_at: datetime

    def issue(self, ca: Path, role: Role, name: str) -> IdentityFiles:
        """One more certificate (SAN localhost) from the CA in `ca`, valid from `issued_at`."""
        identity = IdentityFiles(self.directory / name)
        sans = [parse_san(s) for s in LOCAL_SANS]
        self.open_ca(ca).issue(role, name, self.issued_at, sans=sans).write(identity)
        return identity

    def trust_store(self) -> TrustStore:
        """The root, the DSO CA (every role) and the aggregator CA (VENs only)."""
        return TrustStore(
            [
                TrustedCa.from_dir(self.root),
                TrustedCa.from_dir(self.dso_ca),
                TrustedCa.from_dir(self.aggregator_ca, [Role.VEN]),
            ]
        )

    def open_ca(self, directory: Path) -> CertificateAuthority:
        return CertificateAuthority.open(directory)

    def server_context(self, identity: IdentityFiles | None = None) -> ssl.SSLContext:
        return tls.server_context(identity or self.vtn, self.trust_store())

    def client_context(self, identity: IdentityFiles | None = None) -> ssl.SSLContext:
        return tls.client_context(identity or self.vens[0], self.trust_store())


def make_dev_pki(
    directory: Path,
    now: datetime | None = None,
    key_type: KeyType = KeyType.P256,
    ven_count: int = 3,
) -> DevPki:
    now = now or datetime.now(UTC)
    root = CertificateAuthority.create_root(directory / "root", "Flex4Grid Dev Root", now, key_type)
    dso = root.create_intermediate(
        directory / "dso-ca", "Flex4Grid Dev DSO CA", frozenset(Role), now, key_type
    )
    aggregator_ca = root.create_intermediate(
        directory / "aggregator-ca", "Flex4Grid Dev Aggregator CA", frozenset([Role.VEN]), now,
        key_type,
    )  # fmt: skip
    sans = [parse_san(s) for s in LOCAL_SANS]

    def issue(ca: CertificateAuthority, role: Role, name: str) -> IdentityFiles:
        identity = IdentityFiles(directory / name)
        ca.issue(role, name, now, key_type=key_type, sans=sans).write(identity)
        return identity

    vtn = issue(dso, Role.VTN, "vtn")
    aggregator = issue(dso, Role.AGGREGATOR, "aggregator")
    vens = [issue(dso, Role.VEN, "ven-1")]
    vens += [issue(aggregator_ca, Role.VEN, f"ven-{n}") for n in range(2, ven_count + 1)]
    return DevPki(
        directory=directory,
        root=root.files.directory,
        dso_ca=dso.files.directory,
        aggregator_ca=aggregator_ca.files.directory,
        vtn=vtn,
        aggregator=aggregator,
        vens=tuple(vens[:ven_count]),
        issued_at=now,
    )
