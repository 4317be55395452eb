"""A runner killed: readiness says so (503, never 500), requests get 200 or 503, and the server
recovers by itself (``bentoml serve`` restarts the worker); inside a container, where BentoML
restarts nothing, the server exits and the orchestrator restarts the container."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable

import httpx
import psutil

from scripts.samples import HEALTHY, SETOSA
from scripts.serving import Server


def credit_runner(arbiter: int) -> psutil.Process | None:
    """The live CreditRunner worker under the server's arbiter (a killed one is a zombie)."""
    for child in psutil.Process(arbiter).children(recursive=True):
        try:
            if "CreditRunner" in " ".join(child.cmdline()):
                return child
        except psutil.Error:  # exited (a zombie until reaped) between listing and reading
            continue
    return None


def test_a_killed_runner_is_reported_and_recovered(own_server: Callable[..., Server]) -> None:
    running = own_server()
    url, arbiter = running.url, running.process.pid
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
            restarted = credit_runner(arbiter)
            if status == 200 and restarted is not None and restarted.pid != victim.pid:
                break
            time.sleep(0.02)
        time.sleep(1)  # load against the recovered runner
        stop_load.set()
        for worker in workers:
            worker.join()
        assert http.post("/predict_credit", json=HEALTHY).json()["label"] == "healthy"

    assert credit_runner(arbiter) not in (None, victim)  # restarted
    assert set(readiness) <= {200, 503}, readiness
    assert set(statuses) <= {"200", "503"}, statuses
    assert statuses["200"] > 0


def test_in_a_container_a_dead_runner_stops_the_server(own_server: Callable[..., Server]) -> None:
    """BENTOML_CONTAINERIZED (set by the Bento's Dockerfile) turns BentoML's respawning off: the
    server exits instead, so the container stops and the orchestrator restarts it."""
    running = own_server({"BENTOML_CONTAINERIZED": "true"})
    with httpx.Client(base_url=running.url, timeout=30) as http:
        assert http.post("/classify_iris", json=SETOSA).json()["species"] == "setosa"
    victim = credit_runner(running.process.pid)
    assert victim is not None
    victim.kill()
    assert running.process.wait(timeout=30) != 0
    assert "No active process found for watcher" in running.log_text()
