"""Model versions against the real server: a candidate loaded, served as a canary or a shadow,
promoted and rolled back at run time under concurrent load with no failed request; bad admin
input refused with a 4xx naming the problem; the choice surviving a restart."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from model_bundle.catalogue import BOOK_RATING
from models.tabular.contract import CREDIT_TASK
from scripts.sample_data.requests import HEALTHY
from scripts.train.datasets import credit_sample
from scripts.train.tabular import TrainingConfig, train_tabular
from tests.conftest import BENTOML_HOME
from tests.support.server import Server, separate_server

ADMIN_KEY, CLIENT_KEY = "admin-key-5d1e", "client-key-77b0"
ADMIN = {"X-API-Key": ADMIN_KEY}
CLIENT = {"X-API-Key": CLIENT_KEY}
CLIENTS = 32


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("versions-state")


@pytest.fixture(scope="module")
def versioned(
    default_models: dict[str, str], tmp_path_factory: pytest.TempPathFactory, state_dir: Path
) -> Iterator[Server]:
    """A server with client keys, admin keys and a state directory of its own."""
    env = {
        "MODEL_BUNDLE_API_KEYS": CLIENT_KEY,
        "MODEL_BUNDLE_ADMIN_KEYS": ADMIN_KEY,
        "MODEL_BUNDLE_STATE_DIR": str(state_dir),
    }
    directory = tmp_path_factory.mktemp("versions")
    with separate_server(directory, BENTOML_HOME / "models", env) as running:
        yield running


@pytest.fixture(scope="module")
def credit_candidate(default_models: dict[str, str]) -> str:
    """Another credit version (stored under a name of its own, so that ``credit_health:latest``
    stays the default for every other server of the session)."""
    task = dataclasses.replace(CREDIT_TASK, name="credit_candidate_test")
    return train_tabular(task, credit_sample(rows=400), TrainingConfig(epochs=2, seed=3), "test")


@pytest.fixture(scope="module")
def books_candidate(default_models: dict[str, str]) -> str:
    from models.artifact import Artifact
    from models.books.model import BookRatingModel

    model = BookRatingModel.load(Artifact.load(default_models[BOOK_RATING.name]))
    return model.save({"source": "test"}, name="book_rating_candidate_test")


def admin(server: Server, method: str, path: str, **body: object) -> httpx.Response:
    return httpx.request(
        method, f"{server.url}/admin/models{path}", json=body or None, headers=ADMIN, timeout=60
    )


class Load:
    """``CLIENTS`` clients posting predict_credit in a loop until stopped: every status and
    the version each answer names, with the time its request was sent (on a loaded machine
    an answer can arrive long after, so a change is judged by the requests sent after it)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: list[tuple[float, int, str | None]] = []
        self.running = True
        self.thread = threading.Thread(target=lambda: asyncio.run(self.run()), daemon=True)

    async def run(self) -> None:
        limits = httpx.Limits(max_connections=CLIENTS)
        async with httpx.AsyncClient(
            base_url=self.url, timeout=30, limits=limits, headers=CLIENT
        ) as http:

            async def client() -> None:
                while self.running:
                    sent = time.monotonic()
                    answer = await http.post("/predict_credit", json=HEALTHY)
                    model = answer.json().get("model") if answer.status_code == 200 else None
                    self.answers.append((sent, answer.status_code, model))

            await asyncio.gather(*(client() for _ in range(CLIENTS)))

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.running = False
        self.thread.join(timeout=60)

    def since(self, moment: float) -> Counter[str | None]:
        return Counter(model for at, _, model in self.answers if at > moment)


def test_the_admin_api_is_off_without_admin_keys(http: httpx.Client) -> None:
    assert http.get("/admin/models").status_code == 404
    assert http.post("/admin/models/iris/promote").status_code == 404


def test_canary_promote_and_rollback_under_load_fail_no_request(
    versioned: Server, default_models: dict[str, str], credit_candidate: str
) -> None:
    default = default_models["credit_health"]
    with Load(versioned.url) as load:
        time.sleep(1)
        loaded = admin(versioned, "POST", "/credit_health/candidate", tag=credit_candidate)
        assert loaded.status_code == 200, loaded.text
        assert loaded.json()["serving"] == {
            "primary": default,
            "candidate": credit_candidate,
            "role": "shadow",
        }
        assert admin(versioned, "POST", "/credit_health/share", share=30, mode="canary").is_success
        canary_from = time.monotonic()
        time.sleep(4)
        canary = load.since(canary_from)
        assert set(canary) == {default, credit_candidate}
        share = canary[credit_candidate] / sum(canary.values())
        assert abs(share - 0.30) < 0.05, canary

        promoted = admin(versioned, "POST", "/credit_health/promote", by="release-bot")
        assert promoted.status_code == 200, promoted.text
        promoted_at = time.monotonic()
        time.sleep(2)
        assert set(load.since(promoted_at + 0.1)) == {credit_candidate}

        assert admin(versioned, "POST", "/credit_health/rollback").status_code == 200
        rolled_back = time.monotonic()
        time.sleep(2)
        assert set(load.since(rolled_back + 0.1)) == {default}
    statuses = Counter(status for _, status, _ in load.answers)
    assert statuses == Counter({200: len(load.answers)}) and len(load.answers) > 500

    models = httpx.post(f"{versioned.url}/models", headers=CLIENT, timeout=30).json()["models"]
    [credit] = [m for m in models if m["tag"].startswith("credit_health:")]
    roles = {v["tag"]: v for v in credit["versions"]}
    assert credit["tag"] == default and roles[default]["role"] == "primary"
    assert roles[credit_candidate]["role"] == "previous"
    assert roles[credit_candidate]["promoted_by"] == "release-bot"
    assert roles[credit_candidate]["metrics"] and roles[credit_candidate]["data_hash"]
    metrics = httpx.get(f"{versioned.url}/metrics").text
    assert f'model="credit_health",role="canary",version="{credit_candidate}"' in metrics


