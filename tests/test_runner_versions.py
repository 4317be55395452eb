"""A runner's version slots, in a process of its own (no server): a second version loads into
a slot of its own while the first keeps its slot, each slot's API answers with its own
model, a bad tag is refused naming the problem, and a version the state stops naming is
freed only after the grace period."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest

from models.tabular.contract import CREDIT_TASK
from scripts.train.datasets import credit_sample
from scripts.train.tabular import TrainingConfig, train_tabular
from tests.support.commands import fresh_python

SLOTS_SCRIPT = """
import asyncio, gc, json, sys, time
import numpy as np
import runners.base as base
from models.artifact import Artifact
from models.tabular.contract import CREDIT_TASK
from models.tabular.network import load_classifier
from runners.credit import CreditRunner

first, second = sys.argv[1], sys.argv[2]
runner = CreditRunner()
x = np.random.default_rng(0).uniform(0, 3, (64, 5)).astype(np.float32)
answer = {"boot": [v["tag"] for v in runner.versions()["versions"]]}
answer["gc_young_threshold"] = gc.get_threshold()[0]
loaded = asyncio.run(runner.load_version(second))
answer["loaded"] = {v["tag"]: v["slot"] for v in loaded["versions"]}
own = {t: load_classifier(Artifact.load(t), CREDIT_TASK).predict_proba(x) for t in (first, second)}
answer["models_differ"] = not np.allclose(own[first], own[second])
by_slot = {0: runner.predict_proba_0_unbatched(x), 1: runner.predict_proba_1(x)}
answer["slots_answer_their_own_model"] = all(
    np.allclose(by_slot[slot], own[tag]) for tag, slot in answer["loaded"].items()
)
answer["unknown"] = asyncio.run(runner.load_version("credit_health:nosuchversion"))["error"]["type"]
answer["iris"] = asyncio.run(runner.load_version("iris:latest"))["error"]["type"]
base.UNLOAD_GRACE_S = 0.5  # the state names only the first version: the second leaves
runner.sync()
answer["kept_in_grace"] = len(runner.versions()["versions"])
time.sleep(0.6)
runner.sync()
answer["after_grace"] = [v["tag"] for v in runner.versions()["versions"]]
print(json.dumps(answer))
"""

GC_YOUNG_THRESHOLD = 12_345  # not the default: the runner read the setting


@pytest.fixture(scope="module")
def credit_versions(default_models: dict[str, str]) -> tuple[str, str]:
    """Two credit versions with different weights, stored under a name of their own (not the
    default's), trained once for the module: both tests only read them, and each runs its
    runner with a state directory of its own."""
    task = dataclasses.replace(CREDIT_TASK, name="credit_slots_test")
    first = train_tabular(task, credit_sample(rows=300), TrainingConfig(epochs=1), "test")
    second = train_tabular(task, credit_sample(rows=300), TrainingConfig(epochs=1, seed=5), "test")
    return first, second


def test_a_runner_serves_each_version_from_its_own_slot(
    tmp_path: Path, credit_versions: tuple[str, str]
) -> None:
    first, second = credit_versions
    answer = run_runner(SLOTS_SCRIPT, first, second, tmp_path)
    assert answer["boot"] == [first]
    assert answer["gc_young_threshold"] == GC_YOUNG_THRESHOLD  # the setting, applied
    assert answer["loaded"] == {first: 0, second: 1}
    assert answer["models_differ"] and answer["slots_answer_their_own_model"]
    assert answer["unknown"] == "unknown_version"
    assert answer["iris"] == "invalid_artifact"
    assert answer["kept_in_grace"] == 2
    assert answer["after_grace"] == [first]


RESTART_SCRIPT = """
import asyncio, json, sys
from model_bundle.settings import settings
from model_bundle.versions.state import RoutingState, StateDirectory
from runners.credit import CreditRunner

first, second = sys.argv[1], sys.argv[2]
runner = CreditRunner()
asyncio.run(runner.load_version(second))
before = [v["tag"] for v in sorted(runner.versions()["versions"], key=lambda v: v["slot"])]
# The second version promoted: a restarted runner loads the primary first.
StateDirectory(settings.state_dir).write(
    RoutingState(model="credit_health", primary=second, previous=first)
)
restarted = CreditRunner()
after = [v["tag"] for v in sorted(restarted.versions()["versions"], key=lambda v: v["slot"])]
print(json.dumps({"before": before, "after": after}))
"""


def test_a_restarted_runner_puts_each_version_back_in_its_slot(
    tmp_path: Path, credit_versions: tuple[str, str]
) -> None:
    """The front routes by the slots the runner last reported: a runner restarted by the
    server must not swap them (the front would label one version's answers with another's
    tag until it asked again)."""
    first, second = credit_versions
    answer = run_runner(RESTART_SCRIPT, first, second, tmp_path)
    assert answer["before"] == [first, second]
    assert answer["after"] == answer["before"]


def run_runner(script: str, first: str, second: str, tmp_path: Path) -> dict[str, Any]:
    """``script`` in a process of its own, the runner booting ``first`` with a state directory
    of its own; the JSON it printed last."""
    env = {
        **os.environ,
        "MODEL_BUNDLE_CREDIT_HEALTH_MODEL": first,
        "MODEL_BUNDLE_STATE_DIR": str(tmp_path / "state"),
        "MODEL_BUNDLE_GC_YOUNG_THRESHOLD": str(GC_YOUNG_THRESHOLD),
    }
    result = fresh_python(script, first, second, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
