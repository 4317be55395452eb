"""The drift tests against scipy's reference implementations, and on known shifts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import spatial, stats

from model_bundle.monitoring import drift
from model_bundle.monitoring.reference import numeric_reference, tabular_reference


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_ks_matches_scipy(rng: np.random.Generator) -> None:
    a, b = rng.normal(size=300), rng.normal(0.2, 1, size=200)
    expected = stats.ks_2samp(a, b, method="asymp")
    assert drift.ks_statistic(a, b) == pytest.approx(expected.statistic)
    assert drift.ks_p_value(a, b) == pytest.approx(expected.pvalue, abs=0.02)


def test_wasserstein_and_js_match_scipy(rng: np.random.Generator) -> None:
    a, b = rng.normal(size=300), rng.exponential(size=200)
    assert drift.wasserstein(a, b) == pytest.approx(stats.wasserstein_distance(a, b))
    p, q = [0.2, 0.5, 0.3], [0.4, 0.4, 0.2]
    assert drift.jensen_shannon(p, q) == pytest.approx(spatial.distance.jensenshannon(p, q))
    assert drift.jensen_shannon(p, q, 2) == pytest.approx(
        spatial.distance.jensenshannon(p, q, base=2)
    )


def test_psi_bands() -> None:
    assert drift.psi([10, 20, 30], [10, 20, 30]) == pytest.approx(0, abs=1e-9)
    assert drift.psi([10, 20, 30], [30, 20, 10]) > drift.PSI_SIGNIFICANT


@pytest.mark.parametrize("rows", [500, 5000])  # KS (small reference) and Wasserstein (large)
def test_shifted_numeric_drifts_unshifted_does_not(rng: np.random.Generator, rows: int) -> None:
    reference = numeric_reference(rng.uniform(0, 1, size=rows))
    same = drift.numeric_drift(reference, rng.uniform(0, 1, size=300))
    percent = drift.numeric_drift(reference, rng.uniform(0, 100, size=300))  # % not fraction
    assert same["test"] == ("ks" if rows <= 1000 else "wasserstein")
    assert not same["drifted"] and percent["drifted"]
    assert sum(percent["live"]["counts"]) == 300 and len(percent["live"]["edges"]) == 11


def test_categorical_and_prediction_shift() -> None:
    reference = {"known": 0.9, "unknown_user": 0.1}
    assert not drift.categorical_drift(reference, ["known"] * 9 + ["unknown_user"])["drifted"]
    assert drift.categorical_drift(reference, ["unknown_user"] * 10)["drifted"]
    shift = drift.prediction_shift({"a": 0.5, "b": 0.5}, ["a"] * 10)
    assert shift["live"] == {"a": 1.0, "b": 0.0} and 0.5 < shift["shift"] <= 1


def test_model_drifts_when_half_its_features_do() -> None:
    assert drift.model_drifts([{"drifted": True}, {"drifted": False}]) == (0.5, True)
    assert (
        drift.model_drifts([{"drifted": True}, {"drifted": False}, {"drifted": False}])[1] is False
    )
    assert drift.model_drifts([]) == (None, False)


def test_tabular_reference_shape(rng: np.random.Generator) -> None:
    ref = tabular_reference({"x": rng.normal(size=100)}, ["a"] * 30 + ["b"] * 70, ["a", "b"])
    assert ref["predictions"] == {"a": 0.3, "b": 0.7}
    assert ref["features"]["x"]["rows"] == 100 and sum(ref["features"]["x"]["counts"]) == 100
