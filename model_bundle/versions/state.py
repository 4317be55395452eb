"""The routing state of each served model, as one JSON file per model in the state directory.

Why files: what is served must survive a restart and be the same on every replica, so no
decision lives only in one process's memory. Every replica (its front and its runners) reads
the files at start and re-reads one when its modification time changes (polled about once a
second: one ``stat``); replicas sharing the directory converge.

A file is written whole to a temporary file in the same directory and renamed over the old one
(atomic on POSIX): a reader sees the old state or the new one, never half of one. Changes are
read-modify-write under an exclusive ``flock`` on ``<model>.lock``, so two admins (or two
replicas' admin APIs) changing the same model at once do not lose either change.

Torch- and BentoML-free: the front, the runners, the CLI and the tests read it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

Mode = Literal["canary", "shadow"]
MODES: tuple[Mode, ...] = ("canary", "shadow")
FORMAT = 1
MAX_HISTORY = 200  # events kept per model (the newest)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Event:
    """One change: what was done, to which version, by whom and when."""

    action: str
    tag: str | None
    by: str
    at: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RoutingState:
    """What one model serves. ``share`` is the canary's percentage of live traffic (0-100;
    unused for a shadow, which sees a copy of all traffic)."""

    model: str
    primary: str
    candidate: str | None = None
    mode: Mode = "shadow"
    share: float = 0.0
    previous: str | None = None
    history: tuple[Event, ...] = ()
    # The candidate's automatic rollout policy (rollout.RolloutPolicy as JSON); None: by hand.
    rollout: dict[str, Any] | None = None

    def referenced(self) -> set[str]:
        """The versions a runner keeps loaded for this state (the previous for rollback)."""
        return {tag for tag in (self.primary, self.candidate, self.previous) if tag}

    def promoted(self, tag: str) -> Event | None:
        """The latest event that made ``tag`` primary."""
        return next(
            (e for e in reversed(self.history) if e.tag == tag and e.action in PRIMARY_ACTIONS),
            None,
        )

    def changed(self, event: Event, **changes: Any) -> RoutingState:
        history = (*self.history, event)[-MAX_HISTORY:]
        new = dataclasses.replace(self, **changes, history=history)
        if new.candidate is None and new.rollout is not None:  # the policy goes with it
            new = dataclasses.replace(new, rollout=None)
        return new

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["history"] = [dataclasses.asdict(e) for e in self.history]
        return {"format": FORMAT, **data}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RoutingState:
        if data.get("format") != FORMAT:
            raise ValueError(f"routing state format {data.get('format')!r}, expected {FORMAT}")
        history = tuple(Event(**event) for event in data.get("history", ()))
        mode = data.get("mode") or "shadow"
        if mode not in MODES:
            raise ValueError(f"routing state mode {mode!r}, expected one of {MODES}")
        return cls(
            model=str(data["model"]),
            primary=str(data["primary"]),
            candidate=data.get("candidate"),
            mode=mode,
            share=float(data.get("share", 0.0)),
            previous=data.get("previous"),
            history=history,
            rollout=data.get("rollout"),
        )


PRIMARY_ACTIONS = frozenset({"start", "promote", "rollback"})


class StateDirectory:
    """The routing-state files of every model: ``<directory>/<model>.json``."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path(self, model: str) -> Path:
        return self.directory / f"{model}.json"

    def stamp(self, model: str) -> tuple[int, int, int] | None:
        """What changes whenever the file is replaced (mtime, inode, size); None if absent."""
        try:
            info = os.stat(self.path(model))
        except FileNotFoundError:
            return None
        return (info.st_mtime_ns, info.st_ino, info.st_size)

    def read(self, model: str) -> RoutingState | None:
        """The model's state, or None when none was ever written."""
        try:
            text = self.path(model).read_text()
        except FileNotFoundError:
            return None
        return RoutingState.from_json(json.loads(text))

    def write(self, state: RoutingState) -> None:
        """Replace the model's file atomically (a temporary file renamed over it)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(
            dir=self.directory, prefix=f".{state.model}.", suffix=".tmp"
        )
        try:
            with os.fdopen(descriptor, "w") as file:
                json.dump(state.to_json(), file, indent=1)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path(state.model))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise

    @contextlib.contextmanager
    def locked(self, model: str) -> Iterator[None]:
        """Exclusive across processes (and replicas on the same filesystem) for one model."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / f".{model}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


class Watched:
    """One model's state as last read, re-read when the file's stamp changed (at most once per
    ``interval_s``): cheap enough to ask on every request."""

    def __init__(self, states: StateDirectory, model: str, interval_s: float = 1.0) -> None:
        self.states = states
        self.model = model
        self.interval_s = interval_s
        self.stamp: tuple[int, int, int] | None = None
        self.state: RoutingState | None = None
        self.checked = float("-inf")

    def poll(self, clock: float) -> bool:
        """Re-read if the file changed since the last read; True when it did."""
        if clock - self.checked < self.interval_s:
            return False
        self.checked = clock
        stamp = self.states.stamp(self.model)
        if stamp == self.stamp:
            return False
        self.stamp = stamp
        self.state = self.states.read(self.model)
        return True
