"""Bad input gets a 400 whose body names the field and the problem; never a 500."""

from __future__ import annotations

import json
import time

import bentoml
import httpx
import pytest

from model_bundle.settings import settings
from scripts.sample_data.requests import HEALTHY, SETOSA
from tests.support.server import Server


def body(base: dict, **changes: object) -> str:
    return json.dumps({**base, **changes})


CASES = [
    # (route, raw JSON body, field location, pydantic error type)
    ("/predict_credit", body(HEALTHY, debt_ratio="0.5"), ["debt_ratio"], "float_type"),
    ("/predict_credit", body(HEALTHY, debt_ratio=True), ["debt_ratio"], "float_type"),
    ("/predict_credit", body(HEALTHY, debt_ratio=None), ["debt_ratio"], "float_type"),
    ("/predict_credit", body(HEALTHY, current_ratio=[1.0]), ["current_ratio"], "float_type"),
    ("/predict_credit", body(HEALTHY).replace("0.2", "NaN", 1), ["debt_ratio"], "finite_number"),
    (
        "/predict_credit",
        body(HEALTHY).replace("0.2", "Infinity", 1),
        ["debt_ratio"],
        "finite_number",
    ),
    (
        "/predict_credit",
        body(HEALTHY).replace("0.2", "-Infinity", 1),
        ["debt_ratio"],
        "finite_number",
    ),
    ("/predict_credit", body(HEALTHY).replace("0.2", "1e400", 1), ["debt_ratio"], "finite_number"),
    ("/predict_credit", body(HEALTHY, debt_ratio=-0.1), ["debt_ratio"], "greater_than_equal"),
    (
        "/predict_credit",
        body(HEALTHY, interest_coverage=1e7),
        ["interest_coverage"],
        "less_than_equal",
    ),
    (
        "/predict_credit",
        json.dumps({k: v for k, v in HEALTHY.items() if k != "return_on_assets"}),
        ["return_on_assets"],
        "missing",
    ),
    ("/predict_credit", body(HEALTHY, debt_ratoi=0.3), ["debt_ratoi"], "extra_forbidden"),
    ("/predict_credit", '{"debt_ratio": 0.2,', [], "json_invalid"),
    ("/predict_credit", "[1, 2, 3, 4, 5]", [], "model_type"),
    ("/predict_credit_batch", json.dumps({"items": []}), ["items"], "too_short"),
    ("/predict_credit_batch", json.dumps({"items": [HEALTHY] * 1001}), ["items"], "too_long"),
    (
        "/predict_credit_batch",
        json.dumps({"items": [HEALTHY, HEALTHY, {**HEALTHY, "debt_ratio": "x"}]}),
        ["items", 2, "debt_ratio"],
        "float_type",
    ),
    ("/predict_credit_batch", json.dumps({"items": HEALTHY}), ["items"], "list_type"),
    ("/predict_credit_batch", json.dumps([HEALTHY]), [], "model_type"),
    ("/classify_iris", body(SETOSA, petal_width=-1), ["petal_width"], "greater_than_equal"),
    ("/classify_iris", body(SETOSA, sepal_length="long"), ["sepal_length"], "float_type"),
    ("/classify_iris", json.dumps({}), ["sepal_length"], "missing"),
    ("/rate_book", json.dumps({"user_id": 1, "isbn": ""}), ["isbn"], "string_too_short"),
    ("/rate_book", json.dumps({"user_id": 1, "isbn": "0" * 21}), ["isbn"], "string_too_long"),
    ("/rate_book", json.dumps({"user_id": 1, "isbn": "x" * 100_000}), ["isbn"], "string_too_long"),
    (
        "/rate_book",
        json.dumps({"user_id": 1, "isbn": "03451é"}),
        ["isbn"],
        "string_pattern_mismatch",
    ),
    (
        "/rate_book",
        json.dumps({"user_id": 1, "isbn": "0345 1"}),
        ["isbn"],
        "string_pattern_mismatch",
    ),
    ("/rate_book", json.dumps({"user_id": 1, "isbn": 345104}), ["isbn"], "string_type"),
    ("/rate_book", json.dumps({"user_id": "12", "isbn": "0345"}), ["user_id"], "int_type"),
    ("/rate_book", json.dumps({"user_id": 1.5, "isbn": "0345"}), ["user_id"], "int_type"),
    ("/rate_book", json.dumps({"user_id": -1, "isbn": "0345"}), ["user_id"], "greater_than_equal"),
    (
        "/rate_book",
        json.dumps({"user_id": 1, "isbn": "0345", "title": "x"}),
        ["title"],
        "extra_forbidden",
    ),
    ("/rate_books", json.dumps({"items": []}), ["items"], "too_short"),
    (
        "/rate_books",
        json.dumps({"items": [{"user_id": 1, "isbn": "1"}] * 1001}),
        ["items"],
        "too_long",
    ),
    ("/recommend_books", json.dumps({"user_id": 1, "k": 0}), ["k"], "greater_than_equal"),
    ("/recommend_books", json.dumps({"user_id": 1, "k": 101}), ["k"], "less_than_equal"),
    ("/recommend_books", json.dumps({"k": 5}), ["user_id"], "missing"),
    ("/rate_book", json.dumps({"user_id": 1, "isbn": "📚"}), ["isbn"], "string_pattern_mismatch"),
    (
        "/rate_book",
        json.dumps({"user_id": 1, "isbn": "12\x00"}),
        ["isbn"],
        "string_pattern_mismatch",
    ),
    ("/rate_book", '{"user_id": 1, "isbn": "\\ud800"}', [], "json_invalid"),  # lone surrogate
    ("/rate_book", json.dumps({"user_id": 10**100, "isbn": "1"}), ["user_id"], "less_than_equal"),
    ("/predict_credit", "", ["debt_ratio"], "missing"),  # an empty body is an empty object
    ("/predict_credit", "null", [], "model_type"),
    ("/predict_credit", "[" * 100_000 + "]" * 100_000, [], "json_invalid"),  # nesting
    ("/predict_credit", '{"debt_ratio": 0.2, "debt_ratio": "x"}', ["debt_ratio"], "float_type"),
]


