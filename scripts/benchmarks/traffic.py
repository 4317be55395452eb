"""The request mix of the reliability runs: every endpoint, every answer checked.

One place for what a reliability run sends and what counts as a correct answer; the load,
fault and memory scripts and tests/test_load.py all drive the server through ``drive``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from models.artifact import Artifact
from models.books.featurizer import BookFeaturizer
from scripts.sample_data.mask import jpeg
from scripts.sample_data.requests import HEALTHY, SETOSA, UNHEALTHY, VIRGINICA

OK = "ok"
WRONG = "wrong answer"
Check = Callable[[Any], bool]


@dataclass(frozen=True)
class Call:
    """One request of the mix and the check its 200 answer must pass."""

    route: str
    check: Check
    json: Any = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None

    async def send(self, http: httpx.AsyncClient) -> httpx.Response:
        if self.files is not None:
            return await http.post(self.route, files=self.files)
        return await http.post(self.route, json=self.json)

    def outcome(self, response: httpx.Response) -> str:
        """``ok``, ``wrong answer`` or the status code of a non-200 answer."""
        if response.status_code != 200:
            return str(response.status_code)
        return OK if self.check(response.json()) else WRONG


def labels(answer: dict[str, Any]) -> list[str]:
    return [prediction["label"] for prediction in answer["predictions"]]


def a_mask_answer(prediction: dict[str, Any]) -> bool:
    probabilities = prediction["probabilities"]
    return (
        len(probabilities) == 18
        and math.isclose(sum(probabilities), 1, abs_tol=1e-3)
        and prediction["confidence"] == max(probabilities)
    )


def mix(books_tag: str) -> list[Call]:
    """Every endpoint at least once, with ids the served book model (``books_tag``) knows."""
    featurizer = BookFeaturizer.load(Artifact.load(books_tag).path)
    user_id, isbn = int(featurizer.user_ids[0]), str(featurizer.isbns[0])
    pair = {"user_id": user_id, "isbn": isbn}
    face = ("face.jpg", jpeg(), "image/jpeg")
    return [
        Call("/predict_credit", lambda a: a["label"] == "healthy", HEALTHY),
        Call("/predict_credit", lambda a: a["label"] == "unhealthy", UNHEALTHY),
        Call(
            "/predict_credit_batch",
            lambda a: labels(a) == ["healthy", "unhealthy"] * 5,
            {"items": [HEALTHY, UNHEALTHY] * 5},
        ),
        Call("/classify_iris", lambda a: a["species"] == "setosa", SETOSA),
        Call("/classify_iris", lambda a: a["species"] == "virginica", VIRGINICA),
        Call("/rate_book", lambda a: not a["cold_start"] and 1 <= a["rating"] <= 10, pair),
        Call(
            "/rate_book",
            lambda a: a["reason"] == "unknown_user",
            {"user_id": 10**9, "isbn": isbn},
        ),
        Call(
            "/rate_books",
            lambda a: [p["cold_start"] for p in a["predictions"]] == [False, True],
            {"items": [pair, {"user_id": user_id, "isbn": "not-a-known-isbn"}]},
        ),
        Call(
            "/recommend_books",
            lambda a: len(a["books"]) == 5 and isbn not in {b["isbn"] for b in a["books"]},
            {"user_id": user_id, "k": 5},
        ),
        Call("/classify_mask", a_mask_answer, files=[("image", face)]),
        Call(
            "/classify_masks",
            lambda a: len(a["predictions"]) == 2 and all(map(a_mask_answer, a["predictions"])),
            files=[("images", face), ("images", face)],
        ),
        Call("/models", lambda a: len(a["models"]) == 4, {}),
    ]


def default_mix() -> list[Call]:
    """The mix for the book model a server started from this store serves by default."""
    from model_bundle.catalogue import BOOK_RATING
    from model_bundle.settings import settings

    return mix(str(Artifact.load(settings.model_tag(BOOK_RATING.name)).tag))


@dataclass
class Tally:
    """What a run saw: every request's start (monotonic s), route and outcome."""

    log: list[tuple[float, str, str]] = field(default_factory=list)
    in_flight: int = 0
    sent: int = 0
    seconds: float = 0.0

    def record(self, started: float, route: str, outcome: str) -> None:
        self.log.append((started, route, outcome))

    @property
    def outcomes(self) -> Counter[tuple[str, str]]:
        return Counter((route, outcome) for _, route, outcome in self.log)

    @property
    def by_outcome(self) -> Counter[str]:
        return Counter(outcome for _, _, outcome in self.log)

    @property
    def errors(self) -> int:
        return sum(n for outcome, n in self.by_outcome.items() if outcome != OK)

    @property
    def requests(self) -> int:
        return len(self.log)

    def split(self, moment: float) -> tuple[Tally, Tally]:
        """The requests sent before ``moment`` and those sent after it."""
        before = Tally([entry for entry in self.log if entry[0] < moment])
        return before, Tally([entry for entry in self.log if entry[0] >= moment])


async def drive(
    url: str,
    calls: list[Call],
    clients: int,
    *,
    seconds: float = math.inf,
    requests: float = math.inf,
    tally: Tally | None = None,
    stop: asyncio.Event | None = None,
    timeout_s: float = 60,
) -> Tally:
    """``clients`` concurrent clients sending the mix in turn, back to back, until ``seconds``
    are over, ``requests`` were sent, or ``stop`` is set; every answer is checked."""
    tally = tally or Tally()
    deadline = time.monotonic() + seconds
    stop = stop or asyncio.Event()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=timeout_s, limits=limits) as http:

        async def client(index: int) -> None:
            turn = index
            while not stop.is_set() and time.monotonic() < deadline and tally.sent < requests:
                call = calls[turn % len(calls)]
                turn += 1
                tally.sent += 1
                tally.in_flight += 1
                started = time.monotonic()
                try:
                    outcome = call.outcome(await call.send(http))
                except httpx.TransportError as error:
                    outcome = type(error).__name__
                finally:
                    tally.in_flight -= 1
                tally.record(started, call.route, outcome)

        started = time.monotonic()
        await asyncio.gather(*(client(index) for index in range(clients)))
        tally.seconds += time.monotonic() - started
    return tally