def test_a_shadow_never_answers_and_its_agreement_is_measured(
    versioned: Server, default_models: dict[str, str], credit_candidate: str
) -> None:
    primary = admin(versioned, "GET", "").json()["models"][0]["primary"]
    assert admin(
        versioned, "POST", "/credit_health/candidate", tag=credit_candidate, mode="shadow"
    ).is_success
    with httpx.Client(base_url=versioned.url, headers=CLIENT, timeout=30) as http:
        answers = {http.post("/predict_credit", json=HEALTHY).json()["model"] for _ in range(30)}
        assert answers == {primary}
        time.sleep(0.5)
        metrics = http.get("/metrics").text
        models = http.post("/models").json()["models"]
    line = next(
        line
        for line in metrics.splitlines()
        if line.startswith("model_bundle_shadow_agreement{")
        and f'version="{credit_candidate}"' in line
    )
    assert 'measure="same_class_rate"' in line and 0 <= float(line.split()[-1]) <= 1
    shadow = next(v for v in models[0]["versions"] if v["tag"] == credit_candidate)
    assert shadow["role"] == "shadow"
    assert shadow["shadow_agreement"]["same_class_rate"]["compared"] > 0
    assert admin(versioned, "DELETE", "/credit_health/candidate").is_success


def test_a_canary_keeps_each_user_on_one_book_version(
    versioned: Server, default_models: dict[str, str], books_candidate: str
) -> None:
    loaded = admin(
        versioned, "POST", "/book_rating/candidate", tag=books_candidate, mode="canary", share=50
    )
    assert loaded.status_code == 200, loaded.text
    with httpx.Client(base_url=versioned.url, headers=CLIENT, timeout=30) as http:
        seen: dict[int, set[str]] = {}
        for user in range(40):
            for _ in range(3):
                body = {"user_id": user, "isbn": "0000000000"}
                seen.setdefault(user, set()).add(http.post("/rate_book", json=body).json()["model"])
            top = http.post("/recommend_books", json={"user_id": user, "k": 3}).json()
            seen[user].add(top["model"])
    assert all(len(models) == 1 for models in seen.values()), seen
    assert {model for models in seen.values() for model in models} == {
        default_models[BOOK_RATING.name],
        books_candidate,
    }
    assert admin(versioned, "DELETE", "/book_rating/candidate").is_success


def bad_format_version() -> str:
    import bentoml

    with bentoml.models.create("credit_bad_format_test", metadata={"format_version": 99}) as ref:
        Path(ref.path_of("state_dict.pt")).write_bytes(b"not a model")
    return str(ref.tag)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "kind"),
    [
        ("POST", "/credit_health/candidate", {"tag": "credit_health:nope"}, 404, "unknown_version"),
        ("POST", "/credit_health/candidate", {"tag": "iris:latest"}, 400, "invalid_artifact"),
        ("POST", "/credit_health/candidate", {"tag": "BAD_FORMAT"}, 400, "invalid_artifact"),
        ("POST", "/credit_health/candidate", {"tag": "CANDIDATE", "share": 130}, 400,
         "share_out_of_range"),
        ("POST", "/credit_health/share", {"share": 30}, 409, "no_candidate"),
        ("POST", "/credit_health/promote", {}, 409, "no_candidate"),
        ("POST", "/mask_classifier/rollback", {}, 409, "no_previous"),
        ("POST", "/no_such_model/promote", {}, 404, "unknown_model"),
    ],
)  # fmt: skip
def test_bad_admin_input_is_a_4xx_naming_it_and_serving_stays(
    versioned: Server,
    credit_candidate: str,
    method: str,
    path: str,
    body: dict,
    status: int,
    kind: str,
) -> None:
    body = {k: {"BAD_FORMAT": bad_format_version(), "CANDIDATE": credit_candidate}.get(v, v)
            for k, v in body.items()}  # fmt: skip
    before = admin(versioned, "GET", "").json()
    refused = admin(versioned, method, path, **body)
    assert refused.status_code == status, refused.text
    assert refused.json()["detail"][0]["type"] == kind
    assert refused.json()["error"]
    after = admin(versioned, "GET", "").json()
    assert after == before


