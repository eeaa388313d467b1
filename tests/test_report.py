"""The Snakemake report of the tiny workflow (the session's `workflow_copy` run), as HTML and
zip, opened in headless Chromium: the page loads, every category and result can be reached
through the report's own menus, and every figure renders (no broken image).

The browser is Debian's chromium driven by Playwright's bundled driver (no `playwright
install`); the test skips only when /usr/bin/chromium is missing (`.ci/setup-chromium.sh`
installs it). Screenshots go to the test's tmp dir; their folder is printed (`pytest -s`).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
from conftest import snakemake

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FIGURES = ["stability_vs_l0", "seed_heatmap", "recovery_vs_l0", "latent_vs_truth", "per_latent"]
TABLES = ["results/toy/tables/stability.csv", "results/toy/tables/per_latent.csv", "results/toy/tables/pairs.csv", "results/toy/tables/saes.csv",
          "results/toy/tables/summary.md", "results/summary.csv", "results/summary.md", "results/summary.html"]


@pytest.fixture(scope="module")
def reports(workflow_copy):
    """report.html and report.zip of the finished tiny run."""
    w = workflow_copy
    # bring the run up to date first: a test that ran before may have removed an output
    snakemake(w)
    out = {}
    for name in ("report.html", "report.zip"):
        (w / name).unlink(missing_ok=True)
        snakemake(w, "--report", name)
        out[name] = w / name
        assert out[name].stat().st_size > 10_000
    return out


def test_report_zip_holds_every_figure_and_table(reports):
    with zipfile.ZipFile(reports["report.zip"]) as z:
        names = z.namelist()
    assert any(n.endswith("report.html") for n in names), names[:20]
    for fig in FIGURES:
        assert any(n.endswith(f"toy_{fig}.png") for n in names), (fig, names)
    for table in TABLES:
        assert any(n.endswith(Path(table).name) for n in names), (table, names)


def _broken_images(page) -> list[str]:
    return page.evaluate(
        "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 80))"
    )


def _link(page, text: str):
    """The menu link whose visible text is exactly ``text``."""
    return page.locator("nav ul li a").filter(has=page.locator("span", has_text=re.compile(rf"^{re.escape(text)}$")))


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (Debian package chromium; see .ci/setup-chromium.sh)")
def test_every_figure_renders_in_headless_chromium(reports, tmp_path):
    from playwright.sync_api import sync_playwright

    shots = tmp_path / "screenshots"
    shots.mkdir()
    errors: list[str] = []
    shown: dict[str, str] = {}  # result path -> how it was checked
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh user-data-dir
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, viewport={"width": 1600, "height": 1000},
        )
        try:
            page = context.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(reports["report.html"].as_uri())
            page.wait_for_selector("nav ul li a", timeout=60_000)
            assert page.title() == "Snakemake Report"
            page.screenshot(path=shots / "00_start.png")
            categories = page.evaluate("categories")
            results = page.evaluate("results")
            images = {p for p, r in results.items() if r["mime_type"].startswith("image/")}
            # every figure of the toy experiment is in the report, as PNG
            assert {f"results/figures/toy_{f}.png" for f in FIGURES} <= images, sorted(images)
            assert set(TABLES) <= set(results), sorted(results)
            assert set(categories) == {"toy", "Summary", "Feature pages"}, categories

            n = 0
            for category in sorted(categories):
                for subcategory in sorted(categories[category]):
                    page.locator("nav ol li a").first.click()  # home: the menu
                    _link(page, "Results" if len(categories) == 1 else category).click()
                    if len(categories[category]) > 1:
                        _link(page, subcategory).click()
                    paths = categories[category][subcategory]
                    rows = page.locator("nav table tbody tr")
                    rows.first.wait_for()
                    assert rows.count() == len(paths), (category, subcategory, paths)
                    for i in range(rows.count()):
                        row = rows.nth(i)
                        label = row.locator("td").first.inner_text().strip()
                        path = next(p for p in paths if label in (p, *map(str, (results[p]["labels"] or {}).values())))
                        mime = results[path]["mime_type"]
                        eye = row.locator("td").last.locator("a").first
                        if mime.startswith("image/"):
                            eye.click()
                            img = page.locator("div.grow img")
                            img.wait_for()
                            assert img.get_attribute("src") == results[path]["data_uri"]
                            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
                            size = img.evaluate("img => [img.naturalWidth, img.naturalHeight]")
                            assert size[0] > 500 and size[1] > 200, (path, size)
                            shown[path] = f"image {size[0]}x{size[1]}"
                        elif mime == "text/html":
                            eye.click()
                            page.locator("iframe").wait_for()
                            frame = next(f for f in page.frames if f.url.startswith("data:text/html"))
                            frame.wait_for_selector("table tr")
                            shown[path] = f"html page with {frame.locator('table tr').count()} table rows"
                        else:  # CSV, Markdown: offered for download
                            assert eye.get_attribute("download"), path
                            assert eye.get_attribute("href").startswith("data:"), path
                            shown[path] = f"download {eye.get_attribute('download')}"
                        assert _broken_images(page) == [], path
                        n += 1
                        page.screenshot(path=shots / f"{n:02d}_{Path(path).stem}.png")
            # an image result's info view (caption and provenance) renders too
            page.locator("nav ol li a").first.click()
            _link(page, "toy").click()
            _link(page, "Stability").click()
            page.locator("nav table tbody tr").first.locator("td").last.locator("a").nth(1).click()
            page.wait_for_selector("text=random")
            page.screenshot(path=shots / "99_info.png")
            assert _broken_images(page) == []
        finally:
            context.close()
    print(f"\nreport screenshots: {shots}")
    for path, how in sorted(shown.items()):
        print(f"  {path}: {how}")
    assert not errors, errors
    assert set(shown) == set(results), set(results) - set(shown)
    assert {p for p, how in shown.items() if how.startswith("image")} == images
