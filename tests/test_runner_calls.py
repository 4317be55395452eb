"""call_runner: a broken runner connection is sent again (a few times), then answered 503;
and the admin API answers a runner's failure rather than leaving its client waiting."""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus

import aiohttp
import pytest
from bentoml.exceptions import BentoMLException, ServiceUnavailable

from model_bundle.runner_client import RESENDS, call_runner
from model_bundle.versions.admin_http import AdminApi
from model_bundle.versions.serving import Versions


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
    runners = {name: DownRunner() for name in ("credit_health", "iris", "book_rating")}
    runners["mask_classifier"] = DownRunner()
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
