"""Inputs as runners receive them (read-only arrays decoded from the request) are served
without torch's non-writable-array warning, and give the same answers as writable ones.

torch warns once per process, so each case runs in a fresh interpreter with warnings as
errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.server import ROOT

READ_ONLY = """
import numpy as np
def read_only(array):
    frozen = np.frombuffer(array.tobytes(), array.dtype).reshape(array.shape)
    assert not frozen.flags.writeable  # what BentoML hands a runner
    return frozen
"""
TABULAR = """
from models.layers import MinMaxScaling
from models.tabular.contract import IRIS_TASK
from models.tabular.network import TabularClassifier, build_network
features = np.random.default_rng(0).uniform(0, 8, (5, 4)).astype(np.float32)
classifier = TabularClassifier(MinMaxScaling([0.1] * 4, [0.0] * 4), build_network(IRIS_TASK))
classifier.training = False
served = classifier.predict_proba(read_only(features))
np.testing.assert_array_equal(served, classifier.predict_proba(features))
"""
IMAGES = """
from models.mask.contract import Preprocessing
from models.mask.network import normalise
images = np.random.default_rng(1).integers(0, 256, (2, 8, 6, 3), dtype=np.uint8)
prep = Preprocessing(height=8, width=6)
served = normalise(read_only(images), prep)
assert served.shape == (2, 3, 8, 6)
assert np.allclose(served.numpy(), normalise(images, prep).numpy())
"""


@pytest.mark.parametrize("case", [TABULAR, IMAGES], ids=["tabular", "images"])
def test_a_read_only_input_is_served_without_a_warning(case: str) -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", READ_ONLY + case],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "not writable" not in result.stderr
