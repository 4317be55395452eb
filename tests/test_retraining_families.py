"""Retraining book_rating and mask_classifier: in process, a new population's ratings and
darker photos train a version that does better on them than the primary, judged through
the serving code; bad data is refused naming the row or the file; the same data has the
same fingerprint. Then one run of each through the CLI against the real server: the new
version goes out as a canary, with the held-out figures as its reasons."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import bentoml
import httpx
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from models.artifact import Artifact, data_hash
from scripts.retrain.books import BooksFamily
from scripts.retrain.cli import FAMILIES
from scripts.retrain.family import Family
from scripts.retrain.mask import MaskFamily
from scripts.retrain.rows import DataError
from scripts.sample_data import books as book_sample
from scripts.train.book_data import load_boostcamp
from scripts.train.books import sample
from tests.conftest import BENTOML_HOME
from tests.support.images import encode, face, truncated_jpeg
from tests.support.server import ROOT, Server, separate_server

ADMIN_KEY = "families-admin-key-7d1b"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
BOOK_EPOCHS, MASK_EPOCHS, MASK_PER_CLASS = "12", "8", "4"  # small: each run well under a minute


def options(family: Family, *args: str) -> argparse.Namespace:
    """The CLI's options of ``family`` (scripts/retrain/cli.py's parser, the same defaults)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name")
    family.add_options(parser)
    return parser.parse_args(list(args))


def lineage_of(family: Family, opts: argparse.Namespace, data: object, parent: str) -> dict:
    return {"parent": parent, "data_hash": family.digest(opts, data), "rows": family.size(data)}


# --- book_rating -------------------------------------------------------------------------


def newcomers(base_dir: Path, users: int = 60, per_user: int = 25, seed: int = 7) -> pd.DataFrame:
    """Readers of a new population, unknown to the primary, who rate the base's popular books
    three points below everyone else: the primary answers them with its cold-start fallback."""
    base = load_boostcamp(base_dir).train
    books = base.groupby("isbn")["rating"].agg(["mean", "size"]).sort_values("size")
    popular = books.index[-200:].to_numpy()
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(users):
        for isbn in rng.choice(popular, per_user, replace=False):
            rating = books.loc[isbn, "mean"] - 3 + rng.normal(0, 0.7)
            rows.append((900_000 + user, isbn, int(np.clip(round(rating), 1, 10))))
    return pd.DataFrame(rows, columns=["user_id", "isbn", "rating"])


@pytest.fixture(scope="module")
def book_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small base (the "tiny" sample) and the newcomers' ratings file."""
    directory = tmp_path_factory.mktemp("books")
    base = book_sample.write(directory / "base", "tiny", seed=0)
    newcomers(base).to_csv(directory / "new.csv", index=False)
    return base, directory / "new.csv"


def test_book_retrain_is_better_on_the_new_readers(
    default_models: dict[str, str], book_files: tuple[Path, Path]
) -> None:
    base, new = book_files
    family = FAMILIES["book_rating"]
    opts = options(family, "--ratings", str(new), "--data-dir", str(base), "--epochs", BOOK_EPOCHS)
    opts.name = "book_family_test"
    data = family.read(opts)
    rows, holdout = family.split(opts, data)
    assert len(holdout) == 300 and len(rows.new) == 1200  # a fifth of the 1,500 new ratings
    primary = default_models["book_rating"]
    tag = family.train(opts, rows, holdout, lineage_of(family, opts, data, primary))
    before, after = family.score(primary, holdout), family.score(tag, holdout)
    print(f"book_rating held-out RMSE: primary {before:.4f}, retrained {after:.4f}")
    assert after < before - 1.0, (before, after)
    lineage = Artifact.load(tag).metadata["lineage"]
    assert lineage["parent"] == primary and lineage["data_hash"] == family.digest(opts, data)
    assert lineage["rows"] == 1500 and lineage["files"] == [str(new)]


