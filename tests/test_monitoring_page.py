"""Monitoring for people in real Chromium: the web page's Monitoring tab against the real
server's POST /drift (histograms, status and its sentence, predicted-label shares, live
accuracy), and the HTML drift report of logged payloads opened as a file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Locator, Route, expect

from model_bundle.monitoring import report
from scripts.sample_data.mask import jpeg
from scripts.sample_data.requests import HEALTHY, SETOSA
from tests import test_web_page
from tests.support.server import Server
from tests.test_monitoring_report import FEATURES, credit_rows, log_payloads
from tests.test_web_page import (
    ARTIFACTS,
    KNOWN_PAIR,
    Visit,
    close_to,
    fits_the_width,
    visit_page,
)

# The page's fixtures (real Chromium, a visit that fails on console errors), shared.
browser = test_web_page.browser
visit = test_web_page.visit

TITLES = {"ok": "No drift", "drift": "Drift", "collecting": "Collecting"}
TITLES["no_reference"] = "No reference"
SENTENCES = {
    "ok": "Fewer than half of the features differ from the training data",
    "drift": "At least half of the features differ from the training data",
    "collecting": "drift is tested once",
    "no_reference": "stored without statistics of its training data",
}


def numbers(bars: Locator, attribute: str) -> list[float]:
    return bars.evaluate_all(f"bars => bars.map(b => Number(b.getAttribute('{attribute}')))")


def check_status(article: Locator, model: dict) -> None:
    status = model["status"]
    expect(article).to_have_attribute("data-status", status)
    expect(article.locator(".badge")).to_have_text(TITLES[status])
    expect(article.locator(".status-sentence")).to_contain_text(SENTENCES[status])
    if status == "collecting":
        window = model["window"]
        expect(article.locator(".status-sentence")).to_contain_text(
            f"{window['filled']} of {window['min_samples']} live answers so far"
        )


def test_monitoring_tab_draws_the_servers_drift_report(visit: Visit, http: httpx.Client) -> None:
    rows = credit_rows(150, seed=21, shifted=True)
    answers = http.post("/predict_credit_batch", json={"items": rows}).json()["predictions"]
    truths = [a["label"] for a in answers[:3]] + [
        "healthy" if answers[3]["label"] == "unhealthy" else "unhealthy"
    ]
    for answer, truth in zip(answers, truths, strict=False):
        feedback = {"prediction_id": answer["prediction_id"], "label": truth}
        assert http.post("/feedback", json=feedback).status_code == 200
    expected = {m["model"]: m for m in http.post("/drift", json={}).json()["models"]}
    credit = expected["credit_health"]
    assert credit["status"] in ("ok", "drift") and credit["window"]["filled"] >= 150

    page = visit.open("monitoring")
    for name, model in expected.items():
        check_status(page.locator(f'article[data-model="{name}"]'), model)
    article = page.locator('article[data-model="credit_health"]')
    expect(article.locator("figure.feature")).to_have_count(len(credit["features"]))
    assert [f["feature"] for f in credit["features"]] == FEATURES
    for feature in credit["features"]:
        card = article.locator(f'figure[data-feature="{feature["feature"]}"]')
        expect(card.get_by_role("img")).to_be_visible()
        assert numbers(card.locator("rect.live"), "data-count") == feature["live"]["counts"]
        assert (
            numbers(card.locator("rect.reference"), "data-count")
            == (feature["reference"]["counts"])
        )
        test = card.locator(".test")
        assert float(test.get_attribute("data-score") or "nan") == feature["score"]
        assert float(test.get_attribute("data-threshold") or "nan") == feature["threshold"]
        expect(test).to_contain_text("Wasserstein distance / reference std")
        expect(card.locator(".verdict-word")).to_have_text(
            "drifted" if feature["drifted"] else "stable"
        )
    for label, share in credit["predictions"]["live"].items():
        cells = article.locator(f'.predictions tr[data-label="{label}"] td')
        assert close_to(cells.nth(1).inner_text(), 100 * share)
        assert close_to(cells.nth(0).inner_text(), 100 * credit["predictions"]["reference"][label])
    feedback = credit["feedback"]
    assert feedback["count"] >= 4 and feedback["accuracy"] is not None
    value = article.locator(".feedback-value")
    assert float(value.get_attribute("data-value") or "nan") == feedback["accuracy"]
    expect(value).to_contain_text(f"over the last {feedback['count']} feedback labels")
    assert close_to(re.search(r"([\d.]+)%", value.inner_text())[1], 100 * feedback["accuracy"])
    dots = article.locator("svg.history circle")
    assert numbers(dots, "data-value") == [p["value"] for p in feedback["history"]]
    visit.screenshot("monitoring")
    page.set_viewport_size({"width": 390, "height": 900})  # a phone: no sideways scrolling
    assert fits_the_width(page)

    page.get_by_label("Model", exact=True).select_option("iris")  # one model; Refresh asks again
    expect(page.locator("article.monitored")).to_have_count(1)
    with page.expect_response("**/drift") as answered:
        page.get_by_role("button", name="Refresh").click()
    assert json.loads(answered.value.request.post_data or "{}") == {"model": "iris"}
    expect(page.locator('article[data-model="iris"]')).to_be_visible()


def test_monitoring_tab_draws_embedding_components_and_predicted_ratings(
    visit: Visit, http: httpx.Client
) -> None:
    """Photos' embedding components and the book rating's histogram carry decile edges, not
    categories: the tab drew nothing (a TypeError) once both windows were full."""
    strangers = [{"user_id": 20_000_000 + n, "isbn": "0000000000"} for n in range(120)]
    assert http.post("/rate_books", json={"items": strangers}).status_code == 200
    for start in range(0, 120, 30):
        photos = [
            ("images", (f"{n}.jpg", jpeg(class_id=n % 18, seed=n), "image/jpeg"))
            for n in range(start, start + 30)
        ]
        assert http.post("/classify_masks", files=photos).status_code == 200
    expected = {m["model"]: m for m in http.post("/drift", json={}).json()["models"]}
    books, masks = expected["book_rating"], expected["mask_classifier"]
    assert books["status"] in ("ok", "drift") and masks["status"] in ("ok", "drift")

    page = visit.open("monitoring")
    for name, model in expected.items():
        check_status(page.locator(f'article[data-model="{name}"]'), model)
    article = page.locator('article[data-model="mask_classifier"]')
    components = [f for f in masks["features"] if f["kind"] == "embedding"]
    assert components
    for feature in components:
        card = article.locator(f'figure[data-feature="{feature["feature"]}"]')
        assert numbers(card.locator("rect.live"), "data-count") == feature["live"]["counts"]
        expect(card.locator(".test")).to_contain_text("population stability index")
    ratings = page.locator(
        'article[data-model="book_rating"] figure[data-feature="predicted_rating"]'
    )
    live = books["predictions"]["live"]["counts"]
    assert numbers(ratings.locator("rect.live"), "data-count") == live and sum(live) >= 120
    reference = books["predictions"]["reference"]["counts"]
    assert numbers(ratings.locator("rect.reference"), "data-count") == reference
    shift = page.locator('article[data-model="book_rating"] .predictions .shift')
    expect(shift).to_contain_text(f"Prediction shift {books['predictions']['shift']:.4g}")


def test_a_fresh_server_shows_collecting_and_no_reference_with_their_sentences(
    browser: Browser, own_server
) -> None:
    server: Server = own_server({"MODEL_BUNDLE_DRIFT_MIN_SAMPLES": "1000000"})
    with httpx.Client(base_url=server.url, timeout=30) as fresh:
        unanswered = fresh.post("/drift", json={}).json()["models"]
        assert all(m["version"] and m["window"]["filled"] == 0 for m in unanswered), unanswered
        assert {m["status"] for m in unanswered} <= {"collecting", "no_reference"}
        assert fresh.post("/classify_iris", json=SETOSA).status_code == 200
        assert fresh.post("/predict_credit", json=HEALTHY).status_code == 200
        assert fresh.post("/rate_book", json=KNOWN_PAIR).status_code == 200
        photo = {"image": ("face.jpg", jpeg(class_id=3), "image/jpeg")}
        assert fresh.post("/classify_mask", files=photo).status_code == 200
        expected = {m["model"]: m for m in fresh.post("/drift", json={}).json()["models"]}
    statuses = {name: model["status"] for name, model in expected.items()}
    assert statuses["credit_health"] == statuses["iris"] == "collecting"  # both have references
    assert (
        expected["iris"]["window"]["filled"] == expected["credit_health"]["window"]["filled"] == 1
    )
    assert all(model["version"] for model in expected.values())
    lacking = [name for name, status in statuses.items() if status == "no_reference"]
    for visit in visit_page(browser, server):
        if not lacking:  # every served model has a reference: the contract's answer for one
            drop_the_reference_of(visit, "credit_health")
            expected["credit_health"] |= {"status": "no_reference", "features": []}
        page = visit.open("monitoring")
        for name, model in expected.items():
            check_status(page.locator(f'article[data-model="{name}"]'), model)
        for name in lacking or ["credit_health"]:
            expect(page.locator(f'article[data-model="{name}"] figure.feature')).to_have_count(0)
        visit.screenshot("monitoring-fresh")


def drop_the_reference_of(visit: Visit, model: str) -> None:
    """The server's real answer, but for one model reported as a version without reference
    statistics (a checkpoint imported without a reference file)."""

    def answer(route: Route) -> None:
        real = route.fetch().json()
        for entry in real["models"]:
            if entry["model"] == model:
                entry.update(status="no_reference", features=[], drifted_share=None)
        route.fulfill(json=real)

    visit.page.route("**/drift", answer)


def test_the_drift_report_renders_in_chromium_from_its_file_alone(
    browser: Browser, default_models: dict[str, str], tmp_path: Path
) -> None:
    tag = default_models["credit_health"]
    rows = credit_rows(300, seed=22) + credit_rows(300, seed=23, shifted=True)
    log_payloads(tmp_path / "payloads", tag, rows)
    out = tmp_path / "drift-report.html"
    assert report.main([str(tmp_path / "payloads"), "--window", "300", "--out", str(out)]) == 0

    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(out.as_uri())
    section = page.locator('section[data-model="credit_health"]')
    expect(section.locator(".status")).to_have_text("drift")
    plots = section.locator("svg[data-feature]")
    expect(plots).to_have_count(len(FEATURES))
    for i in range(len(FEATURES)):
        box = plots.nth(i).bounding_box()
        assert box and box["width"] > 100 and box["height"] > 40
        assert plots.nth(i).locator("rect").count() == 20  # 10 bins, reference and live
    expect(page.locator('[data-chart="timeline"]')).to_be_visible()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "drift-report.png", full_page=True)
    context.close()
    assert requested == [out.as_uri()] and errors == []  # the file alone, nothing fetched
