"""Monitoring against the real server: prediction ids, feedback, the drift report."""

from __future__ import annotations

import random

import httpx

from scripts.sample_data.requests import HEALTHY


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
