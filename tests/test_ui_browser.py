"""`strato ui` in a real headless Chromium: the runs page, a failed run's graph and its error/logs panel.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make test`` installs them when it can) and
``selenium`` (the dev extra); skipped, saying which is missing, otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the ui extra is not installed: pip install 'strato[ui]'")
pytest.importorskip("selenium", reason="selenium is not installed: pip install 'strato[dev]'")

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from .conftest import Cli
from .test_ui import XSS, _run, _serve, _stop

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FAILED_FILL, FAILED_STROKE = "rgb(251, 213, 213)", "rgb(198, 40, 40)"  # --fail-bg, --fail in app.css
SUCCEEDED_FILL = "rgb(215, 239, 216)"


def _missing() -> str | None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not (p.exists() and os.access(p, os.X_OK))]
    if not missing:
        return None
    return (f"{' and '.join(missing)} not found: this test needs Debian's chromium and chromium-driver packages; "
            "`make test` installs them when run as root or with passwordless sudo (or run: "
            "apt-get install -y chromium chromium-driver)")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", "--no-first-run", "--disable-extensions",
                f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(15)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


def _requested_urls(driver: Any, origin: str) -> list[str]:
    """Every request made by a document of ``origin`` (the browser's own pages, such as the new-tab page
    the first tab opens with, are not the UI's)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            params = message["params"]
            if params.get("documentURL", "").startswith(origin):
                urls.append(params["request"]["url"])
    return urls


def _listed(driver: Any) -> list[tuple[str, str]]:
    """The runs table's (run id, status) rows, read in one script so a refresh cannot interleave."""
    rows = driver.execute_script("return [...document.querySelectorAll('#runs tbody tr')]"
                                 ".map((r) => [r.dataset.run, r.dataset.status]);")
    return [tuple(row) for row in rows]


def test_runs_page_to_a_failed_run_graph_and_its_error_and_logs(browser: Any, cli: Cli, strato_home: Path,
                                                               tmp_path: Path) -> None:
    ok, failed = _run(strato_home), _run(strato_home, fail_with=XSS)
    proc, url = _serve(cli)
    try:
        wait = WebDriverWait(browser, 15, ignored_exceptions=(StaleElementReferenceException,))
        browser.get(url)
        wait.until(lambda d: _listed(d) == [(failed, "FAILED"), (ok, "SUCCEEDED")])
        error_cell = browser.find_element(By.CSS_SELECTOR, f'#runs tr[data-run="{failed}"] td.error')
        assert XSS in error_cell.text  # shown as text, not run
        later = _run(strato_home, day="2024-03-02")  # the list follows the store without a reload
        wait.until(lambda d: [run for run, _ in _listed(d)] == [later, failed, ok])
        Select(browser.find_element(By.ID, "f-status")).select_by_value("FAILED")  # filter, kept in the URL
        wait.until(lambda d: _listed(d) == [(failed, "FAILED")])
        assert browser.current_url.endswith("/?status=FAILED")

        browser.find_element(By.CSS_SELECTOR, f'#runs a[href="/runs/{failed}"]').click()
        node = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, 'g.node[data-node="load"][data-state]'))
        assert browser.current_url == f"{url}runs/{failed}"
        assert node.get_attribute("data-state") == "FAILED"
        fill, stroke = browser.execute_script(
            "const s = getComputedStyle(arguments[0].querySelector('rect')); return [s.fill, s.stroke];", node)
        assert (fill, stroke) == (FAILED_FILL, FAILED_STROKE)
        extract = browser.find_element(By.CSS_SELECTOR, 'g.node[data-node="extract"]')
        assert extract.get_attribute("data-state") == "SUCCEEDED"
        assert browser.execute_script("return getComputedStyle(arguments[0].querySelector('rect')).fill",
                                      extract) == SUCCEEDED_FILL
        assert browser.find_element(By.CSS_SELECTOR, 'g.node[data-node="clean"]').text.startswith("clean")
        assert XSS in browser.find_element(By.ID, "run-error").text

        node.click()
        buttons = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#detail-body button.logs-button'))
        assert [b.get_attribute("data-attempt") for b in buttons] == ["1", "2"]
        buttons[-1].click()
        panel = browser.find_element(By.ID, "logs-panel")
        wait.until(lambda d: panel.is_displayed() and d.find_elements(By.CSS_SELECTOR, "#logs-body pre.logs"))
        assert browser.find_element(By.ID, "logs-title").text == "load #2"
        assert f"ValueError: {XSS}" in panel.text
        logs = browser.find_element(By.CSS_SELECTOR, "#logs-body pre.logs").text
        assert "loading 3 batches" in logs and "Traceback" in logs  # what the task printed, then its traceback
        gantt = browser.find_elements(By.CSS_SELECTOR, "#gantt .bar.s-FAILED")
        assert len(gantt) == 2  # load's two attempts on the timeline

        # the error was text all along: no script ran, no element was made from it
        assert browser.execute_script("return window.__xss === undefined && document.images.length === 0")
        shot = tmp_path / "ui-failed-run.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        print(f"screenshot: {shot}")

        requested = _requested_urls(browser, url)
        assert any(u.endswith("/static/vendor/dagre.min.js") for u in requested)
        assert [u for u in requested if not u.startswith(url) and not u.startswith("data:")] == []
        assert url.startswith("http://127.0.0.1:")
        problems = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert problems == []  # no script error, no Content-Security-Policy violation
    finally:
        _stop(proc)


def test_without_chromium_the_skip_says_what_is_missing_and_how_to_get_it(monkeypatch: pytest.MonkeyPatch,
                                                                          tmp_path: Path) -> None:
    import tests.test_ui_browser as module

    monkeypatch.setattr(module, "CHROMEDRIVER", tmp_path / "chromedriver")
    reason = _missing()
    assert reason is not None and reason.startswith(f"{tmp_path / 'chromedriver'} not found: this test needs ")
    assert "`make test` installs them when run as root or with passwordless sudo" in reason
