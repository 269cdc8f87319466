"""The property-test strategies (tests/strategies.py) only make values the rules call valid."""

from __future__ import annotations

import dataclasses
import math
import re
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import openleadr
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from oadr import model as m
from oadr.enums import (
    DataQuality,
    ItemKind,
    ReadingType,
    ReportName,
    ReportType,
    ResponseCode,
    SignalName,
)
from tests.strategies import (
    ID_ALPHABET,
    ITEM_BASE_FIXED,
    MAX_DATETIME,
    MAX_ITEMS,
    MIN_DATETIME,
    PAYLOAD_STRATEGIES,
    SI_SCALE_CODES,
    SIGNAL_TYPES_BY_NAME,
    payloads,
)

_ID = re.compile(f"[{re.escape(ID_ALPHABET)}]{{1,16}}")
_ID_FIELDS = {
    "request_id", "ven_id", "ven_ids", "vtn_id", "registration_id", "event_id", "opt_id",
    "report_request_id", "report_request_ids", "pending_reports", "report_specifier_id",
    "report_id", "r_id", "signal_id", "baseline_id", "group_ids", "group_names",
    "resource_ids", "party_ids", "end_device_assets", "uid",
}  # fmt: skip
_TEXT_FIELDS = {"vtn_comment", "modification_reason", "ven_name", "baseline_name"}
_URI_FIELDS = {"market_context", "transport_address"}
_EXTENSIBLE: dict[str, set[str]] = {
    "report_name": {n.value for n in ReportName},
    "report_type": {t.value for t in ReportType},
    "reading_type": {t.value for t in ReadingType},
    "data_quality": {q.value for q in DataQuality},
}
_SCHEMA = Path(openleadr.__file__).parent / "schema"
_XS = {"xs": "http://www.w3.org/2001/XMLSchema"}


def fields_of(value: Any, owner: Any = None, name: str = "") -> Iterator[tuple[Any, str, Any]]:
    """Every (owning dataclass, field name, value) in a payload, depth first."""
    if isinstance(value, tuple):
        assert len(value) <= MAX_ITEMS, (name, value)
        for item in value:
            yield from fields_of(item, owner, name)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            yield from fields_of(getattr(value, field.name), value, field.name)
    else:
        yield owner, name, value


def is_free_text(text: str) -> bool:
    categories = {unicodedata.category(c) for c in text}
    return bool(text) and text == text.strip() and not categories & {"Cc", "Cs", "Cn"}


def check_scalar(owner: Any, name: str, value: Any) -> None:
    where = f"{type(owner).__name__}.{name}={value!r}"
    if isinstance(value, datetime):
        assert value.tzinfo is UTC and MIN_DATETIME <= value <= MAX_DATETIME, where
    elif isinstance(value, timedelta):
        assert value >= timedelta() and value.microseconds == 0, where
    elif isinstance(value, float):
        assert math.isfinite(value) and not (value == 0 and math.copysign(1, value) < 0), where
    elif isinstance(value, str) and name in _ID_FIELDS:
        empty_allowed = isinstance(owner, m.EiResponse) and name == "request_id"
        assert _ID.fullmatch(value) or (empty_allowed and value == ""), where
    elif isinstance(value, str) and (name in _TEXT_FIELDS or name == "description"):
        if not isinstance(owner, m.ItemBase):  # item descriptions: checked against the XSD
            assert is_free_text(value), where
    elif isinstance(value, str) and name in _URI_FIELDS:
        assert value.startswith("http://") and " " not in value, where
    elif isinstance(value, str) and name in _EXTENSIBLE:
        assert value in _EXTENSIBLE[name] or value.startswith("x-"), where


def check_item_base(item_base: m.ItemBase) -> None:
    rule = ITEM_BASE_FIXED[item_base.kind]
    assert item_base.description in rule.descriptions or (
        not rule.descriptions and is_free_text(item_base.description)
    )
    assert item_base.units in rule.units or (not rule.units and is_free_text(item_base.units))
    if rule.scaled:
        assert item_base.scale in SI_SCALE_CODES and item_base.pulse_factor is None
    else:
        assert item_base.scale is None and item_base.pulse_factor is not None
    assert (item_base.power_attributes is not None) == rule.power_attributes


def check_intervals(intervals: tuple[m.EventInterval, ...], duration: timedelta) -> None:
    assert [i.uid for i in intervals] == list(range(len(intervals)))
    assert sum((i.duration for i in intervals), timedelta()) == duration


def check_event(event: m.Event) -> None:
    period = event.active_period
    assert period.start + period.duration <= MAX_DATETIME, period  # interval starts stay in range
    assert event.signals
    for signal in event.signals:
        assert signal.intervals
        check_intervals(signal.intervals, event.active_period.duration)
        assert signal.signal_type in SIGNAL_TYPES_BY_NAME[signal.signal_name]
        if signal.signal_name in (SignalName.SIMPLE, SignalName.SIMPLE_LOWER):
            assert {i.value for i in signal.intervals} <= {0.0, 1.0, 2.0, 3.0}
    if event.baseline is not None:
        check_intervals(event.baseline.intervals, event.baseline.duration)


