"""Faults under load (the short mode of scripts/benchmarks/fault_test.py): a runner killed is
reported by readiness (503, never 500) and restarted by ``bentoml serve``, only requests in
flight at the kill may fail (and those sent during the outage, if the restart outlasts the
runner timeout); on SIGTERM the runners serve until the front has answered what it
accepted. Inside a container, where BentoML restarts nothing, a dead runner stops the server
instead."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from model_bundle.settings import settings
from scripts.benchmarks.fault_test import (
    RECOVERY_LIMIT_S,
    STOP_LIMIT_S,
    kill_under_load,
    terminate_under_load,
)
from scripts.benchmarks.reliability import server_processes
from scripts.benchmarks.traffic import OK, WRONG, mix
from scripts.sample_data.requests import SETOSA
from tests.support.server import Server

CLIENTS = 8


def test_a_runner_killed_under_load_is_reported_and_recovered(
    own_server: Callable[..., Server], default_models: dict[str, str]
) -> None:
    running = own_server()
    victim = server_processes(running.process.pid)["BooksRunner"]

    result = asyncio.run(
        kill_under_load(running, "BooksRunner", mix(default_models["book_rating"]), CLIENTS)
    )

    assert result.recovered_s < RECOVERY_LIMIT_S
    restarted = server_processes(running.process.pid)["BooksRunner"]
    assert restarted.pid != victim.pid
    assert result.reported, result.readiness  # /readyz said 503 while the runner was down
    assert set(result.readiness) <= {200, 503}, result.readiness
    assert set(result.tally.by_outcome) <= {OK, "503"}, result.tally.by_outcome
    before, during = result.tally.split(result.killed_at)
    assert before.errors <= result.in_flight_at_kill, (before.errors, result.in_flight_at_kill)
    # A request sent during the outage waits for the restarted runner, up to the runner's
    # timeout (then a 503 the client may retry): it fails only if the restart took longer.
    if result.recovered_s < settings.runner_timeout_s:
        assert during.errors == 0, (during.by_outcome, result.recovered_s)


def test_sigterm_under_load_answers_what_the_server_accepted(
    own_server: Callable[..., Server], default_models: dict[str, str]
) -> None:
    """Every request sent before SIGTERM that the server read is answered correctly (the
    runners wait for the front: runners/drain.py); one still in transit on a keep-alive
    connection can find it closed, never answered wrongly. After SIGTERM: refused."""
    running = own_server()

    result = asyncio.run(terminate_under_load(running, mix(default_models["book_rating"]), CLIENTS))

    assert result.exit_s < STOP_LIMIT_S  # nothing hung
    before, after = result.tally_before.by_outcome, result.tally_after.by_outcome
    assert before[OK] > 0
    assert not {"500", "503", WRONG} & before.keys(), before
    assert result.tally_after.requests > 0
    assert not {"500", WRONG} & after.keys(), after


def test_in_a_container_a_dead_runner_stops_the_server(own_server: Callable[..., Server]) -> None:
    """BENTOML_CONTAINERIZED (set by the Bento's Dockerfile) turns BentoML's respawning off: the
    server exits instead, so the container stops and the orchestrator restarts it."""
    running = own_server({"BENTOML_CONTAINERIZED": "true"})
    with httpx.Client(base_url=running.url, timeout=30) as http:
        assert http.post("/classify_iris", json=SETOSA).json()["species"] == "setosa"
    victim = server_processes(running.process.pid)["CreditRunner"]
    victim.kill()
    assert running.process.wait(timeout=30) != 0
    assert "No active process found for watcher" in running.log_text()
