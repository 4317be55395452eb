"""Overload is explicit: beyond MAX_CONCURRENT_REQUESTS a quick 503 with Retry-After, and
the server recovers by itself; below it, no request is shed."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from overload import LoadShedding
from scripts.samples import HEALTHY
from scripts.serving import Server
from tests.conftest import GUARDED_ENV

KEY = GUARDED_ENV["MODEL_BUNDLE_API_KEYS"].split(",")[0].strip()
CAPACITY = int(GUARDED_ENV["MAX_CONCURRENT_REQUESTS"])
BODY = json.dumps(HEALTHY).encode()


@contextmanager
def held_request(url: str) -> Iterator[socket.socket]:
    """A request in flight for as long as the block lasts: its headers and the first byte of
    its body are sent, the rest on exit (then it completes normally)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        head = (
            f"POST /predict_credit HTTP/1.1\r\nHost: {parts.netloc}\r\nX-API-Key: {KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
        )
        sock.sendall(head.encode() + BODY[:1])
        yield sock
        sock.sendall(BODY[1:])
        assert sock.recv(65536).startswith(b"HTTP/1.1 200"), "a held request failed"


def post(client: httpx.Client) -> httpx.Response:
    return client.post("/predict_credit", json=HEALTHY, headers={"X-API-Key": KEY})


async def post_async(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post("/predict_credit", json=HEALTHY, headers={"X-API-Key": KEY})


def test_beyond_capacity_a_quick_503_with_retry_after_then_recovery(
    guarded_server: Server,
) -> None:
    with httpx.Client(base_url=guarded_server.url, timeout=30) as client:
        assert post(client).status_code == 200
        with ExitStack() as held:
            for _ in range(CAPACITY):
                held.enter_context(held_request(guarded_server.url))
            time.sleep(0.3)  # let the server start handling every held request
            started = time.monotonic()
            shed = post(client)
            elapsed = time.monotonic() - started
            assert shed.status_code == 503, shed.text
            assert shed.headers["retry-after"] == "1"
            assert "MAX_CONCURRENT_REQUESTS" in shed.json()["error"]
            assert elapsed < 1.0
            # probes are never shed: an orchestrator must not kill a busy server
            assert client.get("/readyz").status_code == 200
            assert client.get("/livez").status_code == 200
        # load dropped: served again, by itself
        assert [post(client).status_code for _ in range(5)] == [200] * 5


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
