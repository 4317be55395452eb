"""The web page at /ui/, served by the bundle itself, driven in a real headless Chromium against
the real server: every tab filled in and its answer checked against the API's, refusals shown
next to their field or as a readable message, the API key sent, keyboard only, a phone's
width, and no console errors. Screenshots of each tab go to test-artifacts/web-page/.

The browser is Debian's /usr/bin/chromium (no browser download: the network is closed); without
it these tests are skipped with the reason (tests/test_web_page_served.py still runs).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, expect, sync_playwright

from scripts.sample_data.mask import jpeg
from scripts.sample_data.requests import SETOSA, UNHEALTHY, VIRGINICA
from tests.conftest import GUARDED_ENV
from tests.support.server import ROOT, Server

CHROMIUM = Path("/usr/bin/chromium")
NO_CHROMIUM = (
    f"web page browser tests skipped: {CHROMIUM} not found (Debian package chromium; .ci/run "
    "installs it when run as root: apt-get install -y --no-install-recommends chromium)"
)
# Headless as root in a closed network: no sandbox, none of Chromium's own background traffic;
# a fake camera that needs no permission prompt.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
ARTIFACTS = ROOT / "test-artifacts" / "web-page"
# The sample book data's cover URLs point here; the page must cope when it is unreachable.
COVER_HOST = "http://images.amazon.com/"
KNOWN_PAIR = {"user_id": 20525, "isbn": "7428799890"}  # the page's defaults, as in the README
UNKNOWN_USER = 10**9

expect.set_options(timeout=20_000)  # a loaded 2-core machine

if not CHROMIUM.exists():  # before any fixture: no server is started for nothing
    pytest.skip(NO_CHROMIUM, allow_module_level=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class Visit:
    """One page in its own browser context, with every error it logged: the browser's
    "Failed to load resource" lines (``network``: url) apart from the page's own errors."""

    page: Page
    api: str  # the server's URL, where the page's API calls go
    errors: list[str] = field(default_factory=list)
    network: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def open(self, tab: str) -> Page:
        self.page.goto(f"/ui/#{tab}")
        expect(self.page.get_by_role("tab", name=re.compile(tab, re.I))).to_have_attribute(
            "aria-selected", "true"
        )
        return self.page

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)

    def record(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        url = message.location.get("url", "")
        if message.text.startswith("Failed to load resource"):
            self.network.append(url)
        else:
            self.errors.append(f"{message.text} ({url})")

    def problems(self) -> list[str]:
        """The page's own errors, and resources that failed but for two the browser notes by
        itself, which no script can silence: an API call the server refused (the page shows
        the refusal, each test checks how) and a cover on the closed internet (the page shows
        the placeholder)."""
        api_call = re.compile(re.escape(self.api) + r"/(?!ui/)[a-z_]+$")
        return self.errors + [
            f"failed to load {url}"
            for url in self.network
            if not (url.startswith(COVER_HOST) or api_call.match(url))
        ]


def visit_page(browser: Browser, server: Server, width: int = 1100) -> Iterator[Visit]:
    context = browser.new_context(base_url=server.url, viewport={"width": width, "height": 900})
    page = context.new_page()
    visit = Visit(page, server.url)
    page.on("console", visit.record)
    page.on("pageerror", lambda error: visit.errors.append(f"page error: {error}"))

    def block(route: Route) -> None:  # nothing leaves this machine: outside is unreachable
        visit.blocked.append(route.request.url)
        route.abort("internetdisconnected")

    context.route(lambda url: not url.startswith(server.url), block)
    yield visit
    context.close()
    assert visit.problems() == []


@pytest.fixture
def visit(browser: Browser, server: Server) -> Iterator[Visit]:
    yield from visit_page(browser, server)


@pytest.fixture
def phone(browser: Browser, server: Server) -> Iterator[Visit]:
    yield from visit_page(browser, server, width=390)


@pytest.fixture
def guarded_visit(browser: Browser, guarded_server: Server) -> Iterator[Visit]:
    """The page of a server that requires an API key (conftest GUARDED_ENV)."""
    yield from visit_page(browser, guarded_server)


def close_to(text: str, value: float, places: int = 1) -> bool:
    return abs(float(text.rstrip("%")) - value) <= 0.5 * 10**-places + 1e-9


def test_books_tab_shows_the_book_its_rating_and_a_placeholder_cover(
    visit: Visit, http: httpx.Client
) -> None:
    expected = http.post("/rate_book", json=KNOWN_PAIR).json()
    assert not expected["cold_start"], "the README's example pair must be known to the model"
    book = expected["book"]
    page = visit.open("books")
    page.get_by_label("User id").fill(str(KNOWN_PAIR["user_id"]))
    page.get_by_label("ISBN").fill(KNOWN_PAIR["isbn"])
    page.get_by_role("button", name="Predict rating").click()

    result = page.locator("#books-result")
    expect(result.locator(".book-title")).to_have_text(book["title"])
    expect(result.locator(".byline")).to_contain_text(f"{book['author']} · {book['year']}")
    expect(result.locator(".summary")).to_have_text(book["summary"])
    assert close_to(result.locator(".rating-value").inner_text(), expected["rating"])
    expect(result.get_by_role("img", name=re.compile(r"out of 10$"))).to_be_visible()
    expect(result.locator(".answered-by")).to_have_text(f"Answered by {expected['model']}")
    expect(result.locator(".cold-start")).to_have_count(0)
    # The cover's URL is on the internet, unreachable here: the placeholder stays.
    assert book["image_url"].startswith(COVER_HOST)
    cover = result.locator("img.cover")
    expect(cover).to_have_attribute("data-cover", "unavailable")
    assert cover.get_attribute("src") == "cover-placeholder.svg"
    assert cover.evaluate("image => image.complete && image.naturalWidth > 0")
    assert visit.blocked == [book["image_url"]]
    visit.screenshot("books")


def test_books_cold_start_shows_a_notice_and_suggested_books(
    visit: Visit, http: httpx.Client
) -> None:
    suggested = http.post("/recommend_books", json={"user_id": UNKNOWN_USER, "k": 5}).json()
    page = visit.open("books")
    page.get_by_label("User id").fill(str(UNKNOWN_USER))
    page.get_by_role("button", name="Predict rating").click()

    notice = page.locator("#books-result .cold-start")
    expect(notice).to_contain_text("does not know this user")
    titles = notice.locator(".books .book-title")
    expect(titles).to_have_text([b["title"] for b in suggested["books"]])
    visit.screenshot("books-cold-start")


def test_books_recommendations_list_ten_with_their_covers(visit: Visit, http: httpx.Client) -> None:
    expected = http.post("/recommend_books", json={"user_id": KNOWN_PAIR["user_id"], "k": 10})
    books = expected.json()["books"]
    picture = io.BytesIO()
    Image.new("RGB", (60, 90), (150, 40, 40)).save(picture, "PNG")
    # Covers reachable, as on a machine with internet: each one shows.
    visit.page.route(f"{COVER_HOST}**", lambda route: route.fulfill(body=picture.getvalue()))
    page = visit.open("books")
    page.get_by_label("User id").fill(str(KNOWN_PAIR["user_id"]))
    page.get_by_role("button", name="Recommend for this user").click()

    listed = page.locator("#books-recommendations .books > li")
    expect(listed).to_have_count(10)
    expect(listed.locator(".book-title")).to_have_text([b["title"] for b in books])
    expect(listed.locator("img.cover[data-cover=loaded]")).to_have_count(10)
    assert listed.first.locator("img.cover").get_attribute("src") == books[0]["image_url"]
    visit.screenshot("books-recommendations")
    assert visit.errors == visit.network == []

    listed.first.get_by_role("button", name=re.compile("^Rate ")).click()
    expect(page.locator("#books-result .book-title")).to_have_text(books[0]["title"])
    expect(page.locator("#books-isbn")).to_have_value(books[0]["isbn"])


def test_a_bad_isbn_is_shown_next_to_its_field(visit: Visit) -> None:
    page = visit.open("books")
    page.get_by_label("ISBN").fill("12 34")
    page.get_by_role("button", name="Predict rating").click()

    isbn = page.get_by_label("ISBN")
    expect(isbn).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#books-isbn-error")).to_contain_text("should match pattern")
    expect(isbn).to_be_focused()
    expect(page.get_by_role("alert")).to_have_text("Please correct the marked fields.")


def test_mask_tab_classifies_an_uploaded_photo(visit: Visit, http: httpx.Client) -> None:
    photo = jpeg(class_id=3)
    expected = http.post(
        "/classify_mask", files={"image": ("face.jpg", photo, "image/jpeg")}
    ).json()
    page = visit.open("mask")
    page.get_by_label("Face photo").set_input_files(
        files=[{"name": "face.jpg", "mimeType": "image/jpeg", "buffer": photo}]
    )

    result = page.locator("#mask-result")
    expect(page.get_by_role("img", name="The photo being classified")).to_be_visible()
    expect(result.locator(".answered-by")).to_have_text(f"Answered by {expected['model']}")
    for attribute, labels in {"mask": 3, "gender": 2, "age": 3}.items():
        group = result.locator(f"[data-attribute={attribute}]")
        expect(group.locator(".bars li")).to_have_count(labels)
        top = max(expected["marginals"][attribute], key=expected["marginals"][attribute].get)
        expect(group.locator(f'li.top[data-label="{top}"]')).to_have_count(1)
    confidence = result.locator(".confidence strong").inner_text()
    assert close_to(confidence, 100 * expected["confidence"])
    visit.screenshot("mask")


def test_mask_tab_takes_a_photo_with_the_camera(visit: Visit) -> None:
    page = visit.open("mask")
    page.get_by_role("button", name="Use the camera").click()
    expect(page.get_by_label("Camera preview")).to_be_visible()
    page.get_by_role("button", name="Take photo").click()

    expect(page.locator("#mask-result .verdict")).to_contain_text("Mask ")
    expect(page.get_by_label("Camera preview")).to_be_hidden()
    preview = page.get_by_role("img", name="The photo being classified")
    assert preview.evaluate("image => image.naturalWidth > 0")


def test_refused_uploads_are_readable(visit: Visit, tmp_path: Path) -> None:
    page = visit.open("mask")
    field = page.get_by_label("Face photo")
    field.set_input_files(files=[{"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": b"hi"}])
    expect(page.locator("#mask-image-error")).to_contain_text("image")
    expect(field).to_have_attribute("aria-invalid", "true")

    too_large = tmp_path / "big.jpg"  # over MAX_REQUEST_BYTES: the server's 413
    too_large.write_bytes(b"\xff" * (10 * 1024 * 1024 + 1))
    field.set_input_files(too_large)  # a path: the browser reads it, nothing copied through
    expect(page.get_by_role("alert")).to_have_text(
        re.compile(r"^The upload is too large: request body larger than .* bytes")
    )
    expect(page.locator("#mask-image-error")).to_have_count(0)
    visit.screenshot("mask-too-large")


def test_credit_tab_assesses_a_company(visit: Visit, http: httpx.Client) -> None:
    expected = http.post("/predict_credit", json=UNHEALTHY).json()
    page = visit.open("credit")
    for name, value in UNHEALTHY.items():
        page.locator(f"#credit-{name}").fill(str(value))
    page.get_by_role("button", name="Assess").click()

    result = page.locator("#credit-result")
    expect(result.locator(".verdict")).to_contain_text("Unhealthy")
    assert close_to(
        result.locator(".verdict-probability").inner_text(), 100 * expected["probability"]
    )
    expect(result.locator(".bars li")).to_have_count(2)
    expect(result.locator(".answered-by")).to_have_text(f"Answered by {expected['model']}")
    visit.screenshot("credit")


def test_an_out_of_range_ratio_is_shown_next_to_its_field_and_cleared_when_fixed(
    visit: Visit,
) -> None:
    page = visit.open("credit")
    debt = page.get_by_label("Debt ratio")
    debt.fill("500")
    page.get_by_role("button", name="Assess").click()

    expect(page.locator("#credit-debt_ratio-error")).to_have_text(
        "Input should be less than or equal to 100."
    )
    expect(debt).to_have_attribute("aria-invalid", "true")
    expect(debt).to_have_attribute("aria-describedby", re.compile("credit-debt_ratio-error"))
    expect(debt).to_be_focused()
    assert "{" not in page.locator("#panel-credit").inner_text()  # never raw JSON
    visit.screenshot("credit-error")

    debt.fill("0.2")
    page.get_by_role("button", name="Assess").click()
    expect(page.locator("#credit-result .verdict")).to_contain_text("Healthy")
    expect(page.locator("#credit-debt_ratio-error")).to_have_count(0)
    expect(page.get_by_role("alert")).to_be_hidden()


def test_iris_tab_classifies_a_flower(visit: Visit, http: httpx.Client) -> None:
    expected = http.post("/classify_iris", json=SETOSA).json()
    page = visit.open("iris")
    page.get_by_label("Sepal length (cm)").fill(str(SETOSA["sepal_length"]))
    page.get_by_label("Sepal width (cm)").fill(str(SETOSA["sepal_width"]))
    page.get_by_label("Petal length (cm)").fill(str(SETOSA["petal_length"]))
    page.get_by_label("Petal width (cm)").fill(str(SETOSA["petal_width"]))
    page.get_by_role("button", name="Classify").click()

    result = page.locator("#iris-result")
    expect(result.locator(".verdict")).to_contain_text("Iris setosa")
    expect(result.locator(".bars .bar-label")).to_have_text(
        ["Iris setosa", "Iris versicolor", "Iris virginica"]
    )
    expect(result.locator(".answered-by")).to_have_text(f"Answered by {expected['model']}")
    visit.screenshot("iris")


def test_the_api_key_is_sent_and_kept_for_the_session_only(visit: Visit) -> None:
    page = visit.open("iris")
    page.get_by_label("API key").fill("key-123")
    with page.expect_request("**/classify_iris") as request:
        page.get_by_role("button", name="Classify").click()
    assert request.value.headers.get("x-api-key") == "key-123"
    expect(page.locator("#iris-result .verdict")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('model_bundle.api_key')") == "key-123"
    assert page.evaluate("localStorage.length") == 0

    page.reload()
    expect(page.get_by_label("API key")).to_have_value("key-123")
    page.get_by_label("API key").fill("")
    with page.expect_request("**/classify_iris") as request:
        page.get_by_role("button", name="Classify").click()
    assert "x-api-key" not in request.value.headers
    assert page.evaluate("sessionStorage.length") == 0


def test_a_server_with_api_keys_refuses_then_answers_with_the_key(guarded_visit: Visit) -> None:
    page = guarded_visit.open("iris")
    with page.expect_response("**/classify_iris") as refused:
        page.get_by_role("button", name="Classify").click()
    assert refused.value.status == 401  # the real server's answer, not a routed one
    expect(page.get_by_role("alert")).to_contain_text("API key missing or wrong")
    expect(page.get_by_label("API key")).to_be_focused()

    page.get_by_label("API key").fill(GUARDED_ENV["MODEL_BUNDLE_API_KEYS"].split(",")[1].strip())
    with page.expect_response("**/classify_iris") as answered:
        page.get_by_role("button", name="Classify").click()
    assert answered.value.status == 200
    expect(page.locator("#iris-result .verdict")).to_be_visible()
    guarded_visit.screenshot("api-key")


@pytest.mark.parametrize(
    ("status", "headers", "message"),
    [
        (401, {}, "API key missing or wrong"),
        (429, {"Retry-After": "7"}, "Too many requests: please wait 7 s"),
        (503, {}, "The model is busy or restarting"),
        (500, {}, "The server failed (HTTP 500)"),
    ],
)
def test_other_refusals_are_readable_messages(
    visit: Visit, status: int, headers: dict[str, str], message: str
) -> None:
    # The server answers none of these to a good request at will (the real 401 is tested
    # above): the browser gets them from a route, to check what a person reads.
    body = '{"error": "refused"}'
    visit.page.route(
        "**/classify_iris",
        lambda route: route.fulfill(status=status, headers=headers, body=body),
    )
    page = visit.open("iris")
    page.get_by_role("button", name="Classify").click()
    expect(page.get_by_role("alert")).to_contain_text(message)
    assert "{" not in page.get_by_role("alert").inner_text()
    if status == 401:
        expect(page.get_by_label("API key")).to_have_attribute("aria-invalid", "true")
        expect(page.get_by_label("API key")).to_be_focused()


def test_a_form_works_from_the_keyboard_alone(visit: Visit) -> None:
    page = visit.open("books")
    for _ in range(10):  # from the top of the page to the tab list
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "tab-books":
            break
    page.keyboard.press("End")
    expect(page.get_by_role("tab", name="Monitoring")).to_be_focused()
    page.keyboard.press("ArrowLeft")
    iris = page.get_by_role("tab", name="Iris")
    expect(iris).to_be_focused()
    expect(iris).to_have_attribute("aria-selected", "true")
    for name, value in VIRGINICA.items():
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.name") == name
        page.keyboard.press("ControlOrMeta+A")
        page.keyboard.type(str(value))
    page.keyboard.press("Enter")
    expect(page.locator("#iris-result .verdict")).to_contain_text("Iris virginica")

    page.keyboard.press("Tab")  # on to the Classify button, pressed with the space bar
    expect(page.get_by_role("button", name="Classify")).to_be_focused()
    with page.expect_response("**/classify_iris") as answer:
        page.keyboard.press(" ")
    assert answer.value.json()["species"] == "virginica"


def fits_the_width(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_every_tab_fits_a_phone_without_sideways_scrolling(phone: Visit) -> None:
    page = phone.open("books")
    page.get_by_label("User id").fill(str(UNKNOWN_USER))
    page.get_by_role("button", name="Predict rating").click()
    expect(page.locator("#books-result .cold-start .books > li")).to_have_count(5)
    assert fits_the_width(page)
    page.get_by_role("button", name="Recommend for this user").click()
    expect(page.locator("#books-recommendations .books > li")).to_have_count(10)
    assert fits_the_width(page)
    phone.screenshot("phone-books")

    page.get_by_role("tab", name="Face mask").click()
    page.get_by_label("Face photo").set_input_files(
        files=[{"name": "face.jpg", "mimeType": "image/jpeg", "buffer": jpeg(class_id=3)}]
    )
    expect(page.locator("#mask-result .attribute")).to_have_count(3)
    assert fits_the_width(page)
    phone.screenshot("phone-mask")

    for tab, button in [("Credit", "Assess"), ("Iris", "Classify")]:
        page.get_by_role("tab", name=tab).click()
        page.get_by_role("button", name=button).click()
        expect(page.locator(f"#{tab.lower()}-result .verdict")).to_be_visible()
        assert fits_the_width(page), tab
        phone.screenshot(f"phone-{tab.lower()}")
