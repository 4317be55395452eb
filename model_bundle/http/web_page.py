"""The web page for people (ui/: HTML, CSS, plain JavaScript), served by the bundle at /ui/.

Its headers hold the page to what it is: scripts, styles and API calls from this server only
(no CDN can slip in), images also from the web (book covers) and the photo being classified,
never framed by another site.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.staticfiles import StaticFiles

PAGE_DIRECTORY = Path(__file__).resolve().parents[2] / "ui"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' http: https: blob:; media-src 'self' blob:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class WebPage:
    """ASGI app: the files of ``ui/`` (``/ui/`` is index.html) with the headers above."""

    def __init__(self, directory: Path = PAGE_DIRECTORY) -> None:
        self.files = StaticFiles(directory=directory, html=True)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *HEADERS]}
            await send(message)

        await self.files(scope, receive, with_headers)
