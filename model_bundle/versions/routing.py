"""Which version answers a request: the routing state as far as this replica's runner has
loaded it, as an immutable :class:`Routing` snapshot replaced whole when either changes.

A version is routed to only once the runner reports it loaded and warmed up (in a slot):
a replica whose runner is still loading a new candidate, or a newly promoted primary, keeps
serving what it served until the runner has it.

Canary traffic: a request goes to the candidate when its bucket (0-100) is below the share.
A keyed request (the book model's ``user_id``) has a bucket hashed from its key, so a user
stays on one version while the share stays; other requests take buckets from a
low-discrepancy sequence (multiples of the golden ratio, modulo 1), so the observed share
tracks the setting closely even over a few hundred requests.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from model_bundle.versions.state import Mode, RoutingState

Role = Literal["primary", "canary", "shadow"]
GOLDEN = 0.6180339887498949


def keyed_bucket(model: str, key: int | str) -> float:
    """A stable bucket in [0, 100) for ``key`` (the same on every replica and restart)."""
    digest = hashlib.blake2b(f"{model}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest) / 2**64 * 100


@dataclass(frozen=True)
class Route:
    """A loaded version and the role it answers in."""

    tag: str
    slot: int
    role: Role
    summary: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Routing:
    """One model's effective routing: the state, restricted to what the runner has loaded."""

    model: str
    primary: Route
    candidate: Route | None  # role "canary" or "shadow"
    share: float
    state: RoutingState | None
    loaded: Mapping[str, Mapping[str, Any]]  # tag -> the runner's summary (with its slot)

    def canary(self, bucket: float) -> bool:
        return (
            self.candidate is not None and self.candidate.role == "canary" and bucket < self.share
        )

    def shadow(self) -> Route | None:
        if self.candidate is not None and self.candidate.role == "shadow":
            return self.candidate
        return None


def effective(
    model: str,
    state: RoutingState | None,
    served: Mapping[str, Any],
    last_primary: str | None,
) -> Routing:
    """The routing for ``state`` given the runner's ``versions()`` answer (``served``).

    The primary is the state's if loaded, else the one served so far (still loaded), else the
    runner's default (the setting's version)."""
    loaded = {v["tag"]: v for v in served["versions"]}

    def route(tag: str, role: Role) -> Route:
        return Route(tag, int(loaded[tag]["slot"]), role, loaded[tag])

    wanted = state.primary if state is not None else served["default"]
    for tag in (wanted, last_primary, served["default"], *sorted(loaded)):
        if tag in loaded:
            primary = route(tag, "primary")
            break
    else:
        raise RuntimeError(f"{model}: the runner has no version loaded")
    candidate = None
    mode: Mode = "shadow"
    share = 0.0
    if state is not None and state.candidate in loaded and state.candidate != primary.tag:
        mode, share = state.mode, state.share
        candidate = route(state.candidate, mode)
    return Routing(model, primary, candidate, share, state, loaded)


class Buckets:
    """Buckets for requests without a key: evenly spread, in [0, 100)."""

    def __init__(self) -> None:
        self.count = itertools.count(1)

    def next(self) -> float:
        return (next(self.count) * GOLDEN) % 1.0 * 100
