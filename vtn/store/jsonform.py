"""Model values as JSON for the database and the admin API (pydantic TypeAdapters, cached).

The `oadr.model` dataclasses stay plain: pydantic reads their annotations at the edge only.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import TypeAdapter

_T = TypeVar("_T")


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def adapter(model_type: Any) -> TypeAdapter[Any]:
    found = _ADAPTERS.get(model_type)
    if found is None:
        found = _ADAPTERS[model_type] = TypeAdapter(model_type)
    return found


def dump(value: Any) -> Any:
    """JSON-compatible Python (dicts, lists, strings) for a model value."""
    return adapter(type(value)).dump_python(value, mode="json")


def load(model_type: type[_T], data: Any) -> _T:
    result: _T = adapter(model_type).validate_python(data)
    return result
