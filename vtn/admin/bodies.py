"""JSON in and out of the admin API: one reading of request bodies for every part on the VTN.

A body that is not JSON, or does not fit its pydantic model, is refused with 400, the reason in
one line (`invalid EventCreate: intervals.0.value: ...`) and pydantic's detail beside it.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from vtn.admin.middleware import ApiError
from vtn.store import jsonform

_B = TypeVar("_B", bound=BaseModel)


def reply(value: Any, status: int = 200) -> web.Response:
    """A pydantic model, or a dataclass of ours (`jsonform`), as a JSON response."""
    data = value.model_dump(mode="json") if isinstance(value, BaseModel) else jsonform.dump(value)
    return web.json_response(data, status=status)


async def read(request: web.Request, model: type[_B]) -> _B:
    try:
        raw = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ApiError(400, f"the body is not JSON: {err}") from None
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in err.errors()]
        problems = "; ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in detail)
        raise ApiError(400, f"invalid {model.__name__}: {problems}", detail) from None
