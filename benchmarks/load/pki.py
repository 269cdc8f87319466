"""A throwaway PKI for the load benchmark: root, DSO CA, the VTN, and N VEN identities.

Every VEN gets a certificate of its own (own serial, subject and fingerprint), issued by the DSO
CA with the same template `certs.ca` uses. P-256: every VEN also gets a key of its own.
RSA-2048: key generation costs ~50-100 ms, so the VENs share a pool of `RSA_KEY_POOL` distinct
keys (VEN i uses key i mod pool) while each still has its own certificate; the VTN identifies a
VEN by its certificate's fingerprint, so this changes nothing on the server side. Work is spread
over a process pool. Issued leaves are not recorded in the CA's `issued.json` (rewritten on
every issue, quadratic for 10,000 VENs); nothing is ever revoked here, so no CRL needs them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certs import fingerprint, keys, templates
from certs.ca import CertificateAuthority
from certs.files import IdentityFiles
from certs.keys import KeyType, PrivateKey
from certs.roles import Role
from certs.templates import Validity, parse_san

RSA_KEY_POOL = 64
LOCAL_SANS = ("localhost", "127.0.0.1")


@dataclass(frozen=True)
class VenIdentity:
    name: str
    pem_file: Path  # key, leaf, DSO CA certificate: what ssl.load_cert_chain reads
    fingerprint: str


@dataclass(frozen=True)
class BenchPki:
    directory: Path
    key_type: KeyType
    root_pem: Path
    ca_files: tuple[Path, ...]  # what `vtn serve --ca-file` gets
    vtn: IdentityFiles
    vens: tuple[VenIdentity, ...]
    distinct_keys: int
    push_endpoint: IdentityFiles  # what the VENs' push endpoints present (load/push.py says why)

    def manifest(self) -> Path:
        return self.directory / "vens.json"


def _pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _make_keys(key_type: str, count: int) -> list[bytes]:
    return [_pem(keys.generate(KeyType(key_type))) for _ in range(count)]


def _issue_chunk(
    ca_dir: str,
    indices: Sequence[int],
    key_pems: Sequence[bytes | None],
    out_dir: str,
    key_type: str,
) -> list[tuple[str, str, str]]:
    """Issue certificates for VENs `indices` (a fresh key where `key_pems` has None)."""
    ca = CertificateAuthority.open(Path(ca_dir))
    ca_pem = ca.certificate.public_bytes(serialization.Encoding.PEM)
    now = datetime.now(UTC)
    validity = Validity(now - timedelta(hours=1), now + timedelta(days=2))
    issued = []
    loaded: dict[bytes, PrivateKey] = {}  # loading an RSA key checks it: ~10 ms, do it once
    for index, key_pem in zip(indices, key_pems, strict=True):
        key: PrivateKey
        if key_pem is None:
            key = keys.generate(KeyType(key_type))
        else:
            if key_pem not in loaded:
                loaded[key_pem] = keys.as_private_key(
                    serialization.load_pem_private_key(key_pem, None)
                )
            key = loaded[key_pem]
        name = f"bench-ven-{index:06d}"
        serial = x509.random_serial_number()
        leaf = templates.leaf(name, Role.VEN, key, ca.certificate, ca.key, serial, validity)
        path = Path(out_dir) / f"{name}.pem"
        leaf_pem = leaf.public_bytes(serialization.Encoding.PEM)
        path.write_bytes(_pem(key) + leaf_pem + ca_pem)
        issued.append((name, str(path), fingerprint.of_certificate(leaf)))
    return issued


def make(directory: Path, ven_count: int, key_type: KeyType, processes: int = 2) -> BenchPki:
    """Root, DSO CA, VTN and the VENs' push endpoint (both SAN localhost/127.0.0.1) of
    `key_type`, then `ven_count` VENs."""
    now = datetime.now(UTC)
    root = CertificateAuthority.create_root(directory / "root", "Bench Root", now, key_type)
    dso = root.create_intermediate(
        directory / "dso-ca", "Bench DSO CA", frozenset(Role), now, key_type
    )
    vtn = IdentityFiles(directory / "vtn")
    sans = [parse_san(s) for s in LOCAL_SANS]
    dso.issue(Role.VTN, "bench-vtn", now, key_type=key_type, sans=sans).write(vtn)
    push_endpoint = IdentityFiles(directory / "ven-push-endpoint")
    dso.issue(Role.VEN, "bench-ven-push-endpoint", now, key_type=key_type, sans=sans).write(
        push_endpoint
    )
    out = directory / "vens"
    out.mkdir()
    chunks = [list(range(i, min(i + 500, ven_count))) for i in range(0, ven_count, 500)]
    with ProcessPoolExecutor(max_workers=processes) as pool:
        if key_type is KeyType.RSA2048:
            pool_size = min(RSA_KEY_POOL, ven_count)
            per = -(-pool_size // processes)
            futures = [pool.submit(_make_keys, key_type.value, per) for _ in range(processes)]
            shared = [pem for f in futures for pem in f.result()][:pool_size]
            key_chunks: list[list[bytes | None]] = [
                [shared[i % pool_size] for i in chunk] for chunk in chunks
            ]
            distinct = pool_size
        else:
            key_chunks = [[None] * len(chunk) for chunk in chunks]
            distinct = ven_count
        results = pool.map(
            _issue_chunk,
            [str(dso.files.directory)] * len(chunks),
            chunks,
            key_chunks,
            [str(out)] * len(chunks),
            [key_type.value] * len(chunks),
        )
        vens = tuple(VenIdentity(n, Path(p), f) for chunk in results for n, p, f in chunk)
    pki = BenchPki(
        directory=directory,
        key_type=key_type,
        root_pem=root.files.cert,
        ca_files=(root.files.cert, dso.files.cert),
        vtn=vtn,
        vens=vens,
        distinct_keys=distinct,
        push_endpoint=push_endpoint,
    )
    listed = [{"name": v.name, "file": str(v.pem_file), "fingerprint": v.fingerprint} for v in vens]
    pki.manifest().write_text(json.dumps(listed))
    return pki


def load_vens(manifest: Path) -> list[VenIdentity]:
    return [
        VenIdentity(item["name"], Path(item["file"]), item["fingerprint"])
        for item in json.loads(manifest.read_text())
    ]
