"""The manifests in deploy/ against the Kubernetes API schemas, and what they promise.

kubernetes-validate carries the schemas of every Kubernetes release inside the package, so
this needs no cluster and no network. Strict mode: an unknown field (a typo such as
``readOnlyRootFileSystem``) is an error, not something the API server would silently drop.
The image the manifests run is checked by tests/test_container.py, which runs it the way
these manifests do (uid, read-only root filesystem, a writable /tmp).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from scripts.retrain import cli
from tests.support.server import ROOT

# The oldest Kubernetes release still supported upstream when this was written, and the
# newest the validator knows: a manifest must be valid on both.
VERSIONS = ("1.31.0", kubernetes_validate.latest_version())
IMAGE_UID = 1034  # the user "bentoml" of BentoML's Dockerfile (scripts/container/Dockerfile.j2)
WRITABLE = "/tmp"  # BENTOML_HOME and TMPDIR in the image
MEASURED_MEMORY_MIB = 1214 / 1.048576  # cgroup memory after 30 s at 16 clients (1.214 GB)
FILES = sorted((ROOT / "deploy").glob("*.yaml"))


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


ALL = [doc for path in FILES for doc in documents(path)]


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in ALL if doc["kind"] == kind]


def pod_specs() -> dict[str, dict[str, Any]]:
    """Every pod template in deploy/, by the name of what owns it."""
    specs = {d["metadata"]["name"]: d["spec"]["template"]["spec"] for d in of_kind("Deployment")}
    for cronjob in of_kind("CronJob"):
        specs[cronjob["metadata"]["name"]] = cronjob["spec"]["jobTemplate"]["spec"]["template"][
            "spec"
        ]
    return specs


def mebibytes(quantity: str) -> float:
    units = {"Mi": 1, "Gi": 1024}
    return float(quantity[:-2]) * units[quantity[-2:]]


def test_deploy_holds_the_service_the_batch_job_and_the_retrain_job() -> None:
    assert [path.name for path in FILES] == [
        "batch-cronjob.yaml",
        "kubernetes.yaml",
        "retrain-cronjob.yaml",
    ]
    assert sorted(doc["kind"] for doc in ALL) == [
        "CronJob",
        "CronJob",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Service",
    ]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    "document", ALL, ids=lambda doc: f"{doc['kind']}/{doc['metadata']['name']}"
)
def test_every_manifest_is_valid_against_the_api_schema(
    document: dict[str, Any], version: str
) -> None:
    kubernetes_validate.validate(document, version, strict=True)


def test_the_validator_rejects_an_unknown_field() -> None:
    """The check above can fail: a misspelt field of the security context is caught."""
    [deployment] = copy.deepcopy(of_kind("Deployment"))
    context = deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    context["readOnlyRootFileSystem"] = context.pop("readOnlyRootFilesystem")
    with pytest.raises(kubernetes_validate.ValidationError, match="readOnlyRootFileSystem"):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)


@pytest.mark.parametrize("owner", sorted(pod_specs()))
def test_every_pod_is_hardened(owner: str) -> None:
    """Non-root as the image's own user, nothing writable but an emptyDir at /tmp, no
    capabilities, no privilege escalation, the runtime's seccomp profile."""
    spec = pod_specs()[owner]
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] == IMAGE_UID
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    empty_dirs = {volume["name"] for volume in spec["volumes"] if "emptyDir" in volume}
    for container in spec["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        writable = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert writable[WRITABLE] in empty_dirs


def test_the_batch_job_runs_from_the_services_image() -> None:
    [deployment] = of_kind("Deployment")
    [service_container] = deployment["spec"]["template"]["spec"]["containers"]
    [job_container] = pod_specs()["model-bundle-weekly-batch"]["containers"]
    assert job_container["image"] == service_container["image"]
    assert "python -m model_bundle.batch" in " ".join(job_container["args"])


def test_the_retrain_job_runs_the_retrain_command_from_the_services_image() -> None:
    [deployment] = of_kind("Deployment")
    [service_container] = deployment["spec"]["template"]["spec"]["containers"]
    [job_container] = pod_specs()["model-bundle-retrain"]["containers"]
    assert job_container["image"] == service_container["image"]
    assert job_container["command"][:3] == ["python", "-m", "scripts.retrain"]
    # Its arguments are ones the command takes (argparse exits 2 on any it does not).
    argv = [*job_container["command"][3:], *job_container["args"]]
    options = cli.parser(cli.FAMILIES[argv[0]]).parse_args(argv)
    assert options.if_drift and options.rollout == "canary"
    env = {e["name"]: e.get("value") for e in job_container["env"]}
    mounted = {m["mountPath"] for m in job_container["volumeMounts"]}
    assert any(env["BENTOML_HOME"].startswith(path) for path in mounted)  # the shared store
    assert any(env["MODEL_BUNDLE_STATE_DIR"].startswith(path) for path in mounted)


def test_probes_resources_disruption_budget_and_autoscaler_fit_together() -> None:
    [deployment] = of_kind("Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    resources = container["resources"]
    request, limit = (mebibytes(resources[k]["memory"]) for k in ("requests", "limits"))
    assert MEASURED_MEMORY_MIB < request <= limit
    assert "cpu" not in resources["limits"]  # throttling would only add latency

    labels = deployment["spec"]["template"]["metadata"]["labels"]
    [budget] = of_kind("PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    [autoscaler] = of_kind("HorizontalPodAutoscaler")
    target = autoscaler["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    # A drain keeps a pod serving: more replicas, always, than the budget must keep.
    assert autoscaler["spec"]["minReplicas"] > budget["spec"]["minAvailable"]
    assert deployment["spec"]["replicas"] > budget["spec"]["minAvailable"]
    [service] = of_kind("Service")
    assert service["spec"]["selector"].items() <= labels.items()
