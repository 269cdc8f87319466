"""Throwaway signing keys for benchmarks: the two OpenADR 2.0b profiles, RSA-2048 and P-256."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from oadr.signing import SigningKey

KEY_TYPES = ("rsa2048", "p256")


@dataclass(frozen=True)
class SigningMaterial:
    signing_key: SigningKey
    cert_pem: bytes
    key_pem: bytes


def make_signing_material(key_type: str) -> SigningMaterial:
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if key_type == "rsa2048":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif key_type == "p256":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        raise ValueError(f"unknown key type {key_type!r}")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"benchmark-{key_type}")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return SigningMaterial(
        signing_key=SigningKey(key=key, certificate=certificate),
        cert_pem=certificate.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
