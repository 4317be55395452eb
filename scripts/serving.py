"""Start and stop the bundle in a subprocess: for tests, benchmarks and load scripts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
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
) -> subprocess.Popen[bytes]:
    """``bentoml serve SERVICE`` on 127.0.0.1:``port``, output to ``log``."""
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
            cwd=ROOT,
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
