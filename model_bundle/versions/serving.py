"""The front's side of versions: one :class:`ModelVersions` per served model, which knows
the routing in force (re-read when the state file changes, restricted to what the runner
has loaded), picks the version of each request, counts answers and sends shadow copies."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from bentoml.exceptions import ServiceUnavailable

from model_bundle.catalogue import CATALOGUE, ServedModel
from model_bundle.runner_client import call_runner
from model_bundle.settings import settings
from model_bundle.versions import control
from model_bundle.versions.metrics import metrics
from model_bundle.versions.rollout import VersionFigures
from model_bundle.versions.routing import Buckets, Route, Routing, effective, keyed_bucket
from model_bundle.versions.shadow import Shadows
from model_bundle.versions.state import StateDirectory, Watched

T = TypeVar("T")
logger = logging.getLogger("model_bundle")
STATE_POLL_S = 1.0
# How often the runner is asked what it has loaded while the state names a version it has
# not (still loading), and at the latest (a restarted runner reloads into other slots).
PENDING_POLL_S = 1.0
RECHECK_S = 5.0
# A live runner answers at once; a killed one's socket stays open (the arbiter holds it), and
# a call there would wait for the restarted runner.
VERSIONS_TIMEOUT_S = 2.0
JUDGE_EVERY_S = 1.0  # how often a candidate with a rollout policy is judged (rollout.py)
# The live feedback figures of (model, version): {"feedback": n, "accuracy" or "rmse": x}.
FeedbackOf = Callable[[str, str], dict[str, Any]]
PRIMARY_FIELDS = (
    "tag",
    "created",
    "weights",
    "metrics",
    "data_hash",
    "calibration",
    "lineage",
    "promoted_at",
    "promoted_by",
)


class ModelVersions:
    """Routing of one model's requests over the versions its runner has loaded."""

    def __init__(
        self,
        entry: ServedModel,
        runner: Any,
        states: StateDirectory,
        shadows: Shadows,
        feedback_of: FeedbackOf | None = None,
    ) -> None:
        self.entry = entry
        self.runner = runner
        self.states = states
        self.shadows = shadows
        self.feedback_of = feedback_of
        self.outcomes: dict[str, VersionFigures] = defaultdict(VersionFigures)
        self.verdict: dict[str, Any] | None = None  # the last automatic rollout verdict
        self.judged = float("-inf")
        self.judging: asyncio.Task[None] | None = None
        self.watched = Watched(states, entry.name, STATE_POLL_S)
        self.routing: Routing | None = None
        self.asked = float("-inf")
        self.routing_stale = False
        self.lock = asyncio.Lock()
        self.buckets = Buckets()

    def pending(self) -> bool:
        """The state names a primary or candidate the runner has not reported loaded."""
        routing, state = self.routing, self.watched.state
        if routing is None:
            return True
        if state is None:
            return False
        return any(tag not in routing.loaded for tag in (state.primary, state.candidate) if tag)

    async def current(self) -> Routing:
        """The routing in force: a stat of the state file at most once a second, and a call
        to the runner only when the file changed or a version is still loading."""
        clock = time.monotonic()
        changed = self.watched.poll(clock)
        wait = PENDING_POLL_S if self.pending() else RECHECK_S
        due = changed or self.routing_stale or clock - self.asked >= wait
        if self.routing is None:
            return await self.refresh()
        # While one request asks the runner, the others keep the routing in force: it routes
        # only to loaded versions, and a slot keeps its version for UNLOAD_GRACE_S after the
        # state stops naming it, so it stays right for far longer than a refresh takes.
        if due and not self.lock.locked():
            try:
                await self.refresh()
            except Exception as error:  # the runner is down: its calls will say so
                logger.warning("%s: cannot ask the runner its versions: %s", self.entry.name, error)
                self.asked = time.monotonic() - RECHECK_S + PENDING_POLL_S  # again in 1 s
        self.tick(clock)
        return self.routing

    def tick(self, clock: float) -> None:
        """Judge a candidate that has a rollout policy, at most once a second, off the
        request's path (a task of its own)."""
        state = self.watched.state
        if state is None or state.rollout is None or self.judging is not None:
            return
        if clock - self.judged < JUDGE_EVERY_S:
            return
        self.judged = clock
        self.judging = asyncio.get_running_loop().create_task(self._judge())

    async def _judge(self) -> None:
        try:
            await control.autopilot(self)
        except Exception as error:  # a failed judgement changes nothing; tried again in 1 s
            logger.warning("%s: rollout judgement failed: %s", self.entry.name, error)
        finally:
            self.judging = None

    def figures(self, tag: str) -> dict[str, Any]:
        """What a rollout judges of a version: its recent calls from this front, the feedback
        on its answers, and a shadow's agreement with the primary."""
        figures = self.outcomes[tag].summary()
        if self.feedback_of is not None:
            figures.update(self.feedback_of(self.entry.name, tag))
        for measure in ("same_class_rate", "top_k_overlap"):
            measured = self.shadows.measured(self.entry.name, tag).get(measure)
            if measured and measured["mean"] is not None:
                figures["agreement"] = round(measured["mean"], 4)
        return figures

    async def timed(self, route: Route, call: Awaitable[T]) -> T:
        """``call``'s answer, its outcome and seconds counted for ``route``'s version."""
        started = time.perf_counter()
        try:
            answer = await call
        except Exception:
            self.outcomes[route.tag].add(False, time.perf_counter() - started)
            raise
        self.outcomes[route.tag].add(True, time.perf_counter() - started)
        return answer

    async def refresh(self, served: dict[str, Any] | None = None) -> Routing:
        """Ask the runner what it has loaded (unless ``served`` says) and rebuild the routing.
        Concurrent requests wait for one refresh rather than each asking."""
        async with self.lock:
            self.asked = time.monotonic()
            self.routing_stale = False
            if served is None:
                try:
                    served = await asyncio.wait_for(
                        call_runner(self.runner.to_async.versions), VERSIONS_TIMEOUT_S
                    )
                except TimeoutError as error:  # down or restarting: 503, the client may retry
                    raise ServiceUnavailable(
                        f"the {self.entry.name} runner did not answer in time"
                    ) from error
            last = self.routing.primary.tag if self.routing else None
            self.routing = effective(self.entry.name, self.watched.state, served, last)
            self.publish(self.routing)
            return self.routing

    async def described(self) -> Routing:
        """The routing to describe: asked of the runner now, or, while it is down or
        restarting, the routing in force (what this front routes by until it is back); the
        readiness probe is what reports a runner down, not ``/models``."""
        try:
            return await self.refresh()
        except ServiceUnavailable:
            if self.routing is None:
                raise
            return self.routing

    def reread(self) -> None:
        """Read the state file now (after this front changed it)."""
        self.watched.checked = float("-inf")
        self.watched.poll(time.monotonic())

    def publish(self, routing: Routing) -> None:
        candidate = routing.candidate
        if candidate is not None:
            share = routing.share if candidate.role == "canary" else 0.0
            metrics()["share"].labels(model=self.entry.name, version=candidate.tag).set(share)

    def count(self, route: Route, answers: int = 1) -> None:
        metrics()["answers"].labels(model=self.entry.name, version=route.tag, role=route.role).inc(
            answers
        )

    def pick(self, routing: Routing, key: int | None = None) -> Route:
        bucket = self.buckets.next() if key is None else keyed_bucket(self.entry.name, key)
        if routing.canary(bucket):
            assert routing.candidate is not None
            return routing.candidate
        return routing.primary

    async def checked(self, call: Awaitable[T]) -> T:
        """``call``'s answer; a failed call makes the next request ask the runner again
        first: a runner restarted by the arbiter may hold its versions in other slots."""
        try:
            return await call
        except Exception:
            self.asked = float("-inf")
            self.routing_stale = True
            raise

    def describe(self, routing: Routing) -> dict[str, Any]:
        """What ``models`` says of this model: its primary's summary, then every version."""
        state = routing.state
        named = [t for t in (state.candidate, state.previous) if t] if state else []
        tags = dict.fromkeys([routing.primary.tag, *named])
        tags.update(dict.fromkeys(sorted(routing.loaded)))
        versions = []
        for tag in tags:
            summary = dict(routing.loaded.get(tag, {"tag": tag}))
            summary.pop("slot", None)
            summary.pop("preprocessing", None)
            promoted = state.promoted(tag) if state else None
            role = version_role(routing, tag)
            versions.append(
                {
                    **summary,
                    "role": role,
                    "share": routing.share if role == "canary" else None,
                    "promoted_at": promoted.at if promoted else None,
                    "promoted_by": promoted.by if promoted else None,
                    "loaded": tag in routing.loaded,
                    "shadow_agreement": self.shadows.measured(self.entry.name, tag) or None,
                }
            )
        primary = {k: v for k, v in versions[0].items() if k in PRIMARY_FIELDS}
        return {**primary, "rollout": self.rollout(state), "versions": versions}

    def rollout(self, state: Any) -> dict[str, Any] | None:
        """The candidate's policy and last verdict, and the automatic decisions in the history
        (the newest ten), or None when there is neither."""
        decisions = [
            {"action": e.action, "tag": e.tag, "at": e.at, "reasons": e.detail.get("reasons")}
            for e in (state.history if state else ())
            if e.action.startswith("auto_")
        ][-10:]
        if not decisions and not (state and state.rollout):
            return None
        policy = state.rollout if state else None
        verdict = self.verdict if policy else None
        return {"policy": policy, "verdict": verdict, "decisions": decisions}

    async def serve(
        self,
        call: Callable[[Route], Awaitable[T]],
        compare: Callable[[T, T], tuple[float, int]],
        key: int | None = None,
    ) -> tuple[T, Route]:
        """``call(route)`` for the version picked for this request; a shadow gets a copy."""
        routing = await self.current()
        route = self.pick(routing, key)
        answer = await self.checked(self.timed(route, call(route)))
        self.count(route)
        shadow = routing.shadow()
        if shadow is not None and route.role == "primary":
            copy = lambda: self.timed(shadow, call(shadow))  # noqa: E731
            self.shadows.send(self.entry.name, shadow.tag, copy, answer, compare)
        return answer, route

    async def serve_keyed(
        self,
        keys: Sequence[int],
        call: Callable[[Route, list[int]], Awaitable[list[T]]],
        compare: Callable[[list[T], list[T]], tuple[float, int]],
    ) -> list[tuple[T, Route]]:
        """Items of one request each by the version picked for its key (sticky per user),
        one call per version; answers in item order."""
        routing = await self.current()
        groups: dict[Route, list[int]] = defaultdict(list)
        for index, key in enumerate(keys):
            groups[self.pick(routing, key)].append(index)
        answers: list[Any] = [None] * len(keys)
        results = await self.checked(
            asyncio.gather(*(self.timed(r, call(r, indices)) for r, indices in groups.items()))
        )
        for (route, indices), result in zip(groups.items(), results, strict=True):
            self.count(route)
            for index, answer in zip(indices, result, strict=True):
                answers[index] = (answer, route)
        shadow = routing.shadow()
        if shadow is not None:
            everything = list(range(len(keys)))
            primary = [answer for answer, _ in answers]
            self.shadows.send(
                self.entry.name,
                shadow.tag,
                lambda: self.timed(shadow, call(shadow, everything)),
                primary,
                compare,
            )
        return answers


