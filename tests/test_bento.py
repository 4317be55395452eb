"""The Bento serves from a fresh environment built only from its own files (as a container)."""

from __future__ import annotations

from scripts import verify_bento


def test_exported_bento_serves_every_endpoint_from_a_fresh_environment(
    default_models: dict[str, str],
) -> None:
    report = verify_bento.verify()
    assert report["endpoints"] == [
        "/predict_credit",
        "/predict_credit_batch",
        "/classify_iris",
        "/models",
        "/recommend_books",
        "/rate_book",
        "/rate_books",
        "/classify_mask",
        "/classify_masks",
    ]
    assert report["ready_s"] < 60
