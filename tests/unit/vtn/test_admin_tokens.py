"""Admin tokens: the secret is stored as a salted scrypt hash and checked in constant time."""

from __future__ import annotations

import pytest

from tests.factories import NOW
from vtn.admin.tokens import TokenError, TokenRole, hash_secret, new_token, split, verify_secret


def test_a_new_token_stores_only_a_salted_hash_of_its_secret() -> None:
    made = new_token("alice", TokenRole.VIEWER, NOW)
    token_id, secret = split(made.token)
    assert made.record.token_id == token_id and made.record.role == "viewer"
    assert secret not in made.record.secret_hash
    assert made.record.secret_hash.startswith("scrypt$16384$8$1$")
    assert len(made.record.secret_hash) <= 128  # the admin_tokens column
    assert verify_secret(secret, made.record.secret_hash)
    assert not verify_secret(secret + "x", made.record.secret_hash)


def test_the_same_secret_hashes_differently_with_another_salt() -> None:
    assert hash_secret("s", b"1" * 16) != hash_secret("s", b"2" * 16)
    assert hash_secret("s", b"1" * 16) == hash_secret("s", b"1" * 16)


@pytest.mark.parametrize(
    "stored",
    ["", "plain", "bcrypt$1$2$3$c2FsdA$aGFzaA", "scrypt$x$8$1$c2FsdA$aGFzaA"],
    ids=["empty", "no-fields", "other-scheme", "bad-number"],
)
def test_a_malformed_stored_hash_never_verifies(stored: str) -> None:
    assert not verify_secret("secret", stored)


@pytest.mark.parametrize("token", ["", "nodot", ".secret", "id."], ids=repr)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(TokenError):
        split(token)
