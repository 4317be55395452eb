"""Concurrent load through the composed service over every endpoint: every answer correct.

Also the regression test for BentoML's inter-service session refresh (bentoml #5540, #5544;
see runners/base.py). With BentoML's default ``runner_connection`` restored, the same burst
breaks runner connections: model_bundle/runner_client.py resends those calls (a few still fail: 500s
before the resend existed, 503s since); with ours, no call needs resending.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable

import httpx

from scripts.benchmarks.bench import batch_counts, runner_requests
from scripts.benchmarks.reliability import RUNNERS
from scripts.benchmarks.traffic import OK, Tally, drive, mix
from tests.support.server import Server

CLIENTS = 64
REQUESTS = 64 * 40
# BentoML's defaults (replace the session every 100 requests or 300 s), restored with
# BentoML's own configuration override, which takes precedence over the service's config.
UPSTREAM_DEFAULT = json.dumps(
    {
        "services": {
            runner: {"runner_connection": {"max_requests": 100, "max_age": 300.0}}
            for runner in RUNNERS
        }
    }
)


# logged by model_bundle/runner_client.py for each runner call sent a second time
RESENT = "runner connection broke"


# The endpoints whose calls reach each runner's batchable method (prefixes of the routes).
ROUTES_OF = {
    "CreditRunner": "/predict_credit",
    "IrisRunner": "/classify_iris",
    "BooksRunner": "/rate_book",
    "MaskRunner": "/classify_mask",
}


def burst(url: str, books_tag: str) -> Tally:
    return asyncio.run(drive(url, mix(books_tag), CLIENTS, requests=REQUESTS))


def model_calls(url: str) -> dict[str, float]:
    """runner -> forward passes of its batchable methods: the adaptive batcher's batches and
    the calls sent past it."""
    batches = batch_counts(url)
    requests = runner_requests(url)
    return {
        runner: batches.get(runner, (0.0, 0.0))[1] + requests.get(runner, {}).get("unbatched", 0)
        for runner in RUNNERS
    }


def test_every_request_under_concurrent_load_succeeds(
    server: Server, http: httpx.Client, default_models: dict[str, str]
) -> None:
    before = model_calls(server.url)
    resent_before = server.log_text().count(RESENT)

    tally = burst(server.url, default_models["book_rating"])
    assert tally.by_outcome == Counter({OK: REQUESTS})
    assert server.log_text().count(RESENT) == resent_before  # no connection broke

    after = model_calls(server.url)
    for runner, route in ROUTES_OF.items():
        calls = sum(1 for _, path, _ in tally.log if path.startswith(route))
        passes = after[runner] - before[runner]
        # concurrent calls were merged (in the front, and in the batcher): fewer forward
        # passes than calls
        assert 0 < passes < calls, (runner, calls, passes)


def test_bentomls_default_session_refresh_breaks_runner_calls(
    own_server: Callable[..., Server], default_models: dict[str, str]
) -> None:
    """Proof that runners/base.py's runner_connection is what keeps the test above clean.

    BentoML replaces the session every 100 runner requests, so the proof needs many: with
    calls merged in the front, the burst makes only a few hundred, and a replacement met no
    call in flight in one of three clean-clone runs. Batching off sends every call as its own
    runner request, as before merging: the same burst, the same client sessions."""
    running = own_server(
        {"BENTOML_CONFIG_OVERRIDES": UPSTREAM_DEFAULT, "MODEL_BUNDLE_BATCHING": "off"}
    )

    outcomes = burst(running.url, default_models["book_rating"]).by_outcome

    assert running.log_text().count(RESENT) > 0, outcomes  # 31 and 3 in two runs
    assert set(outcomes) <= {OK, "503"}, outcomes  # the resend and its 503, never a 500
