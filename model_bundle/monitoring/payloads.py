"""Sampled payload logging, off the request path.

The request path only samples and ``put_nowait``s onto a bounded queue (a full queue drops
the sample and counts it, never waits); one daemon thread writes JSON lines to size-rotated
files under ``<state dir>/payloads/<model>/`` (``MAX_BYTES`` x ``BACKUPS`` per model). It
takes what has queued up (up to ``WRITE_BATCH`` records) and writes it with one flush, then
sleeps ``WRITE_INTERVAL_S`` before it looks again: under load, a write and a rotation check per
record held the GIL the request path needs (about a tenth of a millisecond per answer at the
default sample rate, profiled with py-spy), and so did waking for every record (a thread
switch per sample; docs/MONITORING.md measures the difference). An idle log still writes a
first record at once; a process killed loses at most the last interval's samples.

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
import time
from collections import Counter
from pathlib import Path
from typing import Any

MAX_BYTES = 5 * 1024 * 1024
BACKUPS = 3
QUEUE_SIZE = 10_000
WRITE_BATCH = 1_000
WRITE_INTERVAL_S = 0.25


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
        self.writing_s = 0.0  # CPU seconds write_many() has spent (Monitor.spent)

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

    def _handler(self, model: str) -> logging.handlers.RotatingFileHandler:
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
        self.write_many([record])

    def write_many(self, records: list[dict[str, Any]]) -> None:
        """Each record as a JSON line in its model's file, rotated before a line that would
        take the file past ``max_bytes``; one flush per model."""
        started = time.thread_time()
        lines: dict[str, list[str]] = {}
        for record in records:
            try:
                lines.setdefault(record["model"], []).append(
                    json.dumps(record, separators=(",", ":"))
                )
            except (TypeError, ValueError):
                self._drop(record["model"], "write_error")
        for model, model_lines in lines.items():
            try:
                self._append(self._handler(model), model_lines)
            except OSError:
                for _ in model_lines:
                    self._drop(model, "write_error")
                continue
            self.logged[model] += len(model_lines)
            if self._on_log:
                self._on_log(model, len(model_lines))
        self.writing_s += time.thread_time() - started

    def _append(self, handler: logging.handlers.RotatingFileHandler, lines: list[str]) -> None:
        stream = handler.stream  # open: the handler is not delayed
        size = stream.tell()
        for line in lines:
            length = len(line.encode()) + 1
            if size and size + length > self.max_bytes:
                stream.flush()
                handler.doRollover()  # renames the backups and opens a new file
                stream, size = handler.stream, 0
            stream.write(line + "\n")
            size += length
        stream.flush()

    def _write_forever(self) -> None:
        while True:
            records = [self.queue.get()]
            while len(records) < WRITE_BATCH:
                try:
                    records.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            self.write_many(records)
            for _ in records:
                self.queue.task_done()
            time.sleep(WRITE_INTERVAL_S)  # let the next records gather: one wake for many