def test_book_ratings_with_a_bad_row_are_refused_naming_it(
    tmp_path: Path, book_files: tuple[Path, Path]
) -> None:
    base, _ = book_files
    rows = newcomers(base, users=3, per_user=5).astype({"rating": object, "user_id": object})
    rows.loc[2, "rating"] = 11
    rows.loc[4, "user_id"] = "reader"
    rows.to_csv(tmp_path / "bad.csv", index=False)
    family = FAMILIES["book_rating"]
    with pytest.raises(DataError) as refused:
        family.read(options(family, "--ratings", str(tmp_path / "bad.csv")))
    message = str(refused.value)
    assert str(tmp_path / "bad.csv") in message and "2 bad rows" in message, message
    assert "row 3: rating '11' is not an integer 1..10" in message, message
    assert "row 5: user_id 'reader' is not an integer" in message, message
    rows[["user_id", "isbn"]].to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(DataError, match="no column rating"):
        family.read(options(family, "--ratings", str(tmp_path / "short.csv")))


def test_book_data_twice_has_the_same_fingerprint_and_split(book_files: tuple[Path, Path]) -> None:
    base, new = book_files
    family = BooksFamily()
    opts = options(family, "--ratings", str(new), "--data-dir", str(base))
    first, second = family.read(opts), family.read(opts)
    assert family.digest(opts, first) == family.digest(opts, second)
    pd.testing.assert_frame_equal(family.split(opts, first)[1], family.split(opts, second)[1])
    other = options(family, "--ratings", str(new), "--data-dir", str(base), "--seed", "1")
    assert family.digest(other, first) != family.digest(opts, first)  # another held-out fifth


def test_without_a_data_dir_the_base_is_what_the_default_version_was_trained_on(
    default_models: dict[str, str],
) -> None:
    """The default book version's data hash is the regenerated sample's (scripts.train.books)."""
    base = sample(0)
    stored = Artifact.load(default_models["book_rating"]).metadata["data_hash"]
    assert data_hash(base.train, base.users, base.books) == stored


# --- mask_classifier ---------------------------------------------------------------------


def darker(class_id: int, seed: int) -> Image.Image:
    """A face photographed in half the light."""
    pixels = np.asarray(face(class_id, seed), np.float32) * 0.5
    return Image.fromarray(pixels.astype(np.uint8))


