"""The review page in a real browser: Debian's chromium, headless, driven by Selenium against
the API served on loopback with API keys on."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from docflow_assets.demo.render import render_document
from docflow_assets.settings import DocflowSettings
from tests.helpers import serve

pytestmark = pytest.mark.integration
KEY = "review-key"


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    driver_path = shutil.which("chromedriver")
    assert driver_path, "make install provides Debian's chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.implicitly_wait(10)
    try:
        yield driver
    finally:
        driver.quit()


def test_a_reviewer_signs_in_uploads_sees_the_prediction_and_relabels(
    home_copy: DocflowSettings, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    data, extension, _ = render_document("invoice", 77, seed=9)
    scan = tmp_path / f"new-invoice.{extension}"
    scan.write_bytes(data)
    settings = home_copy.model_copy(update={"api_keys": KEY})
    with serve(settings) as base:
        browser.get(f"{base}/review")
        assert browser.current_url.endswith("/review/login")  # no key yet: the sign-in form
        browser.find_element(By.NAME, "key").send_keys(KEY)
        browser.find_element(By.CSS_SELECTOR, "#login button").click()
        assert browser.find_element(By.ID, "documents")  # the list, signed in by cookie

        browser.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(scan))
        browser.find_element(By.CSS_SELECTOR, "#upload button").click()
        assert "Stored" in browser.find_element(By.ID, "message").text
        document_id = int(browser.current_url.split("/review/")[1].split("?")[0])
        assert browser.find_element(By.ID, "status").text == "uploaded"
        image = browser.find_element(By.CSS_SELECTOR, ".pages img")
        assert browser.execute_script("return arguments[0].naturalWidth", image) > 0

        browser.find_element(By.CSS_SELECTOR, "#predict-form button").click()
        assert browser.find_element(By.ID, "prediction").text.startswith("invoice")
        assert browser.find_element(By.ID, "status").text == "predicted"
        assert "INVOICE" in browser.find_element(By.CSS_SELECTOR, ".words").text.upper()

        field = browser.find_element(By.CSS_SELECTOR, "#label-form input[name=label]")
        field.clear()
        field.send_keys("Receipt")
        browser.find_element(By.CSS_SELECTOR, "#label-form button").click()
        # The old page holds a #label too: wait for the answer's page.
        WebDriverWait(browser, 10).until(
            expected_conditions.text_to_be_present_in_element((By.ID, "message"), "Labelled")
        )
        assert browser.find_element(By.ID, "label").text == "receipt"

        # The same record the JSON API reads, labelled from the page.
        stored = httpx.get(f"{base}/document/{document_id}", headers={"X-API-Key": KEY}).json()
        assert (stored["label"], stored["label_source"]) == ("receipt", "review")
        browser.get(f"{base}/review?unlabelled=true")
        listed = browser.find_element(By.ID, "documents").text
        assert "new-invoice" not in listed
        browser.get(f"{base}/review?status=predicted&unsure_first=true")
        assert "new-invoice" in browser.find_element(By.ID, "documents").text


def test_a_reviewer_labels_a_page_of_predictions_in_one_go(
    home_copy: DocflowSettings, browser: webdriver.Chrome
) -> None:
    with serve(home_copy) as base:
        browser.get(f"{base}/review?status=predicted&unlabelled=true")
        boxes = browser.find_elements(By.CSS_SELECTOR, "#documents input[name=accept]")
        assert len(boxes) >= 4
        first, second, third, fourth = (int(box.get_attribute("value") or 0) for box in boxes[:4])
        predicted = {
            document_id: httpx.get(f"{base}/prediction/history/{document_id}").json()[
                "predictions"
            ][-1]
            for document_id in (first, second)
        }
        boxes[0].click()
        boxes[1].click()
        browser.find_element(By.NAME, f"label-{third}").send_keys("Memo")
        browser.find_element(By.NAME, f"label-{fourth}").send_keys("not a label!")
        browser.find_element(By.CSS_SELECTOR, "#labels button").click()
        WebDriverWait(browser, 10).until(
            expected_conditions.text_to_be_present_in_element((By.ID, "message"), "Labelled 3")
        )
        assert f"{fourth}:" in browser.find_element(By.ID, "message").text
        assert "unlabelled=true" in browser.current_url  # back to the same filtered list

        def stored(document_id: int) -> tuple[str | None, str | None]:
            body = httpx.get(f"{base}/document/{document_id}").json()
            return body["label"], body["label_source"]

        for document_id in (first, second):
            assert stored(document_id) == (predicted[document_id]["predicted_class"], "review")
        assert stored(third) == ("memo", "review")
        assert stored(fourth) == (None, None)
        listed = browser.find_element(By.ID, "documents").text
        assert all(f"\n{i} " not in listed for i in (first, second, third))


def test_the_api_docs_render_from_files_the_api_serves_itself(
    home_copy: DocflowSettings, browser: webdriver.Chrome
) -> None:
    settings = home_copy.model_copy(update={"api_keys": KEY})
    with serve(settings) as base:
        for docs in ("swagger", "redoc"):
            page = httpx.get(f"{base}/schema/{docs}").text
            assert "/schema/assets/" in page and "https://" not in page, docs
        # No key and no internet (this machine has none): Swagger UI still draws the API.
        browser.get(f"{base}/schema/swagger")
        WebDriverWait(browser, 20).until(
            expected_conditions.text_to_be_present_in_element(
                (By.CSS_SELECTOR, ".swagger-ui .info .title"), "Docflow API"
            )
        )
        operations = browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
        assert "/predict/text" in {operation.text for operation in operations}


def test_a_reviewer_sees_each_word_where_it_stands_and_which_ones_ocr_doubted(
    home_copy: DocflowSettings, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    with serve(home_copy) as base:
        listed = httpx.get(f"{base}/documents", params={"status": "predicted"}).json()["items"]
        document_id = listed[0]["id"]
        browser.set_window_size(1400, 1000)
        browser.get(f"{base}/review/{document_id}")
        image = browser.find_element(By.CSS_SELECTOR, "figure.page img")
        WebDriverWait(browser, 10).until(
            lambda _: browser.execute_script("return arguments[0].naturalWidth", image) > 0
        )
        overlay = browser.find_element(By.CSS_SELECTOR, "figure.page svg")
        # The boxes' layer lies exactly over the page image.
        rects = browser.execute_script(
            "return [arguments[0].getBoundingClientRect(), arguments[1].getBoundingClientRect()]"
            ".map(r => [r.left, r.top, r.width, r.height])",
            image,
            overlay,
        )
        assert all(abs(a - b) < 1.5 for a, b in zip(rects[0], rects[1], strict=True)), rects
        boxes = browser.find_elements(By.CSS_SELECTOR, "figure.page svg a.word")
        words = browser.find_elements(By.CSS_SELECTOR, "#words-1 a")
        assert len(boxes) == len(words) > 10
        # Each box names its word and confidence, and is marked when OCR doubted it.
        for box, word in zip(boxes, words, strict=True):
            title = box.find_element(By.TAG_NAME, "title").get_attribute("textContent") or ""
            text, confidence = title.rsplit(" (confidence ", 1)
            assert text == word.text
            low = float(confidence.rstrip(")")) < 0.6
            assert ("low" in (box.get_attribute("class") or "")) == low
            assert ("low" in (word.get_attribute("class") or "")) == low
        # A word on the page lies inside the image where its box is drawn: hovering lights it.
        first_box = boxes[0]
        rect = first_box.find_element(By.TAG_NAME, "rect")
        quiet = rect.value_of_css_property("fill")
        webdriver.ActionChains(browser).move_to_element(rect).perform()
        assert rect.value_of_css_property("fill") != quiet
        # The box and the word in the text point to each other.
        browser.execute_script(
            "arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", first_box
        )
        assert browser.current_url.endswith("#text-1-1")
        words[0].click()
        assert browser.current_url.endswith("#box-1-1")
        # The README's docs/review-words.png is this page, taken here.
        browser.execute_script("window.scrollTo(0, 0)")
        assert browser.save_screenshot(str(tmp_path / "review-words.png"))


def test_the_front_page_shows_the_served_model_and_the_pipeline_in_a_browser(
    home_copy: DocflowSettings, browser: webdriver.Chrome
) -> None:
    with serve(home_copy) as base:
        browser.get(f"{base}/")
        banner = browser.find_element(By.ID, "model").text
        assert "Serving version" in banner and "macro-F1" in banner
        statuses = browser.find_element(By.ID, "statuses").text
        assert "predicted" in statuses
        assert browser.find_element(By.CSS_SELECTOR, "#upload input[type=file]")
        links = browser.find_element(By.ID, "links").text
        assert "Review documents" in links and "Dagster UI" in links
        # The page's own styles apply: not the browser's default serif.
        family = browser.find_element(By.TAG_NAME, "body").value_of_css_property("font-family")
        assert "system-ui" in family or "sans-serif" in family
