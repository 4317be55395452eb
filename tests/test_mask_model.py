"""Mask classifier: the baseline's preprocessing and checkpoints give the same probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from model_bundle.monitoring.reference import project
from models.artifact import Artifact
from models.mask.contract import Preprocessing, resize
from models.mask.images import InvalidImageError, load_rgb
from models.mask.network import MaskBaseModel, MaskClassifier, load_network, normalise, preprocess
from models.mask.statistics import STATISTICS, image_statistics
from scripts.imports.mask import import_checkpoint
from scripts.sample_data import mask as mask_sample
from tests.support.commands import run_module
from tests.support.images import decompression_bomb, encode, face, truncated_jpeg
from tests.support.monitors import quiet_monitor

NAME = "mask_import_test"  # keeps the served mask_classifier:latest untouched
BASELINE = Preprocessing()  # 128 x 96 and the baseline's mean/std


def baseline_probabilities(model: nn.Module, path: Path, prep: Preprocessing) -> np.ndarray:
    """The baseline's steps with plain Pillow, numpy and torch: open, RGB, PIL bilinear resize
    to (height, width), to [0, 1], normalise, channels first, forward, softmax."""
    image = Image.open(path).convert("RGB").resize((prep.width, prep.height), Image.BILINEAR)
    x = np.asarray(image, np.float32) / 255.0
    x = (x - np.array(prep.mean, np.float32)) / np.array(prep.std, np.float32)
    with torch.no_grad():
        logits = model(torch.from_numpy(x.transpose(2, 0, 1)).unsqueeze(0))
    return torch.softmax(logits, dim=1).numpy()[0]


def served_probabilities(tag: str, path: Path) -> np.ndarray:
    """What the service computes: decode + resize (front), normalise + forward (runner)."""
    network, prep = load_network(Artifact.load(tag))
    pixels = resize(load_rgb(path.read_bytes()), prep)
    with torch.no_grad():
        return torch.softmax(network(normalise(pixels[None], prep)), dim=1).numpy()[0]


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    directory = tmp_path_factory.mktemp("photos")
    paths = []
    for class_id in (0, 7, 17):
        path = directory / f"{class_id}.jpg"
        path.write_bytes(encode(face(class_id), "JPEG", quality=90))
        paths.append(path)
    return paths


class OtherNet(nn.Module):
    """A user's own small architecture."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 5, stride=2), nn.ReLU(), nn.AdaptiveMaxPool2d(4)
        )
        self.head = nn.Linear(8 * 16, 18)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def test_baseline_best_pth_serves_the_baselines_probabilities(
    tmp_path: Path, photos: list[Path]
) -> None:
    torch.manual_seed(0)
    model = MaskBaseModel().eval()
    checkpoint = tmp_path / "best.pth"
    torch.save(model.state_dict(), checkpoint)

    tag = import_checkpoint(checkpoint, BASELINE, name=NAME)

    assert Artifact.load(tag).metadata["preprocessing"]["height"] == 128
    for path in photos:
        np.testing.assert_allclose(
            served_probabilities(tag, path),
            baseline_probabilities(model, path, BASELINE),
            atol=1e-4,
        )


