"""Per-recipient pseudonyms: stable for one recipient, unlinkable across recipients."""

from __future__ import annotations

import pytest

from dataservice import pseudonyms
from dataservice.consent import ProsumerId
from dataservice.crypto import new_key

PROSUMERS = [ProsumerId(f"prosumer-{n}") for n in range(50)]


def test_a_pseudonym_is_stable_for_one_recipient() -> None:
    key = new_key()
    assert pseudonyms.pseudonym(key, "prosumer-1") == pseudonyms.pseudonym(key, "prosumer-1")


def test_recipients_see_different_unlinkable_pseudonyms() -> None:
    lab, aggregator = new_key(), new_key()
    at_lab = {pseudonyms.pseudonym(lab, p) for p in PROSUMERS}
    at_aggregator = {pseudonyms.pseudonym(aggregator, p) for p in PROSUMERS}
    assert len(at_lab) == len(PROSUMERS)
    assert at_lab.isdisjoint(at_aggregator)


def test_a_pseudonym_resolves_for_its_own_recipient() -> None:
    key = new_key()
    presented = pseudonyms.pseudonym(key, PROSUMERS[7])
    assert pseudonyms.resolve(key, presented, PROSUMERS) == PROSUMERS[7]


def test_a_pseudonym_from_one_recipient_is_unknown_at_another() -> None:
    lab, aggregator = new_key(), new_key()
    from_lab = pseudonyms.pseudonym(lab, PROSUMERS[7])
    assert pseudonyms.resolve(aggregator, from_lab, PROSUMERS) is None


def test_the_pseudonym_does_not_contain_the_id() -> None:
    name = pseudonyms.pseudonym(new_key(), "prosumer-12345")
    assert "12345" not in name and name.startswith(pseudonyms.PREFIX)


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError):
        pseudonyms.pseudonym(b"short", "p")
