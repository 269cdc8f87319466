"""The JSON form of the gateway's frozen values, read and written by their type hints.

The gateway saves its session state (`ven.store`) and exchanges device commands and telemetry
(`ven.han.mqtt`) as JSON. The values are frozen dataclasses of `oadr.model` and `ven.model`
values, tuples, enums, datetimes and durations; this module turns them into JSON and back,
checking every value against its field's type on the way in.

The format is the one pydantic's `TypeAdapter` wrote, which the gateway used before, so a state
saved by an older gateway still loads: datetimes in ISO 8601 with `Z` for UTC, durations in
ISO 8601 (`PT10S`, `-PT3S`, `P1DT1H`), `Decimal` as a string, enums by value, tuples and sets as
arrays, every dataclass field present. Why not pydantic itself: on a small gateway box it costs
~8 MB of resident memory (its compiled core and a schema per type), more than a tenth of the
60 MB budget (issue 6; benchmarks/ven_footprint.py). Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import re
import types
import typing
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

_T = TypeVar("_T")
Loader = Callable[[Any], Any]


class FormError(ValueError):
    """The JSON does not hold a value of the expected type; the message names where."""

    def __init__(self, message: str, path: tuple[str | int, ...] = ()) -> None:
        self.reason = message
        self.path = path
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        super().__init__(f"{where}: {message}" if where else message)

    def inside(self, step: str | int) -> FormError:
        return FormError(self.reason, (step, *self.path))


# --- writing --------------------------------------------------------------------------------------


def dumps(value: Any) -> bytes:
    """Compact JSON of `value` (UTF-8)."""
    return json.dumps(dump(value), separators=(",", ":"), ensure_ascii=False).encode()


def dump(value: Any) -> Any:
    """`value` as plain JSON values (dicts, lists, str, numbers, bool, None)."""
    cls = type(value)
    dumper = _DUMPERS.get(cls)
    if dumper is None:  # first sight of this type: find how, once (a state holds thousands)
        dumper = _DUMPERS[cls] = _dumper_for(cls)
    return dumper(value)


def _dumper_for(cls: type) -> Callable[[Any], Any]:
    if issubclass(cls, enum.Enum):  # first: a StrEnum is a str too
        return _enum_value
    if cls is type(None) or issubclass(cls, bool | int | float | str):
        return _identity
    if issubclass(cls, datetime):
        return format_datetime
    if issubclass(cls, timedelta):
        return format_duration
    if issubclass(cls, date | time):
        return _isoformat
    if issubclass(cls, Decimal):
        return str
    if dataclasses.is_dataclass(cls):
        names = _field_names(cls)
        return lambda value: {name: dump(getattr(value, name)) for name in names}
    if issubclass(cls, tuple | list | frozenset | set):
        return lambda value: [dump(item) for item in value]
    if issubclass(cls, dict):
        return lambda value: {str(dump(k)): dump(v) for k, v in value.items()}
    raise TypeError(f"no JSON form for {cls.__name__}")


def _enum_value(value: enum.Enum) -> Any:
    return value.value


def _isoformat(value: date | time) -> str:
    return value.isoformat()


_DUMPERS: dict[type, Callable[[Any], Any]] = {}


def format_datetime(at: datetime) -> str:
    text = at.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def format_duration(duration: timedelta) -> str:
    """ISO 8601, as pydantic writes it: a year is 365 days; seconds keep their fraction."""
    if duration < timedelta(0):
        return "-" + format_duration(-duration)
    years, days = divmod(duration.days, 365)
    hours, rest = divmod(duration.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    day_part = (f"{years}Y" if years else "") + (f"{days}D" if days else "")
    time_part = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if duration.microseconds:
        time_part += f"{seconds}.{duration.microseconds:06d}".rstrip("0") + "S"
    elif seconds:
        time_part += f"{seconds}S"
    if not day_part and not time_part:
        return "PT0S"
    return f"P{day_part}" + (f"T{time_part}" if time_part else "")


# --- reading --------------------------------------------------------------------------------------


def loads(text: str | bytes, type_: type[_T]) -> _T:
    """The value of type `type_` that `text` holds; FormError (a ValueError) if it holds none."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormError(f"not JSON: {exc}") from None
    return load(data, type_)


def load(data: Any, type_: type[_T]) -> _T:
    """The value of type `type_` in plain JSON values `data` (as `dump` wrote them)."""
    result: _T = loader(typing.cast(Any, type_))(data)
    return result


