"""What an explained answer costs, and what explanations cost the plain endpoints.

    python -m scripts.benchmarks.explain [--seconds 3] [--rounds 4] [--write]

Two bundles run side by side on free ports (scripts/benchmarks/arms.py), sharing the model
store: this tree, and the tree just before explanations landed (the parent of the first
commit adding runners/explain.py, checked out as a detached worktree under /tmp when
missing). First, on this tree, each plain endpoint's p50 beside its explained twin's (one
client, one after the other). Then the plain endpoints on both trees, alternating from round
to round: p50 at one client and requests/s at 64 clients. The default models must be in the
store. With --write, the tables go to docs/EXPLANATIONS.md under the text that says what the
explanations are.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
from collections.abc import Callable
from typing import Any

import httpx

from models.artifact import Artifact
from models.books.model import BookRatingModel
from scripts.benchmarks import arms, load
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
# The first commit touching these added explanations; its parent is "before".
EXPLANATION_PATHS = ("runners/explain.py", "model_bundle/explanations.py")
NOW, BEFORE = "this tree", "before explanations"


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


def comparison_lines(
    figures: dict[tuple[str, str, int], arms.Figures], workloads: list[str]
) -> list[str]:
    """The plain endpoints on both trees: medians over the rounds, and the change."""
    lines = [
        "| plain endpoint | p50 ms, 1 client: now / before | change | "
        "requests/s, 64 clients: now / before | change | "
        "CPU ms per answer, 64 clients: now / before | change | errors (now / before) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in workloads:
        one = figures[(NOW, name, 1)], figures[(BEFORE, name, 1)]
        many = figures[(NOW, name, 64)], figures[(BEFORE, name, 64)]
        errors = [f"{a.error_text} + {b.error_text}" for a, b in zip(one, many, strict=True)]
        lines.append(
            f"| `{name}` | {one[0].p50_text()} / {one[1].p50_text()} | "
            f"{one[0].p50 - one[1].p50:+.2f} ms | "
            f"{many[0].rate_text()} / {many[1].rate_text()} | "
            f"{(many[0].rate / many[1].rate - 1) * 100:+.1f} % | "
            f"{many[0].cpu_text()} / {many[1].cpu_text()} | "
            f"{(many[0].cpu / many[1].cpu - 1) * 100:+.1f} % | {errors[0]} / {errors[1]} |"
        )
    return lines


def report(seconds: float, rounds: int) -> str:
    commit, before = arms.tree_before(EXPLANATION_PATHS)
    sides = [arms.Arm(NOW), arms.Arm(BEFORE, before)]
    workloads = arms.plain_workloads()
    with arms.serving_arms(sides, serving.store_models()) as urls:
        rows = measure(urls[NOW].url, seconds)
        figures = arms.alternate(urls, workloads, rounds, seconds)
        busy = arms.machine_load()
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
        "### The plain endpoints, before and after explanations",
        "",
        f"The plain endpoints on this tree (now) and on the tree just before explanations "
        f"landed (before: `{commit}`), both served at once from the same model store and "
        f"measured in alternation, {rounds} rounds of {seconds:g} s per endpoint and client "
        f"count (the arms' order reversed every round); medians over the rounds (their range in "
        f"brackets); load from "
        f'{arms.load_tool()}. "Now" holds everything merged since, monitoring included '
        "(a prediction id per answer, the drift window, 10% of the payloads logged): the "
        "change bounds what explanations cost the plain endpoints, and a change within "
        "the rounds' range is noise. CPU ms per answer: the CPU time of all the bundle's "
        "processes over the answers, which other work on the machine disturbs far less "
        f"than requests/s. At the end: {busy}.",
        "",
        *comparison_lines(figures, [w.name for w in workloads]),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    text = report(args.seconds, args.rounds)
    if args.write:
        head = REPORT.read_text().split(MARK)[0] if REPORT.exists() else ""
        REPORT.write_text(head + text)
