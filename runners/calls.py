"""Calling a runner from the front service: one retry when the connection broke, then 503.

Why a retry: a runner's uvicorn closes keep-alive connections idle for 5 s (BentoML does not
pass ``--timeout-keep-alive`` to dependency workers), while BentoML's aiohttp client keeps
idle connections for 15 s. A request written to a connection the runner is closing fails
("Cannot write to closing transport", "Server disconnected") and the front answered 500.
Runner calls are pure functions of their inputs, so sending them again is safe.
Why 503: a runner that cannot be reached twice is down (crashed, restarting); the client
may retry later, it did nothing wrong. The same for a call that timed out: a killed runner's
socket stays open (the arbiter holds it), so calls queue there until the restarted runner
takes them, and on a loaded machine the restart can take longer than the call's timeout
(``traffic.timeout`` of the runner; BentoML's client raises TimeoutError, a 500). And for a
runner over capacity (its ``max_concurrency`` 429, or its timeout's 504), not resent:
sending more to a saturated runner would only deepen the queue.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, TypeVar

import aiohttp
from bentoml.exceptions import BentoMLException, ServiceUnavailable

T = TypeVar("T")
logger = logging.getLogger("model_bundle")
RUNNER_BUSY = (HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.GATEWAY_TIMEOUT)


async def call_runner(method: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    try:
        return await resend_once(method, *args, **kwargs)
    except TimeoutError as error:
        raise ServiceUnavailable("a model runner did not answer in time") from error


async def resend_once(method: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    try:
        return await busy_as_unavailable(method, *args, **kwargs)
    except aiohttp.ClientConnectionError as first:
        logger.warning("runner connection broke (%s); sending the call again", first)
    try:
        return await busy_as_unavailable(method, *args, **kwargs)
    except aiohttp.ClientConnectionError as error:
        raise ServiceUnavailable(f"a model runner is unavailable: {error}") from error


async def busy_as_unavailable(method: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    try:
        return await method(*args, **kwargs)
    except BentoMLException as error:
        if error.error_code in RUNNER_BUSY:
            raise ServiceUnavailable(f"a model runner is over capacity: {error}") from error
        raise
