"""How the front calls a runner: sent again when the connection broke, busy or down as 503,
concurrent calls merged into one runner request, and past the batcher when alone.

**Resend and 503.**

Why resend: a runner's uvicorn closes keep-alive connections idle for 5 s (BentoML does not
pass ``--timeout-keep-alive`` to dependency workers), while BentoML's aiohttp client keeps
idle connections for 15 s. A request written to a connection the runner is closing fails
("Cannot write to closing transport", "Can not write request body", "Server disconnected")
and the front answered 500. Runner calls are pure functions of their inputs, so sending them
again is safe. Up to :data:`RESENDS` times: after a burst the pool holds several connections
that went idle together, and the first resend can take the next one the runner is closing
(seen once in a full suite run: both tries broke and the admin API's GET failed).
Why 503: a runner that still cannot be reached is down (crashed, restarting); the client
may retry later, it did nothing wrong. The same for a call that timed out: a killed runner's
socket stays open (the arbiter holds it), so calls queue there until the restarted runner
takes them, and on a loaded machine the restart can take longer than the call's timeout
(``traffic.timeout`` of the runner; BentoML's client raises TimeoutError, a 500). And for a
runner over capacity (its ``max_concurrency`` 429, or its timeout's 504), not resent:
sending more to a saturated runner would only deepen the queue.

**Merged in the front.** Every runner request costs a whole BentoML request in the runner
(parsing, middleware, validation, the response), whatever it carries; merging concurrent calls
in the runner's batcher saves model calls but not requests. So the front merges first: while a
call of a runner method (one version's slot, ``<method>_<slot>``) is in flight from this
process, further calls of it wait, and when it returns they go out together as one request
(their payloads concatenated along the first axis, at most ``MAX_BATCH_ITEMS`` items, or the
method's own batch size where smaller, as for images; the rest wait for the next one). Each
caller gets its own slice of the answer, in order. If a merged call fails, each caller's part
is sent again on its own, so that one bad item fails only its own request; a runner that is
down or over capacity (503) fails every waiter at once instead: resending to it would only
hammer it.

**Batcher or not.** BentoML's adaptive batcher holds a call that arrives alone for about the
average wait of the calls it saw recently, hoping for company. After a burst that average is tens of
milliseconds, and the batcher unlearns it slowly (by 5% every 5 s): a single client waited
several times longer than needed for minutes after a burst (docs/PERFORMANCE.md). A lone call
(nothing in flight, nobody waiting) has nothing to be merged with, and the runner is idle; it
goes at once to the method's unbatched twin (``<method>_unbatched``). A merged call, made
because calls were waiting, is a sign of load: it goes to the batcher, which still merges what
arrives together from several front workers. ``MODEL_BUNDLE_BATCHING=off`` sends every call
as it is, on its own, to the unbatched twin: no merging in the front nor in the runner.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TypeVar

import numpy as np
from bentoml.exceptions import BentoMLException, ServiceUnavailable

from model_bundle.schemas import MAX_BATCH_ITEMS

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
    # Imported on the call, not with the module: `bentoml serve` imports this module (through
    # service.py) before it starts any worker, and never calls a runner. In the front it is
    # imported already (BentoML's client), so this is a dictionary lookup.
    import aiohttp

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


@dataclass
class Part:
    """One caller's payload waiting for the next merged call, and where its answer goes."""

    payload: Any
    items: int
    answer: asyncio.Future[Any]


@dataclass
class Line:
    """The calls of one runner method from this process: whether one is in flight, and the
    parts waiting for it to return."""

    max_items: int
    busy: bool = False
    waiting: deque[Part] = field(default_factory=deque)


def merged(payloads: list[Any]) -> Any:
    """The payloads as one batch: arrays concatenated along the first axis, lists joined."""
    if isinstance(payloads[0], np.ndarray):
        return np.concatenate(payloads)
    return [item for payload in payloads for item in payload]


