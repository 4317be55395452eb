"""The Bento serves from a fresh environment built only from its own files, started by its own
container entrypoint, as its image would."""

from __future__ import annotations

import pytest

from scripts.bento import verify as verify_bento
from tests.support.routes import CHECKED_ROUTES


@pytest.mark.e2e  # serves the Bento through its own entrypoint
def test_exported_bento_serves_every_endpoint_and_the_web_page_from_a_fresh_environment(
    default_models: dict[str, str],
) -> None:
    report = verify_bento.verify()
    assert report["endpoints"] == CHECKED_ROUTES
    assert report["ready_s"] < 60
    # The image runs as a non-root user, on port 3000 (3001: Prometheus), and takes torch from
    # PyTorch's CPU index (or a local wheel) unless the TORCH_BACKEND build argument says otherwise.
    assert report["image"] == {
        "user": "bentoml",
        "ports": [3000, 3001],
        "torch_backend_arg": True,
    }
