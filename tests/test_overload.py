"""Overload is explicit: beyond MAX_CONCURRENT_REQUESTS a quick 503 with Retry-After, and
the server recovers by itself; below it, no request is shed."""

from __future__ import annotations

import asyncio
import json
import logging
import select
import socket
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from bentoml.exceptions import ServiceUnavailable

from model_bundle.http.guards import ConciseClientErrors
from model_bundle.http.overload import LoadShedding
from scripts.sample_data.requests import HEALTHY
from tests.conftest import GUARDED_ENV
from tests.support.server import Server

KEY = GUARDED_ENV["MODEL_BUNDLE_API_KEYS"].split(",")[0].strip()
CAPACITY = int(GUARDED_ENV["MODEL_BUNDLE_MAX_CONCURRENT_REQUESTS"])
BODY = json.dumps(HEALTHY).encode()


def open_request(url: str) -> socket.socket:
    """A request left in flight: its headers and the first byte of its body are sent."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    head = (
        f"POST /predict_credit HTTP/1.1\r\nHost: {parts.netloc}\r\nX-API-Key: {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
    )
    sock.sendall(head.encode() + BODY[:1])
    return sock


def reply(sock: socket.socket, wait_s: float) -> bytes:
    """What the server answered on ``sock`` within ``wait_s`` seconds (b"" if nothing)."""
    readable, _, _ = select.select([sock], [], [], wait_s)
    return sock.recv(65536) if readable else b""


def post(client: httpx.Client) -> httpx.Response:
    return client.post("/predict_credit", json=HEALTHY, headers={"X-API-Key": KEY})


async def post_async(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post("/predict_credit", json=HEALTHY, headers={"X-API-Key": KEY})


def test_beyond_capacity_a_quick_503_with_retry_after_then_recovery(
    guarded_server: Server,
) -> None:
    held: list[socket.socket] = []
    try:
        # Hold requests open until the server sheds one: capacity is then taken by held
        # requests only, whatever the order in which the server saw them.
        while len(held) <= 2 * CAPACITY:
            held.append(open_request(guarded_server.url))
            if shed := reply(held[-1], wait_s=0.5):
                held.pop().close()
                break
        assert shed.startswith(b"HTTP/1.1 503"), shed
        assert b"retry-after: 1\r\n" in shed.lower()
        with httpx.Client(base_url=guarded_server.url, timeout=30) as client:
            started = time.monotonic()
            response = post(client)
            elapsed = time.monotonic() - started
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "1"
            assert "MODEL_BUNDLE_MAX_CONCURRENT_REQUESTS" in response.json()["error"]
            assert elapsed < 1.0
            # probes are never shed: an orchestrator must not take a busy server for a dead one
            assert client.get("/readyz").status_code == 200
            assert client.get("/livez").status_code == 200
            for sock in held:  # load drops: the held requests complete
                sock.sendall(BODY[1:])
            answers = [reply(sock, wait_s=30) for sock in held]
            assert sum(a.startswith(b"HTTP/1.1 200") for a in answers) == CAPACITY
            # and the server serves again, by itself
            assert [post(client).status_code for _ in range(5)] == [200] * 5
    finally:
        for sock in held:
            sock.close()


def test_a_burst_gets_200_or_503_never_an_error_and_passes(guarded_server: Server) -> None:
    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=guarded_server.url, timeout=30) as client:
            return await asyncio.gather(*(post_async(client) for _ in range(8 * CAPACITY)))

    responses = asyncio.run(burst())
    assert {r.status_code for r in responses} <= {200, 503}
    assert all(r.headers["retry-after"] == "1" for r in responses if r.status_code == 503)
    with httpx.Client(base_url=guarded_server.url, timeout=30) as client:
        assert [post(client).status_code for _ in range(10)] == [200] * 10


def test_nominal_load_is_never_shed(guarded_server: Server) -> None:
    """Half the capacity in concurrent clients (each finishing a request before its next)."""

    async def client_loop(client: httpx.AsyncClient) -> list[int]:
        return [(await post_async(client)).status_code for _ in range(25)]

    async def nominal() -> list[list[int]]:
        async with httpx.AsyncClient(base_url=guarded_server.url, timeout=30) as client:
            return await asyncio.gather(*(client_loop(client) for _ in range(CAPACITY // 2)))

    assert [code for codes in asyncio.run(nominal()) for code in codes] == [200] * 25 * (
        CAPACITY // 2
    )


async def answer(status: int, headers: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
    """The messages LoadShedding sends for an inner app answering ``status``."""
    sent: list[dict[str, Any]] = []

    async def inner(scope: dict, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "path": "/predict_credit", "method": "POST", "headers": []}
    await LoadShedding(inner, max_in_flight=4)(scope, receive, send)
    return sent


@pytest.mark.parametrize(
    ("status", "headers", "retry_after"),
    [
        (503, [], [b"1"]),  # the batcher over its latency budget, a runner down
        (429, [], [b"1"]),
        (503, [(b"Retry-After", b"5")], [b"5"]),  # an inner answer's own value is kept
        (200, [], []),
        (400, [], []),
    ],
)
def test_every_busy_answer_says_when_to_retry(
    status: int, headers: list[tuple[bytes, bytes]], retry_after: list[bytes]
) -> None:
    start = asyncio.run(answer(status, headers))[0]
    assert start["status"] == status
    assert [v for k, v in start["headers"] if k.lower() == b"retry-after"] == retry_after


def test_a_slot_is_held_until_the_answer_is_sent_not_until_the_app_returns() -> None:
    scope = {"type": "http", "path": "/predict_credit", "method": "POST", "headers": []}
    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def scenario() -> list[int]:
        answer, answered, finish = asyncio.Event(), asyncio.Event(), asyncio.Event()

        async def inner(scope: dict, receive: Any, send: Any) -> None:
            await answer.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"{}"})
            answered.set()
            await finish.wait()  # e.g. BentoML's clean-up after the answer

        shedding = LoadShedding(inner, max_in_flight=1)
        first = asyncio.create_task(shedding(scope, receive, send))
        await asyncio.sleep(0)
        await shedding(scope, receive, send)  # the first is not answered yet: shed
        counts = [shedding.in_flight]
        answer.set()
        await answered.wait()
        counts.append(shedding.in_flight)  # answered, still running: its slot is free
        finish.set()
        await first
        return [*counts, shedding.in_flight]

    assert asyncio.run(scenario()) == [1, 0, 0]
    assert statuses == [503, 200]


def test_a_runner_over_capacity_is_logged_as_one_line() -> None:
    """Overload is expected: one WARNING line per refused request, no traceback."""
    try:
        raise ServiceUnavailable("a model runner is over capacity: Too many requests")
    except ServiceUnavailable:
        record = logging.LogRecord(
            ConciseClientErrors.LOGGER,
            logging.ERROR,
            __file__,
            1,
            "%s [%s]",
            ("/predict_credit", "POST"),
            sys.exc_info(),
        )
    assert ConciseClientErrors().filter(record)
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert record.getMessage() == (
        "Rejected /predict_credit [POST]: a model runner is over capacity: Too many requests"
    )
