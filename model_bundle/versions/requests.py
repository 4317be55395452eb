"""The admin API's request bodies, declared once: validated here and documented in the
OpenAPI document from the same models.

Refusals keep the admin API's own error types (``share_out_of_range``, ``invalid_mode``,
``invalid_by``) beside pydantic's (``missing``, ``extra_forbidden``), so a client can act on
the type without parsing the message."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from model_bundle.versions.rollout import RolloutPolicy
from model_bundle.versions.state import MODES, Mode


def share_in_range(value: Any) -> Any:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= 100
    ):
        raise PydanticCustomError(
            "share_out_of_range",
            "share must be a number from 0 to 100 (percent of live traffic), got {value!r}",
            {"value": value},
        )
    return value


def known_mode(value: Any) -> Any:
    if value not in MODES:
        raise PydanticCustomError(
            "invalid_mode",
            "mode must be one of {modes}, got {value!r}",
            {"modes": ", ".join(MODES), "value": value},
        )
    return value


def valid_by(value: Any) -> Any:
    if not isinstance(value, str) or not 0 < len(value) <= 100:
        raise PydanticCustomError("invalid_by", "by must be a name of 1 to 100 characters")
    return value


def model_tag(value: Any) -> Any:
    if not isinstance(value, str) or not value.strip():
        raise PydanticCustomError("missing", "tag: a model tag, name:version")
    return value.strip()


# The JSON schemas are stated: the checks are the validators', which pydantic cannot read.
Share = Annotated[
    float,
    BeforeValidator(share_in_range),
    WithJsonSchema(
        {"type": "number", "minimum": 0, "maximum": 100, "description": "Percent of live traffic."}
    ),
]
ModeField = Annotated[Mode, BeforeValidator(known_mode)]


class AdminRequest(BaseModel):
    """Every change names who made it."""

    model_config = ConfigDict(extra="forbid")

    by: Annotated[
        str | None,
        BeforeValidator(valid_by),
        WithJsonSchema(
            {
                "type": "string",
                "minLength": 1,
                "maxLength": 100,
                "description": "Who makes the change (default: the admin key's name).",
            }
        ),
    ] = None


class CandidateRequest(AdminRequest):
    tag: Annotated[str, BeforeValidator(model_tag), Field(description="name:version")]
    mode: ModeField = "shadow"
    share: Share = 0.0
    rollout: RolloutPolicy | None = Field(
        None,
        description="Judge the candidate automatically: it moves on (shadow, canary, primary) "
        "while its live figures hold and is removed when they worsen. Left out: by hand.",
    )


class ShareRequest(AdminRequest):
    share: Share
    mode: ModeField | None = Field(None, description="Unchanged when left out.")


REQUESTS: dict[str, type[AdminRequest]] = {
    "candidate": CandidateRequest,
    "share": ShareRequest,
    "promote": AdminRequest,
    "rollback": AdminRequest,
    "drop": AdminRequest,
}


class BodyError(ValueError):
    """The first problem of a refused body: its field, error type and message."""

    def __init__(self, field: str, kind: str, msg: str) -> None:
        super().__init__(msg)
        self.field, self.kind, self.msg = field, kind, msg


def parse(action: str, body: dict[str, Any]) -> AdminRequest:
    try:
        return REQUESTS[action].model_validate(body)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        msg = f"unexpected field {field!r}" if first["type"] == "extra_forbidden" else first["msg"]
        raise BodyError(field, first["type"], msg) from None


def openapi_body(action: str) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of ``action``, from its model."""
    schema = REQUESTS[action].model_json_schema()
    schema.pop("title", None)
    for field in schema["properties"].values():
        field.pop("title", None)
        if field.get("default", "") is None:  # "left out", not a value a client sends
            del field["default"]
    required = bool(schema.get("required"))
    return {"required": required, "content": {"application/json": {"schema": schema}}}
