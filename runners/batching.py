"""Which twin of a batchable runner method a call goes to: the batcher only when there is company.

BentoML's adaptive batcher holds a call that arrives alone for about the average wait of the
calls it saw recently, hoping for company. After a burst that average is tens of
milliseconds, and the batcher unlearns it slowly (by 5% every 5 s): a single client was
answered in 18 ms instead of 3 for minutes after a burst (docs/PERFORMANCE.md). A call made
while no other call to the same method is in flight from this process has nothing to be
merged with, and the runner is idle; it goes to the method's unbatched twin
(``<method>_unbatched``) and is answered at once. Calls made while others are in flight go
to the batcher, which merges them: under load nearly every call is batched, and at low load
none waits. ``MODEL_BUNDLE_BATCHING=off`` sends every call to the unbatched twin.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from runners.calls import call_runner


def batching_enabled() -> bool:
    """``MODEL_BUNDLE_BATCHING``: ``on`` (the default) or ``off``."""
    value = os.environ.get("MODEL_BUNDLE_BATCHING", "on").strip().lower()
    if value not in ("on", "off"):
        raise ValueError(f"MODEL_BUNDLE_BATCHING must be 'on' or 'off', not {value!r}")
    return value == "on"


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
