"""Batch prediction over files: known answers, in-process equals served, chunks and resume,
the errors file, CSV and Parquet, and the Ray engine in local mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model_bundle.batch import files
from model_bundle.batch.cli import main
from model_bundle.batch.local import LocalEngine
from model_bundle.batch.resume import Manifest, fingerprint
from model_bundle.batch.run import errors_path, parts_directory, run
from model_bundle.batch.tasks import task_for
from models.artifact import Artifact
from models.books.model import BookRatingModel
from scripts.sample_data import mask as mask_sample
from scripts.sample_data.requests import HEALTHY, UNHEALTHY
from scripts.train.datasets import credit_sample, iris
from tests.support.commands import run_module
from tests.support.server import Server

PROBABILITIES = ["probability_healthy", "probability_unhealthy"]


def credit_file(directory: Path, rows: int = 300, suffix: str = ".csv") -> Path:
    frame = pd.concat(
        [pd.DataFrame([HEALTHY, UNHEALTHY]), credit_sample(rows).drop(columns="label")],
        ignore_index=True,
    )
    frame.insert(0, "company", [f"c{i}" for i in range(len(frame))])
    path = directory / f"credit{suffix}"
    files.write(frame, path, files.file_format(path))
    return path


def read(path: Path) -> pd.DataFrame:
    if files.file_format(path) == "parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype={"isbn": str})


def test_credit_csv_known_answers_and_in_process_equals_served(
    tmp_path: Path, server: Server
) -> None:
    source = credit_file(tmp_path)
    assert main(["credit_health", str(source), str(tmp_path / "a.csv"), "--quiet"]) == 0
    args = ["credit_health", str(source), str(tmp_path / "b.csv"), "--url", server.url]
    assert main([*args, "--quiet"]) == 0
    local, served = read(tmp_path / "a.csv"), read(tmp_path / "b.csv")
    assert len(local) == len(read(source))
    assert local["label"].iloc[:2].tolist() == ["healthy", "unhealthy"]
    assert local["company"].tolist() == read(source)["company"].tolist()  # input kept, in order
    assert local["label"].tolist() == served["label"].tolist()
    assert local["model"].tolist() == served["model"].tolist()
    np.testing.assert_allclose(local[PROBABILITIES], served[PROBABILITIES], atol=1e-6)
    assert not (tmp_path / "a.errors.csv").exists()


def test_iris_parquet_in_process_equals_served(tmp_path: Path, server: Server) -> None:
    flowers = iris()
    source = tmp_path / "iris.parquet"
    flowers.to_parquet(source, index=False)
    assert main(["iris", str(source), str(tmp_path / "a.parquet"), "--quiet"]) == 0
    args = ["iris", str(source), str(tmp_path / "b.parquet"), "--url", server.url, "--quiet"]
    assert main(args) == 0
    local, served = read(tmp_path / "a.parquet"), read(tmp_path / "b.parquet")
    assert (local["label"] == flowers["label"]).mean() > 0.9  # known species
    assert local["label"].tolist() == served["label"].tolist()
    np.testing.assert_allclose(local["probability"], served["probability"], atol=1e-6)


@pytest.fixture(scope="module")
def books(default_models: dict[str, str]) -> BookRatingModel:
    return BookRatingModel.load(Artifact.load(default_models["book_rating"]))


def test_book_pairs_and_recommendations_in_process_equal_served(
    tmp_path: Path, server: Server, books: BookRatingModel
) -> None:
    users = books.featurizer.user_ids[:20].tolist()
    isbns = books.featurizer.isbns[-20:].tolist()
    pairs = pd.DataFrame({"user_id": [*users, 10**9], "isbn": [*isbns, "0000000001"]})
    pairs.to_csv(tmp_path / "pairs.csv", index=False)
    for name, url in (("a", []), ("b", ["--url", server.url])):
        out = str(tmp_path / f"{name}.csv")
        assert main(["book_rating", str(tmp_path / "pairs.csv"), out, *url, "--quiet"]) == 0
    local, served = read(tmp_path / "a.csv"), read(tmp_path / "b.csv")
    assert local["isbn"].iloc[-1] == "0000000001"  # leading zeros kept
    assert local["reason"].iloc[-1] == "unknown_user_and_book"
    assert local["cold_start"].tolist() == served["cold_start"].tolist()
    expected = [r["rating"] for r in books.rate(list(zip(pairs.user_id, pairs.isbn, strict=True)))]
    np.testing.assert_allclose(local["rating"], expected, atol=1e-5)
    np.testing.assert_allclose(local["rating"], served["rating"], atol=1e-5)

    pd.DataFrame({"user_id": [*users[:5], 10**9]}).to_parquet(tmp_path / "users.parquet")
    for name, url in (("c", []), ("d", ["--url", server.url])):
        out = str(tmp_path / f"{name}.parquet")
        args = ["book_rating", str(tmp_path / "users.parquet"), out, "--k", "3", *url, "--quiet"]
        assert main(args) == 0
    local, served = read(tmp_path / "c.parquet"), read(tmp_path / "d.parquet")
    assert local["isbns"].tolist() == served["isbns"].tolist()
    assert local["cold_start"].tolist() == [False] * 5 + [True]
    top = books.recommend(users[0], 3)["books"]
    assert local["isbns"].iloc[0] == str([b["isbn"] for b in top]).replace("'", '"')


def test_mask_folder_in_process_equals_served_and_bad_images_are_reported(
    tmp_path: Path, server: Server
) -> None:
    folder = tmp_path / "faces"
    folder.mkdir()
    for class_id in (0, 7, 13):
        (folder / f"face-{class_id:02d}.jpg").write_bytes(mask_sample.jpeg(class_id, seed=3))
    (folder / "zz-broken.jpg").write_bytes(b"not an image")
    for name, url in (("a", []), ("b", ["--url", server.url])):
        assert main(["mask_classifier", str(folder), str(tmp_path / f"{name}.csv"), *url]) == 1
    local, served = read(tmp_path / "a.csv"), read(tmp_path / "b.csv")
    assert local["path"].tolist() == ["face-00.jpg", "face-07.jpg", "face-13.jpg"]
    assert local["class_id"].tolist() == served["class_id"].tolist()
    np.testing.assert_allclose(local["confidence"], served["confidence"], atol=1e-5)
    errors = read(tmp_path / "a.errors.csv")
    assert errors["row"].tolist() == [4]
    assert "not an image" in errors["reason"].iloc[0]

    listed = tmp_path / "listed.csv"  # a CSV of paths, relative to the CSV's folder
    pd.DataFrame({"path": ["faces/face-07.jpg", "faces/missing.jpg"]}).to_csv(listed, index=False)
    assert main(["mask_classifier", str(listed), str(tmp_path / "c.csv"), "--quiet"]) == 1
    assert read(tmp_path / "c.csv")["class_id"].tolist() == [local["class_id"].iloc[1]]
    assert "cannot read" in read(tmp_path / "c.errors.csv")["reason"].iloc[0]


def test_bad_rows_go_to_the_errors_file_and_good_rows_are_predicted(
    tmp_path: Path, default_models: dict[str, str]
) -> None:
    source = tmp_path / "mixed.csv"
    source.write_text(
        "debt_ratio,current_ratio,operating_margin,return_on_assets,interest_coverage\n"
        "0.2,2.5,0.25,0.15,20\n"
        ",2.5,0.25,0.15,20\n"  # row 2: missing
        "high,2.5,0.25,0.15,20\n"  # row 3: not a number
        "0.2,2.5,0.25,0.15,inf\n"  # row 4: not finite
        "0.2,-1,0.25,0.15,20\n"  # row 5: out of range
        "1.4,0.4,-0.2,-0.1,-2\n"
    )
    output = tmp_path / "out.csv"
    assert main(["credit_health", str(source), str(output), "--chunk-rows", "4", "--quiet"]) == 1
    assert read(output)["label"].tolist() == ["healthy", "unhealthy"]
    errors = read(tmp_path / "out.errors.csv")
    assert errors["row"].tolist() == [2, 3, 4, 5]
    reasons = errors["reason"].tolist()
    assert reasons[0] == "debt_ratio: Field required"
    assert reasons[1] == "debt_ratio: Input should be a valid number"
    assert reasons[2] == "interest_coverage: Input should be a finite number"
    assert reasons[3] == "current_ratio: Input should be greater than or equal to 0"


def test_chunks_finished_before_an_interruption_are_not_redone(
    tmp_path: Path, default_models: dict[str, str]
) -> None:
    source = credit_file(tmp_path, rows=998)  # 1,000 rows: 10 chunks of 100
    whole = tmp_path / "whole.parquet"
    assert main(["credit_health", str(source), str(whole), "--chunk-rows", "100", "--quiet"]) == 0

    output = tmp_path / "out.parquet"
    engine = LocalEngine(task_for("credit_health", "classify", 10, tmp_path))
    settings = {"model": "credit_health", "mode": "classify", "k": 10, "tag": engine.tag}
    run_id = fingerprint(source, **settings, chunk_rows=100)

    def interrupt(chunk: int) -> None:
        if chunk == 3:
            raise KeyboardInterrupt

    manifest = Manifest.open(parts_directory(output), run_id, resume=False)
    with pytest.raises(KeyboardInterrupt):
        run(engine, source, output, 100, manifest, quiet=True, chunk_hook=interrupt)
    assert not output.exists()
    assert sorted(Manifest.open(parts_directory(output), run_id, True).chunks) == [0, 1, 2, 3]

    redone: list[int] = []
    manifest = Manifest.open(parts_directory(output), run_id, resume=True)
    summary = run(engine, source, output, 100, manifest, quiet=True, chunk_hook=redone.append)
    assert redone == [4, 5, 6, 7, 8, 9]
    assert (summary.rows, summary.resumed_chunks) == (1000, 4)
    pd.testing.assert_frame_equal(read(output), read(whole))
    assert not parts_directory(output).exists()


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_a_chunk_written_in_pieces_equals_it_written_at_once(
    tmp_path: Path, suffix: str, default_models: dict[str, str]
) -> None:
    """A chunk is predicted and written piece by piece: the output and the errors file are
    those of the chunk in one piece, with a piece whose rows are all refused (it has no
    prediction columns) and a text column empty in the first piece only."""
    frame = pd.concat([pd.DataFrame([HEALTHY, UNHEALTHY]), credit_sample(58)], ignore_index=True)
    frame = frame.drop(columns="label")
    frame.loc[20:29, "debt_ratio"] = -1.0  # the third piece of 10 refused, all of it
    frame.loc[33, "current_ratio"] = np.nan  # one row of the fourth
    frame.insert(0, "note", [None] * 10 + [f"n{i}" for i in range(10, len(frame))])
    source = tmp_path / "in.csv"
    frame.to_csv(source, index=False)
    engine = LocalEngine(task_for("credit_health", "classify", 10, source))
    outputs = {}
    for piece_rows in (10, 1_000):
        output = tmp_path / f"out-{piece_rows}{suffix}"
        manifest = Manifest.open(parts_directory(output), {"pieces": piece_rows}, resume=False)
        summary = run(engine, source, output, 1_000, manifest, quiet=True, piece_rows=piece_rows)
        assert (summary.rows, summary.failed, summary.chunks) == (60, 11, 1)
        outputs[piece_rows] = (read(output), read(errors_path(output)))
    (pieces, piece_errors), (whole, whole_errors) = outputs[10], outputs[1_000]
    pd.testing.assert_frame_equal(pieces, whole)
    pd.testing.assert_frame_equal(piece_errors, whole_errors)
    assert piece_errors["row"].tolist() == [*range(21, 31), 34]
    kept = [i for i in range(60) if not 20 <= i < 30 and i != 33]
    assert pieces["note"].isna().tolist() == [i < 10 for i in kept]
    assert pieces["note"].dropna().tolist() == [f"n{i}" for i in kept if i >= 10]
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema, at_once = (pq.read_schema(tmp_path / f"out-{n}.parquet") for n in (10, 1_000))
        assert schema.remove_metadata() == at_once.remove_metadata()
        assert schema.field("note").type == pa.large_string()  # pandas' text, not null


def test_a_part_is_written_anew_when_a_later_piece_widens_a_column(tmp_path: Path) -> None:
    """A column of nulls only in the first piece has Arrow's null type; a later piece gives
    it values: the part holds every piece under the wider type, and is not there until it
    is closed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "part.parquet"
    part = files.PartWriter(path, "parquet")
    part.write(pa.table({"x": [1.0, 2.0], "note": pa.nulls(2)}))
    part.write(pa.table({"x": [9.0], "note": pa.array([None], pa.string())}).slice(0, 0))
    part.write(pa.table({"x": [3.0], "note": ["three"]}))
    assert not path.exists()
    part.close()
    table = pq.read_table(path)
    assert table.schema.field("note").type == pa.string()
    assert table.to_pydict() == {"x": [1.0, 2.0, 3.0], "note": [None, None, "three"]}