class BatchingGate:
    """Sends each call of a batchable runner method at once when it is alone, or merged with
    the calls that arrived while one was in flight (see the module's docstring)."""

    def __init__(self, enabled: bool, max_items: int = MAX_BATCH_ITEMS) -> None:
        self.enabled = enabled
        self.max_items = max_items
        self._lines: dict[tuple[Any, ...], Line] = {}
        self._sending: set[asyncio.Task[None]] = set()  # referenced until done

    async def call(
        self, runner: Any, method: str, payload: Any, max_items: int | None = None
    ) -> Any:
        """``runner.<method>(payload)``: one answer per item of ``payload``, in order.
        ``max_items``: the most a merged call of this method holds (default: the gate's),
        the method's own batch size where it is smaller (images: a merged call of a thousand
        large photos would be one huge request for a runner that takes them 16 at a time)."""
        alone = getattr(runner.to_async, f"{method}_unbatched")
        if not self.enabled:
            return await call_runner(alone, payload)
        # Images of another size (a version with other preprocessing) are never concatenated.
        shape = payload.shape[1:] if isinstance(payload, np.ndarray) else ()
        line = self._lines.setdefault(
            (id(runner), method, shape), Line(max_items or self.max_items)
        )
        if line.busy:
            part = Part(payload, len(payload), asyncio.get_running_loop().create_future())
            line.waiting.append(part)
            return await part.answer
        line.busy = True
        try:
            return await call_runner(alone, payload)
        finally:
            self._next(runner, method, line)

    def _next(self, runner: Any, method: str, line: Line) -> None:
        """Send what waits on ``line`` (up to ``max_items`` items) as one call, or free it."""
        parts: list[Part] = []
        items = 0
        while line.waiting and (not parts or items + line.waiting[0].items <= line.max_items):
            part = line.waiting.popleft()
            if not part.answer.done():  # not a caller that gave up (cancelled) meanwhile
                parts.append(part)
                items += part.items
        if not parts:
            line.busy = False
            return
        task = asyncio.get_running_loop().create_task(self._send(runner, method, line, parts))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, runner: Any, method: str, line: Line, parts: list[Part]) -> None:
        try:
            if len(parts) == 1:
                await answer_each(parts, getattr(runner.to_async, f"{method}_unbatched"))
            else:
                await self._send_merged(runner, method, parts)
        finally:
            self._next(runner, method, line)

    async def _send_merged(self, runner: Any, method: str, parts: list[Part]) -> None:
        try:
            answer = await call_runner(
                getattr(runner.to_async, method), merged([p.payload for p in parts])
            )
            items = sum(part.items for part in parts)
            if len(answer) != items:
                raise RuntimeError(f"{method}: {len(answer)} answers for {items} items")
        except ServiceUnavailable as error:  # down or over capacity: do not resend
            for part in parts:
                settle(part, error=error)
            return
        except Exception as error:
            # One bad item fails the whole merged call: each part on its own finds whose.
            logger.info("merged %s call failed (%s); sending each part alone", method, error)
            await answer_each(parts, getattr(runner.to_async, f"{method}_unbatched"))
            return
        start = 0
        for part in parts:
            settle(part, answer=answer[start : start + part.items])
            start += part.items


async def answer_each(parts: list[Part], method: Callable[..., Awaitable[Any]]) -> None:
    """Each part sent on its own (concurrently), its answer or its error to its caller."""
    answers = await asyncio.gather(
        *(call_runner(method, part.payload) for part in parts), return_exceptions=True
    )
    for part, answer in zip(parts, answers, strict=True):
        if isinstance(answer, BaseException):
            settle(part, error=answer)
        else:
            settle(part, answer=answer)


def settle(part: Part, answer: Any = None, error: BaseException | None = None) -> None:
    if part.answer.done():  # the caller gave up
        return
    if error is not None:
        part.answer.set_exception(error)
    else:
        part.answer.set_result(answer)
