from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oadr import xmlvalues as xv
from oadr.errors import InvalidData

UTC = UTC

DATETIMES = {
    "zulu": ("2026-01-15T12:00:00Z", datetime(2026, 1, 15, 12, tzinfo=UTC)),
    "no-zone-means-utc": ("2026-01-15T12:00:00", datetime(2026, 1, 15, 12, tzinfo=UTC)),
    "millis": ("2026-01-15T12:00:00.250Z", datetime(2026, 1, 15, 12, 0, 0, 250000, tzinfo=UTC)),
    "nanos-cut-to-micros": (
        "2026-01-15T12:00:00.123456789Z",
        datetime(2026, 1, 15, 12, 0, 0, 123456, tzinfo=UTC),
    ),
    "surrounding-space": (" 2026-01-15T12:00:00Z\n", datetime(2026, 1, 15, 12, tzinfo=UTC)),
}


@pytest.mark.parametrize(("text", "expected"), DATETIMES.values(), ids=DATETIMES.keys())
def test_parse_datetime(text: str, expected: datetime) -> None:
    assert xv.parse_datetime(text) == expected


@pytest.mark.parametrize(
    "text",
    ["2026-01-15", "2026-01-15T12:00:00+01:00", "2026-13-01T00:00:00Z", "yesterday", ""],
    ids=["date-only", "offset", "month-13", "words", "empty"],
)
def test_parse_datetime_refuses(text: str) -> None:
    with pytest.raises(InvalidData):
        xv.parse_datetime(text)


def test_format_datetime_writes_utc_with_z() -> None:
    local = datetime(2026, 1, 15, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    assert xv.format_datetime(local) == "2026-01-15T12:00:00Z"
    assert xv.format_datetime(local.replace(microsecond=5)) == "2026-01-15T12:00:00.000005Z"


def test_format_datetime_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="naive"):
        xv.format_datetime(datetime(2026, 1, 15, 12))


DURATIONS = {
    "minutes": ("PT15M", timedelta(minutes=15)),
    "day-and-time": ("P1DT2H30M", timedelta(days=1, hours=2, minutes=30)),
    "weeks": ("P2W", timedelta(weeks=2)),
    "negative": ("-PT5S", timedelta(seconds=-5)),
    "zero-minutes": ("PT0M", timedelta(0)),
    "bare-p": ("P", timedelta(0)),
    "bare-pt": ("PT", timedelta(0)),
    "hours-without-t": ("P1H", timedelta(hours=1)),
    "zero-years-ok": ("P0Y0M1D", timedelta(days=1)),
}


@pytest.mark.parametrize(("text", "expected"), DURATIONS.values(), ids=DURATIONS.keys())
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert xv.parse_duration(text) == expected


@pytest.mark.parametrize("text", ["P1Y", "P2M", "PT1.5S", "15 minutes", "P-5M"], ids=str)
def test_parse_duration_refuses_inexact_or_malformed(text: str) -> None:
    with pytest.raises(InvalidData):
        xv.parse_duration(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "PT0S"),
        (timedelta(minutes=15), "PT15M"),
        (timedelta(days=1), "P1D"),
        (timedelta(days=1, seconds=1), "P1DT1S"),
        (timedelta(seconds=-90), "-PT1M30S"),
    ],
    ids=str,
)
def test_format_duration(value: timedelta, text: str) -> None:
    assert xv.format_duration(value) == text


FRACTIONS = {
    "half-second": ("PT0.5S", timedelta(milliseconds=500)),
    "quarter-past-one": ("PT1.25S", timedelta(seconds=1.25)),
    "day-and-a-millisecond": ("P1DT0.001S", timedelta(days=1, milliseconds=1)),
    "negative": ("-PT0.5S", timedelta(milliseconds=-500)),
}


@pytest.mark.parametrize(("text", "value"), FRACTIONS.values(), ids=FRACTIONS.keys())
def test_fractions_of_a_second_cross_xcal_in_neither_direction(text: str, value: timedelta) -> None:
    """xs:duration would take PT0.5S, but xcal:DurationValueType (2.0b XSD) has `(\\d+S)?`: a
    peer's fraction is InvalidData (454), and ours is a ValueError the VTN's edge answers 469."""
    with pytest.raises(InvalidData):
        xv.parse_duration(text)
    with pytest.raises(ValueError, match="fraction of a second"):
        xv.format_duration(value)


@given(st.integers(min_value=-(10**9), max_value=10**9))
def test_duration_round_trips(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert xv.parse_duration(xv.format_duration(value)) == value


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_round_trips_exactly(value: float) -> None:
    assert xv.parse_float(xv.format_float(value)) == value


@pytest.mark.parametrize("text", ["NaN", "INF", "-INF", "one"])
def test_parse_float_refuses_non_finite_and_words(text: str) -> None:
    with pytest.raises(InvalidData):
        xv.parse_float(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("1", True), ("false", False), ("0", False), (" true ", True)],
)
def test_parse_bool(text: str, value: bool) -> None:
    assert xv.parse_bool(text) is value


def test_parse_bool_refuses_other_words() -> None:
    with pytest.raises(InvalidData):
        xv.parse_bool("yes")
