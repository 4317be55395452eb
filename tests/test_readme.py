"""The README's curl and Python examples work as written (against the test server)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from model_bundle.catalogue import CATALOGUE
from tests.support.images import encode, face
from tests.support.server import ROOT, Server

README = (ROOT / "README.md").read_text()
README_URL = "http://localhost:3000"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


CURL = [block for block in blocks("bash") if block.lstrip().startswith("curl")]
PYTHON = blocks("python")


def test_the_readme_has_examples() -> None:
    assert len(CURL) >= 5
    assert len(PYTHON) >= 3


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stands in for the README's face.jpg."""
    path = tmp_path_factory.mktemp("readme") / "face.jpg"
    path.write_bytes(encode(face(), "JPEG"))
    return path


def as_written(example: str, server: Server, photo: Path) -> str:
    return example.replace(README_URL, server.url).replace("face.jpg", str(photo))


@pytest.mark.parametrize("example", CURL, ids=lambda block: block.split()[4].rsplit("/", 1)[-1])
def test_curl_example(server: Server, photo: Path, example: str) -> None:
    command = as_written(example, server, photo).replace("curl -s", "curl -s --fail-with-body")
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    answer = json.loads(result.stdout)
    assert answer["model"].split(":")[0] in {entry.name for entry in CATALOGUE}
    assert answer.get("cold_start") is not True  # the README's ids are known to the model


def promises(example: str) -> list[str]:
    """What the example's print lines say, in `# ...` comments, they print (exact values)."""
    return re.findall(r"^\s*(?:\w+ = )?.*print\(.*# (.+?)(?: \(.*)?$", example, re.MULTILINE)


def test_every_endpoint_has_a_python_example() -> None:
    called = set(re.findall(r"client\.(\w+)\(", "".join(PYTHON)))
    routes = set(re.findall(r"\*\*`POST /(\w+)`\*\*", README))
    assert len(routes) == 9
    assert routes <= called, routes - called


@pytest.mark.parametrize(
    "example", PYTHON, ids=["every_endpoint", "images", "async_client", "errors_and_retries"]
)
def test_python_example(server: Server, photo: Path, example: str) -> None:
    code = as_written(example, server, photo)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    promised = promises(example)
    assert promised, "an example promises nothing checkable"
    for line in promised:  # "0.99..." promises a prefix
        assert line.removesuffix("...") in result.stdout, (line, result.stdout)
