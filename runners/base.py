"""What every runner does the same way, written once: the service configuration, loading the
versions the routing state names from the model store (each warmed up, in a slot of its
own, swapped in atomically), ``versions``, draining before stop, and the batched and
unbatched APIs of each batchable method per slot.

A runner declares only what differs per model::

    @runner(catalogue.IRIS)
    class IrisRunner(TabularRunner):
        ...

where the class (or a family base such as :class:`runners.tabular.TabularRunner`) defines
``load(artifact) -> model``, ``warm_up(model)`` and its ``@batchable(...)`` methods
``(self, model, batch)``; other APIs serve a version named by tag (:meth:`ModelRunner.version`).

This module imports no torch at module level: the front service imports the runner classes
for ``bentoml.depends`` and must stay torch-free.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import bentoml
import numpy as np
from _bentoml_sdk.method import APIMethod
from bentoml.exceptions import NotFound, ServiceUnavailable
from bentoml.validators import ContentType

from model_bundle.catalogue import ServedModel
from model_bundle.garbage import tune_garbage_collector
from model_bundle.settings import settings
from runners.drain import DrainBeforeStop
from runners.slot_memory import SlotMemory

if TYPE_CHECKING:
    from models.artifact import Artifact

logger = logging.getLogger("model_bundle")

# Each runner is one process with one torch thread: on a 2-core box several runner
# processes plus the front service would oversubscribe the cores with torch's default of
# one thread per core. Batching, not intra-op threads, is what pays for small models.
TORCH_THREADS = 1

# BentoML works out the content type of an answer typed as an array, list or dict from its
# JSON schema, which pydantic generates anew for every response (a measurable share of a
# runner's CPU under load, docs/PERFORMANCE.md). Naming the type skips that; the header is
# the same application/json.
JSON = ContentType("application/json")
JsonArray = Annotated[np.ndarray, JSON]
JsonList = Annotated[list[dict[str, Any]], JSON]
JsonDict = Annotated[dict[str, Any], JSON]


def runner_config() -> dict[str, Any]:
    """The ``@bentoml.service`` configuration every runner shares."""
    return {
        "workers": 1,
        # The runner gives up (504) before the front does, so the front answers a clear 503;
        # its concurrency bound is twice what the front ever sends (settings.py).
        "traffic": {
            "timeout": settings.runner_timeout_s,
            "max_concurrency": settings.runner_max_concurrency,
        },
        # BentoML >= 1.4.30 replaces the caller's HTTP session to a dependency every
        # `max_requests` requests (default 100) or `max_age` seconds (default 300) and closes
        # the old session while requests are still using it: under concurrent load those
        # requests fail and the front service answers 500 (bentoml issues #5540 and #5544,
        # PR #5698). Our runners are local processes behind Unix sockets, so nothing is
        # gained by recycling the session: never recycle it. Remove once upstream closes
        # in-flight requests gracefully. tests/test_load.py fails without this.
        "runner_connection": {"max_requests": 2**62, "max_age": 1e12},
        # The front logs each request once; a runner line per hop doubled the logging work.
        "logging": {"access": {"enabled": False}},
        "tracing": settings.tracing_config(),
    }


# Version slots per runner. A batchable method gets one BentoML API per slot, because BentoML's
# batcher merges every call of one API into one batch (and takes one argument only): calls
# to different versions must never be merged into one forward pass. A slot's version is fixed
# from its load until it is freed, and a slot is freed only UNLOAD_GRACE_S after the routing
# state stopped naming its version, long after every front stopped routing to it (fronts
# re-read the state within about a second). Primary, candidate and previous take three; the
# fourth lets a version leave while another arrives.
SLOTS = 4
UNLOAD_GRACE_S = 15.0
STATE_POLL_S = 1.0


@dataclass(frozen=True)
class Loaded:
    """One loaded, warmed-up version: what :meth:`ModelRunner.load` built from its artifact."""

    tag: str
    artifact: Artifact
    model: Any
    description: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        return {**self.artifact.summary(), **self.description}


class NotServing(ServiceUnavailable):
    """A call for a slot or version this runner does not hold (the front never sends one)."""


class ModelRunner:
    """Serves the versions of ``entry``'s model the routing state names, each loaded and warmed
    up in a slot of its own.

    ``self.slots`` is an immutable tuple replaced whole (one reference assignment, atomic),
    so a request reads one consistent snapshot; loads happen in a thread of their own, off
    the request path, and only a loaded, warmed-up version is ever put in a slot."""

    entry: ClassVar[ServedModel]
    model: ClassVar[bentoml.models.BentoModel]

    def __init__(self) -> None:
        import torch

        from model_bundle.versions.state import StateDirectory, Watched

        torch.set_num_threads(TORCH_THREADS)
        tune_garbage_collector(settings.gc_young_threshold)
        self.slots: tuple[Loaded | None, ...] = (None,) * SLOTS
        self._writing = threading.Lock()  # one load or unload at a time
        self._unreferenced: dict[str, float] = {}  # tag -> since when no state names it
        self.slot_memory = SlotMemory(settings.state_dir, self.entry.name)
        self._remembered = self.slot_memory.read()  # the slots before a restart, if any
        self.boot_tag = str(self.model.tag)  # the setting's version, resolved
        self.watched = Watched(StateDirectory(settings.state_dir), self.entry.name, STATE_POLL_S)
        self.watched.poll(time.monotonic())
        state = self.watched.state
        primary = state.primary if state else self.boot_tag
        try:
            self.load_version_now(primary)
        except Exception:
            if primary == self.boot_tag:
                raise
            logger.exception("cannot load the primary %s; serving %s", primary, self.boot_tag)
            self.load_version_now(self.boot_tag)
        self.sync()  # the candidate and previous, before the runner says it is ready
        threading.Thread(target=self._follow_state, name="versions", daemon=True).start()

    # What each runner defines.
    def load(self, artifact: Artifact) -> Any:
        """Build what serves ``artifact`` (the network, tables ...), refusing (ValueError) an
        artifact that is not one of this model's."""
        raise NotImplementedError

    def warm_up(self, model: Any) -> None:
        """Run ``model`` once on a minimal input."""
        raise NotImplementedError

    def description(self, model: Any) -> dict[str, Any]:
        """What a version's summary reports beyond the artifact's (none by default)."""
        return {}

    # Versions.
    def serving(self, slot: int) -> Any:
        loaded = self.slots[slot]
        if loaded is None:
            raise NotServing(f"{self.entry.name}: slot {slot} holds no version")
        return loaded.model

    def version(self, tag: str) -> Any:
        for loaded in self.slots:
            if loaded is not None and loaded.tag == tag:
                return loaded.model
        raise NotServing(f"{self.entry.name}: version {tag} is not loaded")

    def load_version_now(self, tag: str) -> Loaded:
        """Load ``tag`` into a free slot (the one it is in, if loaded): load, warm up, then
        publish a new snapshot. ValueError naming the problem when it cannot serve."""
        from models.artifact import Artifact

        with self._writing:
            for loaded in self.slots:
                if loaded is not None and loaded.tag == tag:
                    return loaded
            free = [i for i, loaded in enumerate(self.slots) if loaded is None]
            if self._remembered.get(tag) in free:  # back in its slot after a restart
                free.insert(0, self._remembered[tag])
            if not free:
                raise SlotsFullError(
                    f"{self.entry.name}: all {SLOTS} version slots are in use; a version left "
                    f"recently is kept {UNLOAD_GRACE_S:g} s: retry then"
                )
            try:
                stored = self.stored(tag)
            except NotFound:
                raise UnknownVersionError(f"{tag} is not in the model store") from None
            artifact = Artifact.from_store(stored)
            model = self.load(artifact)
            self.warm_up(model)  # the first request must not pay for lazy initialisation
            loaded = Loaded(str(stored.tag), artifact, model, self.description(model))
            slots = list(self.slots)
            slots[free[0]] = loaded
            self.publish(slots)
            logger.info("%s: %s loaded in slot %d", self.entry.name, loaded.tag, free[0])
            return loaded

    def stored(self, tag: str) -> bentoml.Model:
        """The store entry of ``tag``. The setting's version is resolved already (BentoML
        read its model.yaml for ``boot_tag``): reading it again cost a second parse of its
        metadata, up to 50 KB of YAML with the drift reference, in every runner's start."""
        if tag == self.boot_tag:
            return self.model
        return bentoml.models.get(tag)

    def sync(self) -> None:
        """Load what the routing state names and is not loaded; free what it has not named
        for UNLOAD_GRACE_S."""
        state = self.watched.state
        wanted = state.referenced() if state else {self.boot_tag}
        for tag in sorted(wanted):
            try:
                self.load_version_now(tag)
            except Exception as error:  # logged, retried at the next change of the state
                logger.error("%s: cannot load %s: %s", self.entry.name, tag, error)
        clock = time.monotonic()
        with self._writing:
            slots = list(self.slots)
            for i, loaded in enumerate(slots):
                if loaded is None or loaded.tag in wanted:
                    if loaded is not None:
                        self._unreferenced.pop(loaded.tag, None)
                    continue
                since = self._unreferenced.setdefault(loaded.tag, clock)
                if clock - since >= UNLOAD_GRACE_S:
                    slots[i] = None
                    self._unreferenced.pop(loaded.tag)
                    logger.info("%s: %s unloaded from slot %d", self.entry.name, loaded.tag, i)
            if tuple(slots) != self.slots:
                self.publish(slots)

    def publish(self, slots: list[Loaded | None]) -> None:
        """Serve ``slots`` (one reference assignment) and remember them for a restart."""
        self.slots = tuple(slots)
        self.slot_memory.write(loaded.tag if loaded else None for loaded in self.slots)

    def _follow_state(self) -> None:
        while True:
            time.sleep(STATE_POLL_S)
            try:
                self.watched.poll(time.monotonic())
                self.sync()
            except Exception:  # a malformed state file must not stop the runner
                logger.exception("%s: reading the routing state failed", self.entry.name)

    def loaded_versions(self) -> list[dict[str, Any]]:
        return [
            {"slot": i, **loaded.summary()}
            for i, loaded in enumerate(self.slots)
            if loaded is not None
        ]

    def served(self) -> dict[str, Any]:
        return {"default": self.boot_tag, "versions": self.loaded_versions()}

    @bentoml.api
    def versions(self) -> JsonDict:
        """Every loaded version (its slot, and its summary: tag, creation time, weights kind,
        metrics, data hash, and what :meth:`description` adds), and the setting's version
        (``default``: the primary while no routing state exists)."""
        return self.served()

    @bentoml.api
    async def load_version(self, tag: str) -> JsonDict:
        """Load and warm up ``tag`` (in a thread: requests keep being served meanwhile), then
        answer every loaded version; or the problem (``error``: its kind and message)."""
        try:
            loaded = await asyncio.to_thread(self.load_version_now, tag)
        except UnknownVersionError as error:
            return {"error": {"type": "unknown_version", "msg": str(error)}}
        except SlotsFullError as error:
            return {"error": {"type": "busy", "msg": str(error)}}
        except Exception as error:  # the model's loader refused the artifact
            return {"error": {"type": "invalid_artifact", "msg": f"{tag}: {error}"}}
        return {"tag": loaded.tag, **self.served()}


