"""Book rating: featuriser parity with the baseline, checkpoint parity with pytorch-fm, top-k."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torchfm.model.ffm import FieldAwareFactorizationMachineModel

from models.artifact import Artifact
from models.books.featurizer import FIELDS, BookCatalogue, BookFeaturizer
from models.books.model import BookRatingModel
from models.books.network import FieldAwareFactorizationMachine
from scripts.imports.books import import_checkpoint
from scripts.sample_data import books as book_sample
from scripts.train.book_data import load_book_crossing, load_boostcamp
from tests.support.commands import run_module
from tests.support.monitors import quiet_monitor

NAME = "book_import_test"  # keeps the served book_rating:latest untouched


def write_awkward(directory: Path) -> Path:
    """Boostcamp-format CSVs with the cases that trip featurisers up."""
    directory.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "user_id": [11, 12, 13, 14, 15, 99],
            "location": [
                "timmins, ontario, canada",
                "ottawa, ontario, canada, north america",  # an extra part
                "  porto,  n/a, portugal",  # leading spaces kept
                "berlin, berlin, germany",
                "timmins, ontario, canada",
                "nowhere, n/a, n/a",  # in users.csv, never rated
            ],
            "age": [17, np.nan, 45, 71, np.nan, 30],
        }
    ).to_csv(directory / "users.csv", index=False)
    pd.DataFrame(
        {
            "isbn": ["0002005018", "080652121X", "0060973129", "0374157065", "0393045218"],
            "book_title": ["A", "B", "C", "D", "E"],
            "book_author": ["Ann", "Bob", np.nan, "Ann", "Cy"],
            "year_of_publication": [2001, 1999, 1991, np.nan, 1999],
            "publisher": ["P1", "P2", "P1", "P3", np.nan],
            "img_url": ["http://x/a.jpg", np.nan, "http://x/c.jpg", "http://x/d.jpg", "u"],
            "language": ["en", np.nan, "en", "de", "en"],
            "category": ["['Fiction']", np.nan, "['History']", "['Fiction']", np.nan],
            "summary": ["s1", "s2", np.nan, "s4", "s5"],
            "img_path": ["a", "b", "c", "d", "e"],
        }
    ).to_csv(directory / "books.csv", index=False)
    pd.DataFrame(
        {
            "user_id": [11, 12, 13, 11, 14, 12, 13, 16],  # 16 has no users.csv row
            "isbn": [
                "0002005018",
                "080652121X",
                "0002005018",
                "0060973129",
                "0374157065",
                "0393045218",
                "9999999999",
                "0374157065",
            ],  # 9999999999: not in books.csv
            "rating": [8, 5, 9, 7, 3, 10, 6, 4],
        }
    ).to_csv(directory / "train_ratings.csv", index=False)
    # an X keeps pandas from reading the column as integers in the baseline's own read_csv
    test = pd.DataFrame(
        {
            "user_id": [15, 11, 17, 12],
            "isbn": ["0374157065", "0393045218", "0002005018", "080652121X"],
            "rating": 0,
        }
    )
    test.to_csv(directory / "test_ratings.csv", index=False)
    test.to_csv(directory / "sample_submission.csv", index=False)
    return directory


def age_map(age: float) -> int:
    age = int(age)
    for bound, value in ((20, 1), (30, 2), (40, 3), (50, 4), (60, 5)):
        if age < bound:
            return value
    return 6


def baseline_features(directory: Path) -> tuple[np.ndarray, np.ndarray]:
    """The baseline's preprocessing re-done step by step with pandas (train and test X)."""
    users = pd.read_csv(directory / "users.csv")
    books = pd.read_csv(directory / "books.csv")
    train = pd.read_csv(directory / "train_ratings.csv")
    test = pd.read_csv(directory / "test_ratings.csv")
    sub = pd.read_csv(directory / "sample_submission.csv")
    user2idx = {u: i for i, u in enumerate(pd.concat([train.user_id, sub.user_id]).unique())}
    isbn2idx = {b: i for i, b in enumerate(pd.concat([train.isbn, sub.isbn]).unique())}
    for frame in (train, test, users):
        frame["user_id"] = frame["user_id"].map(user2idx)
    for frame in (train, test, books):
        frame["isbn"] = frame["isbn"].map(isbn2idx)
    for part, name in enumerate(("location_city", "location_state", "location_country")):
        users[name] = users["location"].apply(lambda x, p=part: x.split(",")[p])
    users = users.drop(columns="location")
    book_cols = books[["isbn", "category", "publisher", "language", "book_author"]]
    context = pd.concat([train, test]).merge(users, on="user_id", how="left")
    context = context.merge(book_cols, on="isbn", how="left")
    frames = [
        frame.merge(users, on="user_id", how="left").merge(book_cols, on="isbn", how="left")
        for frame in (train, test)
    ]
    for name in FIELDS["boostcamp"][3:]:
        index = {v: k for k, v in enumerate(context[name].unique())}
        for frame in frames:
            frame[name] = frame[name].map(index)
    fill = int(frames[0]["age"].mean())
    for frame in frames:
        frame["age"] = frame["age"].fillna(fill).apply(age_map)
    return tuple(frame[list(FIELDS["boostcamp"])].to_numpy(np.int64) for frame in frames)