def test_resume_refuses_parts_of_another_run(tmp_path: Path) -> None:
    source = credit_file(tmp_path, rows=10)
    output = tmp_path / "out.csv"
    Manifest.open(parts_directory(output), {"input": "elsewhere"}, resume=False)
    assert main(["credit_health", str(source), str(output), "--resume", "--quiet"]) == 2
    assert not output.exists()


def test_command_line_exit_statuses(tmp_path: Path, default_models: dict[str, str]) -> None:
    no_column = tmp_path / "no_column.csv"
    no_column.write_text("debt_ratio\n0.2\n")
    result = run_module(
        "model_bundle.batch", "credit_health", str(no_column), str(tmp_path / "o.csv")
    )
    assert result.returncode == 2
    assert "no column current_ratio" in result.stderr
    result = run_module("model_bundle.batch", "iris", str(no_column), str(tmp_path / "o.txt"))
    assert (result.returncode, "not a .csv or .parquet" in result.stderr) == (2, True)
    source = credit_file(tmp_path, rows=20)
    result = run_module("model_bundle.batch", "credit_health", str(source), str(tmp_path / "o.csv"))
    assert result.returncode == 0, result.stderr
    assert "22 rows in 1 chunks" in result.stderr
    assert "rows/s" in result.stderr


@pytest.mark.e2e  # a real Ray cluster of its own: raylet and GCS processes, not in-process
def test_ray_engine_in_local_mode_equals_in_process(
    tmp_path: Path, default_models: dict[str, str]
) -> None:
    pytest.importorskip("ray")
    source = credit_file(tmp_path, rows=198)
    text = source.read_text().splitlines()
    text[5] = "c4,high,2.5,0.25,0.15,20"  # row 5: bad
    source.write_text("\n".join(text) + "\n")
    local, on_ray = tmp_path / "local.csv", tmp_path / "ray.csv"
    assert main(["credit_health", str(source), str(local), "--chunk-rows", "64", "--quiet"]) == 1
    args = ["credit_health", str(source), str(on_ray), "--engine", "ray", "--workers", "1"]
    assert main([*args, "--batch-size", "64", "--chunk-rows", "50"]) == 1
    assert on_ray.read_bytes() == local.read_bytes()  # the same file, class_id as integers
    assert read(tmp_path / "ray.errors.csv").equals(read(tmp_path / "local.errors.csv"))
    assert read(tmp_path / "ray.errors.csv")["row"].tolist() == [5]


