"""XML namespaces of OpenADR 2.0b and the lexical forms of its values.

xcal date-times (`xcal:DateTimeType`), RFC 5545 durations (`xcal:DurationValueType`), xs:float,
xs:boolean. Parsing is strict and exact: a value we cannot represent without loss is refused with
`InvalidData` rather than rounded (see README, "Our readings of the spec").
"""

from __future__ import annotations

import functools
import math
import re
from datetime import UTC, datetime, timedelta

from oadr.errors import InvalidData

OADR = "http://openadr.org/oadr-2.0b/2012/07"
EI = "http://docs.oasis-open.org/ns/energyinterop/201110"
PYLD = "http://docs.oasis-open.org/ns/energyinterop/201110/payloads"
EMIX = "http://docs.oasis-open.org/ns/emix/2011/06"
POWER = "http://docs.oasis-open.org/ns/emix/2011/06/power"
SCALE = "http://docs.oasis-open.org/ns/emix/2011/06/siscale"
XCAL = "urn:ietf:params:xml:ns:icalendar-2.0"
STRM = "urn:ietf:params:xml:ns:icalendar-2.0:stream"
DS = "http://www.w3.org/2000/09/xmldsig#"
DSP = "http://openadr.org/oadr-2.0b/2012/07/xmldsig-properties"

# Prefixes we write; every one is declared once on oadrPayload.
NSMAP: dict[str, str] = {
    "oadr": OADR,
    "ei": EI,
    "pyld": PYLD,
    "emix": EMIX,
    "power": POWER,
    "scale": SCALE,
    "xcal": XCAL,
    "strm": STRM,
}


@functools.cache
def qname(namespace: str, local: str) -> str:
    """The Clark name `{namespace}local` lxml uses for a tag (cached: decoding asks often)."""
    return f"{{{namespace}}}{local}"


# --- date-time ------------------------------------------------------------------------------------

_DATETIME = re.compile(r"\s*(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d*))?(Z)?\s*\Z")


def parse_datetime(text: str) -> datetime:
    """Parse an xcal date-time; 'Z' or no zone both mean UTC (2.0b sends UTC only).

    Fractions beyond microseconds are cut, not rounded: a datetime holds no finer time.
    """
    match = _DATETIME.match(text)
    if match is None:
        raise InvalidData(f"not an OpenADR UTC date-time: {text[:40]!r}")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = (match.group(7) or "")[:6].ljust(6, "0")
    try:
        return datetime(year, month, day, hour, minute, second, int(fraction), tzinfo=UTC)
    except ValueError as exc:
        raise InvalidData(f"impossible date-time {text[:40]!r}: {exc}") from exc


def format_datetime(value: datetime) -> str:
    """UTC, 'Z', microseconds only when present: 2026-01-15T12:00:00Z."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: OpenADR needs aware UTC times")
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


# --- duration -------------------------------------------------------------------------------------

_DURATION = re.compile(
    # The XSD's own pattern: T is optional, so "PT", "P" and "P1H" are all valid.
    r"\s*([+-])?P(?:(\d+)W|(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?"
    r"T?(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)\s*\Z"
)


@functools.lru_cache(maxsize=512)  # a report repeats one interval duration many times
def parse_duration(text: str) -> timedelta:
    """Parse an RFC 5545 / xcal duration such as PT15M, P1DT2H, P2W or -PT5S.

    Years and months have no fixed length, so a non-zero Y or M is refused (InvalidData).
    """
    match = _DURATION.match(text)
    if match is None:
        raise InvalidData(f"not an OpenADR duration: {text[:40]!r}")
    sign, weeks, years, months, days, hours, minutes, seconds = match.groups()
    if int(years or 0) or int(months or 0):
        raise InvalidData(
            f"duration {text[:40]!r} uses years or months, which have no fixed length"
        )
    value = timedelta(
        weeks=int(weeks or 0),
        days=int(days or 0),
        hours=int(hours or 0),
        minutes=int(minutes or 0),
        seconds=int(seconds or 0),
    )
    return -value if sign == "-" else value


def format_duration(value: timedelta) -> str:
    """Shortest exact form: PT0S, PT15M, P1DT2H30M, -PT5S. Whole seconds only (xcal has no
    fractions)."""
    if value.microseconds:
        raise ValueError(f"duration {value!r} has a fraction of a second; xcal cannot carry it")
    sign = "-" if value < timedelta(0) else ""
    total = abs(int(value.total_seconds()))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{sign}P"
    if days:
        text += f"{days}D"
    if hours or minutes or seconds or not days:
        text += "T"
        if hours:
            text += f"{hours}H"
        if minutes:
            text += f"{minutes}M"
        if seconds or not (hours or minutes):
            text += f"{seconds}S"
    return text


# --- numbers and booleans -------------------------------------------------------------------------


def parse_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise InvalidData(f"not a number: {text[:40]!r}") from exc
    if not math.isfinite(value):
        raise InvalidData(f"non-finite number {text[:40]!r} is not a usable value")
    return value


def format_float(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"non-finite value {value!r} cannot be sent")
    return repr(float(value))


def parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError as exc:
        raise InvalidData(f"not an integer: {text[:40]!r}") from exc


def parse_bool(text: str) -> bool:
    stripped = text.strip()
    if stripped in ("true", "1"):
        return True
    if stripped in ("false", "0"):
        return False
    raise InvalidData(f"not a boolean: {text[:40]!r}")


def format_bool(value: bool) -> str:
    return "true" if value else "false"
