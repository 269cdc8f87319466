"""Key pairs for the two OpenADR 2.0b certificate profiles: RSA-2048 and ECDSA P-256."""

from __future__ import annotations

from enum import StrEnum

from cryptography.hazmat.primitives.asymmetric import ec, rsa

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class KeyType(StrEnum):
    RSA2048 = "rsa2048"
    P256 = "p256"


def generate(key_type: KeyType) -> PrivateKey:
    """A fresh key from the OS random source (RSA-2048 takes tens of milliseconds)."""
    if key_type is KeyType.RSA2048:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def key_type_of(key: PrivateKey) -> KeyType:
    if isinstance(key, rsa.RSAPrivateKey):
        return KeyType.RSA2048
    return KeyType.P256


def as_private_key(key: object) -> PrivateKey:
    """Narrow a loaded key to the two profiles; anything else (other curves, Ed25519) is refused."""
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048:
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise TypeError("want an RSA (2048 bits or more) or ECDSA P-256 private key")


def key_type_of_public(public_key: object) -> KeyType:
    """The profile of a certificate's public key (to renew it with the same kind of key)."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return KeyType.RSA2048
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return KeyType.P256
    raise TypeError("want an RSA or ECDSA P-256 public key")