def test_featuriser_equals_the_baseline_on_awkward_data(tmp_path: Path) -> None:
    data = load_boostcamp(write_awkward(tmp_path))
    featurizer = BookFeaturizer.fit(data.users, data.books, data.train, data.test, data.submission)
    expected_train, expected_test = baseline_features(tmp_path)

    train = featurizer.encode(data.train["user_id"].tolist(), data.train["isbn"].tolist())
    np.testing.assert_array_equal(train.x, expected_train)
    assert train.user_known.all() and train.book_known.all()
    test = featurizer.encode(data.test["user_id"].tolist(), data.test["isbn"].tolist())
    np.testing.assert_array_equal(test.x, expected_test)
    # the baseline's field sizes: users, isbns, 6 age bins, then each vocabulary's size
    assert featurizer.field_dims[:3] == (7, 6, 6)  # user 16 and 17 have no users.csv row


def test_featuriser_keeps_isbn_strings_and_round_trips(tmp_path: Path) -> None:
    data = load_boostcamp(write_awkward(tmp_path))
    featurizer = BookFeaturizer.fit(data.users, data.books, data.train, data.test, data.submission)
    assert featurizer.isbns[0] == "0002005018" and "080652121X" in featurizer.isbns.tolist()
    featurizer.save(tmp_path)
    loaded = BookFeaturizer.load(tmp_path)
    pairs = ([11, 99, 12], ["0002005018", "0002005018", "nope"])
    original, again = featurizer.encode(*pairs), loaded.encode(*pairs)
    np.testing.assert_array_equal(original.x, again.x)
    assert again.user_known.tolist() == [True, False, True]  # 99 never rated: unknown
    assert again.book_known.tolist() == [True, True, False]


def test_ids_layout_has_two_fields(tmp_path: Path) -> None:
    data = load_boostcamp(write_awkward(tmp_path))
    featurizer = BookFeaturizer.fit(
        data.users, data.books, data.train, data.test, data.submission, layout="ids"
    )
    assert featurizer.field_dims == (7, 6)
    assert featurizer.encode([13], ["080652121X"]).x.tolist() == [[2, 1]]


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return book_sample.write(tmp_path_factory.mktemp("books"), "tiny", seed=3)


@pytest.mark.parametrize(("output", "wrap"), [("sigmoid", None), ("raw", "state")])
def test_pytorch_fm_checkpoint_serves_its_own_predictions(
    sample_dir: Path, tmp_path: Path, output: str, wrap: str | None
) -> None:
    data = load_boostcamp(sample_dir)
    featurizer = BookFeaturizer.fit(data.users, data.books, data.train, data.test, data.submission)
    torch.manual_seed(0)
    theirs = FieldAwareFactorizationMachineModel(featurizer.field_dims, 6).eval()
    with torch.no_grad():
        theirs.linear.bias.fill_(5.5)  # raw scores inside 1..10, so clipping hides nothing
    checkpoint = tmp_path / "ffm.pt"
    state = theirs.state_dict()
    torch.save(state if wrap is None else {wrap: state, "args": {"embed_dim": 6}}, checkpoint)

    tag = import_checkpoint(checkpoint, sample_dir, output=output, name=NAME)

    served = BookRatingModel.load(Artifact.load(tag))
    pairs = list(zip(data.train["user_id"], data.train["isbn"], strict=True))[:200]
    ratings = np.array([r["rating"] for r in served.rate(pairs)])
    x = torch.from_numpy(featurizer.encode(*zip(*pairs, strict=True)).x)
    with torch.no_grad():
        if output == "sigmoid":
            expected = 1 + 9 * theirs(x)
        else:  # the baseline's forward: pytorch-fm's layers without the sigmoid
            expected = (theirs.linear(x) + theirs.ffm(x).sum(dim=(1, 2)).unsqueeze(1)).squeeze(1)
    np.testing.assert_allclose(ratings, expected.clamp(1, 10).numpy(), atol=1e-5)


