"""The JSON form of the gateway's values: what pydantic wrote before reads back the same, and
anything that is not a value of the field's type is refused with the place it was found.
(The whole session state round trip and its byte-for-byte match with pydantic's output are in
test_session.py; device messages in tests/integration/test_han_mqtt.py.)"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from oadr.enums import OptType
from oadr.model import CancelPartyRegistration, ReportPayload, ResourceStatus, RId
from tests.factories import make_event, make_payload
from ven import jsonform, outbox
from ven.jsonform import FormError
from ven.model import DeviceCommand
from ven.schedule import EventRecord

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
DURATIONS = TypeAdapter(timedelta)


@given(st.timedeltas(min_value=timedelta(days=-3000), max_value=timedelta(days=3000)))
def test_durations_are_written_as_pydantic_wrote_them_and_read_back(duration: timedelta) -> None:
    text = jsonform.format_duration(duration)
    assert DURATIONS.dump_json(duration) == json.dumps(text).encode()
    assert jsonform.parse_duration(text) == duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT10S", 10), ("-PT3S", -3), ("PT0.5S", 0.5), ("P1DT1H", 90_000), ("P1Y35D", 400 * 86_400),
     ("P2W", 14 * 86_400), ("PT1H30M", 5_400), ("+PT1M", 60)],
)  # fmt: skip
def test_iso_durations_are_read(text: str, seconds: float) -> None:
    assert jsonform.parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["P", "PT", "10S", "P1H", "PT1D", "P1DT", "-", "PT1.S", ""])
def test_what_is_not_a_duration_is_refused(text: str) -> None:
    with pytest.raises(FormError, match="not an ISO 8601 duration"):
        jsonform.parse_duration(text)


def test_datetimes_keep_their_offset_and_utc_is_written_z() -> None:
    plus_one = datetime(2026, 1, 1, 1, 2, 3, 450000, tzinfo=timezone(timedelta(hours=1)))
    values = [NOW, plus_one, datetime(2026, 1, 1)]
    written = jsonform.dump(values)
    assert written == [
        "2026-01-15T12:00:00Z",
        "2026-01-01T01:02:03.450000+01:00",
        "2026-01-01T00:00:00",
    ]
    assert json.dumps(written).replace(" ", "").encode() == TypeAdapter(list[datetime]).dump_json(
        values
    )
    loaded = jsonform.load(written, list[datetime])
    assert loaded == values and [v.utcoffset() for v in loaded] == [v.utcoffset() for v in values]


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    kind: Literal["sample"] = "sample"
    opt: OptType
    price: Decimal
    values: tuple[float, ...]
    pair: tuple[int, str]
    tags: frozenset[str] = frozenset()
    by_rid: dict[str, float] | None = None


def test_every_kind_of_field_round_trips_with_its_python_type() -> None:
    sample = Sample(
        opt=OptType.OPT_OUT,
        price=Decimal("0.25"),
        values=(1, 2.5),  # an int in a float field reads back as a float
        pair=(3, "x"),
        tags=frozenset({"a"}),
        by_rid={"hp": 1.5},
    )
    written = jsonform.dumps(sample)
    assert json.loads(written) == {
        "kind": "sample",
        "opt": "optOut",
        "price": "0.25",
        "values": [1, 2.5],
        "pair": [3, "x"],
        "tags": ["a"],
        "by_rid": {"hp": 1.5},
    }
    loaded = jsonform.loads(written, Sample)
    assert loaded == sample
    assert isinstance(loaded.values[0], float) and isinstance(loaded.opt, OptType)
    assert isinstance(loaded.tags, frozenset) and isinstance(loaded.pair, tuple)


def test_a_union_of_a_number_and_a_dataclass_reads_each_as_its_own() -> None:
    number = ReportPayload(r_id=RId("power"), value=1.25)
    status = ReportPayload(
        r_id=RId("status"), value=ResourceStatus(online=True, manual_override=False)
    )
    loaded = jsonform.load(jsonform.dump([number, status]), list[ReportPayload])
    assert loaded == [number, status] and isinstance(loaded[1].value, ResourceStatus)


def test_an_outbox_entry_of_an_unknown_kind_is_refused() -> None:
    """The wrapper's `kind` names the payload type: a VEN never queues an oadrPoll."""
    queued = jsonform.dump(outbox.wrap(make_payload(CancelPartyRegistration)))
    assert queued["kind"] == "CancelPartyRegistration"
    with pytest.raises(FormError, match="fits none of the union's members"):
        jsonform.load({**queued, "kind": "Poll"}, outbox.Queued)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"opt": "maybe"}, r"opt: expected one of 'optIn', 'optOut', got 'maybe'"),
        ({"values": [1, "2"]}, r"values\[1\]: expected a number, got '2'"),
        ({"pair": [1]}, r"pair: expected 2 items, got 1"),
        ({"kind": "other"}, r"kind: expected one of \['sample'\]"),
        ({"price": "cheap"}, r"price: not a decimal number"),
        ({"by_rid": {"hp": True}}, r"by_rid.hp: .*expected a number, got True"),
    ],
)
def test_a_wrong_value_is_refused_naming_where_it_is(
    change: dict[str, object], message: str
) -> None:
    data = jsonform.dump(Sample(opt=OptType.OPT_IN, price=Decimal(1), values=(), pair=(1, "a")))
    with pytest.raises(FormError, match=message):
        jsonform.load({**data, **change}, Sample)


def test_a_missing_field_and_broken_json_are_refused() -> None:
    with pytest.raises(FormError, match="DeviceCommand needs 'kind'"):
        jsonform.loads(
            b'{"device_id": "hp", "value": null, "until": null, "reason": ""}', DeviceCommand
        )
    with pytest.raises(FormError, match="not JSON"):
        jsonform.loads(b"{", DeviceCommand)
    with pytest.raises(ValueError):  # what the MQTT bridge and the store catch
        jsonform.loads(b"[]", DeviceCommand)


def test_nested_records_report_the_full_path() -> None:
    record = EventRecord(event=make_event(), draw=0.5, start_at=NOW)
    data = jsonform.dump(record)
    data["event"]["active_period"]["start"] = "tomorrow"
    with pytest.raises(FormError, match=r"^event.active_period.start: not an ISO 8601 datetime"):
        jsonform.load(data, EventRecord)


def test_a_value_without_a_json_form_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="no JSON form for object"):
        jsonform.dump(object())
    with pytest.raises(TypeError, match="no JSON form"):
        jsonform.load(1, complex)
