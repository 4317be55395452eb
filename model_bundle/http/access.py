"""Who may call the front service: optional API keys, and the browser origins CORS allows.

* ``MODEL_BUNDLE_API_KEYS``: one or more keys, comma-separated. Unset or empty: no
  authentication. Set: every request except the open paths (health, readiness, metrics,
  the API description, the Swagger and web pages) needs ``Authorization: Bearer <key>`` or
  ``X-API-Key: <key>``, or gets a 401. Keys are compared as SHA-256 digests in constant
  time, against every configured key, and are never logged.
* ``MODEL_BUNDLE_CORS_ORIGINS``: browser origins allowed to call the API, comma-separated
  (``*`` for any). Unset or empty: no CORS headers, so browsers on other origins are refused.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from model_bundle.http.guards import Scope, header, send_json
from model_bundle.settings import settings

# Probes, scraping and the descriptions clients and browsers load before they hold a key.
OPEN_PATHS = frozenset(
    {"/", "/livez", "/readyz", "/healthz", "/metrics", "/docs", "/docs.json", "/schema.json"}
)
OPEN_PREFIXES = ("/ui/", "/static_content/", "/assets/")


def digest(key: str | bytes) -> bytes:
    return hashlib.sha256(key.encode() if isinstance(key, str) else key).digest()


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path == "/ui" or path.startswith(OPEN_PREFIXES)


def presented_keys(scope: Scope) -> list[bytes]:
    """The keys a request carries in ``Authorization: Bearer`` and ``X-API-Key``."""
    keys = []
    authorization = header(scope, b"authorization")
    if authorization is not None:
        scheme, _, credentials = authorization.strip().partition(b" ")
        if scheme.lower() == b"bearer" and credentials.strip():
            keys.append(credentials.strip())
    api_key = header(scope, b"x-api-key")
    if api_key:
        keys.append(api_key)
    return keys


class ApiKeyAuth:
    """401 for a request to a protected path without a valid key; a no-op without keys."""

    def __init__(self, app: Any, keys: Iterable[str] | None = None) -> None:
        self.app = app
        configured = settings.api_keys if keys is None else keys
        self.digests = [digest(key) for key in configured]

    def accepts(self, presented: list[bytes]) -> bool:
        """Either header may hold a valid key (a proxy may use Authorization for itself).
        Every comparison is made (no early exit): the time taken says nothing about which
        key, or how much of one, matched."""
        matches = [
            hmac.compare_digest(digest(key), known) for key in presented for known in self.digests
        ]
        return any(matches)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if (
            not self.digests
            or scope["type"] != "http"
            or is_open(scope.get("path", ""))
            or self.accepts(presented_keys(scope))
        ):
            return await self.app(scope, receive, send)
        await send_json(
            send,
            HTTPStatus.UNAUTHORIZED,
            {
                "error": "missing or invalid API key",
                "detail": [
                    {
                        "type": "unauthorized",
                        "loc": ["header", "Authorization"],
                        "msg": "send a valid key as 'Authorization: Bearer <key>' or "
                        "'X-API-Key: <key>'",
                    }
                ],
            },
            extra_headers=[(b"www-authenticate", b'Bearer realm="model_bundle"')],
        )


def cors_options() -> dict[str, Any] | None:
    """Options for Starlette's CORSMiddleware, or None when no origin is configured."""
    origins = settings.cors_origins
    if not origins:
        return None
    return {
        "allow_origins": list(origins),
        "allow_methods": ["GET", "POST", "OPTIONS"],
        "allow_headers": ["Authorization", "X-API-Key", "Content-Type"],
        "max_age": 600,
    }
