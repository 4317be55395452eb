"""call_runner: a broken runner connection is sent again (a few times), then answered 503,
and the admin API answers a runner's failure rather than leaving its client waiting.
BatchingGate: a lone call goes at once, concurrent ones are merged into one runner
request, each caller gets its own answers, and one bad item fails only its own call."""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus

import aiohttp
import httpx
import numpy as np
import pytest
from bentoml.exceptions import BentoMLException, ServiceUnavailable

from model_bundle.catalogue import CATALOGUE
from model_bundle.runner_client import RESENDS, BatchingGate, call_runner
from model_bundle.versions.admin_http import AdminApi
from model_bundle.versions.serving import Versions
from scripts.benchmarks.bench import runner_requests
from scripts.sample_data.requests import HEALTHY, UNHEALTHY
from tests.support.server import Server

CATALOGUE_NAMES = [entry.name for entry in CATALOGUE]


class Flaky:
    """A runner method whose first ``failures`` calls hit a closing connection."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self, value: int) -> int:
        self.calls += 1
        if self.calls > self.failures:
            return value * 2
        if self.calls == 2:  # aiohttp's words when the body met a connection being closed
            raise aiohttp.ClientOSError(None, "Can not write request body for http://runner")
        raise aiohttp.ClientConnectionResetError("Cannot write to closing transport")


def test_one_broken_connection_is_retried() -> None:
    method = Flaky(failures=1)
    assert asyncio.run(call_runner(method, 21)) == 42
    assert method.calls == 2


def test_two_broken_connections_in_a_row_are_resent_too() -> None:
    """The pool can hold several connections the runner closed: one resend was not enough."""
    method = Flaky(failures=2)
    assert asyncio.run(call_runner(method, 21)) == 42
    assert method.calls == 3


def test_a_runner_down_is_a_503_after_the_resends() -> None:
    method = Flaky(failures=100)
    with pytest.raises(ServiceUnavailable, match="a model runner is unavailable"):
        asyncio.run(call_runner(method, 1))
    assert method.calls == RESENDS + 1


def test_other_errors_are_not_retried() -> None:
    calls = 0

    async def invalid(value: int) -> int:
        nonlocal calls
        calls += 1
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        asyncio.run(call_runner(invalid, 1))
    assert calls == 1


def test_a_runner_that_does_not_answer_in_time_is_a_503() -> None:
    calls = 0

    async def late(value: int) -> int:
        nonlocal calls
        calls += 1
        raise TimeoutError  # what BentoML's client raises after the runner's traffic.timeout

    with pytest.raises(ServiceUnavailable, match="did not answer in time"):
        asyncio.run(call_runner(late, 1))
    assert calls == 1  # not resent: the runner has had its time


@pytest.mark.parametrize("status", [HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.GATEWAY_TIMEOUT])
def test_a_runner_over_capacity_is_a_503_without_retry(status: HTTPStatus) -> None:
    calls = 0

    async def saturated(value: int) -> int:
        nonlocal calls
        calls += 1
        raise BentoMLException("Too many requests", error_code=status)

    with pytest.raises(ServiceUnavailable, match="over capacity"):
        asyncio.run(call_runner(saturated, 1))
    assert calls == 1


class DownRunner:
    """A runner client whose every connection breaks (a runner that is down)."""

    def __init__(self) -> None:
        self.to_async = self
        self.calls = 0

    async def versions(self) -> dict:
        self.calls += 1
        raise aiohttp.ServerDisconnectedError()


def test_the_admin_api_answers_a_runner_down_with_a_503_at_once() -> None:
    """It sits outside BentoML's error handling: the exception sent nothing, and the client
    waited for the 30 s request timeout to get a bare 500."""
    runners = {name: DownRunner() for name in CATALOGUE_NAMES}
    versions = Versions(runners)
    api = AdminApi(app=None, keys=("admin-secret",), versions=lambda: versions)
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/admin/models",
        "headers": [(b"x-api-key", b"admin-secret")],
    }
    asyncio.run(asyncio.wait_for(api(scope, receive, send), 5))
    start, body = sent
    assert start["status"] == HTTPStatus.SERVICE_UNAVAILABLE
    assert "a model runner is unavailable" in json.loads(body["body"])["error"]
    assert runners["credit_health"].calls == RESENDS + 1


class RunnerThatGoesDown:
    """A runner client that answers its loaded versions once, then is down."""

    def __init__(self, tag: str) -> None:
        self.to_async = self
        self.answers = [{"versions": [{"tag": tag, "slot": 0}], "default": tag}]

    async def versions(self) -> dict:
        if self.answers:
            return self.answers.pop()
        raise aiohttp.ServerDisconnectedError()


def test_models_describes_the_routing_in_force_while_a_runner_is_down() -> None:
    """GET /models during a runner's restart was a 503 (its 2 s versions timeout); the
    routing this front keeps using meanwhile is the true answer."""
    runners = {name: RunnerThatGoesDown(f"{name}:v1") for name in CATALOGUE_NAMES}
    models = Versions(runners).models

    async def twice() -> tuple[str, str]:
        first = await models["credit_health"].described()
        again = await models["credit_health"].described()  # the runner is down now
        return first.primary.tag, again.primary.tag

    assert asyncio.run(twice()) == ("credit_health:v1", "credit_health:v1")
    never_answered = Versions({name: DownRunner() for name in CATALOGUE_NAMES}).models
    with pytest.raises(ServiceUnavailable):  # nothing known yet: the 503 stays
        asyncio.run(never_answered["iris"].described())


# BatchingGate: concurrent calls of a runner method merged in the front.


class Runner:
    """A runner's client as the gate sees it (``runner.to_async.<method>``): doubles every
    item, refuses a negative one (the whole call fails, as a runner's forward pass would),
    and records each request it gets: (method, items)."""

    def __init__(self, seconds: float = 0.01, down: bool = False) -> None:
        self.requests: list[tuple[str, int]] = []
        self.seconds = seconds
        self.down = down
        self.to_async = self

    def __getattr__(self, method: str) -> object:
        async def call(batch: np.ndarray) -> np.ndarray:
            self.requests.append((method, len(batch)))
            await asyncio.sleep(self.seconds)
            if self.down:
                raise aiohttp.ClientConnectionError("Cannot connect to host")
            if (batch < 0).any():
                raise BentoMLException("a negative item", error_code=HTTPStatus.BAD_REQUEST)
            return batch * 2

        return call


def rows(*values: float) -> np.ndarray:
    return np.array([[value] for value in values], np.float32)


async def concurrently(gate: BatchingGate, runner: Runner, payloads: list[np.ndarray]) -> list:
    return await asyncio.gather(
        *(gate.call(runner, "predict_0", payload) for payload in payloads),
        return_exceptions=True,
    )


def test_a_lone_call_goes_at_once_past_the_batcher() -> None:
    runner = Runner()
    answer = asyncio.run(BatchingGate(enabled=True).call(runner, "predict_0", rows(1, 2)))
    assert answer.tolist() == [[2], [4]]
    assert runner.requests == [("predict_0_unbatched", 2)]


def test_concurrent_calls_are_merged_and_each_gets_its_own_answers_in_order() -> None:
    runner = Runner()
    payloads = [rows(*range(i, i + 1 + i % 3)) for i in range(20)]  # 1 to 3 items each
    answers = asyncio.run(concurrently(BatchingGate(enabled=True), runner, payloads))
    for payload, answer in zip(payloads, answers, strict=True):
        assert answer.tolist() == (payload * 2).tolist()
    # The first goes alone; the 19 that arrived while it was in flight go as one request,
    # to the batcher (other front workers' calls may join it there).
    assert runner.requests == [
        ("predict_0_unbatched", 1),
        ("predict_0", sum(len(p) for p in payloads[1:])),
    ]


def test_a_merged_call_holds_at_most_max_items() -> None:
    runner = Runner()
    payloads = [rows(i, i) for i in range(11)]
    answers = asyncio.run(concurrently(BatchingGate(enabled=True, max_items=6), runner, payloads))
    assert [a.tolist() for a in answers] == [(p * 2).tolist() for p in payloads]
    assert runner.requests == [
        ("predict_0_unbatched", 2),
        ("predict_0", 6),
        ("predict_0", 6),
        ("predict_0", 6),
        ("predict_0_unbatched", 2),  # the last, alone: nothing to merge it with
    ]


def test_a_method_with_a_smaller_batch_size_is_merged_up_to_it() -> None:
    runner = Runner()
    gate = BatchingGate(enabled=True, max_items=6)

    async def photos() -> list:
        return await asyncio.gather(
            *(gate.call(runner, "classify_0", rows(i), max_items=2) for i in range(5))
        )

    assert [a.tolist() for a in asyncio.run(photos())] == [[[2 * i]] for i in range(5)]
    assert runner.requests == [
        ("classify_0_unbatched", 1),
        ("classify_0", 2),
        ("classify_0", 2),
    ]


def test_a_bad_item_fails_only_its_own_call() -> None:
    runner = Runner()
    payloads = [rows(0), rows(1), rows(2, -1), rows(3), rows(4)]
    answers = asyncio.run(concurrently(BatchingGate(enabled=True), runner, payloads))
    assert isinstance(answers[2], BentoMLException)
    assert [a.tolist() for i, a in enumerate(answers) if i != 2] == [[[0]], [[2]], [[6]], [[8]]]
    # The merged call failed, so each of its parts went again on its own.
    assert runner.requests == [
        ("predict_0_unbatched", 1),
        ("predict_0", 5),
        *[("predict_0_unbatched", n) for n in (1, 2, 1, 1)],
    ]


def test_a_runner_down_fails_every_waiter_without_resending_each() -> None:
    runner = Runner(down=True)
    answers = asyncio.run(
        concurrently(BatchingGate(enabled=True), runner, [rows(i) for i in range(5)])
    )
    assert all(isinstance(a, ServiceUnavailable) for a in answers)
    # The lone call and the merged one, each with call_runner's resends; no more.
    tries = RESENDS + 1
    assert runner.requests == [("predict_0_unbatched", 1)] * tries + [("predict_0", 4)] * tries


def test_slots_and_runners_are_never_merged_together() -> None:
    first, second = Runner(), Runner()
    gate = BatchingGate(enabled=True)

    async def calls() -> list:
        return await asyncio.gather(
            *(gate.call(first, "predict_0", rows(1)) for _ in range(3)),
            *(gate.call(first, "predict_1", rows(2)) for _ in range(3)),
            *(gate.call(second, "predict_0", rows(3)) for _ in range(3)),
        )

    answers = asyncio.run(calls())
    assert [a.tolist() for a in answers] == [[[2]]] * 3 + [[[4]]] * 3 + [[[6]]] * 3
    assert first.requests == [
        ("predict_0_unbatched", 1),
        ("predict_1_unbatched", 1),
        ("predict_0", 2),
        ("predict_1", 2),
    ]
    assert second.requests == [("predict_0_unbatched", 1), ("predict_0", 2)]


def test_lists_are_merged_and_split_like_arrays() -> None:
    class Books:
        def __init__(self) -> None:
            self.requests: list[int] = []
            self.to_async = self

        async def rate_0(self, pairs: list[tuple[int, str]]) -> list[dict]:
            self.requests.append(len(pairs))
            return [{"user_id": user, "isbn": isbn} for user, isbn in pairs]

        async def rate_0_unbatched(self, pairs: list[tuple[int, str]]) -> list[dict]:
            await asyncio.sleep(0.01)
            return await self.rate_0(pairs)

    books, gate = Books(), BatchingGate(enabled=True)
    payloads = [[(user, f"isbn-{user}")] * (1 + user % 2) for user in range(6)]

    async def calls() -> list:
        return await asyncio.gather(*(gate.call(books, "rate_0", p) for p in payloads))

    answers = asyncio.run(calls())
    assert answers == [[{"user_id": u, "isbn": i} for u, i in p] for p in payloads]
    assert books.requests == [1, sum(len(p) for p in payloads[1:])]


def test_batching_off_sends_every_call_on_its_own() -> None:
    runner = Runner()
    answers = asyncio.run(
        concurrently(BatchingGate(enabled=False), runner, [rows(i) for i in range(4)])
    )
    assert [a.tolist() for a in answers] == [[[0]], [[2]], [[4]], [[6]]]
    assert runner.requests == [("predict_0_unbatched", 1)] * 4


# The same against the real server: counted through the runners' own request metrics.

CONCURRENT = 48


def credit_rows(count: int) -> list[dict[str, float]]:
    """Distinct companies, from healthy to unhealthy, so that answers cannot be swapped."""
    return [
        {k: HEALTHY[k] + (UNHEALTHY[k] - HEALTHY[k]) * i / (count - 1) for k in HEALTHY}
        for i in range(count)
    ]


def credit_runner_requests(url: str) -> dict[str, float]:
    return runner_requests(url).get("CreditRunner", {"batched": 0.0, "unbatched": 0.0})


def same_answer(merged: dict, alone: dict) -> bool:
    """The same answer but for its prediction id and the last digits of float32 arithmetic
    (a forward pass over many rows rounds a row's dot products a little differently)."""
    inexact = {"prediction_id", "probability", "probabilities"}
    return {k: v for k, v in merged.items() if k not in inexact} == {
        k: v for k, v in alone.items() if k not in inexact
    } and merged["probabilities"] == pytest.approx(alone["probabilities"], abs=1e-6)


def test_the_server_merges_concurrent_calls_into_fewer_runner_requests(
    server: Server, http: httpx.Client
) -> None:
    companies = credit_rows(CONCURRENT)
    before = credit_runner_requests(server.url)
    alone = [http.post("/predict_credit", json=company) for company in companies]
    assert {answer.status_code for answer in alone} == {200}
    after_alone = credit_runner_requests(server.url)
    # One by one: each call goes at once, past the batcher.
    assert after_alone["unbatched"] - before["unbatched"] == CONCURRENT
    assert after_alone["batched"] == before["batched"]

    async def together() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=CONCURRENT)
        async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as client:
            return await asyncio.gather(
                *(client.post("/predict_credit", json=company) for company in companies)
            )

    merged = asyncio.run(together())
    assert all(same_answer(m.json(), a.json()) for m, a in zip(merged, alone, strict=True))
    assert {a.json()["label"] for a in alone} == {"healthy", "unhealthy"}
    after = credit_runner_requests(server.url)
    sent = sum(after.values()) - sum(after_alone.values())
    assert 1 <= sent <= CONCURRENT / 4, f"{sent} runner requests for {CONCURRENT} calls"
    assert after["batched"] > after_alone["batched"]  # merged calls still reach the batcher
