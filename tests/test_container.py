"""The image, built with ``make container``'s recipe and run for real (Podman, or Docker when
its daemon answers): served through the published loopback port with a read-only root
filesystem, as Kubernetes runs it with deploy/kubernetes.yaml.

Builds the Bento from the session's model store, builds the image twice (the second build
must come from the cache), then starts containers of it: every endpoint answers as the dev
server does, /readyz goes from 503 to 200, nothing runs as root, SIGTERM under load loses no
request the server accepted, a killed runner ends the container with a non-zero status, and
the batch CronJob's command runs from the same image. Build time, image size and seconds to
ready are printed. The first build on a machine takes a few minutes (the base image, the
packages); later ones reuse the engine's cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import yaml

from models.artifact import Artifact
from models.books.featurizer import BookFeaturizer
from scripts.benchmarks.fault_test import STOP_LIMIT_S, WARM_UP_S
from scripts.benchmarks.traffic import OK, WRONG, Tally, drive, mix
from scripts.bento.verify import check_endpoints
from scripts.container import build as image_build
from scripts.container import engine
from scripts.sample_data.requests import HEALTHY, SETOSA
from tests.support.routes import CHECKED_ROUTES
from tests.support.server import ROOT, SERVE_OPTIONS, Server, free_port

pytestmark = pytest.mark.e2e

IMAGE = "localhost/model_bundle:e2e-test"
READY_LIMIT_S = 120
IMAGE_LIMIT_MB = 1200
CLIENTS = 8
# What the running server may write: BentoML's home and temporary files (BENTOML_HOME and
# TMPDIR point there in the image), as the emptyDir of deploy/kubernetes.yaml.
WRITABLE = "/tmp"


def report(request: pytest.FixtureRequest, line: str) -> None:
    """A figure for the test log, printed whatever pytest captures."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"test_container: {line}")


@pytest.fixture(scope="module")
def engine_name() -> str:
    try:
        return engine.name()
    except RuntimeError as error:
        if os.environ.get("CI"):  # .ci/run installs Podman: a missing engine is a failure there
            pytest.fail(str(error))
        pytest.skip(str(error))