_DURATION = re.compile(
    r"([-+])?P(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?"
)
_DAYS_PER = (365.0, 30.0, 7.0, 1.0)  # Y, M, W, D: pydantic's reading of calendar units


def parse_duration(text: str) -> timedelta:
    match = _DURATION.fullmatch(text)
    if match is None or not any(match.groups()[1:]) or text.endswith("T"):
        raise FormError(f"not an ISO 8601 duration: {text!r}")
    sign, *parts = match.groups()
    days = sum(float(p) * per for p, per in zip(parts[:4], _DAYS_PER, strict=True) if p)
    hours, minutes, seconds = (float(p) if p else 0.0 for p in parts[4:])
    duration = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    return -duration if sign == "-" else duration


@functools.cache
def loader(type_: Any) -> Loader:
    """A function checking and converting JSON values to `type_` (cached per type)."""
    if type_ is Any:
        return _identity
    if type_ is None or type_ is type(None):
        return _none
    supertype = getattr(type_, "__supertype__", None)  # typing.NewType
    if supertype is not None:
        return loader(supertype)
    origin = typing.get_origin(type_)
    if origin is typing.Literal:
        return _literal(typing.get_args(type_))
    if origin is typing.Union or origin is types.UnionType:
        return _union(typing.get_args(type_))
    if origin in (tuple, list, frozenset, set):
        return _sequence(origin, typing.get_args(type_))
    if origin is dict:
        key_type, value_type = typing.get_args(type_)
        return _mapping(loader(key_type), loader(value_type))
    if origin is not None:
        raise TypeError(f"no JSON form for {type_!r}")
    if isinstance(type_, type):
        if issubclass(type_, enum.Enum):
            return _enum(type_)
        if dataclasses.is_dataclass(type_):
            return _dataclass(type_)
        if type_ in _SCALARS:
            return _SCALARS[type_]
        if type_ in (tuple, list, frozenset, set):
            return _sequence(type_, ())
        if type_ is dict:
            return _mapping(_identity, _identity)
    raise TypeError(f"no JSON form for {type_!r}")


def _identity(data: Any) -> Any:
    return data


def _none(data: Any) -> None:
    if data is not None:
        raise FormError(f"expected null, got {data!r}")


def _str(data: Any) -> str:
    if not isinstance(data, str):
        raise FormError(f"expected a string, got {data!r}")
    return data


def _int(data: Any) -> int:
    if isinstance(data, bool) or not isinstance(data, int | float):
        raise FormError(f"expected an integer, got {data!r}")
    if isinstance(data, float):
        if not data.is_integer():
            raise FormError(f"expected an integer, got {data!r}")
        return int(data)
    return data


def _float(data: Any) -> float:
    if isinstance(data, bool) or not isinstance(data, int | float):
        raise FormError(f"expected a number, got {data!r}")
    return float(data)


def _bool(data: Any) -> bool:
    if not isinstance(data, bool):
        raise FormError(f"expected true or false, got {data!r}")
    return data


def _datetime(data: Any) -> datetime:
    try:
        return datetime.fromisoformat(_str(data))
    except ValueError:
        raise FormError(f"not an ISO 8601 datetime: {data!r}") from None


def _date(data: Any) -> date:
    try:
        return date.fromisoformat(_str(data))
    except ValueError:
        raise FormError(f"not an ISO 8601 date: {data!r}") from None


def _time(data: Any) -> time:
    try:
        return time.fromisoformat(_str(data))
    except ValueError:
        raise FormError(f"not an ISO 8601 time: {data!r}") from None


def _timedelta(data: Any) -> timedelta:
    if isinstance(data, int | float) and not isinstance(data, bool):
        return timedelta(seconds=data)  # pydantic also read plain seconds
    return parse_duration(_str(data))


def _decimal(data: Any) -> Decimal:
    if isinstance(data, bool) or not isinstance(data, str | int | float):
        raise FormError(f"expected a decimal number, got {data!r}")
    try:
        return Decimal(str(data))
    except InvalidOperation:
        raise FormError(f"not a decimal number: {data!r}") from None


_SCALARS: dict[type, Loader] = {
    str: _str,
    int: _int,
    float: _float,
    bool: _bool,
    datetime: _datetime,
    date: _date,
    time: _time,
    timedelta: _timedelta,
    Decimal: _decimal,
}


