"""The web page's explanations in real Chromium: "Why?" under an answer shows attribution
bars, the book rating's largest terms, the heat map over the photo, and the calibration."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from models.artifact import Artifact
from models.books.model import BookRatingModel
from scripts.sample_data.mask import jpeg
from tests import test_web_page
from tests.test_web_page import SETOSA, Visit

# The page's fixtures (real Chromium, a visit that fails on console errors), shared.
browser = test_web_page.browser
visit = test_web_page.visit


def test_iris_why_shows_attribution_bars_and_calibration(visit: Visit, http: httpx.Client) -> None:
    expected = http.post("/explain_iris", json=SETOSA).json()["explanation"]
    page = visit.open("iris")
    for name, value in SETOSA.items():
        page.locator(f"#iris-{name}").fill(str(value))
    page.get_by_role("button", name="Classify").click()
    page.locator("#iris-result").get_by_role("button", name="Why?").click()
    bars = page.locator("#iris-result .attributions li")
    expect(bars).to_have_count(4)
    largest = max(expected["features"], key=lambda f: abs(f["attribution"]))
    feature = largest["feature"]
    fill = page.locator(f'#iris-result .attributions li[data-feature="{feature}"] .fill')
    expect(fill).to_have_attribute("style", "width: 100%;")
    expect(page.locator("#iris-result .calibration")).to_contain_text("expected calibration error")
    visit.screenshot("iris-why")


def test_books_why_lists_the_largest_terms(
    visit: Visit, http: httpx.Client, default_models: dict[str, str]
) -> None:
    books = BookRatingModel.load(Artifact.load(default_models["book_rating"]))
    pair = {"user_id": int(books.featurizer.user_ids[0]), "isbn": str(books.featurizer.isbns[-1])}
    top = http.post("/explain_book_rating", json=pair).json()["explanation"]["top"]
    page = visit.open("books")
    page.locator("#books-form [name=user_id]").fill(str(pair["user_id"]))
    page.locator("#books-form [name=isbn]").fill(pair["isbn"])
    page.locator("#books-form [type=submit]").click()
    page.locator("#books-result").get_by_role("button", name="Why?").click()
    expect(page.locator("#books-result .terms li")).to_have_text([t["sentence"] for t in top])


def test_mask_why_shows_the_heat_map_over_the_photo(visit: Visit) -> None:
    page = visit.open("mask")
    page.get_by_label("Face photo").set_input_files(
        files=[{"name": "face.jpg", "mimeType": "image/jpeg", "buffer": jpeg(class_id=3)}]
    )
    page.locator("#mask-result").get_by_role("button", name="Why?").click()
    heat = page.get_by_role("img", name="Where the network looked, over the photo")
    expect(heat).to_be_visible()
    assert heat.evaluate("img => img.complete && img.naturalWidth") > 0
    visit.screenshot("mask-why")