def version_role(routing: Routing, tag: str) -> str:
    if tag == routing.primary.tag:
        return "primary"
    if routing.candidate is not None and tag == routing.candidate.tag:
        return routing.candidate.role
    state = routing.state
    if state is not None and tag == state.candidate:
        return "candidate_loading"
    if state is not None and tag == state.previous:
        return "previous"
    return "unloading"


class Versions:
    """Every served model's :class:`ModelVersions`, by store name (catalogue order)."""

    def __init__(self, runners: dict[str, Any], feedback_of: FeedbackOf | None = None) -> None:
        self.states = StateDirectory(settings.state_dir)
        self.shadows = Shadows()
        self.models = {
            entry.name: ModelVersions(
                entry, runners[entry.name], self.states, self.shadows, feedback_of
            )
            for entry in CATALOGUE
        }

    def __getitem__(self, name: str) -> ModelVersions:
        return self.models[name]

    async def learn_routings(self) -> None:
        """Ask the runner of every model this front has not routed yet (it has not answered
        since the start) what it serves; a runner that is down stays unknown."""
        unknown = [model for model in self.models.values() if model.routing is None]
        await asyncio.gather(*(model.described() for model in unknown), return_exceptions=True)

    async def describe(self) -> list[dict[str, Any]]:
        """Per model: its primary's summary, and every version's role and promotion."""
        routings = await asyncio.gather(*(model.described() for model in self.models.values()))
        return [
            model.describe(routing)
            for model, routing in zip(self.models.values(), routings, strict=True)
        ]
