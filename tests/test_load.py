"""Concurrent load through the composed service: every request answered correctly, batched.

This is also the regression test for BentoML's inter-service session refresh (see
runners/config.py): without `runner_connection` raised, a few percent of these requests
fail with 500.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable

import httpx

from models.artifact import Artifact
from models.books import BookFeaturizer
from scripts.samples import HEALTHY, SETOSA, UNHEALTHY, VIRGINICA
from scripts.serving import Server

CLIENTS = 64
REQUESTS_PER_CLIENT = 40

# (route, body, check on the answer); the books entries are added by book_mix()
MIX = [
    ("/predict_credit", HEALTHY, lambda a: a["label"] == "healthy"),
    ("/predict_credit", UNHEALTHY, lambda a: a["label"] == "unhealthy"),
    ("/classify_iris", SETOSA, lambda a: a["species"] == "setosa"),
    ("/classify_iris", VIRGINICA, lambda a: a["species"] == "virginica"),
    (
        "/predict_credit_batch",
        {"items": [HEALTHY, UNHEALTHY] * 5},
        lambda a: [p["label"] for p in a["predictions"]] == ["healthy", "unhealthy"] * 5,
    ),
]


def book_mix(books_tag: str) -> list[tuple[str, dict, Callable[[dict], bool]]]:
    """Requests for the book endpoints, with ids the served model knows."""
    featurizer = BookFeaturizer.load(Artifact.load(books_tag).path)
    user_id, isbn = int(featurizer.user_ids[0]), str(featurizer.isbns[0])
    return [
        ("/rate_book", {"user_id": user_id, "isbn": isbn}, lambda a: not a["cold_start"]),
        ("/rate_book", {"user_id": 10**9, "isbn": isbn}, lambda a: a["reason"] == "unknown_user"),
        ("/recommend_books", {"user_id": user_id, "k": 5}, lambda a: len(a["books"]) == 5),
    ]


async def run_load(url: str, mix: list) -> Counter[str]:
    """CLIENTS concurrent clients, each sending REQUESTS_PER_CLIENT requests back to back."""
    outcomes: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:

        async def client(index: int) -> None:
            for i in range(REQUESTS_PER_CLIENT):
                route, body, check = mix[(index + i) % len(mix)]
                try:
                    response = await http.post(route, json=body)
                except httpx.TransportError as error:
                    outcomes[f"{route} {type(error).__name__}"] += 1
                    continue
                if response.status_code != 200:
                    outcomes[f"{route} {response.status_code}"] += 1
                elif not check(response.json()):
                    outcomes[f"{route} wrong answer"] += 1
                else:
                    outcomes["ok"] += 1

        await asyncio.gather(*(client(index) for index in range(CLIENTS)))
    return outcomes


def batch_sizes(metrics: str, runner: str) -> tuple[float, float]:
    """(requests merged, batches run) by ``runner``, from the Prometheus histogram."""
    values = {}
    for kind in ("sum", "count"):
        pattern = rf'adaptive_batch_size_{kind}\{{[^}}]*runner_name="{runner}"[^}}]*\}} (\S+)'
        values[kind] = sum(float(v) for v in re.findall(pattern, metrics))
    return values["sum"], values["count"]


def test_every_request_under_concurrent_load_succeeds(
    server: Server, http: httpx.Client, default_models: dict[str, str]
) -> None:
    runners = ("CreditRunner", "IrisRunner", "BooksRunner")
    before = {r: batch_sizes(http.get("/metrics").text, r) for r in runners}

    outcomes = asyncio.run(run_load(server.url, MIX + book_mix(default_models["book_rating"])))

    assert outcomes == Counter(ok=CLIENTS * REQUESTS_PER_CLIENT)
    metrics = http.get("/metrics").text
    for runner, (merged_before, batches_before) in before.items():
        merged, batches = batch_sizes(metrics, runner)
        merged, batches = merged - merged_before, batches - batches_before
        # adaptive batching merged concurrent requests: fewer model calls than requests
        assert 0 < batches < merged, (runner, merged, batches)
