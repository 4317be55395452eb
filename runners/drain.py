"""A runner keeps serving after SIGTERM until the front service has stopped calling it.

Why: on SIGTERM BentoML's arbiter (circus) stops every worker at once, runners and front
together (``Arbiter._stop_watchers`` gathers them; BentoML sets no stop order, and uvicorn's
``--timeout-graceful-shutdown`` only bounds the wait for connections already open). A runner
then stops accepting calls while the front is still finishing the requests it had accepted,
and those requests failed (503, "No such file or directory" for the runner's socket). So a
runner passes SIGTERM on to its server only once no call has arrived for ``IDLE_S`` (the
front has finished), and after ``LIMIT_S`` at the latest. Remove when BentoML stops
dependencies after the services that call them.
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType
from typing import Any

IDLE_S = 1.0
LIMIT_S = 20.0


class DrainBeforeStop:
    """ASGI middleware of a runner service: notes each call, and at start-up (inside the server,
    whose SIGTERM handler is installed by then) puts the deferral in front of that handler."""

    last_call = time.monotonic()
    in_flight = 0

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            defer_sigterm()
            await self.app(scope, receive, send)
            return
        DrainBeforeStop.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            DrainBeforeStop.in_flight -= 1
            DrainBeforeStop.last_call = time.monotonic()


def idle() -> bool:
    return DrainBeforeStop.in_flight == 0 and time.monotonic() - DrainBeforeStop.last_call >= IDLE_S


def defer_sigterm() -> None:
    """Hand SIGTERM to the current handler once the runner is idle (or ``LIMIT_S`` passed)."""
    stop = signal.getsignal(signal.SIGTERM)
    if not callable(stop) or getattr(stop, "deferred", False):
        return

    def when_idle(signum: int, frame: FrameType | None) -> None:
        received = time.monotonic()

        def wait() -> None:
            while time.monotonic() - received < LIMIT_S:
                if idle():
                    break
                time.sleep(0.1)
            stop(signum, frame)

        threading.Thread(target=wait, name="drain", daemon=True).start()

    when_idle.deferred = True  # type: ignore[attr-defined]
    signal.signal(signal.SIGTERM, when_idle)
