"""Mask endpoints end to end: uploads in every format, from paths and bytes, and bad uploads."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import bentoml
import httpx
import numpy as np
import pytest
from PIL import Image

from models.mask.contract import class_parts
from tests.support.images import decompression_bomb, encode, face, truncated_jpeg
from tests.support.server import Server
from tests.test_mask_model import served_probabilities


@pytest.fixture(scope="module")
def client(server: Server) -> bentoml.SyncHTTPClient:
    with bentoml.SyncHTTPClient(server.url) as client:
        yield client


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("upload") / "face.jpg"
    path.write_bytes(encode(face(class_id=13, seed=5), "JPEG", quality=90))
    return path


def post_image(http: httpx.Client, data: bytes, name: str = "face.png") -> httpx.Response:
    return http.post("/classify_mask", files={"image": (name, data)})


def test_classify_mask_from_a_path(
    client: bentoml.SyncHTTPClient, photo: Path, default_models: dict[str, str]
) -> None:
    answer = client.classify_mask(image=photo)
    expected = served_probabilities(default_models["mask_classifier"], photo)
    np.testing.assert_allclose(answer["probabilities"], expected, atol=1e-4)
    class_id = int(np.argmax(expected))
    assert answer["class_id"] == class_id
    assert (answer["mask"], answer["gender"], answer["age"]) == class_parts(class_id)
    assert answer["confidence"] == pytest.approx(expected[class_id], abs=1e-4)
    assert answer["marginals"]["mask"]["wear"] == pytest.approx(sum(expected[:6]), abs=1e-4)
    assert sum(answer["marginals"]["age"].values()) == pytest.approx(1, abs=1e-4)
    assert answer["model"] == default_models["mask_classifier"]


def test_classify_mask_from_bytes(client: bentoml.SyncHTTPClient, photo: Path) -> None:
    from_path = client.classify_mask(image=photo)
    from_bytes = client.classify_mask(image=Image.open(io.BytesIO(photo.read_bytes())))
    assert from_bytes["probabilities"] == pytest.approx(from_path["probabilities"], abs=1e-6)


def test_classify_masks_answers_in_order(client: bentoml.SyncHTTPClient, tmp_path: Path) -> None:
    paths = []
    for class_id in (0, 9, 17):
        paths.append(tmp_path / f"{class_id}.png")
        paths[-1].write_bytes(encode(face(class_id, seed=2), "PNG"))
    answer = client.classify_masks(images=paths)
    singles = [client.classify_mask(image=path) for path in paths]
    assert [p["class_id"] for p in answer["predictions"]] == [s["class_id"] for s in singles]
    for batched, single in zip(answer["predictions"], singles, strict=True):
        assert batched["probabilities"] == pytest.approx(single["probabilities"], abs=1e-5)


def test_async_client_concurrent_uploads(server: Server, photo: Path) -> None:
    """Concurrent uploads through one async client, each photo given as an image in memory.

    Not as paths: BentoML's client opens a path's file and, when *any* call ends, closes
    every file it opened, so a concurrent upload still sending its body fails ("read of
    closed file"). docs/API.md says so."""
    data = photo.read_bytes()

    async def main() -> list[dict]:
        async with bentoml.AsyncHTTPClient(server.url) as client:
            uploads = (client.classify_mask(image=Image.open(io.BytesIO(data))) for _ in range(8))
            return await asyncio.gather(*uploads)

    answers = asyncio.run(main())
    assert len(answers) == 8
    assert len({a["class_id"] for a in answers}) == 1


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [("RGB", "PNG"), ("RGBA", "PNG"), ("L", "WEBP"), ("P", "BMP"), ("CMYK", "JPEG"), ("1", "PNG")],
)
def test_formats_and_modes_are_served(http: httpx.Client, mode: str, fmt: str) -> None:
    response = post_image(http, encode(face().convert(mode), fmt), f"face.{fmt.lower()}")
    assert response.status_code == 200, response.text
    assert 0 <= response.json()["class_id"] < 18


