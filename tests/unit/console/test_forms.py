"""The operator's event form: what a filled-in form becomes, and the message for each mistake."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from console import forms
from console.forms import FormErrors
from oadr import events
from oadr.enums import SignalName
from oadr.model import EventId
from vtn.admin import schemas

NOW = datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC)
GOOD = {"start": "2026-03-02T13:00", "signal": "SIMPLE", "interval_minutes": "30", "values": "1, 2"}
VENS = {"ven-1", "ven-2"}


def validated_create(*args: Any) -> schemas.EventCreate:
    return forms.validated(schemas.EventCreate, forms.event_create(*args))


def test_a_good_form_makes_a_valid_event() -> None:
    body = validated_create(
        GOOD | {"group_ids": "north, south", "priority": "1"}, ["ven-1"], NOW, VENS
    )
    event = schemas.event(body, created=NOW)
    events.validate(dataclasses.replace(event, event_id=EventId("e-1")))  # what the VTN checks
    assert body.start == datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
    (signal,) = body.signals
    assert signal.name is SignalName.SIMPLE
    assert [(i.duration, i.value) for i in signal.intervals] == [
        (timedelta(minutes=30), 1.0),
        (timedelta(minutes=30), 2.0),
    ]
    assert body.targets.ven_ids == ["ven-1"] and body.targets.group_ids == ["north", "south"]
    assert body.priority == 1


def test_the_current_minute_is_not_the_past() -> None:
    forms.event_create(GOOD | {"start": "2026-03-02T12:00"}, [], NOW, VENS)


@pytest.mark.parametrize(
    ("changes", "ven_ids", "field", "message"),
    [
        pytest.param({"start": ""}, [], "start", "give a start time", id="no-start"),
        pytest.param({"start": "tomorrow"}, [], "start", "is not a date", id="bad-start"),
        pytest.param({"start": "2026-03-02T11:59"}, [], "start", "in the past", id="past"),
        pytest.param({"signal": "BID_LOAD"}, [], "signal", "choose a signal", id="signal"),
        pytest.param({"interval_minutes": "0"}, [], "interval_minutes", "between 1", id="zero"),
        pytest.param({"interval_minutes": "1.5"}, [], "interval_minutes", "whole", id="frac"),
        pytest.param({"values": ""}, [], "values", "at least one", id="no-values"),
        pytest.param({"values": "1, x"}, [], "values", "'x' is not a number", id="nan-text"),
        pytest.param({"values": "nan"}, [], "values", "outside", id="nan"),
        pytest.param({"values": "4"}, [], "values", "4 is outside 0 … 3", id="simple-level"),
        pytest.param({"values": ",".join(["1"] * 97)}, [], "values", "at most 96", id="many"),
        pytest.param({"priority": "-1"}, [], "priority", "negative", id="priority"),
        pytest.param({}, ["ven-9"], "ven_ids", "no such VEN: ven-9", id="unknown-ven"),
    ],
)
def test_each_mistake_gets_its_message(
    changes: dict[str, str], ven_ids: list[str], field: str, message: str
) -> None:
    with pytest.raises(FormErrors) as raised:
        forms.event_create(GOOD | changes, ven_ids, NOW, VENS)
    assert message in raised.value.messages[field]


def test_every_mistake_is_reported_at_once() -> None:
    with pytest.raises(FormErrors) as raised:
        forms.event_create(
            {
                "start": "2020-01-01T00:00",
                "signal": "SIMPLE",
                "interval_minutes": "60",
                "values": "9",
            },
            [],
            NOW,
            VENS,
        )
    assert set(raised.value.messages) == {"start", "values"}


def test_a_patch_needs_a_change() -> None:
    with pytest.raises(FormErrors) as raised:
        forms.event_patch({"signal": "SIMPLE", "interval_minutes": "60"}, NOW)
    assert "change the start or the values" in raised.value.messages[""]


def test_a_patch_changes_only_what_was_filled_in() -> None:
    body = forms.event_patch({"values": "2", "signal": "SIMPLE", "interval_minutes": "15"}, NOW)
    assert forms.validated(schemas.EventPatch, body).model_fields_set == {"signals"}
