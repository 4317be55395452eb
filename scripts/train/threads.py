"""Training runs torch on one thread.

The default networks are small: on the two shared cores this bundle is built for, a second
intra-op thread waits for the other core more than it computes (measured: the credit model
trained in 1.5 s on one thread, 2 to 13 s on two; the mask model 23 s against 91 s). One
thread also keeps the numbers independent of the machine's core count.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with one torch thread, then restore the caller's setting (the tests and
    the retrain command train inside processes of their own settings)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
