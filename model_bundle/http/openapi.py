"""``GET /docs.json``: BentoML's OpenAPI document, corrected to say what the server answers.

BentoML 1.4 generates the document from the service; we serve it with three corrections
(without them a client generator, or a schema-checking fuzzer, is misled):

* Each API's 200 body is the pydantic schema of the model the method returns. BentoML
  flattens the top level and drops ``null`` from optional fields (``rate_book``'s ``book``
  and ``reason`` are null for a cold start).
* Error bodies are ``{"error": str, "detail": [...]}`` with ``detail`` the list of problems
  (``loc``, ``type``, ``msg``), not a string; every API also documents the statuses our
  guards answer: 413 (body too large), 415 (wrong content type), 503 (over capacity or a
  runner down, with ``Retry-After``), 504 (not answered in the request timeout) and, when
  API keys are configured, 401 with the two ways to send a key.
* BentoML's 404 is left out: an API route always exists.
"""

from __future__ import annotations

import copy
import json
from http import HTTPStatus
from typing import Any

from model_bundle.http.guards import JSON, Scope
from model_bundle.settings import settings

REF = "#/components/schemas/{model}"
PROBLEM = {
    "type": "object",
    "required": ["type", "loc", "msg"],
    "properties": {
        "type": {"type": "string"},
        "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
        "msg": {"type": "string"},
    },
}
ERROR = {
    "type": "object",
    "title": "Error",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "title": "Message"},
        "detail": {"type": "array", "items": {"$ref": REF.format(model="Problem")}},
    },
}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer"},
    },
}
ERRORS: dict[HTTPStatus, str] = {
    HTTPStatus.BAD_REQUEST: "Invalid input: `detail` names each field (`loc`) and problem.",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "Body larger than MODEL_BUNDLE_MAX_REQUEST_BYTES.",
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE: "Wrong content type for this route.",
    HTTPStatus.INTERNAL_SERVER_ERROR: "A bug: never the client's fault.",
    HTTPStatus.SERVICE_UNAVAILABLE: "Over capacity or a model runner down: retry later.",
    HTTPStatus.GATEWAY_TIMEOUT: "Not answered within the request timeout.",
}
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def error_response(status: HTTPStatus, description: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
    }
    if status in (HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE):
        response["headers"] = copy.deepcopy(RETRY_AFTER)
    return response


def corrected_spec(service: Any, authenticated: bool) -> dict[str, Any]:
    """The service's OpenAPI document with the corrections above."""
    spec = service.openapi_spec.asdict()
    schemas = spec["components"]["schemas"]
    schemas.update(Error=ERROR, Problem=PROBLEM)
    for api in service.apis.values():
        operation = spec["paths"][api.route]["post"]
        returned = api.output_spec.model_json_schema(ref_template=REF, mode="serialization")
        schemas.update(returned.pop("$defs", {}))
        ok = next(v for k, v in operation["responses"].items() if str(k) == "200")
        responses = {"200": dict(ok)}
        responses["200"]["content"] = {api.output_spec.mime_type(): {"schema": returned}}
        statuses = dict(ERRORS)
        if authenticated:
            statuses[HTTPStatus.UNAUTHORIZED] = "Missing or invalid API key."
            operation["security"] = [{"bearer": []}, {"apiKey": []}]
        for status in sorted(statuses):
            responses[str(status.value)] = error_response(status, statuses[status])
        operation["responses"] = responses
    if authenticated:
        spec["components"]["securitySchemes"] = SECURITY_SCHEMES
    return spec


class CorrectedOpenApi:
    """Answers ``GET /docs.json`` with :func:`corrected_spec`, built on the first request."""

    PATH = "/docs.json"

    def __init__(self, app: Any, service: Any) -> None:
        self.app = app
        self.service = service
        self.body: bytes | None = None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") != self.PATH or scope["method"] != "GET":
            return await self.app(scope, receive, send)
        if self.body is None:
            spec = corrected_spec(self.service, authenticated=bool(settings.api_keys))
            self.body = json.dumps(spec).encode()
        headers = [(b"content-type", JSON), (b"content-length", str(len(self.body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})