def test_cronjob_runs_valid_batch_commands() -> None:
    import shlex

    import yaml

    from model_bundle.batch.cli import parser
    from tests.support.server import ROOT

    [job] = yaml.safe_load_all((ROOT / "deploy" / "batch-cronjob.yaml").read_text())
    assert job["kind"] == "CronJob"
    [container] = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    commands = container["args"][0].split("&&")
    assert len(commands) == 2
    for command in commands:
        words = shlex.split(command)
        assert words[:3] == ["python", "-m", "model_bundle.batch"]
        args = parser().parse_args(words[3:])
        assert (args.model, args.resume, args.url) == ("book_rating", True, "http://model-bundle")


def test_column_checks_agree_with_the_api_schema_row_by_row() -> None:
    """Every verdict of the column-wise check equals pydantic's on the same JSON body."""
    from pydantic import ValidationError

    from model_bundle.batch.rules import cell, check
    from model_bundle.schemas import BookPair, CreditFeatures

    numbers = [0, 100, 100.0001, -0.0001, 1e6, -1e6, 1e6 + 1, np.nan, np.inf, "1.5", "x", True]
    credit = pd.DataFrame({name: numbers for name in CreditFeatures.model_fields})
    credit["current_ratio"] = [1000, 1000.5, 0, 5, 5, 5, 5, 5, 5, 5, 5, 5]
    pairs = pd.DataFrame(
        {
            "user_id": [0, -1, 2**53, 2**53 + 2, 1.5, 7.0, "12", np.nan, 3, 3, 3, 3],
            "isbn": ["0001", "", "x" * 20, "x" * 21, "a b", "é", None, "X", 5, "ok", "ok", "ok"],
        }
    )
    for schema, frame in ((CreditFeatures, credit), (BookPair, pairs)):
        fields = list(schema.model_fields)
        checked = check(frame, schema, fields)
        for position in range(len(frame)):
            body = {}
            for name in fields:
                value = cell(frame[name].iloc[position], schema.model_fields[name].annotation)
                if value is not None:
                    body[name] = value
            try:
                schema.model_validate(body)
                accepted = True
            except ValidationError:
                accepted = False
            assert bool(checked.ok[position]) == accepted, (schema.__name__, body)
        assert 0 < checked.ok.sum() < len(frame)


