"""ASGI middlewares that guard the front service before BentoML parses a request.

* :class:`BodySizeLimit`: 413 for a body over ``MODEL_BUNDLE_MAX_REQUEST_BYTES`` (default 10 MB),
  declared in Content-Length or streamed.
* :class:`UploadGuard`: each API route takes the content type it declares (415 otherwise:
  JSON routes take ``application/json``, upload routes ``multipart/form-data``), and an
  upload holds only files in the declared file fields. BentoML would otherwise download a
  text value of a file field as a URL on the server's behalf, and answer 500 to a file in
  any other field (bentoml ``MultipartSerde.parse_request``).

``MODEL_BUNDLE_MAX_IMAGE_PIXELS`` (default 40 million) bounds decoded images (see
models.mask.images and model_bundle.uploads).
:class:`ConciseClientErrors` logs rejected requests as one line each.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from bentoml.exceptions import BentoMLException, ServiceUnavailable
from pydantic import ValidationError
from python_multipart.multipart import MultipartParser, parse_options_header

from model_bundle.settings import settings

JSON, MULTIPART = b"application/json", b"multipart/form-data"
MAX_UPLOAD_PARTS = 1000  # Starlette's form parser limit (max_files, max_fields)

Scope = dict[str, Any]


async def send_json(
    send: Any,
    status: HTTPStatus,
    body: dict[str, Any],
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    content = json.dumps(body).encode()
    headers = [(b"content-type", JSON), (b"content-length", str(len(content)).encode())]
    headers.extend(extra_headers or [])
    await send({"type": "http.response.start", "status": int(status), "headers": headers})
    await send({"type": "http.response.body", "body": content})


def header(scope: Scope, name: bytes) -> bytes | None:
    return next((v for k, v in scope.get("headers", []) if k.lower() == name), None)


async def read_body(receive: Any, limit: float) -> bytes | None:
    """The whole request body, or None as soon as it runs past ``limit`` bytes."""
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def replaying(body: bytes, receive: Any) -> Any:
    """A ``receive`` that hands the app a body already read, then the connection's events."""
    replayed = False

    async def replay() -> dict[str, Any]:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class BodySizeLimit:
    """A declared Content-Length is checked at once; a streamed (chunked) body is read here,
    up to the limit, and replayed: BentoML would answer an error raised while it reads the
    body with a malformed 413 body (a list, ``_bentoml_impl.server.app``)."""

    def __init__(self, app: Any, max_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = settings.max_request_bytes if max_bytes is None else max_bytes
        self.error = (
            f"request body larger than {self.max_bytes:,} bytes (MODEL_BUNDLE_MAX_REQUEST_BYTES)"
        )

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await send_json(send, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": self.error})
        if declared is None and header(scope, b"transfer-encoding") is not None:
            body = await read_body(receive, self.max_bytes)
            if body is None:
                return await send_json(
                    send, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": self.error}
                )
            receive = replaying(body, receive)
        await self.app(scope, receive, send)


def multipart_problems(body: bytes, boundary: bytes, file_fields: set[str]) -> list[dict]:
    """Validation errors for parts that are not files in one of ``file_fields``, a missing
    boundary or too many parts (both of which Starlette's form parser raises as errors that
    BentoML turns into 500s)."""
    if not boundary:
        return [
            {
                "type": "missing_boundary",
                "loc": ["header", "Content-Type"],
                "msg": "multipart/form-data needs a boundary parameter",
            }
        ]
    parts: list[tuple[str, bool]] = []
    headers: dict[bytes, bytes] = {}
    field = bytearray()
    value = bytearray()

    def on_header_end() -> None:
        headers[bytes(field).lower()] = bytes(value)
        field.clear()
        value.clear()

    def on_headers_finished() -> None:
        _, options = parse_options_header(headers.get(b"content-disposition", b""))
        parts.append((options.get(b"name", b"").decode(errors="replace"), b"filename" in options))
        headers.clear()

    callbacks = {
        "on_header_field": lambda data, start, end: field.extend(data[start:end]),
        "on_header_value": lambda data, start, end: value.extend(data[start:end]),
        "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
    }
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    parser.write(body)
    parser.finalize()
    if len(parts) > MAX_UPLOAD_PARTS:
        msg = f"at most {MAX_UPLOAD_PARTS} parts per upload, got {len(parts)}"
        return [{"type": "too_long", "loc": [parts[0][0]], "msg": msg}]
    problems = []
    for name, is_file in parts:
        if name not in file_fields:
            problems.append({"type": "extra_forbidden", "loc": [name], "msg": "unexpected field"})
        elif not is_file:
            problems.append(
                {"type": "invalid_image", "loc": [name], "msg": "must be an uploaded file"}
            )
    return problems


class UploadGuard:
    """``routes``: API route -> its file fields (empty for a JSON route)."""

    def __init__(self, app: Any, routes: Mapping[str, set[str]]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        file_fields = self.routes.get(scope.get("path", ""))
        if scope["type"] != "http" or scope.get("method") != "POST" or file_fields is None:
            return await self.app(scope, receive, send)
        content_type, options = parse_options_header(header(scope, b"content-type") or JSON)
        expected = MULTIPART if file_fields else JSON
        if content_type != expected:
            return await send_json(
                send,
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                {
                    "error": f"content type {content_type.decode()!r}: {scope['path']} takes "
                    f"{expected.decode()}"
                },
            )
        if not file_fields:
            return await self.app(scope, receive, send)

        body = await read_body(receive, float("inf")) or b""  # BodySizeLimit bounds it
        try:
            problems = multipart_problems(body, options.get(b"boundary", b""), file_fields)
        except Exception as error:  # python-multipart raises several kinds
            return await send_json(
                send, HTTPStatus.BAD_REQUEST, {"error": f"malformed multipart body: {error}"}
            )
        if problems:
            error = f"{len(problems)} validation error for the upload"
            return await send_json(
                send, HTTPStatus.BAD_REQUEST, {"error": error, "detail": problems}
            )
        await self.app(scope, replaying(body, receive), send)


class ConciseClientErrors(logging.Filter):
    """Log a request rejected for its input (or shed: 503) as one WARNING line, not an ERROR
    with a traceback.

    BentoML logs every validation failure with ``logger.error(..., exc_info=True)``: a bad
    request from a client is not a server error and must not drown real ones.
    """

    LOGGER = "bentoml._internal.server.http_app"

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ValidationError):
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors()[:5]
            )
        elif isinstance(error, BentoMLException) and (
            400 <= error.error_code < 500 or isinstance(error, ServiceUnavailable)
        ):  # a client's mistake, or overload: expected, and answered with a clear status
            problems = str(error)[:300]
        else:
            return True
        record.msg = "Rejected %s [%s]: %s"
        record.args = (*(record.args or ()), problems)  # type: ignore[misc]
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info, record.exc_text = None, None
        return True

    @classmethod
    def install(cls) -> None:
        logger = logging.getLogger(cls.LOGGER)
        if not any(isinstance(f, cls) for f in logger.filters):
            logger.addFilter(cls())
