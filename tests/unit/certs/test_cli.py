"""`flex4grid certs ...` through the real entry point, as a user runs it."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from openleadr import utils as openleadr_utils

from certs import roles
from certs.ca import CertificateAuthority
from certs.files import IdentityFiles, load_certificate, load_crl, load_key
from certs.roles import Role
from flex4grid.cli import main

FINGERPRINT = re.compile(r"([0-9A-F]{2}:){9}[0-9A-F]{2}")


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _make_hierarchy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    root, agg = tmp_path / "root", tmp_path / "agg-ca"
    assert run(capsys, "certs", "init-ca", root, "--name", "Test Root")[0] == 0
    code, out, _ = run(capsys, "certs", "init-ca", agg, "--parent", root, "--roles", "ven")
    assert code == 0 and "(roles: ven)" in out
    return root, agg


def test_init_issue_fingerprint_revoke_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, agg = _make_hierarchy(tmp_path, capsys)
    out_dir = tmp_path / "ven-7"

    code, out, err = run(
        capsys, "certs", "issue", "--ca", agg, "--role", "ven", "--name", "ven-7",
        "--key-type", "rsa2048", "--out", out_dir, "--san", "ven7.local",
    )  # fmt: skip
    assert (code, err) == (0, "")
    certificate = IdentityFiles(out_dir).load_certificate()
    assert roles.role_of(certificate) is Role.VEN
    printed = FINGERPRINT.search(out)
    assert printed is not None

    code, out, _ = run(capsys, "certs", "fingerprint", out_dir / "cert.pem")
    assert code == 0
    assert out.strip() == printed.group(0)
    assert out.strip() == openleadr_utils.certificate_fingerprint(
        (out_dir / "cert.pem").read_text()
    )

    code, out, _ = run(capsys, "certs", "revoke", "--ca", agg, out_dir / "cert.pem")
    assert code == 0 and "revoked 'ven-7'" in out
    assert load_crl(agg / "crl.pem").get_revoked_certificate_by_serial_number(
        certificate.serial_number
    )

    code, out, _ = run(capsys, "certs", "list", "--ca", agg)
    assert code == 0
    (line,) = out.splitlines()
    assert f"{certificate.serial_number:040x}" in line and "revoked" in line and "ven-7" in line


def test_aggregator_ca_cannot_issue_a_vtn_certificate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, agg = _make_hierarchy(tmp_path, capsys)
    code, _, err = run(
        capsys, "certs", "issue", "--ca", agg, "--role", "vtn", "--name", "evil",
        "--out", tmp_path / "evil",
    )  # fmt: skip
    assert code == 1
    assert err == "flex4grid certs: error: CA 'agg-ca' may issue only for roles ven, not vtn\n"
    assert not (tmp_path / "evil").exists()


def test_encrypted_keys_and_passphrase_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca_pass, key_pass = tmp_path / "ca.pass", tmp_path / "key.pass"
    ca_pass.write_text("ca secret\n")
    key_pass.write_text("key secret\n")
    root = tmp_path / "root"
    assert run(capsys, "certs", "init-ca", root, "--passphrase-file", ca_pass)[0] == 0
    assert b"ENCRYPTED" in (root / "ca.key.pem").read_bytes()
    code, _, err = run(
        capsys, "certs", "issue", "--ca", root, "--ca-passphrase-file", ca_pass,
        "--role", "vtn", "--name", "vtn", "--out", tmp_path / "vtn", "--san", "localhost",
        "--passphrase-file", key_pass,
    )  # fmt: skip
    assert (code, err) == (0, "")
    load_key(tmp_path / "vtn" / "key.pem", b"key secret")  # newline stripped


def test_rotate_writes_a_new_key_for_the_same_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, agg = _make_hierarchy(tmp_path, capsys)
    ven = tmp_path / "ven"
    run(capsys, "certs", "issue", "--ca", agg, "--role", "ven", "--name", "ven-1", "--out", ven)
    old = load_certificate(ven / "cert.pem")

    code, out, _ = run(
        capsys, "certs", "rotate", "--ca", agg, ven / "cert.pem", "--out", ven,
        "--overlap-days", "3",
    )  # fmt: skip

    assert code == 0 and "old certificate accepted until" in out
    new = IdentityFiles(ven).load_certificate()
    assert new.subject == old.subject and new.serial_number != old.serial_number
    IdentityFiles(ven).load_key()  # the key on disk belongs to the new certificate
    record = {r.serial: r for r in CertificateAuthority.open(agg).records()}[old.serial_number]
    assert record.replaced_by == new.serial_number


def test_dev_pki_in_one_call(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "certs", "dev-pki", tmp_path / "pki", "--vens", "2")
    assert code == 0
    assert len(FINGERPRINT.findall(out)) == 4  # vtn, aggregator, 2 vens
    for name in ("root", "dso-ca", "aggregator-ca"):
        assert (tmp_path / "pki" / name / "ca.pem").exists()
    vtn = IdentityFiles(tmp_path / "pki" / "vtn").load_certificate()
    assert roles.role_of(vtn) is Role.VTN


def _corrupt(path: Path) -> None:
    path.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")


@pytest.mark.parametrize(
    ("spoil", "argv", "message"),
    [
        (
            lambda d: None,
            ["fingerprint", "{d}/missing.pem"],
            "{d}/missing.pem: no such file",
        ),
        (
            lambda d: _corrupt(d / "ven" / "cert.pem"),
            ["fingerprint", "{d}/ven/cert.pem"],
            "{d}/ven/cert.pem: corrupt PEM certificate",
        ),
        (
            lambda d: _corrupt(d / "agg-ca" / "ca.pem"),
            ["list", "--ca", "{d}/agg-ca"],
            "{d}/agg-ca/ca.pem: corrupt PEM certificate",
        ),
        (
            lambda d: (d / "wrong.pass").write_text("not it\n"),
            ["list", "--ca", "{d}/enc-ca", "--ca-passphrase-file", "{d}/wrong.pass"],
            "{d}/enc-ca/ca.key.pem: wrong passphrase",
        ),
        (
            lambda d: None,
            ["list", "--ca", "{d}/enc-ca"],
            "{d}/enc-ca/ca.key.pem: private key is encrypted; give its passphrase",
        ),
        (
            lambda d: (d / "agg-ca" / "ca.key.pem").write_bytes(
                (d / "ven" / "key.pem").read_bytes()
            ),
            ["revoke", "--ca", "{d}/agg-ca", "{d}/ven/cert.pem"],
            "{d}/agg-ca/ca.key.pem: private key does not match the certificate",
        ),
        (
            lambda d: None,
            ["revoke", "--ca", "{d}/root", "{d}/ven/cert.pem"],
            "certificate was not issued by CA 'Test Root'",
        ),
        (
            lambda d: None,
            ["init-ca", "{d}/x", "--parent", "{d}/root", "--roles", "ven,janitor"],
            "unknown role in 'ven,janitor'; known roles: vtn, ven, aggregator, service",
        ),
        (
            lambda d: None,
            ["issue", "--ca", "{d}/agg-ca", "--role", "ven", "--name", "v", "--out", "{d}/ven"],
            "{d}/ven/cert.pem: already exists; refusing to overwrite it",
        ),
    ],
    ids=[
        "missing-file",
        "corrupt-cert",
        "corrupt-ca-cert",
        "wrong-passphrase",
        "no-passphrase",
        "key-not-matching",
        "not-this-cas-cert",
        "unknown-role",
        "would-overwrite",
    ],
)
def test_bad_input_gets_one_clear_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    spoil: Callable[[Path], object],
    argv: list[str],
    message: str,
) -> None:
    _make_hierarchy(tmp_path, capsys)
    run(capsys, "certs", "issue", "--ca", tmp_path / "agg-ca", "--role", "ven", "--name", "v",
        "--out", tmp_path / "ven")  # fmt: skip
    (tmp_path / "right.pass").write_text("the passphrase\n")
    run(
        capsys,
        "certs",
        "init-ca",
        tmp_path / "enc-ca",
        "--passphrase-file",
        tmp_path / "right.pass",
    )
    spoil(tmp_path)

    code, _, err = run(capsys, "certs", *(a.format(d=tmp_path) for a in argv))

    assert code == 1
    assert err == f"flex4grid certs: error: {message.format(d=tmp_path)}\n"
    assert "Traceback" not in err and "the passphrase" not in err and "not it" not in err
