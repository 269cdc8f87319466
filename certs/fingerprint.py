"""The OpenADR certificate fingerprint: how a VTN knows a VEN.

SHA-256 over the DER certificate, last 10 bytes, printed as upper-case colon pairs
(`78:C4:4B:B0:1E:5C:4D:5A:CC:24`), byte for byte what `openleadr.utils.certificate_fingerprint`
prints, so a fingerprint can be exchanged with OpenLEADR deployments out of band.
"""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import serialization


def of_der(der: bytes) -> str:
    return hashlib.sha256(der).digest()[-10:].hex(":").upper()


def of_certificate(certificate: x509.Certificate) -> str:
    return of_der(certificate.public_bytes(serialization.Encoding.DER))


def of_pem(pem: bytes | str) -> str:
    """Fingerprint of the first certificate in a PEM text."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    return of_certificate(x509.load_pem_x509_certificate(data))
