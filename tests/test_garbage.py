"""The serving processes' garbage collector setting (model_bundle/garbage.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from model_bundle.garbage import tune_garbage_collector
from model_bundle.settings import SettingsError, from_environ


@pytest.fixture
def python_thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    yield before
    gc.set_threshold(*before)


def test_the_young_threshold_changes_and_the_older_ones_stay(
    python_thresholds: tuple[int, int, int],
) -> None:
    tune_garbage_collector(20_000)
    assert gc.get_threshold() == (20_000, *python_thresholds[1:])


def test_the_default_is_well_above_pythons_and_a_tiny_value_is_refused() -> None:
    assert from_environ({}).gc_young_threshold == 10_000 > gc.get_threshold()[0]
    with pytest.raises(SettingsError, match="MODEL_BUNDLE_GC_YOUNG_THRESHOLD"):
        from_environ({"MODEL_BUNDLE_GC_YOUNG_THRESHOLD": "5"})
