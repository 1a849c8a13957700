"""The built book in a real browser (Debian's chromium, headless): every page, figures, tables, math, links.

Needs `make book` first (CI builds it before the tests); skips, saying why, when the build or chromium
is missing. Writes a screenshot of the Table 1 page to _build/screenshots/table1.png for the record.
"""
from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = pytest.mark.browser


def _pages() -> list[Path]:
    skip = {"genindex.html", "search.html"}
    pages = [p for p in HTML.rglob("*.html") if p.name not in skip and "_static" not in p.parts and "_sources" not in p.parts]
    return sorted(p for p in pages if p != HTML / "index.html")  # index.html only redirects to the first page


@pytest.fixture(scope="module")
def site():
    if not (HTML / "index.html").is_file():
        pytest.skip("the book is not built: run `make book` first (CI does)")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield browser, f"http://127.0.0.1:{server.server_address[1]}"
        browser.close()
    server.shutdown()


def _open(browser, url):
    """Open a page; collect its JavaScript errors and its failed requests to the book's own server.

    Waits for the ``load`` event (images, scripts and styles are in), not for network silence: the
    theme may keep trying hosts that an offline machine cannot reach.
    """
    page = browser.new_page()
    errors = []
    origin = url.split("/", 3)[:3]
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("requestfailed", lambda req: req.url.split("/", 3)[:3] == origin and errors.append(f"failed request {req.url}"))
    page.goto(url, wait_until="load")
    return page, errors


def test_every_page_loads_with_figures_and_working_links(site):
    browser, base = site
    pages = _pages()
    assert len(pages) >= 14, [p.name for p in pages]
    for path in pages:
        rel = path.relative_to(HTML).as_posix()
        page, errors = _open(browser, f"{base}/{rel}")
        assert not errors, (rel, errors)
        widths = page.eval_on_selector_all("article img", "imgs => imgs.map(i => [i.src, i.complete ? i.naturalWidth : 0])")
        for src, width in widths:
            assert width > 0, f"{rel}: image {src} did not load"
        hrefs = page.eval_on_selector_all("a[href]", "as => as.map(a => a.getAttribute('href'))")
        for href in hrefs:
            parsed = urlparse(href)
            if parsed.scheme or parsed.netloc or not parsed.path:
                continue
            target = (path.parent / unquote(parsed.path)).resolve()
            assert target.exists(), f"{rel}: broken internal link {href}"
        page.close()


def test_notebook_pages_have_figures(site):
    browser, base = site
    for name in ["01_dataset", "02_input_vectors", "03_training", "05_figure5", "08_dipole"]:
        page, _ = _open(browser, f"{base}/notebooks/{name}.html")
        n = page.eval_on_selector_all("article img", "imgs => imgs.filter(i => i.naturalWidth > 0).length")
        assert n >= 1, f"{name}: no figure rendered"
        assert "simulated" in page.inner_text("article") or "MIMII" in page.inner_text("article")
        page.close()


def test_figures_are_numbered_by_page(site):
    """A reader sees "Figure 5.1", "Figure 5.2" on page 05, as its tables are "Table 5.1"; never Sphinx's
    book-wide "Fig. 8" beside them (the Method page's figure is "Figure M.1")."""
    browser, base = site
    numbered = 0
    for path in _pages():
        rel = path.relative_to(HTML).as_posix()
        page, _ = _open(browser, f"{base}/{rel}")
        captions = page.eval_on_selector_all("article figure figcaption", "cs => cs.map(c => c.innerText.trim())")
        page.close()
        if not captions:
            continue
        prefix = {"book/method.html": "M"}.get(rel) or (str(int(path.name[:2])) if path.parent.name == "notebooks" else None)
        assert prefix is not None, f"{rel} has figures but no page number for them"
        for k, text in enumerate(captions, start=1):
            assert text.startswith(f"Figure {prefix}.{k}. "), (rel, text[:80])
            assert "Fig. " not in text, (rel, text[:80])
        numbered += len(captions)
    assert numbered >= 16, numbered


