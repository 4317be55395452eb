"""Session fixtures: a temporary model store holding the default models, and the real server.

BENTOML_HOME is pointed at a temporary directory before anything imports bentoml, so the
tests never touch the user's own model store.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.support.server import Server, launch, separate_server, stop

BENTOML_HOME = Path(tempfile.mkdtemp(prefix="model-bundle-tests-"))
os.environ["BENTOML_HOME"] = str(BENTOML_HOME)
os.environ["BENTOML_DO_NOT_TRACK"] = "true"
for variable in [name for name in os.environ if name.startswith("MODEL_BUNDLE_")]:
    os.environ.pop(variable)  # the tests' servers run with the defaults unless a test says
# Training the default models must not log runs to the user's MLflow (tests/test_mlflow.py
# points it at a store of its own).
os.environ.pop("MLFLOW_TRACKING_URI", None)

READY_TIMEOUT_S = 120
# Fixtures that start `bentoml serve`: a test using one (directly or through another fixture)
# is end to end, and is marked so without having to say it.
# (``versioned``: tests/test_versions.py's server with admin keys and a state directory.)
SERVER_FIXTURES = frozenset({"server", "http", "own_server", "guarded_server", "versioned"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(BENTOML_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def default_models() -> dict[str, str]:
    """Store name -> tag of the default models in the temporary store (tests/support/trained.py:
    trained once per version of the training code)."""
    from scripts.train.defaults import DEFAULTS, stored_tag
    from tests.support.trained import default_models

    default_models(BENTOML_HOME / "models")
    return {name: str(stored_tag(name)) for name in DEFAULTS}


@pytest.fixture(scope="session")
def server(
    default_models: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The server most tests share, started once."""
    running = launch(tmp_path_factory.mktemp("server") / "serve.log", timeout_s=READY_TIMEOUT_S)
    yield running
    stop(running.process)


@pytest.fixture
def own_server(default_models: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start servers of a test's own (extra environment variables, workers to kill), each in
    a BENTOML_HOME of its own sharing the session's models; stopped after the test."""
    numbers = itertools.count()
    with ExitStack() as servers:

        def serve(env: dict[str, str] | None = None) -> Server:
            directory = tmp_path / f"server-{next(numbers)}"
            return servers.enter_context(separate_server(directory, BENTOML_HOME / "models", env))

        yield serve


# Two keys (rotation), one browser origin, and a capacity small enough to reach in a test.
GUARDED_ENV = {
    "MODEL_BUNDLE_API_KEYS": "first-key-3f9a, second-key-81c2",
    "MODEL_BUNDLE_CORS_ORIGINS": "https://app.example.com",
    "MODEL_BUNDLE_MAX_CONCURRENT_REQUESTS": "8",
}


@pytest.fixture(scope="session")
def guarded_server(
    default_models: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server with API keys, CORS and a small capacity (GUARDED_ENV)."""
    directory = tmp_path_factory.mktemp("guarded")
    with separate_server(directory, BENTOML_HOME / "models", GUARDED_ENV) as running:
        yield running


@pytest.fixture(scope="session")
def http(server: Server) -> Iterator[httpx.Client]:
    """Plain HTTP to the server."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client
