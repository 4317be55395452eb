"""Settings every runner service shares, and the tracing switch the front uses too (no torch
import here: the front process reads it)."""

from __future__ import annotations

import os
from typing import Annotated, Any

import numpy as np
from bentoml.validators import ContentType

# Each runner is one process with one torch thread: on a 2-core box several runner
# processes plus the front service would oversubscribe the cores with torch's default of
# one thread per core. Batching, not intra-op threads, is what pays for small models.
TORCH_THREADS = 1


def tracing() -> dict[str, Any]:
    """BentoML opens an OpenTelemetry span for every request even with no exporter to send it
    to: 10-15% of a process's CPU under load (py-spy). Off unless MODEL_BUNDLE_TRACING=true
    (then configure an exporter in BentoML's configuration)."""
    if os.environ.get("MODEL_BUNDLE_TRACING", "").lower() == "true":
        return {}
    return {"excluded_urls": [".*"]}


RUNNER_SERVICE_CONFIG: dict[str, Any] = {
    "workers": 1,
    # A runner gives up (504) before the front's 30 s, so the front answers a clear 503;
    # 256 in flight is twice what the front ever sends (MAX_CONCURRENT_REQUESTS, 128):
    # a safeguard, its 429 is a 503 for the client (runners/calls.py).
    "traffic": {"timeout": 20, "max_concurrency": 256},
    # BentoML >= 1.4.30 replaces the caller's HTTP session to a dependency every
    # `max_requests` requests (default 100) or `max_age` seconds (default 300) and closes
    # the old session while requests are still using it: under concurrent load those
    # requests fail and the front service answers 500 (bentoml issues #5540 and #5544,
    # PR #5698). Our runners are local processes behind Unix sockets, so nothing is gained
    # by recycling the session: never recycle it. Remove once upstream closes in-flight
    # requests gracefully. tests/test_load.py fails without this.
    "runner_connection": {"max_requests": 2**62, "max_age": 1e12},
    # The front logs each request once; a runner line per hop doubled the logging work.
    "logging": {"access": {"enabled": False}},
    "tracing": tracing(),
}


# BentoML works out the content type of an answer typed as an array, list or dict from its
# JSON schema, which pydantic generates anew for every response: 12% of a runner's CPU under
# load (py-spy). Naming the type skips that; the header is the same application/json.
JSON = ContentType("application/json")
JsonArray = Annotated[np.ndarray, JSON]
JsonList = Annotated[list[dict[str, Any]], JSON]
JsonDict = Annotated[dict[str, Any], JSON]


def configured_tag(name: str) -> str:
    """The tag a runner serves: ``$<NAME>_MODEL`` (e.g. ``IRIS_MODEL``), else ``<name>:latest``."""
    return os.environ.get(f"{name.upper()}_MODEL", f"{name}:latest")