def test_exif_rotation_is_applied_by_the_server(http: httpx.Client) -> None:
    upright = face(class_id=4, seed=9)
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways = encode(upright.transpose(Image.Transpose.ROTATE_90), "PNG", exif=exif)
    rotated = post_image(http, sideways).json()["probabilities"]
    assert rotated == pytest.approx(
        post_image(http, encode(upright, "PNG")).json()["probabilities"]
    )


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"hello, not an image", "not an image in a supported format"),
        (encode(face(), "GIF"), "not an image in a supported format"),
        (truncated_jpeg(), "could not be decoded"),
        (decompression_bomb(), "image too large"),
    ],
    ids=["text", "gif", "truncated", "bomb"],
)
def test_bad_upload_is_a_400_naming_the_field(http: httpx.Client, data: bytes, reason: str) -> None:
    response = post_image(http, data)
    assert response.status_code == 400
    [error] = response.json()["detail"]
    assert error["loc"] == ["image"] and reason in error["msg"]


def test_bad_image_in_a_batch_is_named_by_position(http: httpx.Client) -> None:
    good = encode(face(), "PNG")
    files = [
        ("images", ("a.png", good)),
        ("images", ("b.png", b"junk")),
        ("images", ("c.png", good)),
    ]
    response = http.post("/classify_masks", files=files)
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["images", 1]


def test_upload_limits(http: httpx.Client) -> None:
    too_big = http.post("/classify_mask", files={"image": ("big.jpg", b"\0" * (10 * 2**20 + 1))})
    assert too_big.status_code == 413
    assert "MODEL_BUNDLE_MAX_REQUEST_BYTES" in too_big.json()["error"]
    image = encode(face().resize((48, 64)), "PNG")
    too_many = http.post(
        "/classify_masks", files=[("images", (f"{i}.png", image)) for i in range(33)]
    )
    assert too_many.status_code == 400
    assert too_many.json()["detail"][0]["type"] == "too_long"
    other = http.post("/classify_mask", files={"image": ("a.png", image), "photo": ("b", image)})
    assert other.status_code == 400
    assert other.json()["detail"] == [
        {"type": "extra_forbidden", "loc": ["photo"], "msg": "unexpected field"}
    ]
    missing = http.post("/classify_mask", **multipart([]))
    assert missing.status_code == 400
    assert missing.json()["detail"][0]["loc"] == ["image"]


def multipart(parts: list[tuple[str, str | None, bytes]]) -> dict:
    """A multipart/form-data request: (field, filename or None for a text field, content)."""
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--b0undary\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        body += content + b"\r\n"
    body += b"--b0undary--\r\n"
    return {"content": body, "headers": {"content-type": "multipart/form-data; boundary=b0undary"}}


def test_text_instead_of_a_file_is_refused_not_fetched(http: httpx.Client, server: Server) -> None:
    # BentoML would download a URL given as the value of a file field; we refuse it.
    url = f"{server.url}/livez".encode()
    response = http.post("/classify_mask", **multipart([("image", None, url)]))
    assert response.status_code == 400
    assert response.json()["detail"] == [
        {"type": "invalid_image", "loc": ["image"], "msg": "must be an uploaded file"}
    ]


def test_wrong_content_types_are_415(http: httpx.Client) -> None:
    assert http.post("/classify_mask", json={"image": "x"}).status_code == 415
    assert http.post("/predict_credit", files={"debt_ratio": ("x", b"1")}).status_code == 415
    response = http.post("/predict_credit", content="x", headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert "takes application/json" in response.json()["error"]


def test_the_server_keeps_serving_after_bad_uploads(
    http: httpx.Client, server: Server, photo: Path
) -> None:
    for data in (b"junk", truncated_jpeg(), decompression_bomb()):
        post_image(http, data)
    assert post_image(http, photo.read_bytes(), "face.jpg").status_code == 200
    assert "status=500" not in server.log_text()
