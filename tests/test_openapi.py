"""The OpenAPI document is one the ecosystem's tools take: the served ``/docs.json`` (and the
same document packed into the Bento) passes a standard validator, and the clients that
``make client-py`` (openapi-python-client) and ``make client-ts`` (@hey-api/openapi-ts)
generate from it call every endpoint of a real server, uploads included, and parse the
answers and the 400s into their generated types."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import yaml
from openapi_spec_validator import OpenAPIV31SpecValidator

from models.artifact import Artifact
from models.books.model import BookRatingModel
from scripts.sample_data.requests import HEALTHY, SETOSA
from service import ModelBundle
from tests.conftest import BENTOML_HOME
from tests.support.images import encode, face
from tests.support.server import ROOT, Server, home_sharing_models

APIS = {api.name: api for api in ModelBundle.apis.values()}
INFRA = {"livez", "readyz", "healthz", "metrics"}
UNKNOWN_PAIR = {"user_id": 10**9, "isbn": "000000000X"}
MAKE_TIMEOUT_S = 300


def operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for operation in item.values():
            yield path, operation


def resolved(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def assert_valid(document: dict[str, Any]) -> None:
    errors = [str(error) for error in OpenAPIV31SpecValidator(document).iter_errors()]
    assert errors == []


@pytest.fixture(scope="module")
def document(http: httpx.Client) -> dict[str, Any]:
    return http.get("/docs.json").json()


def test_the_document_written_from_the_code_is_valid_openapi_3_1() -> None:
    """In process: what `make openapi` writes, and what the server serves (below)."""
    document = ModelBundle.openapi_spec.asdict()
    assert document["openapi"] == "3.1.0"
    assert_valid(document)


def test_the_documents_version_is_the_projects() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert ModelBundle.openapi_spec.asdict()["info"]["version"] == project["version"]


def test_the_served_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    assert_valid(document)


def test_the_document_with_api_keys_is_valid_too(guarded_server: Server) -> None:
    document = httpx.get(f"{guarded_server.url}/docs.json", timeout=30).json()
    assert_valid(document)
    assert all("security" in op for path, op in operations(document) if path[1:] in APIS)


def test_operation_ids_are_the_endpoint_names(document: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, operation in operations(document)]
    assert sorted(ids) == sorted(set(APIS) | INFRA)
    for path, operation in operations(document):
        assert operation["operationId"] == path.strip("/")


def test_uploads_are_binary_strings_in_a_multipart_body(document: dict[str, Any]) -> None:
    for name, field in (("classify_mask", "image"), ("classify_masks", "images")):
        content = document["paths"][f"/{name}"]["post"]["requestBody"]["content"]
        assert list(content) == ["multipart/form-data"]
        schema = resolved(document, content["multipart/form-data"]["schema"])
        upload = schema["properties"][field]
        upload = upload.get("items", upload)
        assert upload["type"] == "string" and upload["format"] == "binary"
    assert '"file"' not in json.dumps(document)  # Swagger 2.0's type, valid in no OpenAPI 3


def test_every_api_documents_its_errors_with_the_error_schema(document: dict[str, Any]) -> None:
    for name, api in APIS.items():
        responses = document["paths"][api.route]["post"]["responses"]
        errors = {status for status in responses if status >= "400"}
        assert errors == {"400", "413", "415", "500", "503", "504"}, name
        for status in errors:
            schema = responses[status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}, (name, status)
        assert "Retry-After" in responses["503"]["headers"]


def test_optional_fields_are_nullable_as_the_server_answers(document: dict[str, Any]) -> None:
    """BentoML's own document dropped ``null`` from the 200 bodies' optional fields."""
    rating = resolved(document, document["components"]["schemas"]["BookRating"])
    for field in ("book", "reason"):
        assert {"type": "null"} in rating["properties"][field]["anyOf"], field


def test_the_bento_packs_the_served_document(
    document: dict[str, Any], tmp_path: Path, default_models: dict[str, str]
) -> None:
    """``bentoml build`` writes apis/openapi.yaml from the same property the server serves."""
    home = home_sharing_models(tmp_path / "bentoml-home", BENTOML_HOME / "models")
    built = subprocess.run(
        [str(Path(sys.executable).parent / "bentoml"), "build", "--output", "tag"],
        cwd=ROOT,
        env={**os.environ, "BENTOML_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=MAKE_TIMEOUT_S,
        check=True,
    )
    tag = built.stdout.strip().rsplit("__tag__:", 1)[-1].strip()
    name, version = tag.split(":")
    packed = yaml.safe_load(
        (home / "bentos" / name / version / "apis" / "openapi.yaml").read_text()
    )
    assert packed == document


# Generated clients -------------------------------------------------------------------------


def make(*targets: str, **variables: str) -> None:
    command = ["make", *targets, *(f"{key}={value}" for key, value in variables.items())]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=MAKE_TIMEOUT_S)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def clients(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both clients, generated from the served document as docs/API.md says."""
    folder = tmp_path_factory.mktemp("clients")
    make("client-py", "client-ts", OPENAPI=f"{server.url}/docs.json", CLIENTS=str(folder))
    return folder


