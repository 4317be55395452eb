"""Sampled payload logging, off the request path.

The request path only samples and ``put_nowait``s onto a bounded queue (a full queue drops
the sample and counts it, never waits); one daemon thread writes JSON lines to size-rotated
files under ``<state dir>/payloads/<model>/`` (``MAX_BYTES`` x ``BACKUPS`` per model).

Why not ``bentoml.monitor``: its DefaultMonitor (bentoml/_internal/monitoring/default.py)
writes through a logging handler synchronously in the request's task, in its own column
format (plus a schema file), rotated daily with no size bound; the contract needs our line
format, bounded disk and a bounded, dropping queue, so we write with the standard library's
RotatingFileHandler ourselves."""

from __future__ import annotations

import json
import logging
import logging.handlers
import queue
import random
import threading
from collections import Counter
from pathlib import Path
from typing import Any

MAX_BYTES = 5 * 1024 * 1024
BACKUPS = 3
QUEUE_SIZE = 10_000


class PayloadLog:
    def __init__(
        self,
        directory: Path,
        sample_rate: float,
        *,
        queue_size: int = QUEUE_SIZE,
        max_bytes: int = MAX_BYTES,
        backups: int = BACKUPS,
        on_drop: Any = None,
        on_log: Any = None,
    ) -> None:
        self.directory = directory
        self.sample_rate = sample_rate
        self.max_bytes, self.backups = max_bytes, backups
        self.queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=queue_size)
        self.logged: Counter[str] = Counter()
        self.dropped: Counter[tuple[str, str]] = Counter()
        self._on_drop, self._on_log = on_drop, on_log
        self._handlers: dict[str, logging.Handler] = {}
        self._thread: threading.Thread | None = None
        self._random = random.Random()

    def sampled(self) -> bool:
        return self.sample_rate > 0 and self._random.random() < self.sample_rate

    def offer(self, record: dict[str, Any]) -> bool:
        """Queue one record for writing; False (and counted) if the queue is full."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._write_forever, daemon=True)
            self._thread.start()
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self._drop(record["model"], "queue_full")
            return False
        return True

    def _drop(self, model: str, reason: str) -> None:
        self.dropped[(model, reason)] += 1
        if self._on_drop:
            self._on_drop(model, reason)

    def _handler(self, model: str) -> logging.Handler:
        if model not in self._handlers:
            folder = self.directory / model
            folder.mkdir(parents=True, exist_ok=True)
            self._handlers[model] = logging.handlers.RotatingFileHandler(
                folder / "payloads.jsonl",
                maxBytes=self.max_bytes,
                backupCount=self.backups,
                encoding="utf-8",
            )
        return self._handlers[model]

    def write(self, record: dict[str, Any]) -> None:
        model = record["model"]
        try:
            handler = self._handler(model)
            line = json.dumps(record, separators=(",", ":"))
            handler.emit(logging.makeLogRecord({"msg": line, "levelno": logging.INFO}))
        except (OSError, TypeError, ValueError):
            self._drop(model, "write_error")
            return
        self.logged[model] += 1
        if self._on_log:
            self._on_log(model)

    def _write_forever(self) -> None:
        while True:
            self.write(self.queue.get())
            self.queue.task_done()
