"""Byte templates (oadr.templates, oadr.signing.SignedTemplate, codec.unsigned_template): an
oadrResponse filled in from byte pieces must be the very document the tree path (`codec.encode`,
`signing.sign`) makes for the same venID, timestamp and nonce, with a signature that verifies;
anything that cannot be filled in verbatim is refused."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oadr import codec, signing, templates
from oadr.exchanges import ok_response
from oadr.model import RequestId, Response, VenId
from oadr.signing import ReplayGuard, SigningKey
from tests.unit.oadr.test_signing import make_signing_key

NOW = datetime(2026, 11, 27, 6, 0, 0, 123456, tzinfo=UTC)
_SIGNATURE_VALUE = re.compile(rb"<ds:SignatureValue>[^<]*</ds:SignatureValue>")


@pytest.fixture(scope="module", params=["ec", "rsa"])
def key(request: pytest.FixtureRequest) -> SigningKey:
    return make_signing_key(str(request.param))


def reply(ven_id: str = "ven-1", request_id: str = "") -> Response:
    return Response(response=ok_response(RequestId(request_id)), ven_id=VenId(ven_id))


def without_signature_value(document: bytes) -> bytes:
    """ECDSA signatures are randomised: compare everything but the SignatureValue."""
    assert len(_SIGNATURE_VALUE.findall(document)) == 1
    return _SIGNATURE_VALUE.sub(b"<ds:SignatureValue/>", document)


ven_ids = st.text(alphabet="abcdefABCDEF0123456789-._:", min_size=1, max_size=40)
nonces = st.text(alphabet="0123456789abcdef", min_size=1, max_size=64)
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@settings(max_examples=60, deadline=None)
@given(ven_id=ven_ids, nonce=nonces, now=times)
def test_a_filled_template_is_the_document_the_tree_path_signs(
    key: SigningKey, ven_id: str, nonce: str, now: datetime
) -> None:
    template = codec.signed_template(reply(), key)
    filled = template.fill(ven_id=ven_id, now=now, nonce=nonce)
    tree = codec.encode(reply(ven_id), signing_key=key, now=now, nonce=nonce)
    assert without_signature_value(filled) == without_signature_value(tree)
    received = codec.receive(filled, now=now, replay_guard=ReplayGuard(timedelta(seconds=30)))
    assert received.payload == reply(ven_id)
    assert received.signature is not None and received.signature.nonce == nonce


def test_each_fill_carries_its_own_replay_protect_and_a_tampered_one_fails(
    key: SigningKey,
) -> None:
    template = codec.signed_template(reply(request_id="r-7"), key)
    guard = ReplayGuard(timedelta(seconds=30))
    first = template.fill(ven_id="ven-a", now=NOW, nonce="n1")
    second = template.fill(ven_id="ven-b", now=NOW + timedelta(seconds=1), nonce="n2")
    assert codec.receive(first, now=NOW, replay_guard=guard).payload == reply("ven-a", "r-7")
    assert codec.receive(second, now=NOW, replay_guard=guard).payload == reply("ven-b", "r-7")
    with pytest.raises(Exception, match="nonce"):  # the same message again: a replay
        codec.receive(first, now=NOW, replay_guard=guard)
    tampered = template.fill(ven_id="ven-c", now=NOW, nonce="n3").replace(b"ven-c", b"ven-d")
    with pytest.raises(Exception, match="digest"):
        codec.receive(tampered, now=NOW, replay_guard=guard)


@pytest.mark.parametrize(
    ("ven_id", "nonce"),
    [("ven<1", "n"), ("ven&amp;", "n"), ("ven 1", "n"), ("", "n"), ("ven", "n\"o"),
     ("ven", ""), ("ven", "x" * (signing.MAX_NONCE_LENGTH + 1))],
)  # fmt: skip
def test_what_would_need_escaping_or_is_out_of_bounds_is_refused(
    key: SigningKey, ven_id: str, nonce: str
) -> None:
    template = codec.signed_template(reply(), key)
    with pytest.raises(ValueError, match="plain text"):
        template.fill(ven_id=ven_id, now=NOW, nonce=nonce)


def test_a_naive_time_is_refused(key: SigningKey) -> None:
    with pytest.raises(ValueError, match="aware"):
        codec.signed_template(reply(), key).fill(
            ven_id="v", now=NOW.replace(tzinfo=None), nonce=uuid.uuid4().hex
        )


@settings(max_examples=60, deadline=None)
@given(ven_id=ven_ids)
def test_an_unsigned_template_joined_is_the_document_encode_makes(ven_id: str) -> None:
    cut = codec.unsigned_template(reply(ven_id="ignored"))
    assert cut.join({"ven_id": ven_id.encode()}) == codec.encode(reply(ven_id))


def test_a_cut_needs_its_slots_once_each_in_order_and_verbatim_sentinels() -> None:
    data = b"<a>T1</a><b>N1</b><v>V</v><v>V</v>"
    sentinels = {"timestamp": "T1", "nonce": "N1", "ven_id": "V"}
    cut = templates.cut(data, sentinels, expect=("timestamp", "nonce"), free="ven_id")
    values = {"timestamp": b"t", "nonce": b"n", "ven_id": b"w"}
    assert cut.join(values) == b"<a>t</a><b>n</b><v>w</v><v>w</v>"
    with pytest.raises(ValueError, match="slots"):  # in another order
        templates.cut(data, sentinels, expect=("nonce", "timestamp"), free="ven_id")
    with pytest.raises(ValueError, match="slots"):  # twice
        templates.cut(data + b"N1", sentinels, expect=("timestamp", "nonce"), free="ven_id")
    with pytest.raises(ValueError, match="plain text"):
        templates.cut(b"<a>x&y</a>", {"nonce": "x&y"}, expect=("nonce",))
