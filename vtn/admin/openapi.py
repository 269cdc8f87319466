"""The admin API's OpenAPI 3.1 document, generated from the route table and the same pydantic
types the handlers validate and reply with (`TypeAdapter.json_schemas`)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import JsonSchemaMode

from vtn.admin.schemas import Error

_REF = "#/components/schemas/{model}"
_ERRORS = {
    400: "bad input",
    401: "no or invalid token",
    403: "a viewer token cannot change anything",
    404: "not found",
    409: "conflict",
    422: "refused by an OpenADR rule; `code` is its response code",
}


@dataclass(frozen=True)
class Param:
    name: str
    description: str
    type: str = "string"  # JSON schema type
    enum: tuple[str, ...] | None = None
    format: str | None = None


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    summary: str
    reply: Any  # the type of the success body
    status: int = 200
    body: type[BaseModel] | None = None
    query: tuple[Param, ...] = ()
    public: bool = False

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"\{(\w+)\}", self.path)

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


def _parameter(param: Param, where: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": param.type}
    if param.enum is not None:
        schema["enum"] = list(param.enum)
    if param.format is not None:
        schema["format"] = param.format
    return {
        "name": param.name,
        "in": where,
        "required": where == "path",
        "description": param.description,
        "schema": schema,
    }


def document(routes: Sequence[Route], *, title: str, version: str) -> dict[str, Any]:
    inputs: list[tuple[tuple[str, str], JsonSchemaMode, TypeAdapter[Any]]] = [
        (("error", "reply"), "serialization", TypeAdapter(Error))
    ]
    for route in routes:
        inputs.append(((route.operation_id, "reply"), "serialization", TypeAdapter(route.reply)))
        if route.body is not None:
            inputs.append(((route.operation_id, "body"), "validation", TypeAdapter(route.body)))
    schemas, definitions = TypeAdapter.json_schemas(inputs, ref_template=_REF)
    error = {"application/json": {"schema": schemas[(("error", "reply"), "serialization")]}}

    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation: dict[str, Any] = {
            "operationId": route.operation_id,
            "summary": route.summary,
            "parameters": [_parameter(Param(n, n), "path") for n in route.path_params]
            + [_parameter(p, "query") for p in route.query],
            "responses": {
                str(route.status): {
                    "description": "success",
                    "content": {
                        "application/json": {
                            "schema": schemas[((route.operation_id, "reply"), "serialization")]
                        }
                    },
                },
                **{
                    str(status): {"description": text, "content": error}
                    for status, text in _ERRORS.items()
                    if not route.public
                },
            },
        }
        if route.public:
            operation["security"] = []
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": schemas[((route.operation_id, "body"), "validation")]
                    }
                },
            }
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`<token_id>.<secret>` from `flex4grid vtn token create`",
                }
            },
        },
        "security": [{"bearer": []}],
    }
