"""A runner killed under load: readiness says so (503, never 500), requests get 200 or 503,
and the server recovers by itself (``bentoml serve`` restarts the worker)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from scripts.samples import HEALTHY
from scripts.serving import free_port, start, stop, wait_until_ready
from tests.conftest import BENTOML_HOME


@pytest.fixture
def own_server(default_models: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A server of its own: killing its workers must not disturb the other tests."""
    # A BENTOML_HOME of its own sharing the models: a server starting in the same home would
    # wipe the session server's metrics directory (bentoml ensure_prometheus_dir).
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(BENTOML_HOME / "models")
    port = free_port()
    process = start(port, tmp_path / "serve.log", env={"BENTOML_HOME": str(home)})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process, 120)
        yield url, process.pid
    finally:
        stop(process)


def credit_runner(arbiter: int) -> psutil.Process:
    for child in psutil.Process(arbiter).children(recursive=True):
        if "CreditRunner" in " ".join(child.cmdline()):
            return child
    raise LookupError("no CreditRunner worker")


def test_a_killed_runner_is_reported_and_recovered(own_server: tuple[str, int]) -> None:
    url, arbiter = own_server
    statuses: Counter[str] = Counter()
    stop_load = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while not stop_load.is_set():
                statuses[str(http.post("/predict_credit", json=HEALTHY).status_code)] += 1

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    time.sleep(1)
    victim = credit_runner(arbiter)
    os.kill(victim.pid, signal.SIGKILL)
    readiness: Counter[int] = Counter()
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=url, timeout=10) as http:
        while time.monotonic() < deadline:
            status = http.get("/readyz").status_code
            readiness[status] += 1
            if status == 200 and credit_runner(arbiter).pid != victim.pid:
                break
            time.sleep(0.02)
        time.sleep(1)  # load against the recovered runner
        stop_load.set()
        for worker in workers:
            worker.join()
        assert http.post("/predict_credit", json=HEALTHY).json()["label"] == "healthy"

    assert credit_runner(arbiter).pid != victim.pid  # restarted
    assert set(readiness) <= {200, 503}, readiness
    assert set(statuses) <= {"200", "503"}, statuses
    assert statuses["200"] > 0
