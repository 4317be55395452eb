"""The README's curl and Python examples work as written (against the test server)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT, Server

README = (ROOT / "README.md").read_text()
README_URL = "http://localhost:3000"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


CURL = [block for block in blocks("bash") if block.lstrip().startswith("curl")]
PYTHON = blocks("python")


def test_the_readme_has_examples() -> None:
    assert len(CURL) >= 4
    assert len(PYTHON) >= 2


@pytest.mark.parametrize("example", CURL, ids=lambda block: block.split()[4].rsplit("/", 1)[-1])
def test_curl_example(server: Server, example: str) -> None:
    command = example.replace(README_URL, server.url).replace("curl -s", "curl -s --fail-with-body")
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    answer = json.loads(result.stdout)
    assert answer["model"].split(":")[0] in {"credit_health", "iris", "book_rating"}
    assert answer.get("cold_start") is not True  # the README's ids are known to the model


@pytest.mark.parametrize("example", PYTHON, ids=["sync_client", "async_client"])
def test_python_example(server: Server, example: str) -> None:
    code = example.replace(README_URL, server.url)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    # each example prints what its comments promise
    for promised in re.findall(r"# (healthy|virginica|\{'setosa'\})", example):
        assert promised in result.stdout
