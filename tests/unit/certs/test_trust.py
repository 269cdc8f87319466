from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from certs import fingerprint
from certs.ca import CertificateAuthority
from certs.dev import DevPki
from certs.files import CaFiles, CertFileError, load_certificate, write_atomic
from certs.roles import Role
from certs.templates import Validity
from certs.trust import Reason, TrustedCa, TrustStore
from tests.unit.certs.factories import DAY, NOW, make_foreign_root, make_rogue_leaf

VEN_SIDE = frozenset([Role.VEN, Role.AGGREGATOR])  # what a VTN accepts as clients


def _der(identity_cert: Path) -> bytes:
    from certs.files import load_certificate

    return load_certificate(identity_cert).public_bytes(serialization.Encoding.DER)


def test_accepts_a_valid_ven_and_names_it(fixed_pki: DevPki) -> None:
    verdict = fixed_pki.trust_store().check(_der(fixed_pki.vens[1].cert), Role.VEN, NOW)
    assert verdict.accepted, verdict.detail
    assert verdict.reason is Reason.ACCEPTED
    assert verdict.name == "ven-2"
    assert verdict.role is Role.VEN
    assert verdict.fingerprint == fingerprint.of_pem(fixed_pki.vens[1].cert.read_bytes())


@dataclass(frozen=True)
class Case:
    """How to make a peer certificate, what role the server wants, and when it asks."""

    make: Callable[[DevPki, Path], bytes]
    accept: Role | frozenset[Role]
    reason: Reason
    at: datetime = NOW


def _issued(
    ca_dir: Callable[[DevPki], Path], role: Role, **kwargs: object
) -> Callable[[DevPki, Path], bytes]:
    def make(pki: DevPki, tmp_path: Path) -> bytes:
        ca = CertificateAuthority.open(ca_dir(pki))
        issued = ca.issue(role, "peer", NOW, **kwargs)  # type: ignore[arg-type]
        return issued.certificate.public_bytes(serialization.Encoding.DER)

    return make


def _foreign(pki: DevPki, tmp_path: Path) -> bytes:
    root = make_foreign_root(tmp_path / "foreign", "Somebody Else's Root")
    return root.issue(Role.VEN, "ven-x", NOW).certificate.public_bytes(serialization.Encoding.DER)


def _impostor(pki: DevPki, tmp_path: Path) -> bytes:
    # Same issuer *name* as our DSO CA, different key: only signature checks can tell.
    fake = make_foreign_root(tmp_path / "fake", "Flex4Grid Dev DSO CA")
    return fake.issue(Role.VEN, "ven-x", NOW).certificate.public_bytes(serialization.Encoding.DER)


def _rogue(role: Role) -> Callable[[DevPki, Path], bytes]:
    def make(pki: DevPki, tmp_path: Path) -> bytes:
        issued = make_rogue_leaf(pki.aggregator_ca, role, "rogue")
        return issued.certificate.public_bytes(serialization.Encoding.DER)

    return make


_dso: Callable[[DevPki], Path] = lambda pki: pki.dso_ca  # noqa: E731
_agg: Callable[[DevPki], Path] = lambda pki: pki.aggregator_ca  # noqa: E731

