"""Session fixtures: a temporary model store holding the default models, and the real server.

BENTOML_HOME is pointed at a temporary directory before anything imports bentoml, so the
tests never touch the user's own model store.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from models.names import BOOK_RATING, CREDIT_HEALTH, IRIS, MASK_CLASSIFIER
from scripts.serving import free_port, start, stop, wait_until_ready

BENTOML_HOME = Path(tempfile.mkdtemp(prefix="model-bundle-tests-"))
os.environ["BENTOML_HOME"] = str(BENTOML_HOME)
os.environ["BENTOML_DO_NOT_TRACK"] = "true"
for name in (CREDIT_HEALTH, IRIS, BOOK_RATING, MASK_CLASSIFIER):  # serve what tests trained
    os.environ.pop(f"{name.upper()}_MODEL", None)

READY_TIMEOUT_S = 120


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(BENTOML_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def default_models() -> dict[str, str]:
    """Store name -> tag of the default models, trained once into the temporary store."""
    from scripts.train_defaults import DEFAULTS, stored_tag, train_missing

    train_missing()
    return {name: str(stored_tag(name)) for name in DEFAULTS}


@dataclass(frozen=True)
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def launch(log: Path, env: dict[str, str] | None = None) -> Server:
    """`bentoml serve service:ModelBundle` on a free loopback port, once it is ready."""
    port = free_port()
    process = start(port, log, env)
    running = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        wait_until_ready(running.url, process, READY_TIMEOUT_S)
    except Exception:
        stop(process)
        print(running.log_text()[-5000:])
        raise
    return running


@pytest.fixture(scope="session")
def server(
    default_models: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The server most tests share, started once."""
    running = launch(tmp_path_factory.mktemp("server") / "serve.log")
    yield running
    stop(running.process)


@pytest.fixture
def own_server(default_models: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start servers of a test's own (extra environment variables, workers to kill).

    Each gets a BENTOML_HOME of its own sharing the models: a second server in the same home
    would wipe the session server's metrics directory (bentoml ensure_prometheus_dir)."""
    started: list[Server] = []

    def serve(env: dict[str, str] | None = None) -> Server:
        home = tmp_path / f"home-{len(started)}"
        home.mkdir()
        (home / "models").symlink_to(BENTOML_HOME / "models")
        log = tmp_path / f"serve-{len(started)}.log"
        started.append(launch(log, {"BENTOML_HOME": str(home), **(env or {})}))
        return started[-1]

    yield serve
    for running in started:
        stop(running.process)


@pytest.fixture(scope="session")
def http(server: Server) -> Iterator[httpx.Client]:
    """Plain HTTP to the server."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client
