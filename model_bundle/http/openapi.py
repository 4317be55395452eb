"""The bundle's OpenAPI document: what ``GET /docs.json`` serves and ``bentoml build`` packs.

BentoML 1.4 generates a document that the ecosystem's tools reject: it declares OpenAPI
3.0.2 but its schemas are pydantic's JSON Schema 2020-12 (``{"type": "null"}`` for an
optional field), uploads are ``"type": "file"`` (Swagger 2.0, valid in no OpenAPI 3), its
200 bodies drop ``null`` from optional fields, and its error bodies are not ours.
:func:`corrected_spec` builds the document the server keeps to, from the same pydantic
models the server validates with:

* ``openapi: 3.1.0``, whose schema dialect is JSON Schema 2020-12: pydantic's schemas as
  they are, ``null`` included (``rate_book``'s ``book`` and ``reason`` for a cold start).
* Each request and 200 body is a named component (the pydantic model's own name, or
  ``<Api>Request`` for a signature BentoML turned into a model), so a generated client's
  types are named after our models. Uploads are ``type: string, format: binary`` fields of
  a ``multipart/form-data`` body.
* Every route documents its errors with the ``Error`` schema, ``{"error": str, "detail":
  [...]}`` with ``detail`` the list of problems (``loc``, ``type``, ``msg``): 400, the
  statuses our guards answer (413 body too large, 415 wrong content type, 503 over capacity
  or a runner down with ``Retry-After``, 504 not answered in time), 500 and, when API keys
  are configured, 401 with the two ways to send a key. BentoML's 404 is left out: an API
  route always exists.
* ``operationId`` is the endpoint's name (``predict_credit``, ``livez``): a generated
  client's function names, stable across releases.

:func:`serve_corrected_document` makes it the service's ``openapi_spec``, the one property
both BentoML's ``/docs.json`` view and ``bentoml build`` (``apis/openapi.yaml``) read.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

import bentoml
import yaml
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from model_bundle.settings import settings
from model_bundle.versions.openapi import SCHEMES as ADMIN_SCHEMES
from model_bundle.versions.openapi import TAG as ADMIN_TAG
from model_bundle.versions.openapi import admin_paths

OPENAPI_VERSION = "3.1.0"
# The project's version (pyproject.toml, which the Bento does not ship; a test keeps the two
# equal). BentoML says "None", which a generated Python client cannot take as its version.
API_VERSION = "0.1.0"
DESCRIPTION = (
    "PyTorch models behind one typed HTTP API: credit health, iris, book rating, face mask. "
    'Every error answers `{"error": message, "detail": [problems]}`.'
)
REF = "#/components/schemas/{model}"
PROBLEM = {
    "type": "object",
    "title": "Problem",
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
# What BentoML's infrastructure routes answer: plain text (/metrics: Prometheus' text
# format, whose version parameter follows the client library), and a 503 from /readyz while
# a runner is not ready. They take no input and stay open (no key, no load shedding), so no
# other client error applies.
TEXT = {"text/plain": {"schema": {"type": "string"}}}

INFRA_ERRORS: dict[str, dict[HTTPStatus, str]] = {
    "/readyz": {HTTPStatus.SERVICE_UNAVAILABLE: "A model runner is not ready yet."},
}
# BentoML tags the APIs "Service APIs", which generated clients turn into a module name
# (openapi-python-client: model_bundle_client.api.service_ap_is); one word reads better.
API_TAG = {"name": "service", "description": "The bundle's endpoints: predictions and models."}
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
ERROR_REF = {"$ref": REF.format(model="Error")}


def error_response(status: HTTPStatus, description: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": dict(ERROR_REF)}},
    }
    if status in (HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE):
        response["headers"] = copy.deepcopy(RETRY_AFTER)
    return response


def user_model(spec: type[BaseModel]) -> type[BaseModel] | None:
    """The pydantic model BentoML derived an API's input or output class from, or None when
    BentoML made the class from the method's signature."""
    return next(
        (
            cls
            for cls in spec.__mro__[1:]
            if issubclass(cls, BaseModel)
            and cls is not BaseModel
            and not cls.__module__.startswith("_bentoml_")
        ),
        None,
    )


def pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def as_upload(schema: dict[str, Any]) -> dict[str, Any]:
    """An upload field (or a list of them) as OpenAPI's file: BentoML says ``"type": "file"``."""
    if schema.get("type") == "array":
        return {**schema, "items": as_upload(schema["items"])}
    return {**schema, "type": "string", "format": "binary"}


def model_schemas(service: Any) -> tuple[dict[tuple[str, str], str], dict[str, Any]]:
    """The component name of each API's request and answer, by (API name, "in" or "out"),
    and the components: pydantic's schemas of our models, each once, named after it."""
    sides = {"in": "validation", "out": "serialization"}
    models: dict[tuple[str, str], tuple[type[BaseModel], str]] = {}
    for api in service.apis.values():
        for side, spec in (("in", api.input_spec), ("out", api.output_spec)):
            if (model := user_model(spec)) is not None:
                models[api.name, side] = (model, sides[side])
    # models_json_schema renames a model whose validation and serialization schemas differ;
    # the refs it returns say which name each one got.
    refs, top = models_json_schema(list(dict.fromkeys(models.values())), ref_template=REF)
    schemas: dict[str, Any] = top.get("$defs", {})
    named = {key: refs[model]["$ref"].rsplit("/", 1)[-1] for key, model in models.items()}
    for api in service.apis.values():
        if (api.name, "in") in named:
            continue
        # A signature BentoML made a model of (uploads, or no input at all).
        name = f"{pascal(api.name)}Request"
        schema = api.input_spec.model_json_schema(ref_template=REF, mode="validation")
        schemas.update(schema.pop("$defs", {}))
        for field in api.input_spec.multipart_fields:
            schema["properties"][field] = as_upload(schema["properties"][field])
        schemas[name] = {**schema, "title": name}
        named[api.name, "in"] = name
    return named, schemas


