"""Fuzzing: schemathesis generates valid and invalid requests for every operation of the
served ``/docs.json``; no answer may be a 5xx, an undocumented status or a body that
violates the documented schema.

Bounded and deterministic: a fixed Hypothesis seed, no example database, EXAMPLES examples
per operation (fewer for the image uploads, whose bodies are slow to generate and decode).
A failure prints the seed and the request that failed (``curl`` form) to replay it.
"""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from scripts.serving import Server

FUZZ_SEED = 20261130
EXAMPLES = 300
UPLOAD_EXAMPLES = 60
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def served_schema(server: Server) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{server.url}/docs.json")


schema = schemathesis.pytest.from_fixture("served_schema")
FUZZ = settings(
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],  # no replay of old failures
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)


@schema.exclude(path_regex="^/classify_masks?$").parametrize()
@hypothesis.seed(FUZZ_SEED)
@settings(FUZZ, max_examples=EXAMPLES)
def test_json_operations_answer_as_documented(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)


@schema.include(path_regex="^/classify_masks?$").parametrize()
@hypothesis.seed(FUZZ_SEED)
@settings(FUZZ, max_examples=UPLOAD_EXAMPLES)
def test_upload_operations_answer_as_documented(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)
