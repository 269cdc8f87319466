"""The operator's event form -> an admin API request body, or field-by-field messages.

Pure: the form's text fields in, the admin API's request body out (a dict that
`vtn.admin.schemas.EventCreate`/`EventPatch` validate: `validated(model, body)`), or
`FormErrors`. The form offers only what makes a valid event
(signal names with their usual type, a start not in the past, whole-minute intervals); the
OpenADR rules (`oadr.events.validate`) still run in the operator service before anything is
stored, and their message is shown the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from oadr.enums import SignalName

M = TypeVar("M", bound=BaseModel)

# What the form offers, with the unit shown beside the values and their allowed range.
SIGNALS: dict[str, tuple[str, float, float]] = {
    SignalName.SIMPLE.value: ("level 0–3", 0, 3),
    SignalName.ELECTRICITY_PRICE.value: ("EUR/kWh", -10, 10),
    SignalName.LOAD_DISPATCH.value: ("kW setpoint", -10_000, 10_000),
}
MAX_INTERVALS = 96
MAX_INTERVAL_MINUTES = 24 * 60


@dataclass
class FormErrors(Exception):
    """Messages per form field ("" for the form as a whole)."""

    messages: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, message: str) -> None:
        self.messages.setdefault(name, message)

    def __str__(self) -> str:
        return "; ".join(f"{k}: {v}" if k else v for k, v in self.messages.items())


def split_list(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


def _start(text: str, now: datetime, errors: FormErrors) -> datetime | None:
    if not text:
        errors.add("start", "give a start time (UTC)")
        return None
    try:
        start = datetime.fromisoformat(text)
    except ValueError:
        errors.add("start", f"{text!r} is not a date and time (YYYY-MM-DDTHH:MM)")
        return None
    start = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
    if start < now.replace(second=0, microsecond=0):
        errors.add("start", "the start is in the past")
    return start


def _intervals(fields: Mapping[str, str], signal: str, errors: FormErrors) -> list[dict[str, Any]]:
    unit, low, high = SIGNALS[signal]
    minutes_text = fields.get("interval_minutes", "")
    try:
        minutes = int(minutes_text)
    except ValueError:
        errors.add("interval_minutes", "give whole minutes")
        return []
    if not 1 <= minutes <= MAX_INTERVAL_MINUTES:
        errors.add("interval_minutes", f"between 1 and {MAX_INTERVAL_MINUTES} minutes")
        return []
    texts = split_list(fields.get("values", ""))
    if not texts:
        errors.add("values", "give at least one value")
        return []
    if len(texts) > MAX_INTERVALS:
        errors.add("values", f"at most {MAX_INTERVALS} intervals")
        return []
    intervals = []
    for text in texts:
        try:
            value = float(text)
        except ValueError:
            errors.add("values", f"{text!r} is not a number")
            return []
        if not low <= value <= high or value != value:
            errors.add("values", f"{text} is outside {low:g} … {high:g} ({unit})")
            return []
        intervals.append({"duration": timedelta(minutes=minutes), "value": value})
    return intervals


def _priority(text: str, errors: FormErrors) -> int | None:
    if not text:
        return None
    try:
        priority = int(text)
    except ValueError:
        errors.add("priority", "a whole number (1 highest, 0 none)")
        return None
    if priority < 0:
        errors.add("priority", "must not be negative")
    return priority


def _signal(fields: Mapping[str, str], errors: FormErrors) -> str:
    signal = fields.get("signal", "")
    if signal not in SIGNALS:
        errors.add("signal", "choose a signal from the list")
    return signal


def _pydantic(errors: FormErrors, exc: ValidationError) -> None:
    for problem in exc.errors():
        where = str(problem["loc"][0]) if problem["loc"] else ""
        errors.add(where, str(problem["msg"]))


def event_create(
    fields: Mapping[str, str], ven_ids: list[str], now: datetime, known_vens: set[str]
) -> dict[str, Any]:
    """The create request a filled-in form means; FormErrors for anything wrong."""
    errors = FormErrors()
    start = _start(fields.get("start", ""), now, errors)
    signal = _signal(fields, errors)
    intervals = _intervals(fields, signal, errors) if signal in SIGNALS else []
    priority = _priority(fields.get("priority", ""), errors)
    unknown = sorted(set(ven_ids) - known_vens)
    if unknown:
        errors.add("ven_ids", f"no such VEN: {', '.join(unknown)}")
    groups = split_list(fields.get("group_ids", ""))
    event_id = fields.get("event_id", "") or None
    if errors.messages:
        raise errors
    body: dict[str, Any] = {
        "event_id": event_id,
        "start": start,
        "signals": [{"name": signal, "intervals": intervals}],
        "targets": {"ven_ids": ven_ids, "group_ids": groups},
        "priority": priority,
        "vtn_comment": fields.get("vtn_comment", "") or None,
        "test_event": fields.get("test_event") == "on",
    }
    return body


def event_patch(fields: Mapping[str, str], now: datetime) -> dict[str, Any]:
    """A modification: a new start and/or new values; only what was filled in changes."""
    errors = FormErrors()
    body: dict[str, Any] = {}
    if fields.get("start"):
        body["start"] = _start(fields["start"], now, errors)
    if fields.get("values"):
        signal = _signal(fields, errors)
        if signal in SIGNALS:
            body["signals"] = [{"name": signal, "intervals": _intervals(fields, signal, errors)}]
    if fields.get("modification_reason"):
        body["modification_reason"] = fields["modification_reason"]
    if not body and not errors.messages:
        errors.add("", "change the start or the values (or both)")
    if errors.messages:
        raise errors
    return body


def validated(model: type[M], body: dict[str, Any]) -> M:
    """The request body as the admin API's model; its complaints as FormErrors."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = FormErrors()
        _pydantic(errors, exc)
        raise errors from None
