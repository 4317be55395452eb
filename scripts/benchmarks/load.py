"""A bounded, loopback-only load generator: N concurrent clients for D seconds."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

Request = Callable[[httpx.AsyncClient], Any]  # sends one request, returns the response


@dataclass
class LoadResult:
    clients: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)

    @property
    def requests_per_second(self) -> float:
        return len(self.latencies_ms) / self.seconds

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != "200")


def per_second(function: Callable[[], object], seconds: float, items: int = 1) -> float:
    """Items per second when ``function`` (handling ``items`` each call) runs for ``seconds``."""
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        function()
        done += items
    return done / (time.perf_counter() - started)


async def run(url: str, send: Request, clients: int, seconds: float) -> LoadResult:
    """Each client sends back to back until ``seconds`` are over; every answer is counted."""
    result = LoadResult(clients, seconds)
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:

        async def client() -> None:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    response = await send(http)
                    result.statuses[str(response.status_code)] += 1
                except httpx.TransportError as error:
                    result.statuses[type(error).__name__] += 1
                    continue
                result.latencies_ms.append((time.perf_counter() - started) * 1000)

        started = time.monotonic()
        await asyncio.gather(*(client() for _ in range(clients)))
        result.seconds = time.monotonic() - started
    return result
