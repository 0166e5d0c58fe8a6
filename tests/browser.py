"""Headless Chromium (Debian's chromium and chromium-driver) driving the page of `search serve`,
through selenium; used by tests/test_serve_live.py and benchmarks/serve_page.py."""

from __future__ import annotations

import shutil

CHROMIUM = ("chromium", "chromium-browser")


def missing() -> str | None:
    """Why the browser cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    if not any(shutil.which(name) for name in CHROMIUM):
        return "no chromium (apt-get install chromium chromium-driver)"
    if not shutil.which("chromedriver"):
        return "no chromedriver (apt-get install chromium-driver)"
    return None


def chromium(width: int = 1100, height: int = 900):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = next(shutil.which(n) for n in CHROMIUM if shutil.which(n))
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={width},{height}"):
        options.add_argument(argument)
    return webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))


def show_neighbours(driver, base_url: str, typed: str, timeout_s: float = 10.0) -> tuple[float, list[str]]:
    """Load the page, type ``typed`` into the search box, click the first song found and wait
    for its neighbours: (milliseconds from the click to the table, as the page measured them,
    the neighbours' titles)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(base_url + "/")
    box = driver.find_element(By.ID, "q")
    box.send_keys(typed)
    wait = WebDriverWait(driver, timeout_s, poll_frequency=0.01)
    first = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "#found button")))
    first.click()
    rows = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#neighbours tbody tr"))
    ms = float(wait.until(lambda d: d.find_element(By.ID, "neighbours").get_attribute("data-ms")))
    return ms, [row.find_element(By.CSS_SELECTOR, "button").text for row in rows]


def new_song(driver, title: str = "", artist: str = "", played_with: str = "", timeout_s: float = 10.0) -> tuple[str, list[str]]:
    """Fill in the page's new-song form (cold start) and submit it with the keyboard:
    (the answer's heading, the titles answered)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver.execute_script("document.querySelector('#neighbours tbody').replaceChildren()")
    for field, value in (("ns-title", title), ("ns-artist", artist), ("ns-context", played_with)):
        driver.find_element(By.ID, field).send_keys(value)
    driver.find_element(By.ID, "ns-title").send_keys(Keys.ENTER)
    rows = WebDriverWait(driver, timeout_s, poll_frequency=0.01).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#neighbours tbody tr"))
    return driver.find_element(By.ID, "heading").text, [row.find_element(By.CSS_SELECTOR, "button").text for row in rows]
