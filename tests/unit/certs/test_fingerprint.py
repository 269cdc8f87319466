from __future__ import annotations

import re
from datetime import timedelta

import pytest
from openleadr import utils as openleadr_utils

from certs import fingerprint
from certs.ca import CertificateAuthority
from certs.dev import DevPki
from certs.files import certificate_pem, certificates_pem
from certs.keys import KeyType
from certs.roles import Role
from tests.unit.certs.factories import NOW


@pytest.mark.parametrize("key_type", list(KeyType), ids=str)
def test_fingerprint_equals_openleadrs(fixed_pki: DevPki, key_type: KeyType) -> None:
    ca = CertificateAuthority.open(fixed_pki.dso_ca)
    issued = ca.issue(Role.VEN, f"ven-{key_type}", NOW, key_type=key_type)
    pem = certificate_pem(issued.certificate)

    ours = fingerprint.of_certificate(issued.certificate)

    assert ours == openleadr_utils.certificate_fingerprint(pem)
    assert ours == fingerprint.of_pem(pem) == fingerprint.of_pem(pem.decode())


def test_fingerprint_is_ten_upper_case_colon_pairs(pki: DevPki) -> None:
    value = fingerprint.of_pem(pki.vtn.cert.read_bytes())
    assert re.fullmatch(r"([0-9A-F]{2}:){9}[0-9A-F]{2}", value)


def test_fingerprint_of_a_chain_file_is_the_leafs(pki: DevPki) -> None:
    assert fingerprint.of_pem(pki.vtn.chain.read_bytes()) == fingerprint.of_pem(
        pki.vtn.cert.read_bytes()
    )


def test_rotated_certificate_has_a_new_fingerprint(own_pki: DevPki) -> None:
    ca = CertificateAuthority.open(own_pki.dso_ca)
    old = own_pki.vens[0].load_certificate()
    new = ca.rotate(old, NOW, timedelta(days=7)).certificate
    assert fingerprint.of_certificate(new) != fingerprint.of_certificate(old)
    assert openleadr_utils.certificate_fingerprint(certificates_pem([new])) == (
        fingerprint.of_certificate(new)
    )
