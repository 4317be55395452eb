"""What an explained answer costs: p50 of each plain endpoint beside its explained twin.

    python -m scripts.benchmarks.explain [--url URL] [--seconds 5] [--write]

One client, one run, pairs measured one after the other on the same server (started here on
a free port unless --url is given; the default models must be in the store). With --write,
the table goes to docs/EXPLANATIONS.md under the text that says what the explanations are.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from models.artifact import Artifact
from models.books.model import BookRatingModel
from scripts.benchmarks import load
from tests.support import server as serving
from tests.support.images import encode, face

REPORT = serving.ROOT / "docs" / "EXPLANATIONS.md"
MARK = "<!-- figures: scripts/benchmarks/explain.py -->"
CREDIT = {
    "debt_ratio": 0.5,
    "current_ratio": 1.2,
    "operating_margin": 0.1,
    "return_on_assets": 0.05,
    "interest_coverage": 3.0,
}
IRIS = {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}


def pairs() -> list[tuple[str, str, Callable[[httpx.AsyncClient, str], Any]]]:
    books = BookRatingModel.load(Artifact.load("book_rating:latest"))
    pair = {"user_id": int(books.featurizer.user_ids[0]), "isbn": str(books.featurizer.isbns[-1])}
    photo = encode(face(class_id=13, seed=5), "PNG")

    def json_body(body: dict[str, Any]) -> Callable[[httpx.AsyncClient, str], Any]:
        return lambda http, route: http.post(route, json=body)

    def image(http: httpx.AsyncClient, route: str) -> Any:
        return http.post(route, files={"image": ("face.png", photo, "image/png")})

    return [
        ("predict_credit", "explain_credit", json_body(CREDIT)),
        ("classify_iris", "explain_iris", json_body(IRIS)),
        ("rate_book", "explain_book_rating", json_body(pair)),
        ("classify_mask", "explain_mask", image),
    ]


def measure(url: str, seconds: float) -> list[tuple[str, load.LoadResult, str, load.LoadResult]]:
    rows = []
    for plain, explained, send in pairs():

        def sender(route: str, send: Any = send) -> Callable[[httpx.AsyncClient], Any]:
            return lambda http: send(http, f"/{route}")

        a = asyncio.run(load.run(url, sender(plain), 1, seconds))
        b = asyncio.run(load.run(url, sender(explained), 1, seconds))
        rows.append((plain, a, explained, b))
    return rows


def report(url: str | None, seconds: float) -> str:
    process = None
    if url is None:
        port = serving.free_port()
        process = serving.start(port, Path(tempfile.mkstemp(suffix=".log")[1]))
        url = f"http://127.0.0.1:{port}"
        serving.wait_until_ready(url, process, 120)
    try:
        rows = measure(url, seconds)
    finally:
        if process is not None:
            serving.stop(process)
    lines = [
        MARK,
        "",
        f"One client, the default models, {platform.machine()}, {seconds:g} s per endpoint, "
        "plain and explained measured one after the other in one run. "
        "Reproduce: `python -m scripts.benchmarks.explain --write`.",
        "",
        "| plain | p50 ms | explained | p50 ms | errors (plain / explained) |",
        "|---|---|---|---|---|",
        *(
            f"| `{p}` | {a.percentile_ms(50):.1f} | `{e}` | {b.percentile_ms(50):.1f} | "
            f"{a.errors} / {b.errors} |"
            for p, a, e, b in rows
        ),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running bundle (default: start one)")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    text = report(args.url, args.seconds)
    if args.write:
        head = REPORT.read_text().split(MARK)[0] if REPORT.exists() else ""
        REPORT.write_text(head + text)
