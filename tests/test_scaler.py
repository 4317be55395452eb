"""Our min-max scaler is scikit-learn's, as plain arrays."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.preprocessing import MinMaxScaler as SklearnMinMaxScaler

from models.tabular.network import MinMaxScaler


@pytest.fixture
def data() -> np.ndarray:
    rng = np.random.default_rng(3)
    x = rng.normal(loc=[0, 5, -3, 100, 0.01], scale=[1, 2, 0.5, 40, 0.001], size=(200, 5))
    x[:, 4] = 7.0  # a constant column: scikit-learn keeps scale 1 there
    return x


def test_fit_equals_scikit_learn(data: np.ndarray) -> None:
    ours = MinMaxScaler.fit(data)
    theirs = SklearnMinMaxScaler().fit(data)
    np.testing.assert_allclose(ours.scale, theirs.scale_)
    np.testing.assert_allclose(ours.min, theirs.min_)
    np.testing.assert_allclose(ours.data_min, theirs.data_min_)
    np.testing.assert_allclose(ours.data_max, theirs.data_max_)
    unseen = np.random.default_rng(4).normal(size=(30, 5)) * 50
    np.testing.assert_allclose(ours.transform(unseen), theirs.transform(unseen), rtol=1e-12)


@pytest.mark.parametrize("feature_range", [(0, 1), (-1, 1)])
def test_converted_scaler_transforms_like_scikit_learn(
    data: np.ndarray, feature_range: tuple[int, int]
) -> None:
    theirs = SklearnMinMaxScaler(feature_range=feature_range).fit(data)
    ours = MinMaxScaler.from_sklearn(theirs)
    x = np.random.default_rng(5).normal(size=(30, 5)).astype(np.float32)
    scaled = ours.module()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(scaled, theirs.transform(x), rtol=1e-5, atol=1e-5)


def test_metadata_round_trip(data: np.ndarray) -> None:
    scaler = MinMaxScaler.fit(data)
    assert MinMaxScaler.from_metadata(scaler.to_metadata()) == scaler


def test_clipping_scaler_is_refused(data: np.ndarray) -> None:
    with pytest.raises(ValueError, match="clip=True"):
        MinMaxScaler.from_sklearn(SklearnMinMaxScaler(clip=True).fit(data))


def test_unfitted_scaler_is_refused() -> None:
    with pytest.raises(ValueError, match="not a fitted MinMaxScaler"):
        MinMaxScaler.from_sklearn(SklearnMinMaxScaler())