@pytest.fixture(scope="module")
def known_pair(default_models: dict[str, str]) -> dict[str, Any]:
    """A user and a book the served book model knows."""
    books = BookRatingModel.load(Artifact.load(default_models["book_rating"]))
    return {"user_id": int(books.featurizer.user_ids[0]), "isbn": str(books.featurizer.isbns[-1])}


@pytest.fixture(scope="module")
def photo() -> bytes:
    return encode(face(), "JPEG")


@pytest.fixture(scope="module")
def py(clients: Path, server: Server) -> Iterator[SimpleNamespace]:
    """The generated Python package, imported, and a client of the server."""
    sys.path.insert(0, str(clients / "python"))
    try:
        package = importlib.import_module("model_bundle_client")
        service = importlib.import_module("model_bundle_client.api.service")
        infrastructure = importlib.import_module("model_bundle_client.api.infrastructure")
        models = importlib.import_module("model_bundle_client.models")
        types = importlib.import_module("model_bundle_client.types")
        # raise_on_unexpected_status: an undocumented status fails the test.
        client = package.Client(base_url=server.url, raise_on_unexpected_status=True, timeout=30)
        apis = {name: importlib.import_module(f"{service.__name__}.{name}") for name in APIS}
        infra = {
            name: importlib.import_module(f"{infrastructure.__name__}.{name}") for name in INFRA
        }
        yield SimpleNamespace(client=client, api=apis, infra=infra, m=models, File=types.File)
    finally:
        sys.path.remove(str(clients / "python"))
        for module in [name for name in sys.modules if name.startswith("model_bundle_client")]:
            del sys.modules[module]


def call(py: SimpleNamespace, api: str, body: Any) -> Any:
    response = py.api[api].sync_detailed(client=py.client, body=body)
    return response.status_code, response.parsed


def test_python_client_json_endpoints(py: SimpleNamespace, known_pair: dict[str, Any]) -> None:
    m = py.m
    status, credit = call(py, "predict_credit", m.CreditFeatures.from_dict(HEALTHY))
    assert status == 200 and isinstance(credit, m.CreditPrediction)
    assert credit.label == m.CreditPredictionLabel.HEALTHY and credit.model.startswith("credit")

    items = [m.CreditFeatures.from_dict(HEALTHY)] * 2
    _, batch = call(py, "predict_credit_batch", m.CreditBatch(items=items))
    assert isinstance(batch, m.CreditBatchPrediction) and len(batch.predictions) == 2
    assert all(isinstance(p, m.CreditPrediction) for p in batch.predictions)

    _, iris = call(py, "classify_iris", m.IrisMeasurements.from_dict(SETOSA))
    assert isinstance(iris, m.IrisPrediction) and iris.species == m.IrisPredictionSpecies.SETOSA

    _, rating = call(py, "rate_book", m.BookPair.from_dict(known_pair))
    assert isinstance(rating, m.BookRating) and not rating.cold_start
    assert isinstance(rating.book, m.BookInfo) and rating.book.isbn == known_pair["isbn"]

    _, cold = call(py, "rate_book", m.BookPair.from_dict(UNKNOWN_PAIR))
    assert cold.cold_start and cold.book is None  # null, as documented
    assert cold.reason == m.BookRatingReasonType0.UNKNOWN_USER_AND_BOOK

    pairs = [m.BookPair.from_dict(known_pair), m.BookPair.from_dict(UNKNOWN_PAIR)]
    _, ratings = call(py, "rate_books", m.BookPairs(items=pairs))
    assert [r.cold_start for r in ratings.predictions] == [False, True]

    request = m.RecommendationRequest(user_id=known_pair["user_id"], k=3)
    _, recommended = call(py, "recommend_books", request)
    assert isinstance(recommended, m.Recommendations) and len(recommended.books) == 3
    assert all(isinstance(book, m.RecommendedBook) for book in recommended.books)

    _, served = call(py, "models", m.ModelsRequest())
    assert isinstance(served, m.ServedModels)
    assert {model.tag.split(":")[0] for model in served.models} == {
        "credit_health",
        "iris",
        "book_rating",
        "mask_classifier",
    }