@pytest.mark.parametrize("kind", ["torchscript", "exported"])
def test_other_architectures_import_as_programs(
    tmp_path: Path, photos: list[Path], kind: str
) -> None:
    torch.manual_seed(1)
    model = OtherNet().eval()
    prep = Preprocessing(height=80, width=60, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    path = tmp_path / f"net.{kind}"
    example = torch.zeros(2, 3, prep.height, prep.width)
    if kind == "torchscript":
        torch.jit.save(torch.jit.trace(model, example), path)
    else:
        batch = torch.export.Dim("batch", min=1, max=64)
        torch.export.save(
            torch.export.export(model, (example,), dynamic_shapes=({0: batch},)), path
        )

    tag = import_checkpoint(path, prep, name=NAME)

    assert Artifact.load(tag).weights == kind
    for photo in photos:
        np.testing.assert_allclose(
            served_probabilities(tag, photo), baseline_probabilities(model, photo, prep), atol=1e-4
        )


def test_wrong_output_shape_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ten_classes.ts"
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
    torch.jit.save(torch.jit.script(net), path)
    with pytest.raises(ValueError, match=r"logits of shape \[N, 18\]; got \(2, 10\)"):
        import_checkpoint(path, BASELINE, name=NAME)


def test_import_command_reports_a_foreign_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save(OtherNet().state_dict(), path)
    result = run_module("scripts.imports.mask", "--checkpoint", str(path), "--name", NAME)
    assert result.returncode == 2
    assert "is not a state_dict of the baseline's BaseModel" in result.stderr


def test_image_statistics_are_the_model_inputs_luma_and_the_uploads_size() -> None:
    image = face(3)
    pixels = resize(image, Preprocessing(height=32, width=24))
    stats = image_statistics(image, pixels)
    luma = np.asarray(Image.fromarray(pixels).convert("L"), float) / 255  # PIL's own luma
    assert stats["brightness"] == pytest.approx(luma.mean(), abs=0.5 / 255)
    assert stats["contrast"] == pytest.approx(luma.std(), abs=1 / 255)
    assert (stats["width"], stats["height"]) == image.size
    assert stats["aspect"] == pytest.approx(image.size[0] / image.size[1])
    grey = Image.new("RGB", (40, 10), (51, 51, 51))
    flat = image_statistics(grey, resize(grey, Preprocessing(height=8, width=6)))
    assert flat == {"brightness": 0.2, "contrast": 0.0, "width": 40, "height": 10, "aspect": 4.0}


def mask_report(tag: str, statistics: list[dict[str, float]], tmp_path: Path) -> dict:
    monitor = quiet_monitor(tmp_path, min_samples=50)
    outputs = [{"label": "0", "probability": 0.5}] * len(statistics)
    monitor.record(NAME, tag, statistics, outputs, ["0"] * len(statistics))
    return monitor.model_report(NAME)


def test_a_reference_folder_gives_photo_statistics_predictions_and_calibration(
    tmp_path: Path,
) -> None:
    torch.manual_seed(0)
    checkpoint = tmp_path / "best.pth"
    torch.save(MaskBaseModel().state_dict(), checkpoint)
    folder = mask_sample.write(tmp_path / "photos", per_class=4, seed=1)  # 0/ .. 17/

    tag = import_checkpoint(checkpoint, BASELINE, name=NAME, reference=folder)

    metadata = Artifact.load(tag).metadata
    reference = metadata["reference"]
    components = [f"embedding_{i}" for i in range(4)]
    assert set(reference["features"]) == {*STATISTICS, *components}
    assert reference["features"]["width"]["rows"] == 72
    assert np.shape(reference["embedding"]["components"]) == (4, 128)
    assert set(reference["predictions"]) == {str(c) for c in range(18)}
    assert sum(reference["predictions"].values()) == pytest.approx(1)
    assert metadata["calibration"]["holdout_rows"] == 72
    assert 0 <= metadata["metrics"]["reference_accuracy"] <= 1

    # What the runner answers: the probabilities, then the embedding's 4 drift components.
    served = MaskClassifier(Artifact.load(tag))
    photos = sorted(folder.rglob("*.jpg"))
    images = [load_rgb(photo.read_bytes()) for photo in photos]
    pixels = np.stack([resize(image, BASELINE) for image in images])
    output = served.classify_with_embedding(pixels)
    assert output.shape == (72, 22)
    np.testing.assert_allclose(output[:, :18], served.classify(pixels), atol=1e-6)
    with torch.inference_mode():
        embedding = served.network.embed(normalise(pixels, BASELINE)).numpy()
    np.testing.assert_allclose(
        output[:, 18:], project(embedding, reference["embedding"]), atol=1e-4
    )

    same = [
        {
            **image_statistics(image, p),
            **{c: float(v) for c, v in zip(components, row, strict=True)},
        }
        for image, p, row in zip(images, pixels, output[:, 18:], strict=True)
    ]
    report = mask_report(tag, same, tmp_path)
    assert report["status"] == "ok" and len(report["features"]) == 9
    assert {f["test"] for f in report["features"] if f["kind"] == "embedding"} == {"psi"}
    dark = [{**s, "brightness": s["brightness"] / 3, "width": 1024.0} for s in same]
    drifted = {f["feature"]: f["drifted"] for f in mask_report(tag, dark, tmp_path)["features"]}
    assert drifted["brightness"] and drifted["width"] and not drifted["contrast"]
    moved = [{**s, "embedding_0": s["embedding_0"] + 10} for s in same]
    drifted = {f["feature"]: f["drifted"] for f in mask_report(tag, moved, tmp_path)["features"]}
    assert drifted["embedding_0"] and not drifted["embedding_1"]


def test_an_unlabelled_folder_gives_no_calibration_and_a_bad_photo_exits_2(
    tmp_path: Path,
) -> None:
    checkpoint = tmp_path / "best.pth"
    torch.save(MaskBaseModel().state_dict(), checkpoint)
    folder = tmp_path / "photos"
    folder.mkdir()
    for n in range(3):
        (folder / f"{n}.png").write_bytes(encode(face(n), "PNG"))
    tag = import_checkpoint(checkpoint, BASELINE, name=NAME, reference=folder)
    metadata = Artifact.load(tag).metadata
    assert metadata["reference"]["features"]["brightness"]["rows"] == 3
    assert "calibration" not in metadata
    with pytest.raises(ValueError, match="subfolders named by class id"):
        import_checkpoint(
            checkpoint, BASELINE, name=NAME, reference=folder, temperature_scaling=True
        )

    (folder / "broken.jpg").write_bytes(truncated_jpeg())
    args = ["--checkpoint", str(checkpoint), "--name", NAME, "--reference", str(folder)]
    result = run_module("scripts.imports.mask", *args)
    assert result.returncode == 2
    assert "broken.jpg" in result.stderr and "could not be decoded" in result.stderr


def encodings() -> list[tuple[str, str, bytes]]:
    """Every image mode in every accepted format that can hold it (JPEG has no alpha ...)."""
    found, photo = [], face()  # drawn once: this runs when the module is collected
    for fmt in ("JPEG", "PNG", "WEBP", "BMP"):
        for mode in ("RGB", "RGBA", "L", "LA", "P", "CMYK", "1"):
            try:
                found.append((mode, fmt, encode(photo.convert(mode), fmt)))
            except OSError:
                continue
    return found


ENCODINGS = encodings()


def test_each_format_and_mode_is_covered() -> None:
    assert {fmt for _, fmt, _ in ENCODINGS} == {"JPEG", "PNG", "WEBP", "BMP"}
    assert {mode for mode, _, _ in ENCODINGS} == {"RGB", "RGBA", "L", "LA", "P", "CMYK", "1"}


@pytest.mark.parametrize(
    ("mode", "fmt", "data"), ENCODINGS, ids=[f"{m}-{f}" for m, f, _ in ENCODINGS]
)
def test_every_mode_and_format_decodes_to_rgb(mode: str, fmt: str, data: bytes) -> None:
    image = load_rgb(data)
    assert (image.mode, image.size) == ("RGB", (384, 512))


def test_exif_orientation_is_applied() -> None:
    upright = face(class_id=5)
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # as a sideways camera stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    rotated = load_rgb(encode(stored, "PNG", exif=exif))
    assert np.array_equal(np.asarray(rotated), np.asarray(upright))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not an image at all", "not an image in a supported format"),
        (encode(face(), "GIF"), "not an image in a supported format"),
        (truncated_jpeg(), "could not be decoded"),
        (decompression_bomb(), "image too large"),
    ],
    ids=["text", "gif", "truncated", "bomb"],
)
def test_bad_uploads_are_refused_with_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidImageError, match=reason):
        load_rgb(data)


def test_pixel_limit_is_checked_before_decoding() -> None:
    with pytest.raises(InvalidImageError, match="384x512 pixels, at most 100,000 accepted"):
        load_rgb(encode(face(), "PNG"), max_pixels=100_000)


def test_preprocess_is_both_steps(photos: list[Path]) -> None:
    x = preprocess(photos[0].read_bytes(), BASELINE)
    assert x.shape == (1, 3, 128, 96) and x.dtype == torch.float32


def test_default_model_learned_far_above_chance(default_models: dict[str, str]) -> None:
    metrics = Artifact.load(default_models["mask_classifier"]).metadata["metrics"]
    assert metrics["holdout_accuracy"] > 5 * metrics["chance_accuracy"]
    assert metrics["holdout_macro_f1"] > 0.3
