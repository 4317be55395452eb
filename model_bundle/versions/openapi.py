"""The admin API's part of the OpenAPI document (only when it is on: admin keys configured)."""

from __future__ import annotations

from typing import Any

from model_bundle.versions.requests import openapi_body
from model_bundle.versions.state import MODES

ERROR = {"$ref": "#/components/schemas/Error"}
TAG = {
    "name": "admin",
    "description": "Model versions: candidates, canary share, promote, roll back "
    "(MODEL_BUNDLE_ADMIN_KEYS).",
}
SECURITY = [{"adminBearer": []}, {"adminKey": []}]
SCHEMES = {
    "adminBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An admin key (MODEL_BUNDLE_ADMIN_KEYS), not a client key.",
    },
    "adminKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
NAME = {
    "name": "name",
    "in": "path",
    "required": True,
    "description": "The model's store name (credit_health, iris, book_rating, mask_classifier).",
    "schema": {"type": "string"},
}
MODE = {"type": "string", "enum": list(MODES)}
STATE = {
    "type": "object",
    "description": "The model's routing state and what this replica serves.",
    "properties": {
        "model": {"type": "string"},
        "primary": {"type": "string"},
        "candidate": {"type": ["string", "null"]},
        "mode": {"anyOf": [MODE, {"type": "null"}]},
        "share": {"type": "number"},
        "previous": {"type": ["string", "null"]},
        "serving": {"type": "object"},
        "loaded": {"type": "array", "items": {"type": "string"}},
        "history": {"type": "array", "items": {"type": "object"}},
    },
}


def operation(
    identifier: str, summary: str, request: dict[str, Any] | None, refusals: dict[str, str]
) -> dict:
    responses: dict[str, Any] = {
        "200": {"description": "Done", "content": {"application/json": {"schema": STATE}}},
        "401": {"description": "Missing or invalid admin key."},
    }
    for status, description in refusals.items():
        responses[status] = {
            "description": description,
            "content": {"application/json": {"schema": ERROR}},
        }
    spec: dict[str, Any] = {
        "operationId": identifier,
        "tags": ["admin"],
        "summary": summary,
        "parameters": [NAME],
        "security": SECURITY,
        "responses": responses,
    }
    if request is not None:
        spec["requestBody"] = request
    return spec


def admin_paths() -> dict[str, Any]:
    unknown = {"404": "Unknown model (or version)."}
    return {
        "/admin/models": {
            "get": {
                "operationId": "admin_models",
                "tags": ["admin"],
                "summary": "Every model's routing state, loaded versions and history.",
                "security": SECURITY,
                "responses": {
                    "200": {
                        "description": "The state of each model",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"models": {"type": "array", "items": STATE}},
                                }
                            }
                        },
                    },
                    "401": {"description": "Missing or invalid admin key."},
                },
            }
        },
        "/admin/models/{name}/candidate": {
            "post": operation(
                "admin_load_candidate",
                "Load a version (warmed up off the request path) as the candidate.",
                openapi_body("candidate"),
                {
                    "400": "Another model's version, a wrong-format artifact, a bad mode or share.",
                    "404": "Unknown model or version.",
                    "409": "A candidate is loaded already, or the tag is the primary.",
                },
            ),
            "delete": operation(
                "admin_drop_candidate",
                "Remove the candidate.",
                None,
                {**unknown, "409": "No candidate."},
            ),
        },
        "/admin/models/{name}/share": {
            "post": operation(
                "admin_share",
                "Set the candidate's mode and canary share.",
                openapi_body("share"),
                {"400": "Share outside 0-100, or a bad mode.", **unknown, "409": "No candidate."},
            )
        },
        "/admin/models/{name}/promote": {
            "post": operation(
                "admin_promote",
                "The candidate becomes primary; the old primary is kept as previous.",
                openapi_body("promote"),
                {**unknown, "409": "No candidate, or it is still loading."},
            )
        },
        "/admin/models/{name}/rollback": {
            "post": operation(
                "admin_rollback",
                "The previous primary becomes primary again.",
                openapi_body("rollback"),
                {**unknown, "409": "No previous primary."},
            )
        },
    }