def check_payload(payload: m.Payload) -> None:
    """Every rule tests/strategies.py promises in its docstring."""
    parts: list[Any] = [payload]
    for owner, name, value in fields_of(payload):
        check_scalar(owner, name, value)
        parts.append(owner)
    for part in {id(p): p for p in parts}.values():
        if isinstance(part, m.ItemBase):
            check_item_base(part)
        elif isinstance(part, m.Event):
            check_event(part)
        elif isinstance(part, m.EiResponse | m.EventResponse):
            assert part.code in set(ResponseCode)
        elif isinstance(part, m.ReportRequest | m.CancelReport):
            ids = getattr(part, "report_request_ids", (getattr(part, "report_request_id", ""),))
            assert m.METADATA_REPORT_REQUEST_ID not in ids
    if isinstance(payload, m.RegisterReport):
        assert all(r.report_request_id == m.METADATA_REPORT_REQUEST_ID for r in payload.reports)
        assert all(not r.intervals for r in payload.reports)


@pytest.mark.parametrize("payload_type", list(PAYLOAD_STRATEGIES), ids=lambda t: t.__name__)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_each_strategy_makes_valid_values_of_its_type(
    payload_type: type[m.Payload], data: st.DataObject
) -> None:
    payload = data.draw(PAYLOAD_STRATEGIES[payload_type]())
    assert type(payload) is payload_type
    check_payload(payload)


@settings(max_examples=100, deadline=None)
@given(payloads())
def test_payloads_makes_valid_values(payload: m.Payload) -> None:
    check_payload(payload)


def test_there_is_a_strategy_for_every_payload_type() -> None:
    assert set(PAYLOAD_STRATEGIES) == set(m.PAYLOAD_TYPES)


def test_the_checks_catch_invalid_values() -> None:
    # The sanity checks above must be able to fail, or they prove nothing.
    bad_id = m.Poll(ven_id=m.VenId(" ven"))
    bad_text = m.Response(response=m.EiResponse(code=200, description="ok\n"))
    bad_unit = m.ItemBase(kind=ItemKind.POWER_REAL, description="RealPower", units="kW")
    for payload in (bad_id, bad_text):
        with pytest.raises(AssertionError):
            check_payload(payload)
    with pytest.raises(AssertionError):
        check_item_base(bad_unit)
    with pytest.raises(AssertionError):
        check_scalar(None, "value", -0.0)


def _xpath_strings(node: etree._Element, path: str) -> set[str]:
    found = node.xpath(path, namespaces=_XS)
    assert isinstance(found, list)
    return {str(v) for v in found}


def _load_item_schema() -> tuple[dict[str, etree._Element], dict[str, set[str]]]:
    """itemBase element name -> its complexType; named simpleType -> its enumeration."""
    complex_types: dict[str, etree._Element] = {}
    enumerations: dict[str, set[str]] = {}
    for name in (
        "oadr_20b.xsd",
        "oadr_power_20b.xsd",
        "oadr_ISO_ISO3AlphaCurrencyCode_20100407.xsd",
    ):
        root = etree.parse(str(_SCHEMA / name)).getroot()
        by_name = {t.get("name"): t for t in root.iterfind("{*}complexType")}
        for simple in root.iterfind("{*}simpleType"):
            enumerations[str(simple.get("name"))] = _xpath_strings(simple, ".//*/@value")
        for element in root.iterfind("{*}element"):
            type_name = (element.get("type") or "").split(":")[-1]
            if type_name in by_name:
                complex_types[str(element.get("name"))] = by_name[type_name]
    return complex_types, enumerations


_ITEM_TYPES, _ENUMERATIONS = _load_item_schema()


@pytest.mark.parametrize("kind", list(ItemKind), ids=str)
def test_item_base_table_agrees_with_the_xsd(kind: ItemKind) -> None:
    complex_type = _ITEM_TYPES[kind.value]
    rule = ITEM_BASE_FIXED[kind]

    def allowed(name: str) -> set[str]:
        """The values the XSD allows for this child; empty for free xs:string."""
        [node] = complex_type.iterfind(f".//{{*}}element[@name='{name}']")
        if (fixed := node.get("fixed")) is not None:
            return {fixed}
        named = (node.get("type") or "").split(":")[-1]
        return _xpath_strings(node, ".//xs:enumeration/@value") or _ENUMERATIONS.get(named, set())

    refs = {ref.split(":")[-1] for ref in _xpath_strings(complex_type, ".//xs:element/@ref")}
    assert set(rule.descriptions) == allowed("itemDescription")
    assert set(rule.units) == allowed("itemUnits")
    assert rule.scaled == ("siScaleCode" in refs)
    assert rule.scaled != ("pulseFactor" in refs)
    assert rule.power_attributes == ("powerAttributes" in refs)
