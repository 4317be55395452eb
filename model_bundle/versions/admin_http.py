"""The admin API: ``/admin/models`` (GET: every model's versions and routing) and
``/admin/models/{name}/{candidate|share|promote|rollback}`` (POST; DELETE ``.../candidate``
drops the candidate), guarded by ``MODEL_BUNDLE_ADMIN_KEYS``.

Off unless admin keys are configured: every ``/admin/`` path then answers 404, as if it did
not exist. Admin keys are separate from the client keys: a client key never opens the admin
API, and an admin request needs no client key (this middleware sits before the client-key
check). Keys are sent like client keys (``Authorization: Bearer`` or ``X-API-Key``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import bentoml
from bentoml.exceptions import BentoMLException

from model_bundle.catalogue import CATALOGUE
from model_bundle.http.access import ApiKeyAuth, digest, presented_keys
from model_bundle.http.guards import Scope, read_body, send_json
from model_bundle.settings import settings
from model_bundle.versions.control import AdminError, describe_state, operate
from model_bundle.versions.serving import Versions

PREFIX = "/admin/"
ACTIONS = {
    ("POST", "candidate"): "candidate",
    ("DELETE", "candidate"): "drop",
    ("POST", "share"): "share",
    ("POST", "promote"): "promote",
    ("POST", "rollback"): "rollback",
}
MAX_BODY = 64 * 1024
logger = logging.getLogger("model_bundle")


def problem(kind: str, loc: list[str], msg: str) -> dict[str, Any]:
    return {"error": msg, "detail": [{"type": kind, "loc": loc, "msg": msg}]}


def served_versions() -> Versions | None:
    """The :class:`Versions` of the service instance this process serves (BentoML's current
    service: the middleware is built by BentoML before the instance), None while it starts."""
    try:
        return bentoml.get_current_service().versions
    except BentoMLException:
        return None


class AdminApi:
    """ASGI middleware answering ``/admin/...`` itself, for the served instance's versions."""

    def __init__(
        self,
        app: Any,
        keys: tuple[str, ...] | None = None,
        versions: Callable[[], Versions | None] = served_versions,
    ) -> None:
        self.app = app
        self.keys = settings.admin_keys if keys is None else keys
        self.auth = ApiKeyAuth(app, self.keys)
        self.versions = versions

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path.startswith(PREFIX) or path == "/admin"):
            return await self.app(scope, receive, send)
        if not self.keys:
            return await send_json(send, HTTPStatus.NOT_FOUND, {"error": "not found"})
        presented = presented_keys(scope)
        if not self.auth.accepts(presented):
            return await send_json(
                send,
                HTTPStatus.UNAUTHORIZED,
                problem(
                    "unauthorized",
                    ["header", "Authorization"],
                    "missing or invalid admin key (MODEL_BUNDLE_ADMIN_KEYS): send it as "
                    "'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                ),
                extra_headers=[(b"www-authenticate", b'Bearer realm="model_bundle admin"')],
            )
        key_name = "admin key " + digest(presented[0]).hex()[:8]
        # This middleware sits outside BentoML's app and its error handling: an exception
        # here would send nothing, and the client would wait for the request timeout and
        # get a bare 500. A runner down or busy is BentoML's 503, the admin may try again.
        try:
            status, body = await self.answer(scope, receive, path, key_name)
        except BentoMLException as error:
            status, body = HTTPStatus(error.error_code), {"error": str(error)}
        except Exception:
            logger.exception("admin %s %s failed", scope.get("method"), path)
            status, body = HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "admin request failed"}
        await send_json(send, status, body)

    async def answer(
        self, scope: Scope, receive: Any, path: str, key_name: str
    ) -> tuple[HTTPStatus, dict[str, Any]]:
        versions = self.versions()
        if versions is None:
            return HTTPStatus.SERVICE_UNAVAILABLE, {"error": "the service is starting"}
        parts = path.removeprefix(PREFIX).strip("/").split("/")
        method = scope.get("method", "GET")
        if parts == ["models"] and method == "GET":
            return HTTPStatus.OK, {
                "models": [
                    describe_state(model, await model.described())
                    for model in versions.models.values()
                ]
            }
        if len(parts) != 3 or parts[0] != "models" or (method, parts[2]) not in ACTIONS:
            return HTTPStatus.NOT_FOUND, problem(
                "not_found",
                ["path"],
                f"{method} {path}: not an admin route (GET /admin/models, POST "
                "/admin/models/{name}/candidate|share|promote|rollback, DELETE "
                "/admin/models/{name}/candidate)",
            )
        name = parts[1]
        if name not in versions.models:
            served = ", ".join(entry.name for entry in CATALOGUE)
            return HTTPStatus.NOT_FOUND, problem(
                "unknown_model", ["path", "name"], f"{name!r} is not a served model ({served})"
            )
        raw = await read_body(receive, MAX_BODY)
        if raw is None:
            return HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "admin request body too large"}
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError as error:
            return HTTPStatus.BAD_REQUEST, problem("json_invalid", ["body"], f"not JSON: {error}")
        if not isinstance(body, dict):
            return HTTPStatus.BAD_REQUEST, problem("dict_type", ["body"], "a JSON object")
        try:
            return HTTPStatus.OK, await operate(
                versions, name, ACTIONS[(method, parts[2])], body, key_name
            )
        except AdminError as error:
            return error.status, error.body