def test_a_second_candidate_is_refused(versioned: Server, books_candidate: str) -> None:
    assert admin(versioned, "POST", "/book_rating/candidate", tag=books_candidate).is_success
    again = admin(versioned, "POST", "/book_rating/candidate", tag=books_candidate)
    assert again.status_code == 409 and again.json()["detail"][0]["type"] == "candidate_exists"
    assert admin(versioned, "DELETE", "/book_rating/candidate").is_success


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, CLIENT])
def test_the_admin_api_needs_an_admin_key(versioned: Server, headers: dict[str, str]) -> None:
    answer = httpx.post(f"{versioned.url}/admin/models/iris/promote", headers=headers)
    assert answer.status_code == 401
    assert answer.json()["detail"][0]["loc"] == ["header", "Authorization"]
    # and an admin key is no client key
    assert httpx.post(f"{versioned.url}/models", headers=ADMIN).status_code == 401


def test_the_choice_survives_a_restart_and_is_shared_by_replicas(
    versioned: Server,
    state_dir: Path,
    credit_candidate: str,
    default_models: dict[str, str],
    tmp_path: Path,
) -> None:
    assert admin(versioned, "POST", "/credit_health/candidate", tag=credit_candidate).is_success
    assert admin(versioned, "POST", "/credit_health/promote").is_success
    env = {"MODEL_BUNDLE_STATE_DIR": str(state_dir), "MODEL_BUNDLE_ADMIN_KEYS": ADMIN_KEY}
    with separate_server(tmp_path, BENTOML_HOME / "models", env) as replica:
        answer = httpx.post(f"{replica.url}/predict_credit", json=HEALTHY, timeout=30).json()
        assert answer["model"] == credit_candidate
        # a change made through the replica reaches the first server within seconds
        assert admin(replica, "POST", "/credit_health/rollback").is_success
        deadline = time.monotonic() + 10
        with httpx.Client(base_url=versioned.url, headers=CLIENT, timeout=30) as http:
            while time.monotonic() < deadline:
                model = http.post("/predict_credit", json=HEALTHY).json()["model"]
                if model == default_models["credit_health"]:
                    break
                time.sleep(0.2)
        assert model == default_models["credit_health"]

        # a candidate loaded through the replica: the first server's runner loads it when it
        # reads the state, and only then does its front route to it
        task = dataclasses.replace(CREDIT_TASK, name="credit_third_test")
        third = train_tabular(task, credit_sample(rows=300), TrainingConfig(epochs=1), "test")
        canary = admin(replica, "POST", "/credit_health/candidate", tag=third, mode="canary",
                       share=100)  # fmt: skip
        assert canary.status_code == 200, canary.text
        seen: Counter[str] = Counter()
        deadline = time.monotonic() + 15
        with httpx.Client(base_url=versioned.url, headers=CLIENT, timeout=30) as http:
            while time.monotonic() < deadline and seen[third] < 5:
                answer = http.post("/predict_credit", json=HEALTHY)
                assert answer.status_code == 200
                seen[answer.json()["model"]] += 1
                time.sleep(0.05)
        assert seen[third] == 5, seen
        assert admin(versioned, "DELETE", "/credit_health/candidate").is_success


def test_the_admin_api_is_in_the_openapi_document_only_when_on(
    versioned: Server, http: httpx.Client
) -> None:
    document = httpx.get(f"{versioned.url}/docs.json").json()
    assert [str(e) for e in OpenAPIV31SpecValidator(document).iter_errors()] == []
    paths = document["paths"]
    assert {"post", "delete"} <= set(paths["/admin/models/{name}/candidate"])
    assert paths["/admin/models/{name}/share"]["post"]["responses"]["400"]
    assert not any(path.startswith("/admin") for path in http.get("/docs.json").json()["paths"])


def cli(server: Server, *args: str, key: str = ADMIN_KEY) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "model_bundle.admin", "--url", server.url, "--key", key]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=120)


def test_the_cli_drives_the_admin_api(versioned: Server, credit_candidate: str) -> None:
    listed = cli(versioned, "list")
    assert listed.returncode == 0, listed.stderr
    models = [model["model"] for model in json.loads(listed.stdout)["models"]]
    assert models[:2] == ["credit_health", "iris"]

    loaded = cli(versioned, "--by", "cli-test", "candidate", "credit_health", credit_candidate,
                 "--mode", "canary", "--share", "10")  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout)["share"] == 10.0
    assert json.loads(loaded.stdout)["history"][-1]["by"] == "cli-test"
    too_much = cli(versioned, "share", "credit_health", "101")
    assert too_much.returncode == 1 and "share_out_of_range" in too_much.stderr
    assert cli(versioned, "drop", "credit_health").returncode == 0
    refused = cli(versioned, "list", key="not-the-key")
    assert refused.returncode == 1 and "invalid admin key" in refused.stderr