@pytest.mark.parametrize(("route", "content", "loc", "error_type"), CASES)
def test_bad_json_is_a_400_naming_field_and_problem(
    http: httpx.Client, route: str, content: str, loc: list, error_type: str
) -> None:
    response = http.post(route, content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    errors = response.json()["detail"]
    assert {"loc": loc, "type": error_type} in [
        {"loc": e["loc"], "type": e["type"]} for e in errors
    ], errors
    assert all(e["msg"] for e in errors)


def test_every_missing_field_is_named(http: httpx.Client) -> None:
    response = http.post("/predict_credit", json={})
    assert response.status_code == 400
    assert sorted(e["loc"][0] for e in response.json()["detail"]) == sorted(HEALTHY)


def test_python_client_raises_invalid_argument_with_the_details(server: Server) -> None:
    with (
        bentoml.SyncHTTPClient(server.url) as client,
        pytest.raises(bentoml.exceptions.InvalidArgument) as raised,
    ):
        client.predict_credit(**{**HEALTHY, "operating_margin": "high"})
    assert raised.value.error_code == 400
    assert "operating_margin" in str(raised.value)


def test_no_bad_input_reached_a_500(http: httpx.Client, server: Server) -> None:
    for route, content, _, _ in CASES:
        http.post(route, content=content, headers={"content-type": "application/json"})
    log = server.log_text()
    assert "status=500" not in log
    # one concise line per rejected request, no traceback
    assert "Rejected /predict_credit [POST]: debt_ratio: Input should be a valid number" in log
    assert "pydantic_core._pydantic_core.ValidationError" not in log
    assert http.post("/predict_credit", json=HEALTHY).status_code == 200


@pytest.mark.parametrize("route", ["/predict_credit", "/rate_books"])
def test_an_oversized_json_body_is_a_413(http: httpx.Client, route: str) -> None:
    too_big = b'{"items": [' + b" " * settings.max_request_bytes + b"]}"
    declared = http.post(route, content=too_big, headers={"content-type": "application/json"})
    streamed = http.post(  # no Content-Length: counted while read
        route,
        content=iter([too_big[:1000], too_big[1000:]]),
        headers={"content-type": "application/json"},
    )
    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        assert "MODEL_BUNDLE_MAX_REQUEST_BYTES" in response.json()["error"]


def log_count(server: Server, *texts: str) -> int:
    """Lines of the server's log holding every one of ``texts``."""
    return sum(all(t in line for t in texts) for line in server.log_text().splitlines())


def test_each_request_is_one_access_line_and_a_rejection_one_more(
    http: httpx.Client, server: Server
) -> None:
    access = ("method=POST,path=/recommend_books,", "(status=400,")
    rejected = ("Rejected /recommend_books [POST]: k: Input should be greater than",)
    before = log_count(server, *access), log_count(server, *rejected)
    for k in range(-4, 1):
        assert http.post("/recommend_books", json={"user_id": 1, "k": k}).status_code == 400
    expected = (before[0] + 5, before[1] + 5)
    deadline = time.monotonic() + 5  # BentoML logs the access line after the answer is sent
    while (after := (log_count(server, *access), log_count(server, *rejected))) != expected:
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert after == expected


def test_malformed_uploads_are_400s_not_500s(http: httpx.Client) -> None:
    """Both were 500s (found by tests/test_fuzz.py): Starlette's form parser raises them."""
    for route in ("/classify_mask", "/classify_masks"):
        response = http.post(route, headers={"content-type": "multipart/form-data"})
        assert response.status_code == 400, response.text
        assert response.json()["detail"][0]["loc"] == ["header", "Content-Type"]
    files = [("images", (f"{i}.png", b"x")) for i in range(1001)]
    response = http.post("/classify_masks", files=files)
    assert response.status_code == 400, response.text
    assert response.json()["detail"][0] == {
        "type": "too_long",
        "loc": ["images"],
        "msg": "at most 1000 parts per upload, got 1001",
    }
