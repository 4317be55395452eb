"""What every runner does the same way, written once: the service configuration, loading the
served artifact from the model store, warm-up, ``describe``, draining before stop, and the
unbatched twin of each batchable method.

A runner declares only what differs per model::

    @runner(catalogue.IRIS)
    class IrisRunner(TabularRunner):
        ...

where the class (or a family base such as :class:`runners.tabular.TabularRunner`) defines
``load(artifact)``, ``warm_up()`` and its ``@bentoml.api(batchable=True, ...)`` methods.

This module imports no torch at module level: the front service imports the runner classes
for ``bentoml.depends`` and must stay torch-free.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import bentoml
import numpy as np
from _bentoml_sdk.method import APIMethod
from bentoml.validators import ContentType

from model_bundle.catalogue import ServedModel
from model_bundle.settings import settings
from runners.drain import DrainBeforeStop

if TYPE_CHECKING:
    from models.artifact import Artifact

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


class ModelRunner:
    """Serves the artifact of ``model`` (set by :func:`runner`) once loaded and warmed up."""

    entry: ClassVar[ServedModel]
    model: ClassVar[bentoml.models.BentoModel]

    def __init__(self) -> None:
        import torch

        from models.artifact import Artifact

        torch.set_num_threads(TORCH_THREADS)
        self.artifact = Artifact.from_store(self.model)
        self.load(self.artifact)
        self.warm_up()  # the first request must not pay for lazy initialisation

    def load(self, artifact: Artifact) -> None:
        """Build what serves ``artifact`` (the runner's network, tables ...)."""
        raise NotImplementedError

    def warm_up(self) -> None:
        """Run the model once on a minimal input."""
        raise NotImplementedError

    def description(self) -> dict[str, Any]:
        """What ``describe`` reports beyond the artifact's summary (none by default)."""
        return {}

    @bentoml.api
    def describe(self) -> JsonDict:
        """The served artifact (tag, creation time, weights kind, metrics, data hash) and what
        the runner adds (:meth:`description`)."""
        return {**self.artifact.summary(), **self.description()}


def unbatched_twin(api: APIMethod[..., Any]) -> APIMethod[..., Any]:
    """``<name>_unbatched``: the same function, past the batcher (model_bundle.runner_client
    sends a call there when no other call of the method is in flight).

    BentoML names an API after its function, so the twin is a copy of the function under the
    new name (same code, globals, defaults and annotations)."""
    func = api.func
    twin = types.FunctionType(
        func.__code__, func.__globals__, f"{api.name}_unbatched", func.__defaults__
    )
    twin.__kwdefaults__ = func.__kwdefaults__
    twin.__annotations__ = dict(func.__annotations__)
    twin.__qualname__ = func.__qualname__.replace(api.name, twin.__name__)
    twin.__module__ = func.__module__
    twin.__doc__ = f"``{api.name}`` past the batcher, for a call with nothing to merge with."
    return bentoml.api(twin)


def runner(entry: ServedModel) -> Callable[[type[ModelRunner]], Any]:
    """Make a :class:`ModelRunner` class the BentoML service serving ``entry``'s model: the
    tag ``settings`` chooses, the shared configuration, an unbatched twin of each batchable
    API, and draining before stop."""

    def make_service(cls: type[ModelRunner]) -> Any:
        cls.entry = entry
        # A class attribute, so that `bentoml build` packs the model into the Bento.
        cls.model = bentoml.models.BentoModel(settings.model_tag(entry.name))
        for name in dir(cls):
            api = getattr(cls, name)
            if isinstance(api, APIMethod) and api.batchable:
                setattr(cls, f"{name}_unbatched", unbatched_twin(api))
        service = bentoml.service(**runner_config())(cls)
        service.add_asgi_middleware(DrainBeforeStop)
        return service

    return make_service
