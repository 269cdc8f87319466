from __future__ import annotations

import stat
from pathlib import Path

import pytest

from certs import keys
from certs.dev import DevPki
from certs.files import (
    CertFileError,
    IdentityFiles,
    check_key_matches,
    load_certificate,
    load_certificates,
    load_key,
    write_key,
)
from certs.keys import KeyType

SECRET = b"correct horse battery staple"


@pytest.mark.parametrize("passphrase", [None, SECRET], ids=["plain", "encrypted"])
def test_private_keys_are_written_0600(tmp_path: Path, passphrase: bytes | None) -> None:
    path = tmp_path / "key.pem"
    key = keys.generate(KeyType.P256)
    write_key(path, key, passphrase)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(path, passphrase).private_numbers() == key.private_numbers()


def test_every_generated_key_file_is_0600(pki: DevPki) -> None:
    key_files = sorted(pki.directory.rglob("*key.pem"))
    assert len(key_files) == 3 + 2 + len(pki.vens)  # CAs, vtn, aggregator, vens
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in key_files)


def test_encrypted_key_is_not_readable_without_the_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    write_key(path, keys.generate(KeyType.P256), SECRET)
    assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()
    with pytest.raises(CertFileError, match=r"key\.pem: private key is encrypted; give its pass"):
        load_key(path)


def test_wrong_passphrase_names_the_file_but_not_the_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    write_key(path, keys.generate(KeyType.RSA2048), SECRET)
    with pytest.raises(CertFileError) as caught:
        load_key(path, b"guess")
    assert str(caught.value) == f"{path}: wrong passphrase"
    assert "guess" not in str(caught.value)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "contains no certificate"),
        (b"hello", "not a PEM certificate file"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "corrupt PEM"),
    ],
    ids=["empty", "text", "bad-base64"],
)
def test_bad_certificate_files(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "cert.pem"
    path.write_bytes(content)
    with pytest.raises(CertFileError, match=problem):
        load_certificate(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CertFileError, match=r"nope\.pem: no such file"):
        load_certificates(tmp_path / "nope.pem")


def test_corrupt_key(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(CertFileError, match="corrupt or unsupported private key"):
        load_key(path)


def test_key_that_does_not_match_its_certificate(pki: DevPki) -> None:
    other_key = load_key(pki.vens[0].key)
    with pytest.raises(CertFileError, match=r"vtn/key\.pem: private key does not match"):
        check_key_matches(other_key, pki.vtn.load_certificate(), pki.vtn.key)


def test_identity_files_hold_leaf_chain_and_root(pki: DevPki) -> None:
    vtn: IdentityFiles = pki.vtn
    chain = load_certificates(vtn.chain)
    assert chain[0] == vtn.load_certificate()
    chain[0].verify_directly_issued_by(chain[1])  # leaf, then its issuing CA
    root = load_certificate(vtn.root)
    chain[1].verify_directly_issued_by(root)
    assert root not in chain  # peers have the root already
    vtn.load_key()  # matches
