from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs import fingerprint, roles
from certs.ca import CaError, CertificateAuthority, Status
from certs.dev import DevPki
from certs.files import CaFiles, load_crl
from certs.keys import KeyType
from certs.roles import Role
from certs.templates import DEFAULT_LIFETIMES, YEAR, Lifetimes, Validity, parse_san
from tests.unit.certs.factories import DAY, NOW

E = TypeVar("E", bound=x509.ExtensionType)


def _ext(certificate: x509.Certificate, kind: type[E]) -> E:
    return certificate.extensions.get_extension_for_class(kind).value


def _root(tmp_path: Path, lifetimes: Lifetimes = DEFAULT_LIFETIMES) -> CertificateAuthority:
    return CertificateAuthority.create_root(
        tmp_path / "root", "Test Root", NOW, lifetimes=lifetimes
    )


def test_root_is_a_self_signed_ca_for_twenty_years(tmp_path: Path) -> None:
    root = _root(tmp_path).certificate
    assert root.subject == root.issuer
    root.verify_directly_issued_by(root)
    assert _ext(root, x509.BasicConstraints).ca
    assert _ext(root, x509.KeyUsage).key_cert_sign
    assert root.not_valid_after_utc - NOW == 20 * YEAR
    assert roles.permitted_roles(root) is None  # a root is not limited by role


def test_intermediate_is_limited_to_its_roles_and_may_not_certify_cas(tmp_path: Path) -> None:
    root = _root(tmp_path)
    aggregator = root.create_intermediate(tmp_path / "agg", "Agg CA", frozenset([Role.VEN]), NOW)
    certificate = aggregator.certificate
    certificate.verify_directly_issued_by(root.certificate)
    assert _ext(certificate, x509.BasicConstraints).path_length == 0
    assert roles.permitted_roles(certificate) == frozenset([Role.VEN])
    assert certificate.not_valid_after_utc - NOW == 10 * YEAR
    with pytest.raises(CaError, match="may not certify other CAs"):
        aggregator.create_intermediate(tmp_path / "sub", "Sub", frozenset([Role.VEN]), NOW)


def test_lifetimes_are_configurable(tmp_path: Path) -> None:
    root = _root(tmp_path, lifetimes=Lifetimes(root=5 * YEAR))
    assert root.certificate.not_valid_after_utc - NOW == 5 * YEAR
    leaf = root.issue(Role.VTN, "vtn", NOW, lifetime=90 * DAY).certificate
    assert leaf.not_valid_after_utc - NOW == 90 * DAY


@pytest.mark.parametrize("role", list(Role), ids=str)
@pytest.mark.parametrize("key_type", list(KeyType), ids=str)
def test_leaf_carries_its_role_in_eku_and_subject(
    fixed_pki: DevPki, role: Role, key_type: KeyType
) -> None:
    ca = CertificateAuthority.open(fixed_pki.dso_ca)
    leaf = ca.issue(role, f"{role}-1", NOW, key_type=key_type).certificate

    assert roles.role_of(leaf) is role
    usage = _ext(leaf, x509.ExtendedKeyUsage)
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usage
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == f"{role}-1"
    assert leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == role
    assert not _ext(leaf, x509.BasicConstraints).ca
    expected_key = rsa.RSAPublicKey if key_type is KeyType.RSA2048 else ec.EllipticCurvePublicKey
    assert isinstance(leaf.public_key(), expected_key)
    assert leaf.not_valid_after_utc - NOW == 2 * YEAR


def test_rsa_leaf_allows_key_encipherment_for_rsa_key_transport(fixed_pki: DevPki) -> None:
    ca = CertificateAuthority.open(fixed_pki.dso_ca)
    rsa_leaf = ca.issue(Role.VTN, "vtn-rsa", NOW, key_type=KeyType.RSA2048).certificate
    ec_leaf = ca.issue(Role.VTN, "vtn-ec", NOW, key_type=KeyType.P256).certificate
    assert _ext(rsa_leaf, x509.KeyUsage).key_encipherment
    assert not _ext(ec_leaf, x509.KeyUsage).key_encipherment


def test_server_certificate_names_its_hosts(fixed_pki: DevPki) -> None:
    ca = CertificateAuthority.open(fixed_pki.dso_ca)
    sans = [parse_san("localhost"), parse_san("127.0.0.1")]
    leaf = ca.issue(Role.VTN, "vtn", NOW, sans=sans).certificate
    names = _ext(leaf, x509.SubjectAlternativeName)
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_aggregator_ca_refuses_to_issue_outside_its_scope(fixed_pki: DevPki) -> None:
    ca = CertificateAuthority.open(fixed_pki.aggregator_ca)
    for role in (Role.VTN, Role.AGGREGATOR, Role.SERVICE):
        with pytest.raises(CaError, match="may issue only for roles ven"):
            ca.issue(role, "sneaky", NOW)
    assert roles.role_of(ca.issue(Role.VEN, "prosumer", NOW).certificate) is Role.VEN


def test_serials_are_random_159_bit_and_recorded(own_pki: DevPki) -> None:
    ca = CertificateAuthority.open(own_pki.dso_ca)
    serials = [ca.issue(Role.VEN, f"v{n}", NOW).certificate.serial_number for n in range(20)]
    assert len(set(serials)) == 20
    assert all(0 < s < 2**159 for s in serials)
    assert max(s.bit_length() for s in serials) > 150  # random, not counting up
    recorded = {r.serial for r in ca.records()}
    assert set(serials) <= recorded


