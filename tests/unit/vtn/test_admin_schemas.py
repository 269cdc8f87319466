"""Admin API request bodies: what a friendly JSON request becomes as an `oadr.model.Event`."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from oadr import events
from oadr.enums import ItemKind, SignalName, SignalType
from oadr.errors import ReportNotSupported
from oadr.model import EventId, RId
from tests.factories import HOUR, NOW, make_event, make_metadata_report
from vtn.admin import schemas


def create(**fields: Any) -> schemas.EventCreate:
    body = {
        "start": (NOW + HOUR).isoformat(),
        "signals": [
            {"intervals": [{"duration": "PT30M", "value": 1}, {"duration": 1800, "value": 2}]}
        ],
    } | fields
    return schemas.EventCreate.model_validate(body)


def test_a_minimal_request_is_a_valid_simple_event_for_everyone() -> None:
    event = schemas.event(create(), created=NOW)
    events.validate(dataclasses.replace(event, event_id=EventId("e1")))  # the service names it
    assert event.active_period.duration == HOUR, "duration defaults to the intervals' sum"
    (signal,) = event.signals
    assert (signal.signal_name, signal.signal_type) == (SignalName.SIMPLE, SignalType.LEVEL)
    assert [(i.uid, i.value) for i in signal.intervals] == [(0, 1.0), (1, 2.0)]
    assert signal.item_base is None and event.target.is_empty()
    assert event.market_context == schemas.DEFAULT_MARKET_CONTEXT


def test_load_dispatch_values_are_kw_and_targets_and_randomization_carry_over() -> None:
    body = create(
        signals=[{"name": "LOAD_DISPATCH", "intervals": [{"duration": "PT1H", "value": -3}]}],
        targets={"group_ids": ["north"], "ven_ids": ["v1"]},
        start_after="PT5M",
        priority=1,
        test_event=True,
    )
    event = schemas.event(body, created=NOW)
    item = event.signals[0].item_base
    assert item is not None and (item.kind, item.units, item.scale) == (
        ItemKind.POWER_REAL,
        "W",
        "k",
    )
    assert event.signals[0].signal_type == SignalType.SETPOINT
    assert event.target.group_ids == ("north",) and event.target.ven_ids == ("v1",)
    assert event.active_period.start_after == timedelta(minutes=5)
    assert event.priority == 1 and event.test_event is True


@pytest.mark.parametrize(
    "fields",
    [
        {"start": "2026-01-15T12:00:00"},
        {"signals": []},
        {"signals": [{"intervals": [{"duration": -5, "value": 1}]}]},
        {"priority": -1},
        {"colour": "red"},
        {"signals": [{"name": "NOT_A_SIGNAL", "intervals": [{"duration": 60, "value": 1}]}]},
    ],
    ids=["naive-start", "no-signals", "negative-duration", "negative-priority", "unknown-field",
         "unknown-signal"],
)  # fmt: skip
def test_bad_requests_are_refused_by_the_schema(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        create(**fields)


def test_a_patch_of_the_intervals_moves_the_duration_along() -> None:
    current = make_event()
    patch = schemas.EventPatch.model_validate(
        {"signals": [{"intervals": [{"duration": "PT2H", "value": 3}]}], "priority": 2}
    )
    changes = schemas.changes(current, patch)
    assert set(changes) == {"signals", "active_period", "priority"}
    assert changes["active_period"].duration == 2 * HOUR
    assert changes["active_period"].start == current.active_period.start
    events.validate(events.modify(current, NOW, **changes))


def test_a_patch_that_changes_nothing_is_refused() -> None:
    with pytest.raises(ValidationError):
        schemas.EventPatch.model_validate({})


def test_a_report_request_defaults_to_every_registered_rid() -> None:
    registered = [make_metadata_report(r_ids=(RId("a"), RId("b")))]
    body = schemas.ReportRequestBody(report_specifier_id=registered[0].report_specifier_id)
    request = schemas.report_request(body, registered, "rr-9")
    assert request.report_request_id == "rr-9"
    assert [p.r_id for p in request.specifier_payloads] == ["a", "b"]
    with pytest.raises(ReportNotSupported):
        schemas.report_request(
            schemas.ReportRequestBody(report_specifier_id="other"), registered, "rr-10"
        )