def test_table1_page_has_the_table_beside_the_reported_values(site):
    browser, base = site
    page, _ = _open(browser, f"{base}/notebooks/04_table1.html")
    tables = page.locator("article table")
    assert tables.count() >= 2
    text = page.inner_text("article")
    assert "MICS 0-4" in text and "Baseline" in text and "(87.14)" in text  # a reported value beside ours
    assert page.locator("article table b").count() >= 1  # best cells in bold
    out = ROOT / "_build" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.screenshot(path=str(out / "table1.png"), full_page=True)
    assert (out / "table1.png").stat().st_size > 10_000
    page.close()


@pytest.mark.parametrize("name", ["04_table1", "07_how_sure"])
def test_table1_fits_a_1280_pixel_screen(site, name):
    """The book's style sheet (_css/asdlib.css) is loaded, Table 1's ten configurations fit side by side
    (on its own page and on How sure?), and the captions of these full-width tables stay within the
    text column, clear of the theme's "Contents" button in the right margin."""
    browser, base = site
    page, errors = _open(browser, f"{base}/notebooks/{name}.html")
    page.set_viewport_size({"width": 1280, "height": 900})
    sheets = page.eval_on_selector_all("link[rel=stylesheet]", "ls => ls.map(l => l.getAttribute('href'))")
    assert any("asdlib.css" in s for s in sheets), sheets
    boxes = page.eval_on_selector_all("div.asdlib-table1", "ds => ds.map(d => [d.querySelector('table').scrollWidth, d.clientWidth])")
    assert len(boxes) >= 2
    for table, box in boxes:
        assert table <= box + 1, f"{name}: Table 1 is {table} px wide in a {box} px column"
    column = page.eval_on_selector("article.bd-article", "a => a.getBoundingClientRect().right")
    captions = page.eval_on_selector_all("div.cell.tag_full-width div.cell_output > p", "ps => ps.map(p => p.getBoundingClientRect().right)")
    assert captions and max(captions) <= column + 1, f"{name}: a caption ends at {max(captions)} px, the text column at {column}"
    assert not errors
    page.close()


def test_math_is_rendered_offline(site):
    browser, base = site
    page, errors = _open(browser, f"{base}/book/method.html")
    page.wait_for_selector("mjx-container", timeout=20_000)
    assert page.locator("mjx-container").count() >= 5
    scripts = page.eval_on_selector_all("script[src]", "s => s.map(x => x.src)")
    assert any("mathjax/tex-chtml.js" in s and s.startswith(base) for s in scripts), scripts
    assert not errors
    page.close()


def _numbers_in(page, selector: str, indices) -> list[float]:
    """Every number in the body cells (not the headers) of the ``indices``-th tables matching ``selector``."""
    import re

    tables = page.locator(selector)
    texts = [t for i in indices if i < tables.count() for t in tables.nth(i).locator("td").all_inner_texts()]
    return [float(x) for t in texts for x in re.findall(r"-?\d+(?:\.\d+)?", t)]


@pytest.mark.parametrize("name,selector", [("04_table1", "article table.dataframe"), ("07_how_sure", "article table.asd-metric-table")])
def test_table_values_and_intervals_lie_within_0_and_100(site, name, selector):
    """Table 1 and the How-sure interval tables: every value and interval bound is a percentage in [0, 100]."""
    browser, base = site
    page, _ = _open(browser, f"{base}/notebooks/{name}.html")
    numbers = _numbers_in(page, selector, [0, 1])  # the MSE and the Mahalanobis table
    assert len(numbers) > 50, f"{name}: found only {len(numbers)} numbers in its metric tables"
    outside = [x for x in numbers if not 0.0 <= x <= 100.0]
    assert not outside, f"{name}: values outside [0, 100]: {outside[:10]}"
    text = page.inner_text("article")
    assert "simulated" in text or "real MIMII" in text
    page.close()
