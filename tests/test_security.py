"""API keys, CORS, and no unpickling of anything a client or an artifact sends."""

from __future__ import annotations

import ast
import pickle
from datetime import UTC, datetime
from pathlib import Path

import bentoml
import httpx
import pytest
import torch

from models.artifact import STATE_DICT_FILE, Artifact
from scripts.sample_data.requests import HEALTHY
from tests.conftest import GUARDED_ENV
from tests.support.server import ROOT, Server

FIRST_KEY, SECOND_KEY = (key.strip() for key in GUARDED_ENV["MODEL_BUNDLE_API_KEYS"].split(","))
WRONG_KEY = "wrong-key-77d0"
ORIGIN = GUARDED_ENV["MODEL_BUNDLE_CORS_ORIGINS"]
OPEN_PATHS = ["/livez", "/readyz", "/healthz", "/metrics", "/docs.json", "/schema.json", "/"]


@pytest.fixture(scope="module")
def guarded(guarded_server: Server) -> httpx.Client:
    with httpx.Client(base_url=guarded_server.url, timeout=30) as client:
        yield client


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": f"Bearer {WRONG_KEY}"},
        {"X-API-Key": WRONG_KEY},
        {"Authorization": FIRST_KEY},  # no scheme
        {"Authorization": f"Basic {FIRST_KEY}"},
        {"Authorization": "Bearer"},
        {"X-API-Key": FIRST_KEY[:-1]},
    ],
    ids=["none", "wrong-bearer", "wrong-x-api-key", "no-scheme", "basic", "empty", "prefix"],
)
def test_a_request_without_a_valid_key_is_a_401(guarded: httpx.Client, headers: dict) -> None:
    response = guarded.post("/predict_credit", json=HEALTHY, headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["error"] == "missing or invalid API key"
    assert body["detail"][0]["loc"] == ["header", "Authorization"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {FIRST_KEY}"},
        {"Authorization": f"bearer {SECOND_KEY}"},
        {"X-API-Key": SECOND_KEY},
        {"X-API-Key": FIRST_KEY, "Authorization": f"Bearer {WRONG_KEY}"},  # either may hold it
    ],
    ids=["bearer", "lowercase-bearer", "x-api-key", "both"],
)
def test_either_header_with_any_configured_key_passes(guarded: httpx.Client, headers: dict) -> None:
    response = guarded.post("/predict_credit", json=HEALTHY, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["label"] == "healthy"


def test_the_python_client_sends_its_token(guarded_server: Server) -> None:
    with bentoml.SyncHTTPClient(guarded_server.url, token=FIRST_KEY) as client:
        assert client.predict_credit(**HEALTHY)["label"] == "healthy"


def test_the_python_client_without_a_key_raises_401(guarded_server: Server) -> None:
    """As the README's client error table says: a BentoMLException whose error_code is 401."""
    with (
        bentoml.SyncHTTPClient(guarded_server.url) as client,
        pytest.raises(bentoml.exceptions.BentoMLException) as raised,
    ):
        client.predict_credit(**HEALTHY)
    assert raised.value.error_code == 401


def test_bad_input_is_still_a_400_once_authenticated(guarded: httpx.Client) -> None:
    response = guarded.post(
        "/predict_credit", json={**HEALTHY, "debt_ratio": "x"}, headers={"X-API-Key": FIRST_KEY}
    )
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["debt_ratio"]


@pytest.mark.parametrize("path", OPEN_PATHS)
def test_probes_metrics_and_descriptions_stay_open(guarded: httpx.Client, path: str) -> None:
    assert guarded.get(path).status_code == 200, path


@pytest.mark.parametrize("path", ["/ui", "/ui/index.html"])
def test_the_web_page_is_not_behind_the_key(guarded: httpx.Client, path: str) -> None:
    assert guarded.get(path).status_code != 401


def test_the_served_description_documents_the_keys(guarded: httpx.Client) -> None:
    spec = guarded.get("/docs.json").json()
    assert set(spec["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    assert "401" in spec["paths"]["/predict_credit"]["post"]["responses"]


def test_no_key_is_ever_logged(guarded: httpx.Client, guarded_server: Server) -> None:
    for key in (FIRST_KEY, SECOND_KEY, WRONG_KEY):
        guarded.post("/predict_credit", json=HEALTHY, headers={"Authorization": f"Bearer {key}"})
        guarded.post("/predict_credit", json=HEALTHY, headers={"X-API-Key": key})
    log = guarded_server.log_text()
    assert "/predict_credit" in log
    for key in (FIRST_KEY, SECOND_KEY, WRONG_KEY):
        assert key not in log


def test_without_keys_configured_no_key_is_needed(http: httpx.Client) -> None:
    assert http.post("/predict_credit", json=HEALTHY).status_code == 200
    assert "securitySchemes" not in http.get("/docs.json").json()["components"]


def preflight(client: httpx.Client, origin: str) -> httpx.Response:
    return client.options(
        "/predict_credit",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


def test_cors_preflight_from_a_configured_origin_needs_no_key(guarded: httpx.Client) -> None:
    response = preflight(guarded, ORIGIN)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "authorization" in response.headers["access-control-allow-headers"].lower()


def test_cors_answers_carry_the_origin_even_when_refused(guarded: httpx.Client) -> None:
    """A browser page can read the 401 and tell its user to sign in."""
    for headers, status in (({"X-API-Key": FIRST_KEY}, 200), ({}, 401)):
        response = guarded.post(
            "/predict_credit", json=HEALTHY, headers={"Origin": ORIGIN, **headers}
        )
        assert response.status_code == status
        assert response.headers["access-control-allow-origin"] == ORIGIN


def test_cors_refuses_other_origins(guarded: httpx.Client) -> None:
    response = preflight(guarded, "https://evil.example.com")
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


def test_cors_is_off_by_default(http: httpx.Client) -> None:
    assert "access-control-allow-origin" not in preflight(http, ORIGIN).headers
    response = http.post("/predict_credit", json=HEALTHY, headers={"Origin": ORIGIN})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(
    "content_type",
    ["application/vnd.bentoml+pickle", "application/python-pickle", "application/octet-stream"],
)
def test_a_pickled_body_is_refused_unread(http: httpx.Client, content_type: str) -> None:
    """BentoML's own serde unpickles ``application/vnd.bentoml+pickle`` bodies (it is how
    services talk to each other): from a client, that is code execution."""
    payload = pickle.dumps(HEALTHY)
    for route in ("/predict_credit", "/classify_mask"):
        response = http.post(route, content=payload, headers={"content-type": content_type})
        assert response.status_code == 415, (route, response.text)


class Exploit:
    """Unpickling this runs ``Path.touch``: what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def test_a_malicious_state_dict_is_refused_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    torch.save({"weight": Exploit(marker)}, tmp_path / STATE_DICT_FILE)
    artifact = Artifact("x:1", tmp_path, {}, datetime.now(UTC))
    with pytest.raises(pickle.UnpicklingError):
        artifact.state_dict()
    assert not marker.exists()


SERVED_CODE = [ROOT / "service.py", *ROOT.glob("runners/*.py"), *ROOT.glob("models/**/*.py")]
SERVED_CODE += [*ROOT.glob("model_bundle/**/*.py")]
UNPICKLERS = {"pickle", "joblib", "dill", "cloudpickle", "shelve", "marshal"}


def parsed(path: Path) -> list[ast.AST]:
    return list(ast.walk(ast.parse(path.read_text())))


def keyword(call: ast.Call, name: str) -> object:
    value = next((k.value for k in call.keywords if k.arg == name), None)
    return value.value if isinstance(value, ast.Constant) else None


@pytest.mark.parametrize("path", SERVED_CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_served_code_never_unpickles(path: Path) -> None:
    nodes = parsed(path)
    imported = {a.name.split(".")[0] for n in nodes if isinstance(n, ast.Import) for a in n.names}
    imported |= {
        n.module.split(".")[0] for n in nodes if isinstance(n, ast.ImportFrom) and n.module
    }
    assert not imported & UNPICKLERS
    for call in (node for node in nodes if isinstance(node, ast.Call)):
        name = ast.unparse(call.func)
        assert not name.endswith("read_pickle"), ast.unparse(call)
        if name == "torch.load":
            assert keyword(call, "weights_only") is True, ast.unparse(call)
        if name in ("np.load", "numpy.load"):
            assert keyword(call, "allow_pickle") is False, ast.unparse(call)


def test_the_checks_above_see_the_loads() -> None:
    names = [
        ast.unparse(node.func)
        for path in SERVED_CODE
        for node in parsed(path)
        if isinstance(node, ast.Call)
    ]
    assert "torch.load" in names and "np.load" in names
