"""Which version slot each loaded version is in, remembered across a restart of the runner.

The front routes a version to a slot by what the runner last reported (``versions``) and asks
again only after a failed call or every few seconds. When ``bentoml serve`` restarts a runner
that crashed, the new process loads the same versions; were they to land in other slots, the
front would, until it asked again, send a version's calls to another version and label the
answers wrongly. So the runner writes where each version is after every change, and a
restarted runner puts each version back in its slot.

The file lives in the state directory, under the host's name and the parent process's id
(the server's arbiter, which outlives its runners): a fresh server starts with no memory, and
replicas sharing a state directory never read each other's. Any assignment is valid for a
front that asks anew, so a stale or unreadable file costs nothing but the first free slot.
(Each server start leaves one small file per model there.)
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterable
from pathlib import Path

logger = logging.getLogger("model_bundle")


class SlotMemory:
    def __init__(self, state_dir: Path, model: str) -> None:
        server = f"{socket.gethostname()}-{os.getppid()}"
        self.path = state_dir / "slots" / server / f"{model}.json"

    def read(self) -> dict[str, int]:
        """tag -> slot as last written; empty when there is no (readable) memory."""
        try:
            slots = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(slots, dict):
            return {}
        return {str(tag): slot for tag, slot in slots.items() if isinstance(slot, int)}

    def write(self, tags: Iterable[str | None]) -> None:
        """Remember the tag in each slot (None: a free slot). Never fails the caller."""
        slots = {tag: slot for slot, tag in enumerate(tags) if tag is not None}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(json.dumps(slots))
            os.replace(partial, self.path)
        except OSError as error:
            logger.warning("cannot remember the version slots in %s: %s", self.path, error)