def _literal(values: tuple[Any, ...]) -> Loader:
    def load_literal(data: Any) -> Any:
        for value in values:
            if data == value and type(data) is type(value):
                return value
        raise FormError(f"expected one of {list(values)!r}, got {data!r}")

    return load_literal


def _enum(enum_type: type[enum.Enum]) -> Loader:
    def load_enum(data: Any) -> enum.Enum:
        try:
            return enum_type(data)
        except ValueError:
            known = ", ".join(repr(m.value) for m in enum_type)
            raise FormError(f"expected one of {known}, got {data!r}") from None

    return load_enum


def _sequence(kind: type, args: tuple[Any, ...]) -> Loader:
    fixed = kind is tuple and bool(args) and args[-1] is not Ellipsis
    items = [loader(a) for a in args] if fixed else [loader(args[0] if args else Any)]

    def load_sequence(data: Any) -> Any:
        if not isinstance(data, list):
            raise FormError(f"expected an array, got {data!r}")
        if fixed and len(data) != len(items):
            raise FormError(f"expected {len(items)} items, got {len(data)}")
        values = []
        for i, item in enumerate(data):
            try:
                values.append((items[i] if fixed else items[0])(item))
            except FormError as err:
                raise err.inside(i) from None
        return kind(values)

    return load_sequence


def _mapping(key: Loader, value: Loader) -> Loader:
    def load_mapping(data: Any) -> dict[Any, Any]:
        if not isinstance(data, dict):
            raise FormError(f"expected an object, got {data!r}")
        result = {}
        for k, v in data.items():
            try:
                result[key(k)] = value(v)
            except FormError as err:
                raise err.inside(k) from None
        return result

    return load_mapping


def _tag(member: Any) -> tuple[str, Any] | None:
    """A dataclass member's discriminating field: one whose type is a single Literal."""
    if not (isinstance(member, type) and dataclasses.is_dataclass(member)):
        return None
    hints = _hints(member)
    for field in dataclasses.fields(member):
        args = typing.get_args(hints[field.name])
        if typing.get_origin(hints[field.name]) is typing.Literal and len(args) == 1:
            return field.name, args[0]
    return None


def _union(members: tuple[Any, ...]) -> Loader:
    optional = type(None) in members
    others = tuple(m for m in members if m is not type(None))
    choices = [loader(m) for m in others]
    tags = [_tag(m) for m in others]
    by_tag: dict[tuple[str, Any], Loader] = {}
    if all(tags):
        by_tag = {t: choice for t, choice in zip(tags, choices, strict=True) if t is not None}
    tag_fields = {name for name, _ in by_tag}

    def load_union(data: Any) -> Any:
        if data is None and optional:
            return None
        if by_tag and isinstance(data, dict):
            for name in tag_fields:
                if (chosen := by_tag.get((name, data.get(name)))) is not None:
                    return chosen(data)
        if len(choices) == 1:  # `X | None`: X's own error, with its path
            return choices[0](data)
        errors = []
        for choice in choices:  # in declared order, the first that fits (pydantic's "smart")
            try:
                return choice(data)
            except FormError as err:
                errors.append(str(err))
        raise FormError(f"fits none of the union's members: {'; '.join(errors)}")

    return load_union


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _dataclass(cls: type) -> Loader:
    fields: list[tuple[str, bool, Callable[[], Loader]]] = []
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        required = (
            field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        )
        # Field loaders are looked up on first use: a dataclass may refer to itself.
        fields.append((field.name, required, functools.partial(_field_loader, cls, field.name)))

    def load_dataclass(data: Any) -> Any:
        if not isinstance(data, dict):
            raise FormError(f"expected an object for {cls.__name__}, got {data!r}")
        arguments = {}
        for name, required, field_loader in fields:
            if name in data:
                try:
                    arguments[name] = field_loader()(data[name])
                except FormError as err:
                    raise err.inside(name) from None
            elif required:
                raise FormError(f"{cls.__name__} needs {name!r}")
        try:
            return cls(**arguments)
        except (TypeError, ValueError) as err:  # the dataclass's own checks
            raise FormError(f"{cls.__name__}: {err}") from None

    return load_dataclass


def _field_loader(cls: type, name: str) -> Loader:
    return loader(_hints(cls)[name])
