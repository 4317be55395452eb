"""How the front calls a runner: sent again when the connection broke, busy or down as 503,
and past the batcher when there is nothing to batch with.

**Resend and 503.**

Why resend: a runner's uvicorn closes keep-alive connections idle for 5 s (BentoML does not
pass ``--timeout-keep-alive`` to dependency workers), while BentoML's aiohttp client keeps
idle connections for 15 s. A request written to a connection the runner is closing fails
("Cannot write to closing transport", "Can not write request body", "Server disconnected")
and the front answered 500. Runner calls are pure functions of their inputs, so sending them
again is safe. Up to :data:`RESENDS` times: after a burst the pool holds several connections
that went idle together, and the first resend can take the next one the runner is closing
(seen once in a full suite run: both tries broke and the admin API's GET failed).
Why 503: a runner that cannot be reached twice is down (crashed, restarting); the client
may retry later, it did nothing wrong. The same for a call that timed out: a killed runner's
socket stays open (the arbiter holds it), so calls queue there until the restarted runner
takes them, and on a loaded machine the restart can take longer than the call's timeout
(``traffic.timeout`` of the runner; BentoML's client raises TimeoutError, a 500). And for a
runner over capacity (its ``max_concurrency`` 429, or its timeout's 504), not resent:
sending more to a saturated runner would only deepen the queue.

**Batcher or not.** BentoML's adaptive batcher holds a call that arrives alone for about the
average wait of the calls it saw recently, hoping for company. After a burst that average is tens of
milliseconds, and the batcher unlearns it slowly (by 5% every 5 s): a single client waited
several times longer than needed for minutes after a burst (docs/PERFORMANCE.md). A call made
while no other call to the same method is in flight from this process has nothing to be
merged with, and the runner is idle; it goes to the method's unbatched twin
(``<method>_unbatched``) and is answered at once. Calls made while others are in flight go
to the batcher, which merges them: under load nearly every call is batched, and at low load
none waits. ``MODEL_BUNDLE_BATCHING=off`` sends every call to the unbatched twin.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, TypeVar

import aiohttp
from bentoml.exceptions import BentoMLException, ServiceUnavailable

T = TypeVar("T")
logger = logging.getLogger("model_bundle")
RUNNER_BUSY = (HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.GATEWAY_TIMEOUT)
RESENDS = 3  # a broken connection fails at once, so a runner that is down costs little more


async def call_runner(method: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    try:
        return await resend_broken(method, *args, **kwargs)
    except TimeoutError as error:
        raise ServiceUnavailable("a model runner did not answer in time") from error


async def resend_broken(method: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    """``method``'s answer, sent again (up to :data:`RESENDS` times) while its connection
    breaks; a 503 when it still does."""
    for resends in range(RESENDS + 1):
        try:
            return await busy_as_unavailable(method, *args, **kwargs)
        except aiohttp.ClientConnectionError as error:
            if resends == RESENDS:
                raise ServiceUnavailable(f"a model runner is unavailable: {error}") from error
            logger.warning("runner connection broke (%s); sending the call again", error)
    raise AssertionError("unreachable: the last try returns or raises")


async def busy_as_unavailable(method: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    try:
        return await method(*args, **kwargs)
    except BentoMLException as error:
        if error.error_code in RUNNER_BUSY:
            raise ServiceUnavailable(f"a model runner is over capacity: {error}") from error
        raise


class BatchingGate:
    """Sends each call of a batchable runner method to the batcher or past it."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._in_flight: Counter[tuple[int, str]] = Counter()

    async def call(self, runner: Any, method: str, *args: Any) -> Any:
        """``runner.<method>(*args)``, batched if other calls of it are in flight."""
        key = (id(runner), method)
        batched = self.enabled and self._in_flight[key] > 0
        name = method if batched else f"{method}_unbatched"
        self._in_flight[key] += 1
        try:
            return await call_runner(getattr(runner.to_async, name), *args)
        finally:
            self._in_flight[key] -= 1
