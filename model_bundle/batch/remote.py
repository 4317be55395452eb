"""The ``--url`` engine: a chunk's rows sent to a running bundle with BentoML's async client.

Requests go out concurrently, at most ``concurrency`` at a time (a semaphore); the batch
endpoints carry up to 1,000 rows (32 images) each, the others one row. A 503 (runner
busy or restarting), a 429 or a broken connection is retried with exponential backoff;
a 4xx is not (the rows were validated here with the API's rules, so it means a bug). The
answers are turned into the arrays the in-process engine returns, so a task appends the
same columns whichever engine ran.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TypeVar

import bentoml
import httpx
import numpy as np
from bentoml.exceptions import BentoMLException

from model_bundle.batch.tasks import (
    BookRatings,
    BookRecommendations,
    MaskImages,
    Task,
    reasons_to_known,
)
from model_bundle.schemas import MAX_BATCH_ITEMS, MAX_IMAGES
from models.books.model import RatedPairs
from models.mask.contract import NUM_CLASSES
from models.tabular.contract import CREDIT_TASK

T = TypeVar("T")
RETRIED = {HTTPStatus.SERVICE_UNAVAILABLE, HTTPStatus.TOO_MANY_REQUESTS}


class ServerError(RuntimeError):
    """The server could not answer after every retry."""


def retriable(error: Exception) -> bool:
    if isinstance(error, httpx.TransportError):
        return True
    return isinstance(error, BentoMLException) and error.error_code in RETRIED


def slices(count: int, size: int) -> list[slice]:
    return [slice(start, start + size) for start in range(0, count, size)]


@dataclass
class RemoteEngine:
    """Predictions from the bundle at ``url`` for ``task``."""

    task: Task
    url: str
    concurrency: int = 8
    retries: int = 5
    backoff_s: float = 0.2
    timeout_s: float = 60
    tag: str = ""
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)

    def __post_init__(self) -> None:
        self.client = self.loop.run_until_complete(self._client())
        self.semaphore = asyncio.Semaphore(self.concurrency)
        if isinstance(self.task, MaskImages):
            self.task = MaskImages(self.task.base)  # no prep: the server resizes
        self.tag = self.loop.run_until_complete(self._served_tag())

    async def _client(self) -> bentoml.AsyncHTTPClient:
        """Entered here (its endpoints exist only inside ``async with``), left in close()."""
        client = bentoml.AsyncHTTPClient(self.url, timeout=self.timeout_s)
        return await client.__aenter__()

    async def _served_tag(self) -> str:
        served = await self.call(self.client.models)
        return next(
            m["tag"] for m in served["models"] if m["tag"].startswith(f"{self.task.model}:")
        )

    def close(self) -> None:
        self.loop.run_until_complete(self.client.__aexit__(None, None, None))
        self.loop.close()

    async def call(self, method: Callable[..., Awaitable[T]], **kwargs: Any) -> T:
        """``method(**kwargs)`` with bounded concurrency, retried with backoff and jitter."""
        for attempt in range(self.retries + 1):
            async with self.semaphore:
                try:
                    return await method(**kwargs)
                except Exception as error:
                    if not retriable(error) or attempt == self.retries:
                        raise ServerError(f"{self.url}: {error}") from error
            await asyncio.sleep(self.backoff_s * 2**attempt * (0.5 + random.random()))
        raise AssertionError("unreachable")

    def __call__(self, inputs: Any) -> Any:
        return self.loop.run_until_complete(self.predict(inputs))

    async def predict(self, inputs: Any) -> Any:
        task = self.task
        if isinstance(task, BookRatings):
            return await self.rate(*inputs)
        if isinstance(task, BookRecommendations):
            calls = [
                self.call(self.client.recommend_books, user_id=int(u), k=task.k) for u in inputs
            ]
            return list(await asyncio.gather(*calls))
        if isinstance(task, MaskImages):
            return await self.classify_masks(inputs)
        return await self.classify_rows(inputs)

    async def classify_rows(self, features: np.ndarray) -> np.ndarray:
        """credit_health by its batch endpoint; iris (no batch endpoint) row by row."""
        names = self.task.columns
        labels = self.task.task.labels  # type: ignore[attr-defined]
        records = [dict(zip(names, row, strict=True)) for row in features.astype(float).tolist()]
        if self.task.model == CREDIT_TASK.name:
            calls = [
                self.call(self.client.predict_credit_batch, items=records[part])
                for part in slices(len(records), MAX_BATCH_ITEMS)
            ]
            answers = [p for answer in await asyncio.gather(*calls) for p in answer["predictions"]]
        else:
            answers = list(
                await asyncio.gather(*(self.call(self.client.classify_iris, **r) for r in records))
            )
        return np.array([[a["probabilities"][label] for label in labels] for a in answers])

    async def rate(self, user_ids: np.ndarray, isbns: Sequence[str]) -> RatedPairs:
        items = [
            {"user_id": int(u), "isbn": i} for u, i in zip(user_ids.tolist(), isbns, strict=True)
        ]
        calls = [
            self.call(self.client.rate_books, items=items[part])
            for part in slices(len(items), MAX_BATCH_ITEMS)
        ]
        answers = [p for answer in await asyncio.gather(*calls) for p in answer["predictions"]]
        user_known, book_known = reasons_to_known([a["reason"] for a in answers])
        return RatedPairs(np.array([a["rating"] for a in answers]), user_known, book_known)

    async def classify_masks(self, paths: list[Any]) -> np.ndarray:
        calls = [
            self.call(self.client.classify_masks, images=paths[part])
            for part in slices(len(paths), MAX_IMAGES)
        ]
        answers = [p for answer in await asyncio.gather(*calls) for p in answer["predictions"]]
        probabilities = np.array([a["probabilities"] for a in answers], np.float64)
        return probabilities.reshape(len(answers), NUM_CLASSES)
