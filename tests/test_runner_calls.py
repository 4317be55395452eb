"""call_runner: a broken runner connection is retried once, then answered 503."""

from __future__ import annotations

import asyncio
from http import HTTPStatus

import aiohttp
import pytest
from bentoml.exceptions import BentoMLException, ServiceUnavailable

from model_bundle.runner_client import call_runner


class Flaky:
    """A runner method whose first ``failures`` calls hit a closing connection."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self, value: int) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise aiohttp.ClientConnectionResetError("Cannot write to closing transport")
        return value * 2


def test_one_broken_connection_is_retried() -> None:
    method = Flaky(failures=1)
    assert asyncio.run(call_runner(method, 21)) == 42
    assert method.calls == 2


def test_a_runner_down_is_a_503_after_one_retry() -> None:
    method = Flaky(failures=5)
    with pytest.raises(ServiceUnavailable, match="a model runner is unavailable"):
        asyncio.run(call_runner(method, 1))
    assert method.calls == 2


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