def test_checkpoint_of_other_data_is_refused_with_shapes(sample_dir: Path, tmp_path: Path) -> None:
    checkpoint = tmp_path / "ffm.pt"
    torch.save(
        FieldAwareFactorizationMachineModel([5, 5, 6, 2, 2, 2, 2, 2, 2, 2], 4).state_dict(),
        checkpoint,
    )
    with pytest.raises(
        ValueError, match=r"does not fit 10 fields of sizes .*linear.fc.weight: expected"
    ):
        import_checkpoint(checkpoint, sample_dir, name=NAME)


def test_import_command_exits_2_on_a_bad_checkpoint(sample_dir: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_text("nope")
    result = run_module(
        "scripts.imports.books",
        "--checkpoint",
        str(junk),
        "--data-dir",
        str(sample_dir),
        "--name",
        NAME,
    )
    assert result.returncode == 2
    assert "is neither TorchScript, a torch.export program nor a state_dict" in result.stderr


def ffm_checkpoint(sample_dir: Path, tmp_path: Path) -> Path:
    data = load_boostcamp(sample_dir)
    featurizer = BookFeaturizer.fit(data.users, data.books, data.train, data.test, data.submission)
    torch.manual_seed(0)
    theirs = FieldAwareFactorizationMachineModel(featurizer.field_dims, 6).eval()
    with torch.no_grad():
        theirs.linear.bias.fill_(5.5)
    checkpoint = tmp_path / "ffm.pt"
    torch.save(theirs.state_dict(), checkpoint)
    return checkpoint


def test_a_reference_ratings_file_gives_cold_start_shares_and_the_rating_distribution(
    sample_dir: Path, tmp_path: Path
) -> None:
    data = load_boostcamp(sample_dir)
    pairs = data.train[["user_id", "isbn", "rating"]].iloc[:180]
    strangers = pd.DataFrame({"user_id": [999_999] * 20, "isbn": pairs["isbn"][:20]})
    reference = tmp_path / "reference.csv"
    pd.concat([pairs, strangers.assign(rating=7)]).to_csv(reference, index=False)

    tag = import_checkpoint(
        ffm_checkpoint(sample_dir, tmp_path),
        sample_dir,
        name=NAME,
        output="sigmoid",
        reference=reference,
    )

    metadata = Artifact.load(tag).metadata
    cold = metadata["reference"]["features"]["cold_start"]
    assert cold["rows"] == 200 and cold["categories"]["unknown_user"] == pytest.approx(0.1)
    assert cold["categories"]["known"] == pytest.approx(0.9)
    served = BookRatingModel.load(Artifact.load(tag))
    rated = [
        r["rating"]
        for r in served.rate(list(zip(pairs["user_id"], pairs["isbn"], strict=True)))
        + served.rate(list(zip(strangers["user_id"], strangers["isbn"], strict=True)))
    ]
    actual = [*pairs["rating"], *[7] * 20]
    expected = np.sqrt(np.mean((np.array(rated) - np.array(actual)) ** 2))
    assert metadata["metrics"]["reference_rmse"] == pytest.approx(expected, abs=1e-4)
    assert metadata["reference"]["predictions"]["rows"] == 200

    def report(reasons: list[str], ratings: list[float]) -> dict:
        monitor = quiet_monitor(tmp_path)
        rows = [{"cold_start": r} for r in reasons]
        outputs = [{"rating": r, "cold_start": False} for r in ratings]
        monitor.record(NAME, tag, rows, outputs, ratings)
        return monitor.model_report(NAME)

    same = report(["known"] * 180 + ["unknown_user"] * 20, rated)
    assert same["status"] == "ok" and same["features"][0]["test"] == "chi_square"
    assert same["predictions"]["shift"] < 0.01  # the reference's own ratings
    assert sum(same["predictions"]["live"]["counts"]) == 200
    cold_traffic = report(["unknown_user_and_book"] * 200, [9.5] * 200)
    assert cold_traffic["status"] == "drift" and cold_traffic["predictions"]["shift"] > 0.5


def test_a_bad_reference_ratings_file_exits_2_naming_the_column(
    sample_dir: Path, tmp_path: Path
) -> None:
    reference = tmp_path / "reference.csv"
    reference.write_text("user_id,isbn\n12,0002005018\nalice,0002005018\n")
    result = run_module(
        "scripts.imports.books",
        "--checkpoint",
        str(ffm_checkpoint(sample_dir, tmp_path)),
        "--data-dir",
        str(sample_dir),
        "--name",
        NAME,
        "--reference",
        str(reference),
    )
    assert result.returncode == 2
    assert "column 'user_id' row 2 is 'alice', not a finite number" in result.stderr

    reference.write_text("user_id,isbn,rating\n12,0002005018,0\n")  # Boostcamp's test file
    with pytest.raises(ValueError, match=r"column 'rating' row 1 is '0', not a rating in 1..10"):
        import_checkpoint(ffm_checkpoint(sample_dir, tmp_path), sample_dir, reference=reference)


def test_recommendations_equal_a_brute_force_forward(sample_dir: Path) -> None:
    data = load_boostcamp(sample_dir)
    featurizer = BookFeaturizer.fit(data.users, data.books, data.train, data.test, data.submission)
    torch.manual_seed(1)
    model = FieldAwareFactorizationMachine(featurizer.field_dims, 6)
    with torch.no_grad():
        model.linear.bias.fill_(5.5)
    books = BookRatingModel(
        model, featurizer, BookCatalogue.fit(data.books, data.train, featurizer), "raw"
    )

    for user_id in data.train["user_id"].drop_duplicates().head(5).tolist():
        answer = books.recommend(user_id, k=10)
        encoded = featurizer.encode([user_id] * len(featurizer.isbns), featurizer.isbns.tolist())
        with torch.no_grad():
            raw = model(torch.from_numpy(encoded.x)).numpy()
        rated = set(data.train.loc[data.train["user_id"] == user_id, "isbn"])
        candidates = [
            i for i in np.argsort(-raw, kind="stable") if featurizer.isbns[i] not in rated
        ]
        expected = [str(featurizer.isbns[i]) for i in candidates[:10]]
        assert [b["isbn"] for b in answer["books"]] == expected
        np.testing.assert_allclose(
            [b["predicted_rating"] for b in answer["books"]],
            np.clip(raw[candidates[:10]], 1, 10),
            atol=1e-4,
        )
        assert not answer["cold_start"]


def test_unknown_user_gets_popular_well_rated_books(sample_dir: Path) -> None:
    data = load_boostcamp(sample_dir)
    featurizer = BookFeaturizer.fit(data.users, data.books, data.train, data.test, data.submission)
    catalogue = BookCatalogue.fit(data.books, data.train, featurizer)
    books = BookRatingModel(
        FieldAwareFactorizationMachine(featurizer.field_dims, 4), featurizer, catalogue, "raw"
    )
    answer = books.recommend(-5, k=5)
    assert answer["cold_start"]
    top = answer["books"][0]["isbn"]
    stats = data.train.groupby("isbn")["rating"].agg(["mean", "count"])
    assert stats.loc[top, "count"] >= 3 and stats.loc[top, "mean"] > data.train["rating"].mean()


def test_boostcamp_loader_reports_malformed_rows(tmp_path: Path) -> None:
    write_awkward(tmp_path)
    with (tmp_path / "train_ratings.csv").open("a") as ratings:
        ratings.write("abc,0002005018,8\n11,0002005018,11\n12,,5\n13,0002005018,7,extra,fields\n")
    data = load_boostcamp(tmp_path)
    assert len(data.train) == 8  # the good rows all kept
    assert data.report.malformed["train_ratings.csv"] == 4
    assert "train_ratings.csv: 4 malformed rows" in data.report.summary()


def test_book_crossing_dump_is_read(tmp_path: Path) -> None:
    (tmp_path / "BX-Users.csv").write_bytes(
        b'"User-ID";"Location";"Age"\n"1";"nyc, new york, usa";NULL\n'
        b'"2";"m\xfcnchen, bayern, germany";"34"\n'
    )
    (tmp_path / "BX-Books.csv").write_bytes(
        b'"ISBN";"Book-Title";"Book-Author";"Year-Of-Publication";"Publisher";"Image-URL-S";'
        b'"Image-URL-M";"Image-URL-L"\n'
        b'"034545104X";"Flu: \\"The\\" Story";"Gina Kolata";"1999";"Random";"s";"m";"l"\n'
        b'"0155061224";"This Year It Will Be Different";"Maeve Binchy";"1996";"Dell";"s";"m";"l"\n'
    )
    (tmp_path / "BX-Book-Ratings.csv").write_bytes(
        b'"User-ID";"ISBN";"Book-Rating"\n"1";"034545104X";"0"\n"2";"034545104X";"5"\n'
        b'"1";"0155061224";"9"\n"2";"0155061224";"12"\n'
    )
    data = load_book_crossing(tmp_path)
    assert data.users["location"].tolist()[1] == "m\u00fcnchen, bayern, germany"
    assert data.users["age"].isna().tolist() == [True, False]
    assert data.books["book_title"].tolist()[0] == 'Flu: "The" Story'
    assert data.train[["user_id", "isbn", "rating"]].values.tolist() == [
        [2, "034545104X", 5],
        [1, "0155061224", 9],
    ]
    assert data.report.implicit_ratings == 1
    assert data.report.malformed["BX-Book-Ratings.csv"] == 1  # the rating of 12
