"""Which calls the runners' adaptive batcher sees (model_bundle/runner_client.py).

A call made with no other call of the same runner method in flight goes past the batcher, also
right after a burst (the batcher would hold it, waiting for company); concurrent calls are
batched; MODEL_BUNDLE_BATCHING=off sends every call past it. Read from the runners' own
Prometheus histogram of the batches they ran.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from model_bundle.settings import SettingsError, from_environ
from scripts.benchmarks.bench import batch_counts
from scripts.sample_data.requests import HEALTHY
from tests.support.server import Server

CLIENTS = 64


async def concurrent_calls(url: str, count: int) -> list[int]:
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        answers = await asyncio.gather(
            *(http.post("/predict_credit", json=HEALTHY) for _ in range(count))
        )
    return [answer.status_code for answer in answers]


def credit_batches(url: str) -> float:
    return batch_counts(url).get("CreditRunner", (0.0, 0.0))[1]


def one_by_one(http: httpx.Client, count: int) -> None:
    for _ in range(count):
        answer = http.post("/predict_credit", json=HEALTHY)
        assert answer.status_code == 200 and answer.json()["label"] == "healthy"


def test_calls_alone_skip_the_batcher_and_concurrent_ones_are_batched(
    server: Server, http: httpx.Client
) -> None:
    before = credit_batches(server.url)
    one_by_one(http, 10)
    assert credit_batches(server.url) == before

    assert asyncio.run(concurrent_calls(server.url, CLIENTS)) == [200] * CLIENTS
    after_burst = credit_batches(server.url)
    assert after_burst > before

    one_by_one(http, 10)  # right after the burst: still not held by the batcher
    assert credit_batches(server.url) == after_burst


def test_batching_off_sends_every_call_past_the_batcher(
    own_server: Callable[..., Server],
) -> None:
    running = own_server({"MODEL_BUNDLE_BATCHING": "off"})
    assert asyncio.run(concurrent_calls(running.url, CLIENTS)) == [200] * CLIENTS
    assert credit_batches(running.url) == 0


@pytest.mark.parametrize("value", ["yes", "0", "batch"])
def test_an_unknown_batching_setting_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="MODEL_BUNDLE_BATCHING: must be 'on' or 'off'"):
        from_environ({"MODEL_BUNDLE_BATCHING": value})
