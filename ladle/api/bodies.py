"""Parse JSON request bodies into pydantic models; every mistake becomes a 400 that names
the field."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from ladle.schemas.errors import invalid
from ladle.schemas.principal import Principal

M = TypeVar("M", bound=BaseModel)


async def json_body(request: Request, required: bool = True) -> Any:
    raw = await request.body()
    if not raw.strip():
        if required:
            return {}
        return None
    return json_object(raw)


def json_object(raw: bytes) -> dict[str, Any]:
    """A non-empty body that must be one JSON object; anything else is a 400."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise invalid(f"Malformed JSON in request body: {e}") from None
    if not isinstance(data, dict):
        raise invalid("The request body must be a JSON object")
    return data


def validate(model: type[M], data: Any, prefix: str = "") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise invalid(describe(e, prefix)) from None


def describe(e: ValidationError, prefix: str = "") -> str:
    parts = []
    for err in e.errors()[:3]:
        loc = ".".join(str(x) for x in err["loc"] if not str(x).startswith("function-"))
        loc = f"{prefix}{'.' if prefix and loc else ''}{loc}" or "body"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def principal(request: Request) -> Principal:
    return request.scope["state"]["principal"]
