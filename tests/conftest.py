"""Session fixtures: a temporary model store holding the default models, and the real server.

BENTOML_HOME is pointed at a temporary directory before anything imports bentoml, so the
tests never touch the user's own model store.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENTOML_HOME = Path(tempfile.mkdtemp(prefix="model-bundle-tests-"))
os.environ["BENTOML_HOME"] = str(BENTOML_HOME)
os.environ["BENTOML_DO_NOT_TRACK"] = "true"
for name in ("CREDIT_HEALTH_MODEL", "IRIS_MODEL"):  # serve what the tests trained
    os.environ.pop(name, None)

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before it was ready")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"the server was not ready after {timeout_s} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="session")
def server(
    default_models: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """`bentoml serve service:ModelBundle` on a free loopback port, started once."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "serve.log"
    command = [
        str(Path(sys.executable).parent / "bentoml"),
        "serve",
        "service:ModelBundle",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    running = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        wait_until_ready(running.url, process, READY_TIMEOUT_S)
    except Exception:
        stop(process)
        print(running.log_text()[-5000:])
        raise
    yield running
    stop(process)


@pytest.fixture(scope="session")
def http(server: Server) -> Iterator[httpx.Client]:
    """Plain HTTP to the server."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client