def test_a_model_missing_from_the_store_is_a_usage_error(
    tmp_path: Path, default_models: dict[str, str]
) -> None:
    source = credit_file(tmp_path, rows=5)
    args = ["credit_health", str(source), str(tmp_path / "o.csv"), "--quiet"]
    assert main([*args, "--model-tag", "credit_health:nosuchversion"]) == 2


@pytest.mark.parametrize("model", ["credit_health", "iris"])
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_the_errors_file_gives_pydantics_reason_for_every_kind_of_bad_row(
    tmp_path: Path,
    default_models: dict[str, str],
    model: str,
    suffix: str,
) -> None:
    """Every kind of bad cell (beyond each bound, NaN, infinities, text, booleans, empty, and
    several at once) through the command line, across chunks: the errors file
    names exactly the rows the API would refuse, with the API's reasons, and every other
    row is predicted, in order."""
    from model_bundle.schemas import TABULAR_REQUESTS
    from tests.test_batch_rules import bad_rows, pydantic_verdicts

    schema = TABULAR_REQUESTS[model]
    fields = list(schema.model_fields)
    frame = bad_rows(schema, fields)
    several = frame.iloc[1:4].reset_index(drop=True)  # a bad cell in several fields at once
    for i, field in enumerate(fields[1:], start=1):
        several.loc[i % 3, field] = ["x", None, -1e9][i % 3]
    frame = pd.concat([frame, several], ignore_index=True)
    frame.insert(0, "id", np.arange(len(frame)))
    source = tmp_path / f"bad{suffix}"
    if suffix == ".csv":
        frame.to_csv(source, index=False)
    else:  # Parquet has one type per column: the first field as text, the others as numbers
        table = frame.assign(**{f: pd.to_numeric(frame[f], errors="coerce") for f in fields[1:]})
        table[fields[0]] = frame[fields[0]].map(lambda v: None if v is None else str(v))
        table.to_parquet(source, index=False)
    as_read = read(source)
    expected = pydantic_verdicts(as_read, schema, fields)
    assert 10 < sum(v is not None for v in expected) < len(expected) - 5

    output = tmp_path / f"out{suffix}"
    assert main([model, str(source), str(output), "--chunk-rows", "16", "--quiet"]) == 1
    errors = pd.read_csv(tmp_path / "out.errors.csv")
    refused = [(row, v) for row, v in enumerate(expected, start=1) if v is not None]
    assert list(zip(errors["row"], errors["reason"], strict=True)) == refused
    kept = [i for i, v in enumerate(expected) if v is None]
    assert read(output)["id"].tolist() == as_read["id"].iloc[kept].tolist()