def api_operation(api: Any, named: dict[tuple[str, str], str]) -> dict[str, Any]:
    request = {"$ref": REF.format(model=named[api.name, "in"])}
    answer = {"$ref": REF.format(model=named[api.name, "out"])}
    media: dict[str, Any] = {"schema": request}
    fields = set(api.input_spec.model_fields)
    json_fields = sorted(fields - set(api.input_spec.multipart_fields))
    if api.input_spec.mime_type() == "multipart/form-data" and json_fields:
        media["encoding"] = {field: {"contentType": "application/json"} for field in json_fields}
    required = any(field.is_required() for field in api.input_spec.model_fields.values())
    return {
        "operationId": api.name,
        "tags": [API_TAG["name"]],
        "description": api.doc or "",
        "x-bentoml-name": api.name,
        "requestBody": {"required": required, "content": {api.input_spec.mime_type(): media}},
        "responses": {
            "200": {
                "description": "Successful Response",
                "content": {api.output_spec.mime_type(): {"schema": answer}},
            },
        },
    }


def infra_operations(generated: dict[str, Any], api_routes: Iterable[str]) -> dict[str, Any]:
    """BentoML's health and metrics routes, with an operationId and what they answer."""
    paths = {}
    for path, item in generated.items():
        if path in api_routes:
            continue
        operations = {}
        for method, operation in item.items():
            ok = operation["responses"]["200"]["description"]
            responses = {"200": {"description": ok, "content": copy.deepcopy(TEXT)}}
            for status, description in INFRA_ERRORS.get(path, {}).items():
                responses[str(status.value)] = {
                    "description": description,
                    "content": copy.deepcopy(TEXT),
                }
            operations[method] = {
                **operation,
                "operationId": path.strip("/").replace("/", "_"),
                "responses": responses,
            }
        paths[path] = operations
    return paths


def corrected_spec(service: Any, authenticated: bool) -> dict[str, Any]:
    """The service's OpenAPI document (module docstring): BentoML's servers and
    infrastructure routes, our APIs' operations and schemas."""
    generated = bentoml.Service.openapi_spec.fget(service).asdict()
    named, schemas = model_schemas(service)
    schemas.update(Error=ERROR, Problem=PROBLEM)
    statuses = dict(ERRORS)
    if authenticated:
        statuses[HTTPStatus.UNAUTHORIZED] = "Missing or invalid API key."
    paths = infra_operations(generated["paths"], {api.route for api in service.apis.values()})
    for api in service.apis.values():
        operation = api_operation(api, named)
        for status in sorted(statuses):
            operation["responses"][str(status.value)] = error_response(status, statuses[status])
        if authenticated:
            operation["security"] = [{"bearer": []}, {"apiKey": []}]
        paths[api.route] = {"post": operation}
    components: dict[str, Any] = {"schemas": dict(sorted(schemas.items()))}
    if authenticated:
        components["securitySchemes"] = SECURITY_SCHEMES
    tags = [API_TAG, *(tag for tag in generated["tags"] if tag["name"] == "Infrastructure")]
    if settings.admin_keys:  # the admin API exists only then
        paths.update(admin_paths())
        components.setdefault("securitySchemes", {}).update(ADMIN_SCHEMES)
        tags.append(ADMIN_TAG)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": service.name, "version": API_VERSION, "description": DESCRIPTION},
        "servers": generated["servers"],
        "tags": tags,
        "paths": paths,
        "components": components,
    }


class Document:
    """A finished document where BentoML expects its ``OpenAPISpecification``: the server's
    view calls ``asdict()``, ``bentoml build`` dumps it with PyYAML (representer below)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec

    def asdict(self) -> dict[str, Any]:
        return copy.deepcopy(self.spec)


yaml.add_representer(Document, lambda dumper, document: dumper.represent_dict(document.asdict()))


def serve_corrected_document(service: bentoml.Service) -> None:
    """Make :func:`corrected_spec` the service's ``openapi_spec``, so that BentoML's
    ``/docs.json`` and the Bento's ``apis/openapi.yaml`` are this one document.

    ``openapi_spec`` is a property of BentoML's (slotted) ``Service`` class, so it is
    overridden in a subclass that adds no slot, and the service is made an instance of it.
    The document is built on first use, once per process: the service and settings are
    fixed for a process's lifetime, and BentoML's view asks on every request.
    """
    built: list[Document] = []

    class CorrectedService(type(service)):
        __slots__ = ()

        @property
        def openapi_spec(self) -> Document:  # type: ignore[override]
            if not built:
                built.append(Document(corrected_spec(self, authenticated=bool(settings.api_keys))))
            return built[0]

    service.__class__ = CorrectedService
