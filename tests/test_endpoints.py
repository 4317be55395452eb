"""Every endpoint through BentoML's sync and async clients and plain HTTP, on the real server."""

from __future__ import annotations

import asyncio

import bentoml
import httpx
import numpy as np
import pytest

from models.artifact import Artifact
from models.tabular.contract import CREDIT_TASK, IRIS_TASK
from models.tabular.network import load_classifier
from scripts.sample_data.requests import HEALTHY, SETOSA, UNHEALTHY, VIRGINICA
from tests.support.server import Server


@pytest.fixture(scope="module")
def client(server: Server) -> bentoml.SyncHTTPClient:
    with bentoml.SyncHTTPClient(server.url) as client:
        yield client


def in_process(tag: str, task, rows: list[dict[str, float]]) -> np.ndarray:
    """The probabilities the stored model gives when run here, without the server."""
    classifier = load_classifier(Artifact.load(tag), task)
    x = np.array([[row[name] for name in task.features] for row in rows], np.float32)
    return classifier.predict_proba(x)


def test_predict_credit(client: bentoml.SyncHTTPClient, default_models: dict[str, str]) -> None:
    healthy = client.predict_credit(**HEALTHY)
    unhealthy = client.predict_credit(**UNHEALTHY)

    assert (healthy["label"], healthy["class_id"]) == ("healthy", 0)
    assert (unhealthy["label"], unhealthy["class_id"]) == ("unhealthy", 1)
    for answer, row in ((healthy, HEALTHY), (unhealthy, UNHEALTHY)):
        assert answer["model"] == default_models["credit_health"]
        [expected] = in_process(answer["model"], CREDIT_TASK, [row])
        probabilities = [answer["probabilities"][label] for label in CREDIT_TASK.labels]
        np.testing.assert_allclose(probabilities, expected, atol=1e-6)
        assert answer["probability"] == max(probabilities)


def test_predict_credit_batch_answers_in_order(client: bentoml.SyncHTTPClient) -> None:
    rows = [HEALTHY, UNHEALTHY, HEALTHY, UNHEALTHY, UNHEALTHY]
    answer = client.predict_credit_batch(items=rows)
    labels = [prediction["label"] for prediction in answer["predictions"]]
    assert labels == ["healthy", "unhealthy", "healthy", "unhealthy", "unhealthy"]
    # float32 results differ in the last bits between batch sizes: compare with a tolerance
    for batched, row in zip(answer["predictions"], rows, strict=True):
        single = client.predict_credit(**row)
        assert batched["probability"] == pytest.approx(single["probability"], abs=1e-6)
        assert batched["model"] == single["model"]


def test_predict_credit_batch_of_the_maximum_size(
    client: bentoml.SyncHTTPClient, default_models: dict[str, str]
) -> None:
    rng = np.random.default_rng(0)
    rows = [
        {name: float(value) for name, value in zip(CREDIT_TASK.features, values, strict=True)}
        for values in rng.uniform([0, 0, -0.5, -0.3, -10], [2, 4, 0.5, 0.3, 40], size=(1000, 5))
    ]
    answer = client.predict_credit_batch(items=rows)
    got = np.array(
        [[p["probabilities"][label] for label in CREDIT_TASK.labels] for p in answer["predictions"]]
    )
    np.testing.assert_allclose(
        got, in_process(default_models["credit_health"], CREDIT_TASK, rows), atol=1e-6
    )


def test_classify_iris(client: bentoml.SyncHTTPClient, default_models: dict[str, str]) -> None:
    setosa = client.classify_iris(**SETOSA)
    virginica = client.classify_iris(**VIRGINICA)
    assert (setosa["species"], setosa["class_id"]) == ("setosa", 0)
    assert (virginica["species"], virginica["class_id"]) == ("virginica", 2)
    assert setosa["model"] == default_models["iris"]
    [expected] = in_process(setosa["model"], IRIS_TASK, [SETOSA])
    np.testing.assert_allclose(
        [setosa["probabilities"][s] for s in IRIS_TASK.labels], expected, atol=1e-6
    )


def test_models_lists_what_is_served(
    client: bentoml.SyncHTTPClient, default_models: dict[str, str]
) -> None:
    served = {model["tag"]: model for model in client.models()["models"]}
    assert set(served) == set(default_models.values())
    for tag, model in served.items():
        artifact = Artifact.load(tag)
        assert model["metrics"] == artifact.metadata["metrics"]
        assert model["data_hash"] == artifact.metadata["data_hash"]
        assert model["created"] == artifact.created.isoformat()
        assert model["weights"] == "state_dict"


def test_async_client_concurrent_calls(server: Server, default_models: dict[str, str]) -> None:
    async def main() -> list[dict]:
        async with bentoml.AsyncHTTPClient(server.url) as client:
            calls = [client.predict_credit(**HEALTHY) for _ in range(10)]
            calls += [client.classify_iris(**VIRGINICA) for _ in range(10)]
            calls.append(client.predict_credit_batch(items=[UNHEALTHY] * 3))
            return await asyncio.gather(*calls)

    answers = asyncio.run(main())
    assert [a["label"] for a in answers[:10]] == ["healthy"] * 10
    assert [a["species"] for a in answers[10:20]] == ["virginica"] * 10
    assert [p["label"] for p in answers[20]["predictions"]] == ["unhealthy"] * 3


def test_plain_http_json_contract(http: httpx.Client, default_models: dict[str, str]) -> None:
    response = http.post("/predict_credit", json=UNHEALTHY)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {
        "label",
        "class_id",
        "probability",
        "probabilities",
        "model",
        "prediction_id",
    }
    assert body["model"] == default_models["credit_health"]

    body = http.post("/classify_iris", json=SETOSA).json()
    assert set(body) == {
        "species",
        "class_id",
        "probability",
        "probabilities",
        "model",
        "prediction_id",
    }
    assert sum(body["probabilities"].values()) == pytest.approx(1, abs=1e-5)


def test_health_metrics_and_openapi(http: httpx.Client) -> None:
    assert http.get("/livez").status_code == 200
    assert http.get("/readyz").status_code == 200
    assert "bentoml_service_request_duration_seconds" in http.get("/metrics").text
    paths = http.get("/docs.json").json()["paths"]
    for route in ("/predict_credit", "/predict_credit_batch", "/classify_iris", "/models"):
        assert route in paths
    # the runners' internal APIs are not part of the public contract
    assert "/predict_proba" not in paths