@pytest.fixture(scope="module")
def dark_photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten darker photos of every class in DIR/<class id>/."""
    folder = tmp_path_factory.mktemp("photos")
    for class_id in range(18):
        (folder / str(class_id)).mkdir()
        for k in range(10):
            darker(class_id, 1000 + 100 * class_id + k).save(folder / f"{class_id}/{k}.jpg")
    return folder


def test_mask_retrain_is_better_on_darker_photos(
    default_models: dict[str, str], dark_photos: Path
) -> None:
    family = FAMILIES["mask_classifier"]
    args = ["--photos", str(dark_photos), "--per-class", MASK_PER_CLASS, "--epochs", MASK_EPOCHS]
    opts = options(family, *args)
    opts.name = "mask_family_test"
    data = family.read(opts)
    rows, holdout = family.split(opts, data)
    assert np.bincount(holdout.labels).tolist() == [2] * 18  # a fifth of every class
    assert not set(rows.paths) & set(holdout.paths)
    primary = default_models["mask_classifier"]
    tag = family.train(opts, rows, holdout, lineage_of(family, opts, data, primary))
    before, after = family.score(primary, holdout), family.score(tag, holdout)
    print(f"mask_classifier held-out balanced accuracy: primary {before:.4f}, new {after:.4f}")
    assert after > before + 0.1, (before, after)
    metadata = Artifact.load(tag).metadata
    assert metadata["lineage"]["parent"] == primary
    assert metadata["lineage"]["started_from"] == primary  # fine-tuned, not from scratch
    assert metadata["metrics"]["train_images"] == 18 * int(MASK_PER_CLASS) + 144


def test_bad_photos_are_refused_naming_the_file(tmp_path: Path) -> None:
    family = MaskFamily()
    (tmp_path / "3").mkdir()
    face(3).save(tmp_path / "3" / "good.jpg")
    (tmp_path / "3" / "broken.jpg").write_bytes(truncated_jpeg())
    with pytest.raises(DataError, match=r"3/broken\.jpg: image could not be decoded"):
        family.read(options(family, "--photos", str(tmp_path)))
    (tmp_path / "3" / "broken.jpg").unlink()
    (tmp_path / "18").mkdir()
    (tmp_path / "18" / "a.png").write_bytes(encode(face(0), "PNG"))
    with pytest.raises(DataError, match=r"18/a\.png: not in a class folder \(DIR/0 \.\. DIR/17\)"):
        family.read(options(family, "--photos", str(tmp_path)))
    (tmp_path / "18" / "a.png").rename(tmp_path / "loose.png")
    with pytest.raises(DataError, match=r"loose\.png: not in a class folder"):
        family.read(options(family, "--photos", str(tmp_path)))
    with pytest.raises(DataError, match="no such folder"):
        family.read(options(family, "--photos", str(tmp_path / "missing")))


def test_photos_twice_have_the_same_fingerprint(dark_photos: Path) -> None:
    family = MaskFamily()
    opts = options(family, "--photos", str(dark_photos))
    first, second = family.read(opts), family.read(opts)
    assert family.digest(opts, first) == family.digest(opts, second)
    assert family.split(opts, first)[1].paths == family.split(opts, second)[1].paths
    assert family.digest(options(family, "--photos", str(dark_photos), "--no-base"), first) != (
        family.digest(opts, first)
    )


# --- through the CLI and the real server --------------------------------------------------


@pytest.fixture(scope="module")
def bundle(
    default_models: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    env = {"MODEL_BUNDLE_ADMIN_KEYS": ADMIN_KEY}
    env["MODEL_BUNDLE_STATE_DIR"] = str(tmp_path_factory.mktemp("families-state"))
    directory = tmp_path_factory.mktemp("families")
    with separate_server(directory, BENTOML_HOME / "models", env) as running:
        yield running


def retrain(server: Server, model: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BENTOML_HOME": str(BENTOML_HOME), "BENTOML_DO_NOT_TRACK": "true"}
    command = [sys.executable, "-m", "scripts.retrain", model, "--name", f"{model}_retrain_test"]
    command += ["--url", server.url, "--admin-key", ADMIN_KEY, *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def admin_state(server: Server, model: str) -> dict:
    listing = httpx.get(f"{server.url}/admin/models", headers=ADMIN, timeout=30).json()
    return next(m for m in listing["models"] if m["model"] == model)


@pytest.mark.e2e  # its own server (separate_server), not a server fixture
def test_book_retrain_through_the_cli_goes_out_as_a_canary(
    bundle: Server, book_files: tuple[Path, Path]
) -> None:
    base, new = book_files
    primary = admin_state(bundle, "book_rating")["primary"]
    run = retrain(
        bundle,
        "book_rating",
        "--ratings",
        str(new),
        "--data-dir",
        str(base),
        "--epochs",
        BOOK_EPOCHS,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "is out as a canary" in run.stdout, run.stdout
    assert "held-out rmse" in run.stdout and "better by" in run.stdout, run.stdout
    served = admin_state(bundle, "book_rating")
    candidate = served["candidate"]
    assert candidate and candidate.startswith("book_rating_retrain_test:"), served
    assert (served["primary"], served["mode"]) == (primary, "canary")
    assert bentoml.models.get(candidate).info.metadata["lineage"]["parent"] == primary
    answer = httpx.post(f"{bundle.url}/rate_book", json={"user_id": 900_001, "isbn": "0"})
    assert answer.status_code == 200, answer.text  # the bundle serves on, the candidate out


@pytest.mark.e2e  # its own server (separate_server), not a server fixture
def test_mask_retrain_through_the_cli_goes_out_as_a_canary(
    bundle: Server, dark_photos: Path
) -> None:
    primary = admin_state(bundle, "mask_classifier")["primary"]
    args = ["--photos", str(dark_photos), "--per-class", MASK_PER_CLASS, "--epochs", MASK_EPOCHS]
    run = retrain(bundle, "mask_classifier", *args)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "is out as a canary" in run.stdout, run.stdout
    assert "held-out balanced_accuracy" in run.stdout, run.stdout
    served = admin_state(bundle, "mask_classifier")
    assert served["candidate"].startswith("mask_classifier_retrain_test:"), served
    assert served["primary"] == primary
    again = retrain(bundle, "mask_classifier", *args)  # the same photos: nothing new
    assert again.returncode == 0, again.stderr
    assert "nothing new is registered" in again.stdout, again.stdout
    assert "is served already (candidate)" in again.stdout, again.stdout
