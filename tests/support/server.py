"""Start and stop the bundle in a subprocess: for tests, benchmarks and load scripts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import bentoml
import httpx

ROOT = Path(__file__).resolve().parents[2]
# Keep idle client connections longer than common clients do (httpx 5 s, aiohttp 15 s), so
# the server never closes a connection a client is about to reuse (uvicorn's default: 5 s).
SERVE_OPTIONS = ("--timeout-keep-alive", "20")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(
    port: int,
    log: Path,
    env: dict[str, str] | None = None,
    service: str = "service:ModelBundle",
    cwd: Path = ROOT,
) -> subprocess.Popen[bytes]:
    """``bentoml serve SERVICE`` on 127.0.0.1:``port``, output to ``log``; from the tree
    ``cwd`` (another checkout of the bundle serves that checkout's code)."""
    command = [
        str(Path(sys.executable).parent / "bentoml"),
        "serve",
        service,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *SERVE_OPTIONS,
    ]
    with log.open("wb") as sink:
        return subprocess.Popen(
            command,
            cwd=cwd,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "BENTOML_DO_NOT_TRACK": "true", **(env or {})},
        )


def wait_until_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> float:
    """Seconds until ``/readyz`` answers 200; raises if the process dies or time runs out."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before it was ready")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the server was not ready after {timeout_s} s")


def stop(process: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    """SIGTERM the server's process group, SIGKILL it if it does not exit in time."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass(frozen=True)
class Server:
    """A running ``bentoml serve`` of the bundle."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def launch(log: Path, env: dict[str, str] | None = None, timeout_s: float = 120) -> Server:
    """The bundle on a free loopback port, returned once it is ready (stopped if it is not)."""
    port = free_port()
    process = start(port, log, env)
    running = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        wait_until_ready(running.url, process, timeout_s)
    except Exception:
        stop(process)
        print(running.log_text()[-5000:])
        raise
    return running


def store_models() -> Path:
    """The ``models`` directory of the current model store ($BENTOML_HOME)."""
    return Path(bentoml.models.get("iris:latest").path).parents[1]


def home_sharing_models(home: Path, models: Path) -> Path:
    """``home`` made a BENTOML_HOME of its own whose ``models`` directory is a store's
    ``models``: two servers in one BENTOML_HOME would share (and the second one wipe) the
    Prometheus directory (bentoml ensure_prometheus_dir)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "models").symlink_to(models)
    return home


@contextmanager
def separate_server(
    directory: Path, models: Path, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """The bundle in a BENTOML_HOME of its own under ``directory``, sharing the ``models``
    directory of a store (:func:`home_sharing_models`). Stopped on exit."""
    home = home_sharing_models(directory / "bentoml-home", models)
    running = launch(directory / "serve.log", {**(env or {}), "BENTOML_HOME": str(home)})
    try:
        yield running
    finally:
        stop(running.process)
