"""Monitoring against the real server: prediction ids, feedback, the drift report."""

from __future__ import annotations

import random
import time

import httpx
from PIL import Image

from scripts.benchmarks.monitoring import monitor_seconds
from scripts.sample_data.requests import HEALTHY
from tests.support.images import encode, face


def test_feedback_drift_and_bad_feedback(own_server) -> None:
    server = own_server(
        {
            "MODEL_BUNDLE_PAYLOAD_SAMPLE_RATE": "1.0",
            "MODEL_BUNDLE_DRIFT_WINDOW": "100",
            "MODEL_BUNDLE_DRIFT_MIN_SAMPLES": "50",
        }
    )
    with httpx.Client(base_url=server.url, timeout=30) as http:
        answer = http.post("/predict_credit", json=HEALTHY).json()
        assert len(answer["prediction_id"]) == 32
        ok = http.post(
            "/feedback", json={"prediction_id": answer["prediction_id"], "label": answer["label"]}
        )
        assert ok.status_code == 200 and ok.json()["accuracy"] == 1.0
        again = http.post(
            "/feedback", json={"prediction_id": answer["prediction_id"], "label": "healthy"}
        )
        assert again.status_code == 400 and "unknown or expired" in again.text
        assert again.json()["detail"][0]["type"] == "unknown_prediction"
        assert again.json()["detail"][0]["loc"] == ["prediction_id"]
        assert http.post("/feedback", json={"prediction_id": "x", "rating": 11}).status_code == 400
        assert http.post("/drift", json={"model": "nope"}).status_code == 400
        report = http.post("/drift", json={"model": "credit_health"}).json()["models"][0]
        assert report["status"] == "collecting" and report["feedback"]["accuracy"] == 1.0
        rng = random.Random(0)
        items = [  # ratios sent in percent instead of fractions
            {
                k: v * 100 if k in ("debt_ratio", "operating_margin", "return_on_assets") else v
                for k, v in HEALTHY.items()
            }
            | {"debt_ratio": rng.uniform(20, 90)}
            for _ in range(100)
        ]
        assert http.post("/predict_credit_batch", json={"items": items}).status_code == 200
        report = http.post("/drift", json={"model": "credit_health"}).json()["models"][0]
        assert report["status"] == "drift", report
        metrics = http.get("/metrics").text
        assert 'model_bundle_drift_detected{model="credit_health"} 1.0' in metrics
        assert "model_bundle_feedback_total" in metrics
        # What monitoring costs, by part, as the monitoring benchmark reads it. The writer
        # thread takes its queue every quarter second: its seconds may come a little later.
        deadline = time.monotonic() + 10
        while (spent := monitor_seconds(server.url)).get("payload_writing", 0) == 0:
            assert time.monotonic() < deadline, spent
            time.sleep(0.3)
        assert 0 < spent["recording"] < 5 and 0 < spent["payload_writing"] < 5


def test_books_and_masks_drift_against_their_training_reference(own_server) -> None:
    server = own_server({"MODEL_BUNDLE_DRIFT_WINDOW": "60", "MODEL_BUNDLE_DRIFT_MIN_SAMPLES": "50"})
    with httpx.Client(base_url=server.url, timeout=60) as http:
        strangers = [{"user_id": 10_000_000 + n, "isbn": "0000000000"} for n in range(60)]
        assert http.post("/rate_books", json={"items": strangers}).status_code == 200
        books = http.post("/drift", json={"model": "book_rating"}).json()["models"][0]
        [cold] = books["features"]
        assert cold["feature"] == "cold_start" and cold["kind"] == "categorical"
        assert cold["reference"]["categories"]["known"] > 0.5
        assert cold["live"]["categories"]["unknown_user_and_book"] == 1.0 and cold["drifted"]
        assert books["status"] == "drift"
        predictions = books["predictions"]
        assert sum(predictions["live"]["counts"]) == 60 and 0 < predictions["shift"] <= 1
        assert predictions["live"]["edges"] == predictions["reference"]["edges"]

        def upload(images: list[Image.Image]) -> None:  # PNG: the training photos' pixels
            files = [
                ("images", (f"{n}.png", encode(im, "PNG"), "image/png"))
                for n, im in enumerate(images)
            ]
            assert http.post("/classify_masks", files=files).status_code == 200

        faces = [face(n % 18, seed=n) for n in range(60)]
        for start in range(0, 60, 10):  # 10 PNGs a request stay under the 10 MB body limit
            upload(faces[start : start + 10])
        masks = http.post("/drift", json={"model": "mask_classifier"}).json()["models"][0]
        features = {f["feature"]: f for f in masks["features"]}
        assert {"brightness", "contrast", "width", "height", "aspect", "embedding_0"} <= set(
            features
        )
        assert features["embedding_0"]["kind"] == "embedding"
        assert not features["aspect"]["drifted"] and not features["width"]["drifted"]
        assert masks["status"] == "ok", masks
        small_and_dark = [im.resize((200, 200)).point(lambda v: v // 3) for im in faces[:30]]
        upload(small_and_dark)
        upload(small_and_dark)
        masks = http.post("/drift", json={"model": "mask_classifier"}).json()["models"][0]
        drifted = {f["feature"] for f in masks["features"] if f["drifted"]}
        assert {"brightness", "width", "height", "aspect"} <= drifted
        assert masks["status"] == "drift"