def test_a_serial_is_never_issued_twice(own_pki: DevPki) -> None:
    ca = CertificateAuthority.open(own_pki.dso_ca)
    first = ca.issue(Role.VEN, "v1", NOW, serial=0x1234).certificate
    assert first.serial_number == 0x1234
    with pytest.raises(CaError, match="already issued serial 1234"):
        ca.issue(Role.VEN, "v2", NOW, serial=0x1234)
    # The record is on disk: a CA opened afresh (another process) refuses it too.
    with pytest.raises(CaError, match="already issued serial"):
        CertificateAuthority.open(own_pki.dso_ca).issue(Role.VEN, "v3", NOW, serial=0x1234)


def test_a_leaf_never_outlives_its_ca(tmp_path: Path) -> None:
    root = _root(tmp_path, lifetimes=Lifetimes(root=365 * DAY))
    leaf = root.issue(Role.VTN, "vtn", NOW, lifetime=5 * YEAR).certificate
    assert leaf.not_valid_after_utc == root.certificate.not_valid_after_utc


def test_explicit_validity_is_used_as_given(fixed_pki: DevPki) -> None:
    ca = CertificateAuthority.open(fixed_pki.dso_ca)
    window = Validity(NOW - 30 * DAY, NOW - DAY)
    leaf = ca.issue(Role.VEN, "old", NOW, validity=window).certificate
    assert (leaf.not_valid_before_utc, leaf.not_valid_after_utc) == (
        window.not_before,
        window.not_after,
    )


def test_init_refuses_to_overwrite_an_existing_ca(tmp_path: Path) -> None:
    _root(tmp_path)
    with pytest.raises(CaError, match="already holds a CA"):
        _root(tmp_path)


def test_revoke_puts_the_serial_in_a_fresh_signed_crl(own_pki: DevPki) -> None:
    ca = CertificateAuthority.open(own_pki.dso_ca)
    victim = own_pki.vens[0].load_certificate()
    before = load_crl(ca.files.crl)

    ca.revoke(victim, NOW + DAY)

    crl = load_crl(ca.files.crl)
    entry = crl.get_revoked_certificate_by_serial_number(victim.serial_number)
    assert entry is not None and entry.revocation_date_utc == NOW + DAY
    assert crl.is_signature_valid(ca.certificate.public_key())  # type: ignore[arg-type]
    number = _ext_crl_number(crl)
    assert number > _ext_crl_number(before)
    assert {r.serial: r.status(NOW + DAY) for r in ca.records()}[victim.serial_number] is (
        Status.REVOKED
    )
    with pytest.raises(CaError, match="already revoked"):
        ca.revoke(victim, NOW + 2 * DAY)


def _ext_crl_number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def test_a_ca_revokes_only_what_it_issued(own_pki: DevPki) -> None:
    aggregator_ca = CertificateAuthority.open(own_pki.aggregator_ca)
    from_dso = own_pki.vens[0].load_certificate()
    with pytest.raises(CaError, match="not issued by CA"):
        aggregator_ca.revoke(from_dso, NOW)


def test_rotate_keeps_the_identity_with_a_new_key(own_pki: DevPki) -> None:
    ca = CertificateAuthority.open(own_pki.dso_ca)
    old = own_pki.vtn.load_certificate()

    new = ca.rotate(old, NOW + DAY, timedelta(days=7)).certificate

    assert new.subject == old.subject
    assert roles.role_of(new) is roles.role_of(old)
    assert _ext(new, x509.SubjectAlternativeName) == _ext(old, x509.SubjectAlternativeName)
    assert new.public_key() != old.public_key()
    assert new.serial_number != old.serial_number
    record = {r.serial: r for r in ca.records()}[old.serial_number]
    assert record.replaced_by == new.serial_number
    assert record.overlap_end == NOW + 8 * DAY
    assert record.status(NOW + 8 * DAY) is Status.OVERLAP
    assert record.status(NOW + 8 * DAY + timedelta(seconds=1)) is Status.SUPERSEDED
    published = json.loads(CaFiles(own_pki.dso_ca).rotations.read_text())["rotations"]
    assert published == [
        {
            "serial": f"{old.serial_number:x}",
            "fingerprint": fingerprint.of_certificate(old),
            "replaced_by": f"{new.serial_number:x}",
            "overlap_end": (NOW + 8 * DAY).isoformat(),
        }
    ]
    with pytest.raises(CaError, match="already rotated"):
        ca.rotate(old, NOW + 2 * DAY, timedelta(days=7))


def test_rotate_can_change_the_key_type(own_pki: DevPki) -> None:
    ca = CertificateAuthority.open(own_pki.dso_ca)
    new = ca.rotate(own_pki.vens[0].load_certificate(), NOW, DAY, key_type=KeyType.RSA2048)
    assert isinstance(new.certificate.public_key(), rsa.RSAPublicKey)


def test_after_the_overlap_the_crl_lists_the_old_certificate_as_superseded(
    own_pki: DevPki,
) -> None:
    ca = CertificateAuthority.open(own_pki.dso_ca)
    old = own_pki.vens[0].load_certificate()
    ca.rotate(old, NOW, timedelta(days=7))
    assert (
        load_crl(ca.files.crl).get_revoked_certificate_by_serial_number(old.serial_number) is None
    )

    ca.publish(NOW + 8 * DAY)

    entry = load_crl(ca.files.crl).get_revoked_certificate_by_serial_number(old.serial_number)
    assert entry is not None
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason is x509.ReasonFlags.superseded


def test_a_revoked_certificate_cannot_be_rotated(own_pki: DevPki) -> None:
    ca = CertificateAuthority.open(own_pki.dso_ca)
    old = own_pki.vens[0].load_certificate()
    ca.revoke(old, NOW)
    with pytest.raises(CaError, match="is revoked"):
        ca.rotate(old, NOW, DAY)
