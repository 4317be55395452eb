"""Continuous training against the real server: shifted traffic is flagged as drift, a
retrain on rows of the new population goes out as a canary, the bundle promotes it by
itself once its live figures hold, and it answers the shifted traffic better than the old
primary did; each step visible in /admin/models and /metrics. The same data twice
registers nothing new, and a retrain on shuffled labels ends with nothing served."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import bentoml
import httpx
import numpy as np
import pandas as pd
import pytest

from models.tabular.contract import CREDIT_TASK
from scripts.train.datasets import credit_sample
from tests.conftest import BENTOML_HOME
from tests.support.server import ROOT, Server, separate_server

pytestmark = pytest.mark.e2e  # its own server (separate_server is not an auto-marking fixture)
ADMIN_KEY = "retrain-admin-key-2c4e"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
NAME = "credit_retrain_test"  # not credit_health: other servers of the session serve :latest
FEATURES = list(CREDIT_TASK.features)


def shifted(rows: int, seed: int) -> pd.DataFrame:
    """Companies of a sector that lives with more debt: the rule moved with the population."""
    return credit_sample(rows=rows, seed=seed, debt_median=1.0, debt_tolerated=1.1)


@pytest.fixture(scope="module")
def bundle(
    default_models: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Path]]:
    state = tmp_path_factory.mktemp("retrain-state")
    env = {
        "MODEL_BUNDLE_ADMIN_KEYS": ADMIN_KEY,
        "MODEL_BUNDLE_STATE_DIR": str(state),
        "MODEL_BUNDLE_DRIFT_WINDOW": "300",
        "MODEL_BUNDLE_DRIFT_MIN_SAMPLES": "100",
    }
    with separate_server(tmp_path_factory.mktemp("retrain"), BENTOML_HOME / "models", env) as s:
        yield s, state


def answer_and_tell(http: httpx.Client, rows: pd.DataFrame) -> list[dict]:
    """Send ``rows`` one request each, then the true label of every answer as feedback."""
    answers = []
    for row in rows.itertuples(index=False):
        body = {name: float(getattr(row, name)) for name in FEATURES}
        answer = http.post("/predict_credit", json=body)
        assert answer.status_code == 200, answer.text
        answers.append({**answer.json(), "truth": row.label})
    for answer in answers:
        told = http.post(
            "/feedback", json={"prediction_id": answer["prediction_id"], "label": answer["truth"]}
        )
        assert told.status_code == 200, told.text
    return answers


def accuracy(answers: list[dict]) -> float:
    return float(np.mean([a["label"] == a["truth"] for a in answers]))


def retrain(server: Server, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BENTOML_HOME": str(BENTOML_HOME), "BENTOML_DO_NOT_TRACK": "true"}
    command = [sys.executable, "-m", "scripts.retrain", "credit_health", "--name", NAME]
    command += ["--url", server.url, "--admin-key", ADMIN_KEY, "--epochs", "30", *args]
    command += ["--feedback", str(state / "feedback")] if "--no-feedback" not in args else []
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def admin_state(server: Server) -> dict:
    listing = httpx.get(f"{server.url}/admin/models", headers=ADMIN, timeout=30).json()
    return next(m for m in listing["models"] if m["model"] == "credit_health")


def versions_of(name: str) -> set[str]:
    return {str(model.tag) for model in bentoml.models.list(name)}


def test_drift_retrain_canary_promote_and_better_on_the_new_population(
    bundle: tuple[Server, Path], tmp_path: Path
) -> None:
    server, state = bundle
    old_primary = admin_state(server)["primary"]
    with httpx.Client(base_url=server.url, timeout=30) as http:
        before = answer_and_tell(http, shifted(150, seed=21))
        drift = http.post("/drift", json={"model": "credit_health"}).json()["models"][0]
        assert drift["status"] == "drift", drift
        assert 'model_bundle_drift_detected{model="credit_health"} 1.0' in http.get("/metrics").text

        rows = shifted(1500, seed=22)
        rows.to_csv(tmp_path / "new.csv", index=False)
        run = retrain(
            server,
            state,
            "--data",
            str(tmp_path / "new.csv"),
            "--if-drift",
            "--share",
            "50",
            "--min-answers",
            "60",
            "--min-feedback",
            "30",
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "is out as a canary" in run.stdout, run.stdout
        candidate = admin_state(server)["candidate"]
        assert candidate and candidate.startswith(NAME), admin_state(server)
        assert admin_state(server)["rollout"]["policy"]["min_feedback"] == 30
        lineage = bentoml.models.get(candidate).info.metadata["lineage"]
        assert lineage["parent"] == old_primary
        assert lineage["rows"] == 1500 + 150  # the files' rows and the feedback joined

        # Traffic of the new population with feedback until the bundle decides by itself.
        deadline, seed = time.monotonic() + 120, 30
        while admin_state(server)["primary"] != candidate and time.monotonic() < deadline:
            answer_and_tell(http, shifted(60, seed=seed))
            seed += 1
            time.sleep(1.2)  # the judgement runs at most once a second
        served = admin_state(server)
        assert served["primary"] == candidate, served
        assert served["previous"] == old_primary  # kept, for a rollback
        promoted = [e for e in served["history"] if e["action"] == "auto_promote"]
        assert promoted and promoted[-1]["by"] == "rollout", served["history"]
        assert "live accuracy" in promoted[-1]["detail"]["reasons"][0]
        metrics = http.get("/metrics").text
        assert (
            'model_bundle_rollout_decisions_total{decision="promote",model="credit_health",'
            f'version="{candidate}"}} 1.0' in metrics
        )
        after = answer_and_tell(http, shifted(150, seed=21))  # the very rows sent first
        assert {a["model"] for a in after} == {candidate}
        assert accuracy(after) > accuracy(before) + 0.1, (accuracy(after), accuracy(before))
        [model] = [
            m for m in http.post("/models", json={}).json()["models"] if m["tag"] == candidate
        ]
        assert model["lineage"]["parent"] == old_primary
        assert [d["action"] for d in model["rollout"]["decisions"]] == ["auto_promote"]
        assert "live accuracy" in model["rollout"]["decisions"][0]["reasons"][0]
        assert {"tag": old_primary, "role": "previous"}.items() <= model["versions"][1].items()

    again = retrain(server, state, "--data", str(tmp_path / "new.csv"), "--no-feedback")
    registered = versions_of(NAME)
    third = retrain(server, state, "--data", str(tmp_path / "new.csv"), "--no-feedback")
    assert third.returncode == 0, third.stderr
    assert "nothing new is registered" in third.stdout, third.stdout
    assert versions_of(NAME) == registered  # the same data twice: nothing new
    assert again.returncode == 0, again.stderr


def test_a_retrain_on_shuffled_labels_is_never_served(
    bundle: tuple[Server, Path], tmp_path: Path
) -> None:
    server, state = bundle
    before = admin_state(server)
    rows = shifted(1500, seed=40)
    rows["label"] = rows["label"].sample(frac=1.0, random_state=1).to_numpy()  # corrupted
    rows.to_csv(tmp_path / "corrupted.csv", index=False)
    shifted(400, seed=41).to_csv(tmp_path / "clean-holdout.csv", index=False)
    run = retrain(
        server,
        state,
        "--data",
        str(tmp_path / "corrupted.csv"),
        "--no-feedback",
        "--holdout",
        str(tmp_path / "clean-holdout.csv"),
        "--margin",
        "0",
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "stays in the store, not served" in run.stdout, run.stdout
    after = admin_state(server)
    assert (after["primary"], after["candidate"]) == (before["primary"], None)
    assert after["history"] == before["history"]  # nothing was even tried


def test_bad_training_data_exits_2_naming_the_row_and_serving_is_unchanged(
    bundle: tuple[Server, Path], tmp_path: Path
) -> None:
    server, state = bundle
    before = admin_state(server)
    rows = shifted(100, seed=50).astype({"debt_ratio": object})
    rows.loc[7, "debt_ratio"] = "lots"
    rows.loc[9, "label"] = "bankrupt"
    rows.to_csv(tmp_path / "bad.csv", index=False)
    run = retrain(server, state, "--data", str(tmp_path / "bad.csv"), "--no-feedback")
    assert run.returncode == 2
    assert "row 8" in run.stderr and "debt_ratio" in run.stderr, run.stderr
    assert "row 10: label 'bankrupt'" in run.stderr, run.stderr
    assert admin_state(server) == before