def engine_run(
    *args: str, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [engine.name(), *args],
        capture_output=True,
        text=True,
        env=engine.environment(),
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{engine.name()} {shlex.join(args)}: {result.stdout}{result.stderr}")
    return result


@pytest.fixture(scope="module")
def bento(default_models: dict[str, str]) -> str:
    """The Bento of the session's models (``make bento``)."""
    bentoml = str(Path(sys.executable).parent / "bentoml")
    built = subprocess.run(
        [bentoml, "build", "--output", "tag"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return built.stdout.strip().splitlines()[-1].removeprefix("__tag__:")


@pytest.fixture(scope="module")
def builds(engine_name: str, bento: str, request: pytest.FixtureRequest) -> tuple[dict, dict]:
    """The image built twice from the Bento, as ``make container`` builds it."""
    first = image_build.build(bento=bento, tag=IMAGE)
    second = image_build.build(bento=bento, tag=IMAGE)
    report(
        request,
        f"image {first['size_mb']} MB on {first['base_image']}; built in {first['build_s']} s, "
        f"again in {second['build_s']} s ({second['cached_steps']} steps from the cache)",
    )
    report(request, f"largest layers: {json.dumps(first['largest_layers'])}")
    return first, second


@dataclass
class Container:
    name: str
    url: str
    started: float
    readiness: list[str] = field(default_factory=list)  # /readyz answers until 200
    ready_s: float = 0.0

    def logs(self) -> str:
        result = engine_run("logs", self.name, check=False)
        return result.stdout + result.stderr

    def exec(self, *command: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
        return engine_run(
            "exec", *(("--user", user) if user else ()), self.name, *command, check=False
        )

    def state(self) -> dict:
        return json.loads(engine_run("inspect", "--format", "{{json .State}}", self.name).stdout)


def read_only_options() -> list[str]:
    """A read-only root filesystem with one writable tmpfs, as Kubernetes' readOnlyRootFilesystem
    with an emptyDir there (Podman would otherwise add tmpfs mounts of its own)."""
    options = ["--read-only", "--tmpfs", f"{WRITABLE}:rw,size=512m,mode=1777"]
    if engine.name() == "podman":
        options.append("--read-only-tmpfs=false")
    return options


@pytest.fixture(scope="module")
def start(builds: tuple[dict, dict]) -> Iterator[Callable[[], Container]]:
    """Start containers of the image on free loopback ports; each is removed at the end."""
    names: list[str] = []

    def run() -> Container:
        port = free_port()
        name = f"model_bundle-e2e-{os.getpid()}-{len(names)}"
        started = time.monotonic()
        engine_run(
            "run", "--detach", "--name", name, *read_only_options(),
            "--publish", f"127.0.0.1:{port}:3000", IMAGE, *SERVE_OPTIONS,
        )  # fmt: skip
        names.append(name)
        container = Container(name, f"http://127.0.0.1:{port}", started)
        wait_until_ready(container)
        return container

    yield run
    for name in names:
        engine_run("rm", "--force", "--time", "5", name, check=False)


def wait_until_ready(container: Container) -> None:
    with httpx.Client(base_url=container.url, timeout=2) as http:
        while time.monotonic() - container.started < READY_LIMIT_S:
            if not container.state()["Running"]:
                raise AssertionError(f"the container exited:\n{container.logs()[-4000:]}")
            try:
                status = str(http.get("/readyz").status_code)
            except httpx.TransportError as error:
                status = type(error).__name__
            if not container.readiness or container.readiness[-1] != status:
                container.readiness.append(status)
            if status == "200":
                container.ready_s = time.monotonic() - container.started
                return
            time.sleep(0.1)
    raise AssertionError(f"not ready after {READY_LIMIT_S} s:\n{container.logs()[-4000:]}")


@pytest.fixture(scope="module")
def served(start: Callable[[], Container], request: pytest.FixtureRequest) -> Container:
    container = start()
    report(request, f"ready {container.ready_s:.1f} s after `run` (readyz: {container.readiness})")
    return container


def inside(container_image: str, script: str) -> dict:
    """What a Python ``script`` run as root in a new container of the image prints (JSON)."""
    result = engine_run(
        "run", "--rm", "--user", "0", "--entrypoint", "/app/.venv/bin/python",
        container_image, "-c", script,
    )  # fmt: skip
    return json.loads(result.stdout)


IMAGE_FACTS = r"""
import hashlib, json, os, shutil, sys
import torch
site = next(p for p in sys.path if p.endswith("site-packages"))
cuda = [f for root, _, files in os.walk("/") if not root.startswith(("/proc", "/sys"))
        for f in files if f.startswith(("libcudart", "libcublas", "libcudnn", "libnccl"))]
def same_size(root):
    for base, _, files in os.walk(root):
        for f in files:
            path = os.path.join(base, f)
            if not os.path.islink(path) and os.path.getsize(path) == SIZE:
                yield hashlib.sha256(open(path, "rb").read()).hexdigest()
print(json.dumps({
    "torch": torch.__version__,
    "cuda_available": torch.cuda.is_available(),
    "cuda_libraries": cuda,
    "nvidia_packages": sorted(p for p in os.listdir(site) if p.startswith("nvidia_")
                              and not p.startswith("nvidia_ml_py")),
    "compilers": [c for c in ("gcc", "cc", "g++", "git", "uv", "pip") if shutil.which(c)],
    "caches": [p for p in ("/root/.cache", "/home/bentoml/.cache", "/tmp/uv-bootstrap")
               if os.path.isdir(p) and os.listdir(p)],
    "models": sorted(os.listdir("/home/bentoml/bento/models")),
    "ca_bundle_copies": sorted({h for root in ("/etc", "/usr", "/app", "/home", "/root", "/opt")
                                for h in same_size(root)} & {"CA_HASH"}),
}))
"""


def test_the_image_is_small_cpu_only_and_holds_its_models(builds: tuple[dict, dict]) -> None:
    """No CUDA library, no compiler or installer, no cache, the four models, and the host's CA
    bundle (handed to the build as a secret) in no file of the image."""
    first, _ = builds
    assert first["size_mb"] < IMAGE_LIMIT_MB, first["largest_layers"]
    bundle = image_build.ca_bundle()
    script = IMAGE_FACTS
    if bundle is not None:
        digest = hashlib.sha256(bundle.read_bytes()).hexdigest()
        script = script.replace("SIZE", str(bundle.stat().st_size)).replace("CA_HASH", digest)
    else:
        script = script.replace("SIZE", "-1")
    facts = inside(IMAGE, script)
    assert facts["torch"].endswith("+cpu"), facts
    assert facts["cuda_available"] is False
    assert facts["cuda_libraries"] == [] and facts["nvidia_packages"] == [], facts
    assert facts["compilers"] == [], facts
    assert facts["caches"] == [], facts
    assert facts["models"] == ["book_rating", "credit_health", "iris", "mask_classifier"]
    assert facts["ca_bundle_copies"] == [], "the host's CA bundle is inside the image"


def test_a_second_build_comes_from_the_cache(builds: tuple[dict, dict]) -> None:
    first, second = builds
    assert second["cached_steps"] >= 5, second
    assert second["build_s"] < max(30.0, first["build_s"] / 2), (first, second)


def test_the_cuda_image_is_one_setting_away(bento: str) -> None:
    """TORCH_BACKEND=cu128 builds on the same Dockerfile with torch from PyTorch's CUDA index:
    the local CPU wheel is not handed in, and the install step takes the backend. (Built where
    that index can be reached; here only its Dockerfile and arguments are checked.)"""
    with image_build.build_options("cu128", image_build.BENTOML_BASE_IMAGE) as options:
        assert "build-arg=TORCH_BACKEND=cu128" in options
        assert not [option for option in options if option.startswith("build-context=")]
    with image_build.build_options("cpu", image_build.BENTOML_BASE_IMAGE) as options:
        assert "build-arg=TORCH_BACKEND=cpu" in options
    dockerfile = image_build.dockerfile(bento)
    assert "ARG TORCH_BACKEND=cpu" in dockerfile
    assert 'torch_source="--torch-backend $TORCH_BACKEND"' in dockerfile
    assert f"ARG BASE_IMAGE={image_build.BENTOML_BASE_IMAGE}" in dockerfile


def test_every_endpoint_answers_through_the_published_port(served: Container) -> None:
    assert check_endpoints(served.url) == CHECKED_ROUTES


def test_answers_are_the_dev_servers(served: Container, server: Server) -> None:
    """The same models, the same code: the same answers as ``bentoml serve`` from the tree."""
    requests = [("/predict_credit", HEALTHY), ("/classify_iris", SETOSA), ("/models", {})]
    with httpx.Client(timeout=30) as http:
        for route, body in requests:
            from_image = http.post(served.url + route, json=body)
            from_tree = http.post(server.url + route, json=body)
            assert from_image.status_code == from_tree.status_code == 200, route
            assert without_ids(from_image.json()) == without_ids(from_tree.json()), route


def without_ids(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer without its ``prediction_id``: unique per answer, by design."""
    return {key: value for key, value in answer.items() if key != "prediction_id"}


def test_readiness_is_withheld_until_the_runners_are_up(served: Container) -> None:
    """Until every runner has loaded, /readyz is refused (nothing listens yet) or held by the
    front's check of each runner (a probe's timeout): never 200 before the models are in."""
    assert served.readiness[0] != "200" and served.readiness[-1] == "200", served.readiness
    assert "200" not in served.readiness[:-1]
    assert served.ready_s < 60


def test_nothing_runs_as_root_and_only_the_tmpfs_is_writable(served: Container) -> None:
    uids = served.exec("sh", "-c", "cat /proc/[0-9]*/status | grep '^Uid:' | cut -f2 | sort -u")
    assert uids.stdout.split() and "0" not in uids.stdout.split(), uids.stdout
    assert served.exec("touch", "/home/bentoml/bento/x").returncode != 0
    assert served.exec("touch", "/app/.venv/x").returncode != 0
    assert served.exec("touch", f"{WRITABLE}/x").returncode == 0
    # Everything BentoML wrote at start-up is there.
    assert served.exec("test", "-d", f"{WRITABLE}/bentoml/prometheus_multiproc_dir").returncode == 0


async def load_then(container: Container, books_tag: str, action: Callable[[], object]) -> Tally:
    """``action`` (in a thread) after ``WARM_UP_S`` of load; the load goes on until it returns."""
    tally, stop = Tally(), asyncio.Event()
    load = asyncio.create_task(
        drive(container.url, mix(books_tag), CLIENTS, tally=tally, stop=stop)
    )
    await asyncio.sleep(WARM_UP_S)
    await asyncio.to_thread(action)
    await asyncio.sleep(0.5)  # requests sent after the exit: refused
    stop.set()
    await load
    return tally


UNITS = {"B": 1, "kB": 1e3, "KiB": 2**10, "MB": 1e6, "MiB": 2**20, "GB": 1e9, "GiB": 2**30}


def memory_mb(container: Container) -> float:
    """The container's memory (its cgroup's), in MB, as the engine reports it."""
    usage = engine_run("stats", "--no-stream", "--format", "{{.MemUsage}}", container.name)
    amount = usage.stdout.split("/")[0].strip()
    number = amount.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    return float(number) * UNITS[amount[len(number) :].strip()] / 1e6


def memory_limit_mb() -> float:
    manifests = yaml.safe_load_all((ROOT / "deploy" / "kubernetes.yaml").read_text())
    [deployment] = [m for m in manifests if m["kind"] == "Deployment"]
    limit = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    number, unit = limit["memory"][:-2], limit["memory"][-2:]
    return float(number) * UNITS[unit + "B"] / 1e6


def test_sigterm_under_load_loses_no_accepted_request(
    start: Callable[[], Container], default_models: dict[str, str], request: pytest.FixtureRequest
) -> None:
    """``stop`` sends SIGTERM (as Kubernetes does) and SIGKILL after the grace period: the
    server must answer what it accepted and exit, with status 0, well within it."""
    container = start()
    stopped: dict[str, float] = {}

    def stop() -> None:
        stopped["memory_mb"] = memory_mb(container)
        stopped["at"] = time.monotonic()
        engine_run("stop", "--time", str(int(STOP_LIMIT_S)), container.name)
        stopped["took"] = time.monotonic() - stopped["at"]

    tally = asyncio.run(load_then(container, default_models["book_rating"], stop))
    before, after = tally.split(stopped["at"])
    report(
        request,
        f"memory under load {stopped['memory_mb']:.0f} MB; "
        f"SIGTERM under load: exit after {stopped['took']:.1f} s; before it "
        f"{dict(before.by_outcome)}, after it {dict(after.by_outcome)}",
    )
    assert stopped["took"] < STOP_LIMIT_S - 5  # not the engine's SIGKILL at the deadline
    assert stopped["memory_mb"] < memory_limit_mb()  # deploy/kubernetes.yaml's limit holds
    assert container.state()["ExitCode"] == 0
    assert before.by_outcome[OK] > 0
    assert not {"500", "503", WRONG} & before.by_outcome.keys(), before.by_outcome
    assert not {"500", WRONG} & after.by_outcome.keys(), after.by_outcome


SIGNAL_RUNNER = """
import os, signal, sys
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        args = open(f"/proc/{pid}/cmdline", "rb").read().decode().split("\\0")
    except OSError:
        continue
    if "--service-name" in args and args[args.index("--service-name") + 1] == sys.argv[1]:
        os.kill(int(pid), getattr(signal, sys.argv[2]))
        print(pid)
"""


def readyz(container: Container) -> int:
    """/readyz with the probe's timeout (deploy/kubernetes.yaml: 6 s)."""
    return httpx.get(f"{container.url}/readyz", timeout=6).status_code


def test_a_stalled_runner_makes_it_unready_and_a_killed_one_ends_it_with_an_error(
    start: Callable[[], Container], request: pytest.FixtureRequest
) -> None:
    """A runner that stops answering (SIGSTOP) turns /readyz to 503, and back to 200 when it
    goes on (SIGCONT). A runner killed ends the container with a non-zero status: BentoML
    restarts no worker inside a container, so the orchestrator restarts the container."""
    container = start()
    with httpx.Client(base_url=container.url, timeout=30) as http:
        assert http.post("/classify_iris", json=SETOSA).json()["species"] == "setosa"

    def signal_runner(name: str) -> None:
        sent = container.exec("python", "-c", SIGNAL_RUNNER, "CreditRunner", name)
        assert sent.stdout.strip().isdigit(), sent

    signal_runner("SIGSTOP")
    stalled = readyz(container)
    signal_runner("SIGCONT")
    assert (stalled, readyz(container)) == (503, 200)

    signal_runner("SIGKILL")
    waited = engine_run("wait", container.name, timeout=60)
    report(request, f"runner killed: the container exited with status {waited.stdout.strip()}")
    assert int(waited.stdout.strip()) != 0
    assert container.state()["ExitCode"] != 0


def cronjob_container() -> dict:
    cronjob = yaml.safe_load((ROOT / "deploy" / "batch-cronjob.yaml").read_text())
    [spec] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    return spec


def test_the_batch_cronjob_runs_from_the_same_image(
    served: Container, default_models: dict[str, str], tmp_path: Path
) -> None:
    """The CronJob's own command, run from the image against the served container (on the
    loopback: the host's network), on Parquet files of known users and books."""
    spec = cronjob_container()
    featurizer = BookFeaturizer.load(Artifact.load(default_models["book_rating"]).path)
    users, isbns = [int(u) for u in featurizer.user_ids[:3]], list(featurizer.isbns[:3])
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    pd.DataFrame({"user_id": users, "isbn": isbns}).to_parquet(tmp_path / "in" / "pairs.parquet")
    pd.DataFrame({"user_id": users}).to_parquet(tmp_path / "in" / "users.parquet")
    for directory, mode in ((tmp_path, 0o755), (tmp_path / "in", 0o755), (tmp_path / "out", 0o777)):
        directory.chmod(mode)  # read and written by the image's user
    [mount] = [m for m in spec["volumeMounts"] if m["name"] == "data"]
    command = [
        *spec["command"],
        *(a.replace("http://model-bundle", served.url) for a in spec["args"]),
    ]
    result = engine_run(
        "run", "--rm", "--network", "host", *read_only_options(),
        "--volume", f"{tmp_path}:{mount['mountPath']}", "--workdir", spec["workingDir"],
        *(f"--env={e['name']}={e['value']}" for e in spec["env"]),
        "--entrypoint", command[0], IMAGE, *command[1:],
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    ratings = pd.read_parquet(tmp_path / "out" / "ratings.parquet")
    assert len(ratings) == 3 and ratings["rating"].between(1, 10).all(), ratings
    recommendations = pd.read_parquet(tmp_path / "out" / "recommendations.parquet")
    assert set(recommendations["user_id"]) == set(users), recommendations
