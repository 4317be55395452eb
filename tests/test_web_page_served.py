"""The web page's files are served by the bundle at /ui/, with nothing loaded from elsewhere;
no browser needed (tests/test_web_page.py drives the page in one)."""

from __future__ import annotations

from html.parser import HTMLParser

import httpx


class References(HTMLParser):
    """Every src and href of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [value for name, value in attrs if name in ("src", "href") and value]


def test_page_and_everything_it_loads_are_served_by_the_bundle(http: httpx.Client) -> None:
    page = http.get("/ui/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    # Scripts, styles and API calls from this server only; images also from the web (covers).
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "img-src 'self' http: https: blob:" in policy
    parser = References()
    parser.feed(page.text)
    kinds = {
        "favicon.svg": "image/svg+xml",
        "style.css": "text/css",
        "app.js": "text/javascript",
        "explanations.js": "text/javascript",
        "monitoring.js": "text/javascript",
        "cover-placeholder.svg": "image/svg+xml",  # loaded by app.js
    }
    assert [ref for ref in parser.found if ref != "../"] == list(kinds)[:5]  # "../": the API docs
    for asset, kind in kinds.items():
        response = http.get(f"/ui/{asset}")
        assert response.status_code == 200, asset
        assert response.headers["content-type"].startswith(kind), (asset, response.headers)
    assert "http" not in http.get("/ui/style.css").text  # no font or image from elsewhere


def test_ui_without_a_slash_redirects_and_unknown_files_are_404(http: httpx.Client) -> None:
    response = http.get("/ui", follow_redirects=False)
    assert response.status_code in (307, 308)
    assert response.headers["location"].endswith("/ui/")
    assert http.get("/ui/nothing-here.js").status_code == 404