class UnknownVersionError(LookupError):
    """The tag is not in the model store."""


class SlotsFullError(RuntimeError):
    """Every slot holds a version still named, or left too recently to be freed."""


@dataclass(frozen=True)
class Batchable:
    """A model method the runner serves per slot, batched; see :func:`batchable`."""

    func: Callable[..., Any]
    max_batch_size: int
    max_latency_ms: int


def batchable(
    max_batch_size: int, max_latency_ms: int
) -> Callable[[Callable[..., Any]], Batchable]:
    """Mark ``def method(self, model, batch) -> answers`` to be served for every version slot
    ``i`` as ``<method>_<i>`` (adaptive batching: calls of one slot merged into one forward
    pass of that slot's model) and ``<method>_<i>_unbatched`` (past the batcher,
    model_bundle.runner_client sends a call there when no other call of it is in flight)."""

    def mark(func: Callable[..., Any]) -> Batchable:
        return Batchable(func, max_batch_size, max_latency_ms)

    return mark


def slot_api(method: Batchable, name: str, slot: int, batched: bool) -> APIMethod[..., Any]:
    """The BentoML API of ``method`` for ``slot``: one argument, the batch, typed as the
    method's (BentoML builds the API's input and output from these annotations)."""
    func = method.func
    argument = list(inspect.signature(func).parameters)[2]

    def hint(name: str) -> Any:
        # Only the batch's and the answer's types: the model's may be imported for type
        # checking only (a runner's module imports no torch at module level).
        annotation = func.__annotations__[name]
        return eval(annotation, func.__globals__) if isinstance(annotation, str) else annotation

    def api(self: ModelRunner, batch: Any) -> Any:
        return func(self, self.serving(slot), batch)

    api.__name__ = api.__qualname__ = f"{name}_{slot}" + ("" if batched else "_unbatched")
    api.__annotations__ = {"batch": hint(argument), "return": hint("return")}
    api.__doc__ = f"``{name}`` by the version in slot {slot}" + (
        "." if batched else ", past the batcher, for a call with nothing to merge with."
    )
    if not batched:
        return bentoml.api(api)
    return bentoml.api(
        batchable=True,
        max_batch_size=method.max_batch_size,
        max_latency_ms=method.max_latency_ms,
    )(api)


def runner(entry: ServedModel) -> Callable[[type[ModelRunner]], Any]:
    """Make a :class:`ModelRunner` class the BentoML service serving ``entry``'s model: the
    tag ``settings`` chooses (the first primary, before any routing state exists), the shared
    configuration, each :func:`batchable` method's APIs per version slot, and draining before
    stop."""

    def make_service(cls: type[ModelRunner]) -> Any:
        cls.entry = entry
        # A class attribute, so that `bentoml build` packs the model into the Bento.
        cls.model = bentoml.models.BentoModel(settings.model_tag(entry.name))
        for name, method in list(vars(cls).items()) + [
            (n, m) for base in cls.__mro__[1:] for n, m in vars(base).items()
        ]:
            if isinstance(method, Batchable) and not hasattr(cls, f"{name}_0"):
                for slot in range(SLOTS):
                    for batched in (True, False):
                        api = slot_api(method, name, slot, batched)
                        setattr(cls, api.name, api)
        service = bentoml.service(**runner_config())(cls)
        service.add_asgi_middleware(DrainBeforeStop)
        return service

    return make_service
