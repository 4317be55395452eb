"""Explicit overload: shed requests beyond capacity at once, and tell clients when to retry.

:class:`LoadShedding` answers **503** with ``Retry-After`` as soon as more than
``MODEL_BUNDLE_MAX_CONCURRENT_REQUESTS`` API requests (default 128) are in flight in the front
process, instead of queueing them until they time out; health, readiness, metrics and the API
description are never shed. Every 429 or 503 leaving the service (the shedding itself, a
runner over capacity, the batcher over its latency budget) carries ``Retry-After``.

Why 128: at the front's throughput on two cores (docs/PERFORMANCE.md), 128 requests in
flight are a fraction of a second of queued work; more would only add latency, not
throughput. It is twice the 64 concurrent clients the load test must serve without an
error, so nominal load is never shed.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from model_bundle.http.guards import Scope, send_json
from model_bundle.settings import settings

RETRY_AFTER_S = 1
UNSHED_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics", "/docs.json"})
BUSY = (HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE)


class LoadShedding:
    def __init__(self, app: Any, max_in_flight: int | None = None) -> None:
        self.app = app
        if max_in_flight is None:
            max_in_flight = settings.max_concurrent_requests
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self.error = (
            f"server at capacity ({max_in_flight} requests in flight, "
            f"MODEL_BUNDLE_MAX_CONCURRENT_REQUESTS): retry after {RETRY_AFTER_S} s"
        )

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        counted = False

        def release() -> None:
            nonlocal counted
            if counted:
                counted = False
                self.in_flight -= 1

        async def send_with_retry_after(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] in BUSY:
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"retry-after" for name, _ in headers):
                    headers.append((b"retry-after", str(RETRY_AFTER_S).encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                # Answered: the slot is free before the client can send its next request
                # (BentoML's app returns a little after it sent the answer).
                release()
            await send(message)

        if scope.get("path") in UNSHED_PATHS:
            return await self.app(scope, receive, send_with_retry_after)
        if self.in_flight >= self.max_in_flight:
            return await send_json(
                send_with_retry_after, HTTPStatus.SERVICE_UNAVAILABLE, {"error": self.error}
            )
        self.in_flight += 1
        counted = True
        try:
            await self.app(scope, receive, send_with_retry_after)
        finally:
            release()
