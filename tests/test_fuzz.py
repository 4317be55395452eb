"""Fuzzing: schemathesis generates valid and invalid requests for every operation of the
served ``/docs.json``; no answer may be a 5xx, an undocumented status or a body that
violates the documented schema.

Bounded and deterministic: a fixed Hypothesis seed, no example database, EXAMPLES examples
per operation (fewer for the image uploads, whose bodies are slow to generate and decode):
about 50 s on a busy 2-core machine. ``FUZZ_EXAMPLES=300`` fuzzes longer (about 3 minutes
there; it passed at the time of writing).
A failure prints the seed, the falsifying case and a ``curl`` command that replays it.
Driven by Hypothesis directly: schemathesis' own pytest loader (``from_fixture``) does not
work with pytest 9.2 (it sets ``Function._nodeid``, gone in 9.2).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from service import ModelBundle
from tests.support.server import Server

FUZZ_SEED = 20261130
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", 100))
UPLOAD_EXAMPLES = max(1, EXAMPLES // 4)
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
UPLOADS = {"/classify_mask", "/classify_masks"}
OPERATIONS = [("GET", path) for path in ("/livez", "/readyz", "/healthz", "/metrics")] + [
    ("POST", api.route) for api in ModelBundle.apis.values()
]
FUZZ = settings(
    deadline=None,
    database=None,  # deterministic: never replay examples saved by an earlier run
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)


@pytest.fixture(scope="module")
def served_schema(server: Server) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{server.url}/docs.json")


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as kept_alive:
        yield kept_alive


def test_every_documented_operation_is_fuzzed(served_schema: schemathesis.BaseSchema) -> None:
    operations = [result.ok() for result in served_schema.get_all_operations()]
    documented = {(operation.method.upper(), operation.path) for operation in operations}
    assert documented == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_answers_as_documented(
    served_schema: schemathesis.BaseSchema, session: requests.Session, method: str, path: str
) -> None:
    operation = served_schema[path][method]
    valid_and_invalid = st.one_of(operation.as_strategy(mode) for mode in GenerationMode)

    @hypothesis.seed(FUZZ_SEED)
    @settings(FUZZ, max_examples=UPLOAD_EXAMPLES if path in UPLOADS else EXAMPLES)
    @hypothesis.given(case=valid_and_invalid)
    def fuzz(case: schemathesis.Case) -> None:
        case.call_and_validate(session=session, checks=CHECKS)

    fuzz()
