"""The README's screenshots, taken in Debian's headless chromium from the servers `make demo`
leaves running (the review page on the API, the asset graph in the Dagster UI).

    make demo && .venv/bin/python docs/screenshots.py
"""

from __future__ import annotations

import argparse
import io
import shutil
import time
from pathlib import Path

import httpx
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

DOCS = Path(__file__).resolve().parent
# Left edge of the lineage graph: the group names left of it are the sidebar's.
GRAPH_LEFT = 560


def browser(width: int, height: int) -> webdriver.Chrome:
    driver_path = shutil.which("chromedriver")
    if driver_path is None:
        raise SystemExit("chromedriver not found: `make install` provides chromium-driver")
    options = webdriver.ChromeOptions()
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.implicitly_wait(20)
    return driver


def save(driver: webdriver.Chrome, name: str) -> None:
    """The window as a palette PNG: a third of the bytes, no visible loss for a UI."""
    shot = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    shot.quantize(colors=256).save(DOCS / name, optimize=True)


def expand_asset_groups(driver: webdriver.Chrome, groups: tuple[str, ...]) -> None:
    """Dagster's lineage shows groups folded; a double click on a group's box unfolds it."""
    for button in driver.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):
        button.click()  # the UI's one-time newsletter dialog
    for group in groups:
        [box] = [
            element
            for element in driver.find_elements(By.XPATH, f"//*[normalize-space(text())='{group}']")
            if element.location["x"] > GRAPH_LEFT
        ]
        ActionChains(driver).double_click(box).perform()
        time.sleep(2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--dagster", default="http://127.0.0.1:3000")
    args = parser.parse_args()
    for url in (f"{args.api}/health", f"{args.dagster}/server_info"):
        httpx.get(url, timeout=10).raise_for_status()  # run `make demo` first

    driver = browser(1400, 900)
    try:
        driver.get(f"{args.api}/review?status=predicted&unsure_first=true")
        driver.find_element(By.ID, "documents")
        save(driver, "review-list.png")
        first = driver.find_element(By.CSS_SELECTOR, "#documents a").get_attribute("href")
        assert first
        driver.get(first)
        driver.find_element(By.CSS_SELECTOR, ".pages img")
        save(driver, "review-document.png")

        driver.get(f"{args.dagster}/asset-groups")
        driver.find_element(By.XPATH, "//*[normalize-space(text())='documents']")
        time.sleep(5)  # the graph lays itself out after its nodes appear
        expand_asset_groups(driver, ("documents", "model"))
        time.sleep(3)
        save(driver, "asset-graph.png")
        driver.get(f"{args.dagster}/assets")
        driver.find_element(By.XPATH, "//*[normalize-space(text())='ocr_text']")
        time.sleep(3)
        save(driver, "asset-catalog.png")
    finally:
        driver.quit()
    print(f"screenshots written to {DOCS}")


if __name__ == "__main__":
    main()
