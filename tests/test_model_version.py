"""Which model version a runner serves is configurable: ``MODEL_BUNDLE_<NAME>_MODEL``, default
``<name>:latest``."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from model_bundle.settings import from_environ
from models.tabular.contract import CREDIT_TASK
from scripts.train.datasets import credit_sample
from scripts.train.tabular import TrainingConfig, train_tabular
from tests.support.commands import fresh_python

RUNNER_DESCRIBE = """
import json
import numpy as np
from runners.credit import CreditRunner
runner = CreditRunner()
probabilities = runner.predict_proba_0(np.zeros((2, 5), np.float32))
[served] = runner.versions()["versions"]
print(json.dumps({"tag": served["tag"], "shape": list(probabilities.shape)}))
"""


def test_default_is_latest() -> None:
    assert from_environ({}).model_tag("credit_health") == "credit_health:latest"
    pinned = from_environ({"MODEL_BUNDLE_CREDIT_HEALTH_MODEL": "credit_health:abc"})
    assert pinned.model_tag("credit_health") == "credit_health:abc"


def test_runner_serves_the_pinned_version(tmp_path: Path) -> None:
    task = dataclasses.replace(CREDIT_TASK, name="credit_pinned_test")
    frame = credit_sample(rows=300)
    pinned = train_tabular(task, frame, TrainingConfig(epochs=1), "test")
    newer = train_tabular(task, frame, TrainingConfig(epochs=1, seed=1), "test")
    assert pinned != newer

    env = {
        **os.environ,
        "MODEL_BUNDLE_CREDIT_HEALTH_MODEL": pinned,
        "MODEL_BUNDLE_STATE_DIR": str(tmp_path / "state"),  # no routing state: the setting's
    }
    result = fresh_python(RUNNER_DESCRIBE, env=env)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer == {"tag": pinned, "shape": [2, 2]}
