"""The page of a running `search serve` in headless Chromium: type a title, click the first song,
time its neighbours (click to table, as the page measures it) and save a screenshot.

    python benchmarks/serve_page.py --url http://127.0.0.1:8080 --type "fade to black" --screenshot docs/img/serve.png

Needs Debian's chromium and chromium-driver, and selenium (the test extra)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests import browser  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--type", dest="typed", default="fade to black")
    parser.add_argument("--repeats", type=int, default=5, help="clicks to time (each on a fresh page)")
    parser.add_argument("--screenshot", type=Path)
    args = parser.parse_args()
    reason = browser.missing()
    if reason:
        parser.error(reason)
    driver = browser.chromium(width=1100, height=1450)
    try:
        driver.get(args.url + "/")
        if os.environ.get("SONGSEARCH_API_KEY"):
            driver.execute_script("sessionStorage.setItem('songsearch-key', arguments[0])", os.environ["SONGSEARCH_API_KEY"])
        times = []
        for _ in range(max(1, min(args.repeats, 50))):
            ms, titles = browser.show_neighbours(driver, args.url, args.typed)
            times.append(ms)
        print(f"neighbours of the first match for {args.typed!r}: {len(titles)} songs; click to table "
              f"{sorted(times)[len(times) // 2]:.0f} ms median, {max(times):.0f} ms max over {len(times)} clicks")
        if args.screenshot:
            driver.save_screenshot(str(args.screenshot))
            print(f"screenshot: {args.screenshot}")
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