def test_python_client_uploads(py: SimpleNamespace, photo: bytes) -> None:
    m = py.m

    def image() -> Any:
        return py.File(payload=BytesIO(photo), file_name="face.jpg", mime_type="image/jpeg")

    _, one = call(py, "classify_mask", m.ClassifyMaskRequest(image=image()))
    assert isinstance(one, m.MaskPrediction) and len(one.probabilities) == 18
    _, several = call(py, "classify_masks", m.ClassifyMasksRequest(images=[image(), image()]))
    assert isinstance(several, m.MaskPredictions)
    assert [p.class_id for p in several.predictions] == [one.class_id] * 2


def test_python_client_parses_a_400_into_the_error_type(py: SimpleNamespace) -> None:
    m = py.m
    status, error = call(
        py, "predict_credit", m.CreditFeatures.from_dict({**HEALTHY, "debt_ratio": 1e9})
    )
    assert status == 400 and isinstance(error, m.Error)
    assert [problem.loc for problem in error.detail] == [["debt_ratio"]]
    assert all(isinstance(problem, m.Problem) for problem in error.detail)

    junk = py.File(payload=BytesIO(b"not an image"), file_name="a.jpg", mime_type="image/jpeg")
    status, error = call(py, "classify_mask", m.ClassifyMaskRequest(image=junk))
    assert status == 400 and isinstance(error, m.Error) and error.detail[0].loc[0] == "image"


def test_python_client_infrastructure_routes(py: SimpleNamespace) -> None:
    for name in ("livez", "readyz", "healthz"):
        assert py.infra[name].sync_detailed(client=py.client).status_code == 200, name
    assert "# TYPE" in py.infra["metrics"].sync(client=py.client)


def test_typescript_client_calls_every_endpoint(
    clients: Path,
    server: Server,
    known_pair: dict[str, Any],
    photo: bytes,
    tmp_path: Path,
) -> None:
    """Compiled with tsc --strict, then run by Node (tests/support/typescript_client.ts)."""
    work = clients  # the program imports ./typescript, generated there
    shutil.copy(ROOT / "tests" / "support" / "typescript_client.ts", work)
    (work / "node_modules").unlink(missing_ok=True)
    (work / "node_modules").symlink_to(ROOT / "node_modules")  # zod, @types/node
    (work / "tsconfig.json").write_text(
        json.dumps(
            {
                "compilerOptions": {
                    "strict": True,
                    "target": "es2022",
                    "module": "commonjs",
                    "moduleResolution": "node10",
                    "types": ["node"],
                    "outDir": "out",
                    "skipLibCheck": True,
                },
                "files": ["typescript_client.ts"],
            }
        )
    )
    compiled = subprocess.run(
        [str(ROOT / "node_modules" / ".bin" / "tsc"), "-p", str(work / "tsconfig.json")],
        capture_output=True,
        text=True,
        timeout=MAKE_TIMEOUT_S,
    )
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    (tmp_path / "face.jpg").write_bytes(photo)
    (tmp_path / "junk.jpg").write_bytes(b"not an image")
    inputs = {
        "credit": HEALTHY,
        "iris": SETOSA,
        "known": known_pair,
        "unknown": UNKNOWN_PAIR,
        "photo": str(tmp_path / "face.jpg"),
        "notAnImage": str(tmp_path / "junk.jpg"),
    }
    (tmp_path / "inputs.json").write_text(json.dumps(inputs))
    ran = subprocess.run(
        [
            "node",
            str(work / "out" / "typescript_client.js"),
            server.url,
            str(tmp_path / "inputs.json"),
        ],
        capture_output=True,
        text=True,
        timeout=MAKE_TIMEOUT_S,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    answers = json.loads(ran.stdout)
    assert answers["predict_credit"] == "healthy"
    assert answers["predict_credit_batch"] == ["healthy", "healthy"]
    assert answers["classify_iris"] == "setosa"
    assert answers["rate_book"]["title"]  # a known book's info
    assert answers["rate_book_cold_start"] == {"reason": "unknown_user_and_book", "book": None}
    assert answers["rate_books"] == [False, True]
    assert len(answers["recommend_books"]) == 3
    assert answers["classify_mask"] == 18
    assert len(answers["classify_masks"]) == 2
    assert len(answers["models"]) == 4
    assert answers["livez"] == answers["readyz"] == answers["healthz"] == 200
    assert answers["metrics"] is True
    assert answers["bad_input"] == [["debt_ratio"]]
    assert answers["bad_upload"]["loc"][0] == "image" and answers["bad_upload"]["error"]
