"""Prove the Bento is self-contained: what its container does, without Docker.

    python -m scripts.bento.verify [--keep]      (make verify-bento)

Builds the Bento from bentofile.yaml and exports it (``bentoml export``: the archive is the
image's build context, models included). Then, as the Bento's Dockerfile does: a fresh virtual
environment made only from the Bento's own ``env/python/requirements.txt`` and constraints
(installed with uv), the archive unpacked as ``BENTO_PATH``, an empty ``BENTOML_HOME``,
``BENTOML_CONTAINERIZED`` set, and the Bento's own ``env/docker/entrypoint.sh`` started with
the arguments of deploy/kubernetes.yaml. No file of the working tree is used. Every endpoint
must answer correctly, the web page (/ui/) must be served, and the retrain command must start.
Needs the default models in the store (``make models``). Takes about a minute (mostly the
install).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import httpx

from model_bundle.catalogue import CATALOGUE
from scripts.sample_data.mask import jpeg
from scripts.sample_data.requests import HEALTHY, SETOSA
from tests.support import server as serving

WEB_PAGE_FILES = (
    "/ui/",
    "/ui/app.js",
    "/ui/style.css",
    "/ui/favicon.svg",
    "/ui/cover-placeholder.svg",
)


def run(command: list[str], **options: object) -> str:
    result = subprocess.run(command, capture_output=True, text=True, **options)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def build_and_export(work: Path) -> tuple[str, Path]:
    bentoml = str(Path(sys.executable).parent / "bentoml")
    output = run([bentoml, "build", "--output", "tag"], cwd=serving.ROOT)
    tag = output.strip().splitlines()[-1].removeprefix("__tag__:")
    archive = work / "model_bundle.bento"
    run([bentoml, "export", tag, str(archive)], cwd=serving.ROOT)
    return tag, archive


def unpack(archive: Path, bento_path: Path) -> Path:
    with tarfile.open(archive) as bento:
        bento.extractall(bento_path, filter="data")
    return bento_path


def dockerfile_facts(bento_path: Path) -> dict[str, object]:
    """What the image will be: its user, ports and which torch build it installs."""
    dockerfile = (bento_path / "env" / "docker" / "Dockerfile").read_text()
    lines = dockerfile.splitlines()
    return {
        "user": next(line.split()[1] for line in lines if line.startswith("USER ")),
        "ports": [int(line.split()[1]) for line in lines if line.startswith("EXPOSE ")],
        "torch_backend_arg": "ARG TORCH_BACKEND=cpu" in dockerfile,
    }


def fresh_environment(bento_path: Path, work: Path) -> Path:
    """A new virtual environment with the Bento's requirements, installed as its image installs
    them: uv, the Bento's own constraints, bytecode compiled (the image's Python cannot write
    it; here, where PYTHONDONTWRITEBYTECODE may be set, every process would compile torch
    anew). Local wheels come from PIP_FIND_LINKS when the machine sets it, as pip's would."""
    venv = work / "venv"
    run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)])
    uv = Path(sys.executable).parent / "uv"  # the development set's pinned uv
    find_links = os.environ.get("PIP_FIND_LINKS")
    run(
        [
            *(str(uv), "pip", "install", "--quiet", "--compile-bytecode"),
            *("--python", str(venv / "bin" / "python")),
            *(("--find-links", find_links) if find_links else ()),
            *("-r", str(bento_path / "env" / "python" / "requirements.txt")),
            *("-c", str(bento_path / "src" / "constraints.txt")),
        ]
    )
    return venv


def check_endpoints(url: str) -> list[str]:
    """Call every endpoint; return what was checked (raises on a wrong answer)."""
    checked = []
    with httpx.Client(base_url=url, timeout=60) as http:

        def post(route: str, **request: object) -> dict:
            response = http.post(route, **request)  # type: ignore[arg-type]
            if response.status_code != 200:
                raise AssertionError(f"{route}: {response.status_code} {response.text[:300]}")
            checked.append(route)
            return response.json()

        assert post("/predict_credit", json=HEALTHY)["label"] == "healthy"
        assert len(post("/predict_credit_batch", json={"items": [HEALTHY] * 3})["predictions"]) == 3
        assert post("/classify_iris", json=SETOSA)["species"] == "setosa"
        served = {m["tag"].split(":")[0] for m in post("/models")["models"]}
        assert served == {entry.name for entry in CATALOGUE}, served
        book = post("/recommend_books", json={"user_id": 0, "k": 3})["books"][0]
        assert post("/rate_book", json={"user_id": 0, "isbn": book["isbn"]})["book"]
        assert (
            len(
                post("/rate_books", json={"items": [{"user_id": 0, "isbn": "1"}] * 2})[
                    "predictions"
                ]
            )
            == 2
        )
        image = jpeg(class_id=3)
        files = {"image": ("face.jpg", image, "image/jpeg")}
        assert 0 <= post("/classify_mask", files=files)["class_id"] < 18
        many = [("images", ("a.jpg", image, "image/jpeg"))] * 2
        assert len(post("/classify_masks", files=many)["predictions"]) == 2

        for page_file in WEB_PAGE_FILES:  # the web page ships in the Bento too
            response = http.get(page_file)
            if response.status_code != 200 or not response.content:
                raise AssertionError(f"{page_file}: {response.status_code}")
            checked.append(page_file)
        assert 'src="app.js"' in http.get("/ui/").text
    return checked


def verify(keep: bool = False) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="verify-bento-"))
    started = time.monotonic()
    tag, archive = build_and_export(work)
    bento_path = unpack(archive, work / "bento")
    venv = fresh_environment(bento_path, work)
    installed = time.monotonic() - started
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(  # what the Bento's Dockerfile sets (ENV lines and the bentofile's envs)
        PATH=f"{venv / 'bin'}:{env['PATH']}",
        BENTO_PATH=str(bento_path),
        BENTOML_HOME=str(work / "home"),
        BENTOML_CONTAINERIZED="true",
        BENTOML_DO_NOT_TRACK="true",
    )
    port = serving.free_port()
    log = work / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                str(bento_path / "env" / "docker" / "entrypoint.sh"),
                *("--host", "127.0.0.1", "--port", str(port)),
                *serving.SERVE_OPTIONS,
            ],
            cwd=bento_path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        ready = serving.wait_until_ready(url, process, 180)
        checked = check_endpoints(url)
        # The retrain CronJob runs from the image: its command must import from the Bento alone.
        retrain = [str(venv / "bin" / "python"), "-m", "scripts.retrain", "credit_health", "-h"]
        run(retrain, cwd=bento_path / "src", env=env)
    except Exception:
        print(log.read_text()[-4000:])
        raise
    finally:
        serving.stop(process)
    report = {
        "bento": tag,
        "archive_mib": round(archive.stat().st_size / 2**20, 1),
        "build_and_install_s": round(installed, 1),
        "ready_s": round(ready, 1),
        "endpoints": checked,
        "image": dockerfile_facts(bento_path),
    }
    if not keep:
        subprocess.run(["rm", "-rf", str(work)], check=False)
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    print(json.dumps(verify(parser.parse_args().keep), indent=2))