CASES = {
    "dso-ven": Case(_issued(_dso, Role.VEN), VEN_SIDE, Reason.ACCEPTED),
    "aggregator-ven": Case(_issued(_agg, Role.VEN), VEN_SIDE, Reason.ACCEPTED),
    "aggregator-as-ven": Case(_issued(_dso, Role.AGGREGATOR), VEN_SIDE, Reason.ACCEPTED),
    "expired": Case(
        _issued(_dso, Role.VEN, validity=Validity(NOW - 30 * DAY, NOW - DAY)),
        Role.VEN,
        Reason.EXPIRED,
    ),
    "not-yet-valid": Case(
        _issued(_dso, Role.VEN, validity=Validity(NOW + DAY, NOW + 30 * DAY)),
        Role.VEN,
        Reason.NOT_YET_VALID,
    ),
    "expired-by-the-clock": Case(
        _issued(_dso, Role.VEN), Role.VEN, Reason.EXPIRED, at=NOW + 3 * 365 * DAY
    ),
    "unknown-ca": Case(_foreign, Role.VEN, Reason.UNKNOWN_CA),
    "impostor-ca-with-our-name": Case(_impostor, Role.VEN, Reason.UNTRUSTED_CHAIN),
    "vtn-as-client": Case(_issued(_dso, Role.VTN), VEN_SIDE, Reason.WRONG_ROLE),
    "ven-as-server": Case(_issued(_dso, Role.VEN), Role.VTN, Reason.WRONG_ROLE),
    "aggregator-ca-signs-vtn": Case(_rogue(Role.VTN), Role.VTN, Reason.CA_OUT_OF_SCOPE),
    "aggregator-ca-signs-aggregator": Case(
        _rogue(Role.AGGREGATOR), VEN_SIDE, Reason.CA_OUT_OF_SCOPE
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_verdicts(fixed_pki: DevPki, tmp_path: Path, case: Case) -> None:
    verdict = fixed_pki.trust_store().check(case.make(fixed_pki, tmp_path), case.accept, case.at)
    assert verdict.reason is case.reason, verdict.detail
    assert verdict.accepted is (case.reason is Reason.ACCEPTED)


def test_malformed_der_is_refused(fixed_pki: DevPki) -> None:
    verdict = fixed_pki.trust_store().check(b"\x30\x03junk", Role.VEN, NOW)
    assert verdict.reason is Reason.MALFORMED


def test_store_scope_limits_a_ca_below_what_its_certificate_allows(fixed_pki: DevPki) -> None:
    # The DSO CA may issue for every role, but this store lets it vouch only for VTNs.
    store = TrustStore(
        [TrustedCa.from_dir(fixed_pki.root), TrustedCa.from_dir(fixed_pki.dso_ca, [Role.VTN])]
    )
    assert store.check(_der(fixed_pki.vtn.cert), Role.VTN, NOW).accepted
    verdict = store.check(_der(fixed_pki.vens[0].cert), Role.VEN, NOW)
    assert verdict.reason is Reason.CA_OUT_OF_SCOPE
    assert "may vouch for vtn, not ven" in verdict.detail


def test_a_ca_left_out_of_the_store_is_unknown(fixed_pki: DevPki) -> None:
    store = TrustStore([TrustedCa.from_dir(fixed_pki.root), TrustedCa.from_dir(fixed_pki.dso_ca)])
    verdict = store.check(_der(fixed_pki.vens[1].cert), Role.VEN, NOW)  # aggregator CA's VEN
    assert verdict.reason is Reason.UNKNOWN_CA


def test_a_store_needs_a_root(fixed_pki: DevPki) -> None:
    with pytest.raises(ValueError, match="root"):
        TrustStore([TrustedCa.from_dir(fixed_pki.dso_ca)])


def test_revocation_takes_effect_on_reload(own_pki: DevPki) -> None:
    store = own_pki.trust_store()
    ven = _der(own_pki.vens[1].cert)
    assert store.check(ven, Role.VEN, NOW).accepted
    assert store.reload() is False  # nothing changed on disk

    CertificateAuthority.open(own_pki.aggregator_ca).revoke(own_pki.vens[1].load_certificate(), NOW)
    assert store.check(ven, Role.VEN, NOW).accepted  # not re-read yet

    assert store.reload() is True
    verdict = store.check(ven, Role.VEN, NOW)
    assert verdict.reason is Reason.REVOKED
    assert store.check(_der(own_pki.vens[2].cert), Role.VEN, NOW).accepted  # its sibling is fine


def test_revoking_a_ca_refuses_every_leaf_below_it(own_pki: DevPki) -> None:
    store = own_pki.trust_store()
    root = CertificateAuthority.open(own_pki.root)
    root.revoke(CertificateAuthority.open(own_pki.aggregator_ca).certificate, NOW)
    store.reload()
    for ven in own_pki.vens[1:]:
        verdict = store.check(_der(ven.cert), Role.VEN, NOW)
        assert verdict.reason is Reason.REVOKED
        assert "CA Flex4Grid Dev Aggregator CA revoked" in verdict.detail
    assert store.check(_der(own_pki.vens[0].cert), Role.VEN, NOW).accepted


def test_rotation_overlap_then_cut_off(own_pki: DevPki) -> None:
    store = own_pki.trust_store()
    old = own_pki.vens[1].load_certificate()
    new = CertificateAuthority.open(own_pki.aggregator_ca).rotate(old, NOW, timedelta(days=7))
    store.reload()
    old_der = _der(own_pki.vens[1].cert)
    new_der = new.certificate.public_bytes(serialization.Encoding.DER)
    overlap_end = NOW + timedelta(days=7)

    for at in (NOW, overlap_end):
        assert store.check(old_der, Role.VEN, at).accepted
        assert store.check(new_der, Role.VEN, at).accepted
    after = overlap_end + timedelta(seconds=1)
    verdict = store.check(old_der, Role.VEN, after)
    assert verdict.reason is Reason.SUPERSEDED
    assert store.check(new_der, Role.VEN, after).accepted
    # Same identity on both sides of the rotation:
    assert store.check(new_der, Role.VEN, after).name == verdict.name == "ven-2"


def test_a_crl_signed_by_someone_else_is_refused_and_the_old_one_kept(
    own_pki: DevPki, tmp_path: Path
) -> None:
    store = own_pki.trust_store()
    CertificateAuthority.open(own_pki.aggregator_ca).revoke(own_pki.vens[1].load_certificate(), NOW)
    store.reload()
    forged = make_foreign_root(tmp_path / "forger", "Forger")
    forged.publish(NOW)
    write_atomic(CaFiles(own_pki.aggregator_ca).crl, forged.files.crl.read_bytes())

    with pytest.raises(CertFileError, match=r"crl\.pem: CRL is not signed by CA"):
        store.reload()
    assert store.check(_der(own_pki.vens[1].cert), Role.VEN, NOW).reason is Reason.REVOKED


def test_a_corrupt_crl_is_reported_with_its_path(own_pki: DevPki) -> None:
    store = own_pki.trust_store()
    crl = CaFiles(own_pki.dso_ca).crl
    write_atomic(crl, b"-----BEGIN X509 CRL-----\nnot base64\n-----END X509 CRL-----\n")
    with pytest.raises(CertFileError, match=r"crl\.pem: corrupt PEM"):
        store.reload()


def test_pem_bundle_holds_every_ca(fixed_pki: DevPki) -> None:
    bundle = fixed_pki.trust_store().pem_bundle()
    assert bundle.count("BEGIN CERTIFICATE") == 3


def test_the_ca_certificates_own_scope_holds_even_if_the_store_is_generous(
    fixed_pki: DevPki,
) -> None:
    store = TrustStore(
        [
            TrustedCa.from_dir(fixed_pki.root),
            TrustedCa.from_dir(fixed_pki.aggregator_ca, [Role.VEN, Role.VTN]),
        ]
    )
    rogue = make_rogue_leaf(fixed_pki.aggregator_ca, Role.VTN, "rogue-vtn").certificate
    verdict = store.check(rogue, Role.VTN, NOW)
    assert verdict.reason is Reason.CA_OUT_OF_SCOPE
    assert "is limited to ven, not vtn" in verdict.detail


def test_a_verdict_is_reused_until_the_trust_generation_changes(own_pki: DevPki) -> None:
    store = own_pki.trust_store()
    ven = _der(own_pki.vens[1].cert)
    first = store.check(ven, VEN_SIDE, NOW)
    assert store.check(ven, VEN_SIDE, NOW + DAY) is first  # cached: no second chain check
    generation = store.generation
    assert store.reload() is False and store.generation == generation

    CertificateAuthority.open(own_pki.aggregator_ca).revoke(own_pki.vens[1].load_certificate(), NOW)
    assert store.reload() is True and store.generation == generation + 1
    assert store.check(ven, VEN_SIDE, NOW).reason is Reason.REVOKED


def test_a_cached_verdict_ends_with_the_certificates_validity(fixed_pki: DevPki) -> None:
    store = fixed_pki.trust_store()
    der = _der(fixed_pki.vens[1].cert)
    expiry = load_certificate(fixed_pki.vens[1].cert).not_valid_after_utc
    assert store.check(der, Role.VEN, NOW).accepted
    assert store.check(der, Role.VEN, expiry).accepted
    assert store.check(der, Role.VEN, expiry + timedelta(seconds=1)).reason is Reason.EXPIRED
    assert store.check(der, Role.VEN, NOW).accepted


def test_a_cached_verdict_is_per_accepted_role(fixed_pki: DevPki) -> None:
    store = fixed_pki.trust_store()
    der = _der(fixed_pki.vens[1].cert)
    assert store.check(der, Role.VEN, NOW).accepted
    assert store.check(der, Role.VTN, NOW).reason is Reason.WRONG_ROLE


def test_a_verdict_names_the_issuer(fixed_pki: DevPki) -> None:
    verdict = fixed_pki.trust_store().check(_der(fixed_pki.vens[1].cert), Role.VEN, NOW)
    assert verdict.issuer is not None and "Aggregator CA" in verdict.issuer
