"""The README's screenshots, taken in Debian's headless chromium from the servers `make demo`
leaves running (the review page on the API, the asset graph in the Dagster UI).

    make demo && .venv/bin/python docs/screenshots.py
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import httpx
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

DOCS = Path(__file__).resolve().parent


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--dagster", default="http://127.0.0.1:3000")
    args = parser.parse_args()
    for url in (f"{args.api}/health", f"{args.dagster}/server_info"):
        httpx.get(url, timeout=10).raise_for_status()  # run `make demo` first

    driver = browser(1400, 1000)
    try:
        driver.get(f"{args.api}/review?status=predicted&unsure_first=true")
        driver.find_element(By.ID, "documents")
        driver.save_screenshot(str(DOCS / "review-list.png"))
        first = driver.find_element(By.CSS_SELECTOR, "#documents a").get_attribute("href")
        assert first
        driver.get(first)
        driver.find_element(By.CSS_SELECTOR, ".pages img")
        driver.save_screenshot(str(DOCS / "review-document.png"))

        driver.get(f"{args.dagster}/asset-groups")
        driver.find_element(By.XPATH, "//*[contains(text(), 'ocr_text')]")
        time.sleep(3)  # the graph lays itself out after its nodes appear
        driver.save_screenshot(str(DOCS / "asset-graph.png"))
    finally:
        driver.quit()
    print(f"screenshots written to {DOCS}")


if __name__ == "__main__":
    main()
