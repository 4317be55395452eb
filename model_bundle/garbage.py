"""Python's cyclic garbage collector, tuned for a serving process.

With the default threshold (a young collection every 700 new objects) a busy front collects
while each request's objects (its task, scope, headers, models) are still alive: they are
promoted, and enough promoted objects start a full collection of the whole heap, over and
over. A higher young threshold lets most requests finish first (freed by reference
counting, never promoted). Cyclic garbage waits a little longer to be freed; nothing else
changes. The measurements: docs/PERFORMANCE-GUIDE.md, "The garbage collector".
"""

from __future__ import annotations

import gc


def tune_garbage_collector(young_threshold: int) -> None:
    """Collect the young generation every ``young_threshold`` new objects (the older
    generations' thresholds stay Python's)."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)
