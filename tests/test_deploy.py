"""deploy/kubernetes.yaml points its probes and scraping at routes the server really answers."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import psutil
import yaml
from opentelemetry.util.http import ExcludeList

from model_bundle.settings import SETTINGS, from_environ
from scripts.sample_data.requests import SETOSA
from tests.support.server import ROOT, SERVE_OPTIONS, Server

MANIFESTS = list(yaml.safe_load_all((ROOT / "deploy" / "kubernetes.yaml").read_text()))


def container() -> dict:
    [deployment] = [m for m in MANIFESTS if m["kind"] == "Deployment"]
    [spec] = deployment["spec"]["template"]["spec"]["containers"]
    return spec


def test_manifests_are_a_deployment_service_disruption_budget_and_autoscaler() -> None:
    assert [m["kind"] for m in MANIFESTS] == [
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    ]


def test_probes_and_metrics_paths_answer(http: httpx.Client) -> None:
    spec = container()
    paths = {spec[probe]["httpGet"]["path"] for probe in ("readinessProbe", "livenessProbe")}
    assert paths == {"/readyz", "/livez"}
    [deployment] = [m for m in MANIFESTS if m["kind"] == "Deployment"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    paths.add(annotations["prometheus.io/path"])
    for path in paths:
        assert http.get(path).status_code == 200, path


def test_container_serves_with_the_options_we_test_with() -> None:
    assert tuple(container()["args"]) == SERVE_OPTIONS
    names = {variable["name"] for variable in container()["env"]}
    assert {
        "MODEL_BUNDLE_MAX_REQUEST_BYTES",
        "MODEL_BUNDLE_MAX_IMAGE_PIXELS",
        "MODEL_BUNDLE_MAX_CONCURRENT_REQUESTS",
        "BENTOML_DO_NOT_TRACK",
    } <= names


def test_workers_are_set_by_environment(own_server: Callable[..., Server]) -> None:
    """The README's BENTOML_CONFIG_OVERRIDES example: two IrisRunner workers, both serving."""
    overrides = {"services": {"IrisRunner": {"workers": 2}}}
    running = own_server({"BENTOML_CONFIG_OVERRIDES": json.dumps(overrides)})
    children = psutil.Process(running.process.pid).children(recursive=True)
    iris_workers = [child for child in children if "IrisRunner" in " ".join(child.cmdline())]
    assert len(iris_workers) == 2
    with httpx.Client(base_url=running.url, timeout=30) as http:
        answer = http.post("/classify_iris", json=SETOSA)
    assert answer.json()["species"] == "setosa"


def test_the_manifest_shows_how_to_set_keys_and_origins() -> None:
    """Commented out (both are off by default), under the names the server reads."""
    text = (ROOT / "deploy" / "kubernetes.yaml").read_text()
    assert "name: MODEL_BUNDLE_API_KEYS" in text and "secretKeyRef" in text
    assert "name: MODEL_BUNDLE_CORS_ORIGINS" in text
    declared = {setting.variable for setting in SETTINGS}
    assert {"MODEL_BUNDLE_API_KEYS", "MODEL_BUNDLE_CORS_ORIGINS"} <= declared


def test_tracing_is_off_unless_asked_for() -> None:
    """BentoML's own exclusion list (its `tracing.excluded_urls`) then skips every request."""
    excluded = ExcludeList(from_environ({}).tracing_config()["excluded_urls"])
    assert excluded.url_disabled("http://127.0.0.1:3000/predict_credit")
    assert excluded.url_disabled("http://127.0.0.1:3000/classify_mask")

    traced = from_environ({"MODEL_BUNDLE_TRACING": "true"})
    assert "excluded_urls" not in traced.tracing_config()  # BentoML's default: every request traced
