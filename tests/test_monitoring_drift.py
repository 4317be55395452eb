"""The drift tests against scipy's reference implementations, and on known shifts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import spatial, stats

from model_bundle.monitoring import drift
from model_bundle.monitoring.reference import (
    books_reference,
    embedding_reference,
    numeric_reference,
    project,
    tabular_reference,
)


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


@pytest.mark.parametrize(
    ("observed", "expected"),
    [([18, 22, 20, 40], [25, 25, 25, 25]), ([5, 95], [10, 90]), ([300, 1, 2], [101, 101, 101])],
)
def test_chi_square_matches_scipy(observed: list[int], expected: list[float]) -> None:
    statistic, p_value = drift.chi_square(observed, expected)
    theirs = stats.chisquare(observed, expected)
    assert statistic == pytest.approx(theirs.statistic)
    assert p_value == pytest.approx(theirs.pvalue, rel=1e-9, abs=1e-300)


def test_gamma_q_is_chi_squares_survival_function() -> None:
    for dof in (1, 2, 3, 7, 30):
        for x in (0.01, 0.5, 3.0, 12.0, 80.0):
            assert drift.gamma_q(dof / 2, x / 2) == pytest.approx(stats.chi2.sf(x, dof), rel=1e-9)


def test_small_categorical_references_use_chi_square_large_ones_jensen_shannon() -> None:
    shares = {"known": 0.8, "unknown_user": 0.15, "unknown_book": 0.05, "unknown_user_and_book": 0}
    live = ["known"] * 70 + ["unknown_user"] * 25 + ["unknown_book"] * 5
    small = drift.categorical_drift(shares, live, rows=500)
    # Evidently's chi-square: the live counts against the reference's shares scaled to them;
    # a category absent from both is no cell of the test.
    expected = np.array([0.8, 0.15, 0.05]) + drift.EPSILON
    scipy_p = stats.chisquare([70, 25, 5], expected / expected.sum() * 100).pvalue
    assert small["test"] == "chi_square" and small["score"] == pytest.approx(scipy_p, abs=1e-6)
    assert small["drifted"] == (scipy_p < 0.05)
    large = drift.categorical_drift(shares, live, rows=5000)
    assert large["test"] == "jensen_shannon" and large["threshold"] == drift.JENSEN_SHANNON
    like = ["known"] * 79 + ["unknown_user"] * 16 + ["unknown_book"] * 5
    assert drift.categorical_drift(shares, like, rows=500)["drifted"] is False
    new_category = drift.categorical_drift(shares, ["unknown_user_and_book"] * 30, rows=500)
    assert new_category["drifted"] and new_category["score"] < 1e-6


def test_numeric_prediction_shift_is_a_js_distance_over_the_reference_bins(
    rng: np.random.Generator,
) -> None:
    reference = numeric_reference(rng.normal(7, 1, 2000))
    same = drift.numeric_prediction_shift(reference, rng.normal(7, 1, 300))
    higher = drift.numeric_prediction_shift(reference, rng.normal(9.5, 0.3, 300))
    assert same["shift"] < 0.15 < 0.8 < higher["shift"] <= 1
    assert same["live"]["edges"] == reference["edges"] and sum(same["live"]["counts"]) == 300
    counts = np.array(higher["live"]["counts"])
    assert higher["shift"] == pytest.approx(
        spatial.distance.jensenshannon(reference["counts"], counts, base=2), abs=1e-6
    )
    assert drift.numeric_prediction_shift(reference, np.array([]))["shift"] is None


def test_books_reference_shape() -> None:
    ref = books_reference([None] * 9 + ["unknown_user"], [7.0] * 10)
    cold = ref["features"]["cold_start"]
    assert cold["kind"] == "categorical" and cold["rows"] == 10
    assert cold["categories"] == {
        "known": 0.9,
        "unknown_user": 0.1,
        "unknown_book": 0.0,
        "unknown_user_and_book": 0.0,
    }
    assert ref["predictions"]["kind"] == "numeric" and ref["predictions"]["rows"] == 10


def test_embedding_reference_projects_on_the_principal_components(
    rng: np.random.Generator,
) -> None:
    # 300 embeddings of 16 dims varying mostly along two directions.
    directions = np.linalg.qr(rng.normal(size=(16, 16)))[0][:2]
    embeddings = rng.normal(size=(300, 2)) * [5, 2] @ directions + rng.normal(0, 0.1, (300, 16))
    summary, features = embedding_reference(embeddings, components=3)
    components = np.asarray(summary["components"])
    assert components.shape == (3, 16)
    np.testing.assert_allclose(components @ components.T, np.eye(3), atol=1e-5)
    assert abs(components[0] @ directions[0]) > 0.99  # the widest direction comes first
    assert summary["explained_variance"][0] > summary["explained_variance"][1] > 0.1
    assert set(features) == {"embedding_0", "embedding_1", "embedding_2"}
    assert features["embedding_0"]["kind"] == "embedding"
    projected = project(embeddings, summary)
    assert features["embedding_0"]["std"] == pytest.approx(projected[:, 0].std(), rel=1e-4)

    same = drift.embedding_drift(features["embedding_0"], projected[:100, 0])
    moved = drift.embedding_drift(features["embedding_0"], projected[:100, 0] + 5)
    assert same["test"] == "psi" and not same["drifted"] and moved["drifted"]
    assert moved["score"] == pytest.approx(
        drift.psi(features["embedding_0"]["counts"], moved["live"]["counts"])
    )
