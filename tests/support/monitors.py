"""A front monitor for in-process tests: the store's references, no payload logging."""

from __future__ import annotations

from pathlib import Path

from model_bundle.monitoring.monitor import Monitor
from model_bundle.monitoring.payloads import PayloadLog


def quiet_monitor(tmp_path: Path, window: int = 200, min_samples: int = 100) -> Monitor:
    """A monitor as the front builds one, but logging no payloads (sample rate 0)."""
    return Monitor(
        window=window,
        min_samples=min_samples,
        feedback_window=10,
        recent=10,
        payloads=PayloadLog(tmp_path / "payloads", 0.0),
    )
