"""The README's and docs/API.md's curl and Python examples work as written (against the test
server), and the README's settings table matches model_bundle.settings."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from model_bundle.catalogue import CATALOGUE
from tests.support.commands import fresh_python
from tests.support.images import encode, face
from tests.support.server import ROOT, Server

README = (ROOT / "README.md").read_text()
API = (ROOT / "docs" / "API.md").read_text()
DOCUMENTS = {"README": README, "API": API}
README_URL = "http://localhost:3000"
MODELS = {entry.name for entry in CATALOGUE}


def blocks(language: str, text: str = README) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def curl_blocks(text: str) -> list[str]:
    return [block for block in blocks("bash", text) if block.lstrip().startswith("curl")]


CURL = curl_blocks(README)
PYTHON = blocks("python")
# Every example of both pages, with an id naming its page: (id, example).
CURL_EXAMPLES = [
    (f"{page}-{block.split()[4].rsplit('/', 1)[-1]}", block)
    for page, text in DOCUMENTS.items()
    for block in curl_blocks(text)
]
PYTHON_EXAMPLES = [
    (f"{page}-{number}", block)
    for page, text in DOCUMENTS.items()
    for number, block in enumerate(blocks("python", text), start=1)
]


def test_the_readme_has_examples() -> None:
    assert len(CURL) >= 5
    assert len(PYTHON) >= 3


def test_the_api_page_has_examples() -> None:
    assert curl_blocks(API)
    assert len(blocks("python", API)) >= 3  # images from bytes, the async client, retries


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stands in for the examples' face.jpg."""
    path = tmp_path_factory.mktemp("readme") / "face.jpg"
    path.write_bytes(encode(face(), "JPEG"))
    return path


def as_written(example: str, server: Server, photo: Path) -> str:
    return example.replace(README_URL, server.url).replace("face.jpg", str(photo))


def answered(answer: dict) -> list[dict]:
    """The prediction objects in an answer: itself, a batch's predictions, or /models' list."""
    if "predictions" in answer:
        return answer["predictions"]
    if "models" in answer:
        return [{"model": model["tag"]} for model in answer["models"]]
    return [answer]


@pytest.mark.parametrize(
    "example", [block for _, block in CURL_EXAMPLES], ids=[name for name, _ in CURL_EXAMPLES]
)
def test_curl_example(server: Server, photo: Path, example: str) -> None:
    command = as_written(example, server, photo).replace("curl -s", "curl -s --fail-with-body")
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    answer = json.loads(result.stdout)
    predictions = answered(answer)
    assert predictions
    for prediction in predictions:
        assert prediction["model"].split(":")[0] in MODELS
        assert prediction.get("cold_start") is not True  # the examples' ids are known
    if "models" in answer:
        assert {p["model"].split(":")[0] for p in predictions} == MODELS


def promises(example: str) -> list[str]:
    """What the example's print lines say, in `# ...` comments, they print (exact values)."""
    return re.findall(r"^\s*(?:\w+ = )?.*print\(.*# (.+?)(?: \(.*)?$", example, re.MULTILINE)


def test_every_endpoint_has_a_python_example() -> None:
    called = set(re.findall(r"client\.(\w+)\(", "".join(b for _, b in PYTHON_EXAMPLES)))
    routes = set(re.findall(r"\*\*`POST /(\w+)`\*\*", README + API))
    assert len(routes) == 9
    assert routes <= called, routes - called


@pytest.mark.parametrize(
    "example", [block for _, block in PYTHON_EXAMPLES], ids=[name for name, _ in PYTHON_EXAMPLES]
)
def test_python_example(server: Server, photo: Path, example: str) -> None:
    code = as_written(example, server, photo)
    result = fresh_python(code)
    assert result.returncode == 0, result.stderr
    promised = promises(example)
    assert promised, "an example promises nothing checkable"
    for line in promised:  # "0.99..." promises a prefix
        assert line.removesuffix("...") in result.stdout, (line, result.stdout)


def settings_table() -> dict[str, str]:
    """The README's settings table: variable -> default, as written (backticks dropped)."""
    section = README.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| ([^|]*) \|", section, flags=re.MULTILINE)
    assert rows, "no settings table under ## Settings"
    return {variable: default.strip().strip("`") for variable, default in rows}


def test_the_settings_table_is_the_settings_module() -> None:
    from model_bundle.settings import SETTINGS

    table = settings_table()
    declared = {setting.variable: setting.default_text for setting in SETTINGS}
    for variable, default in declared.items():
        assert variable in table, f"{variable} is missing from the README's settings table"
        assert table[variable] == default, (variable, table[variable], default)
    listed = {variable for variable in table if variable.startswith("MODEL_BUNDLE_")}
    assert listed <= set(declared), listed - set(declared)
