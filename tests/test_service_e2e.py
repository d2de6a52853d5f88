"""The upload page in headless Chromium (system browser and driver, never downloaded):
upload a workbook, see the totals and an issue, download the processed workbook."""

from __future__ import annotations

import os
import shutil
import time
import zipfile
from pathlib import Path

import pytest
from servicehelpers import ROOT, faulty_workbook, running_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver")
pytest.importorskip("fastapi")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                       reason="chromium and chromium-driver (apt) are not installed"),
]
SCREENSHOT_COPY = ROOT / "docs" / "service-screenshot.png"


def _browser(downloads: Path):  # -> WebDriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # selenium-manager must never download anything
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1366,1400", "--lang=fr-FR", "--no-first-run",
                "--disable-extensions", "--disable-background-networking"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": str(downloads)})
    driver.set_page_load_timeout(30)
    return driver


def _wait(predicate, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_upload_see_totals_and_issue_then_download(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    workbook = faulty_workbook(tmp_path)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with running_server(tmp_path / "server") as (base, _tmpdir, _proc):
        driver = _browser(downloads)
        try:
            driver.get(base + "/")
            assert "Carbon'Clap XL" in driver.title
            driver.find_element(By.ID, "file").send_keys(str(workbook))
            result = driver.find_element(By.ID, "result")
            _wait(result.is_displayed, what="the report")
            total = driver.find_element(By.CSS_SELECTOR, "#total-forecast .value").text
            assert total.endswith("t CO2e") and total[0].isdigit(), total
            # the title is shown as text, its markup never interpreted
            assert driver.find_element(By.ID, "r-title").text == '<b>Film</b> & "test"'
            assert not driver.find_elements(By.CSS_SELECTOR, "#r-title b")
            rows = driver.find_elements(By.CSS_SELECTOR, "#issues tbody tr")
            cells = [[td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in rows]
            unknown = [c for c in cells if c[4] == "ACTIVITY_UNKNOWN"]
            assert unknown, cells
            assert unknown[0][0] == "erreur" and unknown[0][1] == "Régie"
            assert unknown[0][2].startswith("A")
            labels = driver.find_elements(By.CSS_SELECTOR, "#chart svg text.label")
            assert [t.text for t in labels][:2] == ["Production", "Lieux de tournage & studios"]
            assert len(labels) == 8
            assert len(driver.find_elements(By.CSS_SELECTOR, "#chart svg rect.bar")) >= 4
            assert "À corriger" in driver.find_element(By.ID, "r-badge").text

            shot = tmp_path / "service-page.png"
            height = driver.execute_script("return document.body.scrollHeight")
            driver.set_window_size(1366, min(max(900, height + 40), 2400))
            driver.save_screenshot(str(shot))
            assert shot.stat().st_size > 10_000
            if os.environ.get("CARBONCLAP_XL_SCREENSHOTS"):  # refresh the docs' picture
                shutil.copyfile(shot, SCREENSHOT_COPY)

            driver.find_element(By.ID, "download").click()
            target = downloads / "faulty-calcule.xlsx"
            _wait(target.exists, what="the processed workbook")
            _wait(lambda: not list(downloads.glob("*.crdownload")), what="the download")
            with zipfile.ZipFile(target) as zf:
                assert "xl/workbook.xml" in zf.namelist()
            status = driver.find_element(By.ID, "status").text
            assert "faulty-calcule.xlsx" in status
            assert driver.get_log("browser") == [] or all(
                entry["level"] != "SEVERE" for entry in driver.get_log("browser"))
        finally:
            driver.quit()