def test_parquet_chunks_keep_the_input_columns_and_equal_the_csv_path(
    tmp_path: Path, default_models: dict[str, str]
) -> None:
    """A Parquet chunk is written from Arrow: the columns that pass through come out as they
    were read (types, nulls, NaN), a chunk whose rows are all refused leaves no gap, and the
    predictions and errors equal those of the same rows read from CSV (through pandas)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = pd.concat([pd.DataFrame([HEALTHY, UNHEALTHY]), credit_sample(48)], ignore_index=True)
    frame = frame.drop(columns="label")
    frame.loc[7:13, "debt_ratio"] = -1.0  # the whole second chunk refused
    frame.loc[20, "current_ratio"] = np.nan
    rows = len(frame)
    table = pa.table(
        {
            "company": pa.array([f"c{i}" if i % 5 else None for i in range(rows)]),
            "employees": pa.array([i if i % 3 else None for i in range(rows)], pa.int32()),
            "score": pa.array([np.nan if i % 4 == 0 else i / 2 for i in range(rows)]),
            **{name: pa.array(frame[name].to_numpy()) for name in HEALTHY},
        }
    )
    source = tmp_path / "in.parquet"
    pq.write_table(table, source)
    as_csv = tmp_path / "in.csv"
    table.to_pandas().to_csv(as_csv, index=False)
    for path in (source, as_csv):
        output = tmp_path / f"out-{path.suffix[1:]}.parquet"
        args = ["credit_health", str(path), str(output), "--chunk-rows", "7", "--quiet"]
        assert main(args) == 1

    out = pq.read_table(tmp_path / "out-parquet.parquet")
    refused = pd.read_csv(tmp_path / "out-parquet.errors.csv")
    assert refused["row"].tolist() == [8, 9, 10, 11, 12, 13, 14, 21]
    kept = np.setdiff1d(np.arange(rows), refused["row"].to_numpy() - 1)
    for name in ("company", "employees", "score"):
        assert out.schema.field(name).type == table.schema.field(name).type
        assert out.column(name).null_count == table.column(name).take(kept).null_count
    for name in ("company", "employees"):  # None stays None, integers stay integers
        assert out.column(name).to_pylist() == table.column(name).take(kept).to_pylist()
    score = out.column("score").to_numpy()
    np.testing.assert_array_equal(score, table.column("score").take(kept).to_numpy())
    assert np.isnan(score).sum() > 3  # NaN stays NaN (not null, as pandas would make it)
    from_csv = pd.read_parquet(tmp_path / "out-csv.parquet")
    assert out.column("label").to_pylist() == from_csv["label"].tolist()
    np.testing.assert_array_equal(out.column("probability").to_numpy(), from_csv["probability"])
    assert pd.read_csv(tmp_path / "out-csv.errors.csv").equals(refused)
