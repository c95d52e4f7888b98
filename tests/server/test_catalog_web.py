"""The catalog web page in a real headless browser (Debian's chromium through Selenium).

As `analyst`: sign in, search, open hr.employees and see its masked columns marked, and find
no trace of the finance domain anywhere, including URLs typed by hand. As `admin`: all of it.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from meshgate.server.catalog_web import Connection, catalog_app
from meshgate.service import QueryService

INSTALL = ("install Debian's chromium and chromium-driver (`apt-get install chromium "
           "chromium-driver`), or set MESHGATE_CHROMEDRIVER to a chromedriver binary")


def _chromedriver() -> str:
    found = os.environ.get("MESHGATE_CHROMEDRIVER") or shutil.which("chromedriver")
    if not found or not shutil.which("chromium"):
        pytest.fail(f"the catalog page tests need a real browser: {INSTALL}")
    return found


@pytest.fixture(scope="module")
def site(demo_dir: Path) -> Iterator[str]:
    service = QueryService.from_config(demo_dir)
    app = catalog_app(lambda: service, Connection("127.0.0.1", 8815))
    root = DispatcherMiddleware(Response("not here", status=404), {"/catalog": app})
    server = make_server("127.0.0.1", 0, root, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}/catalog"
    finally:
        server.shutdown()
        service.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    options = Options()
    options.binary_location = shutil.which("chromium") or "chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1280,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(_chromedriver()), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _sign_in(browser: WebDriver, site: str, user: str, password: str | None = None) -> None:
    browser.delete_all_cookies()
    browser.get(f"{site}/")
    assert "/catalog/signin" in browser.current_url  # not signed in: sent to the sign-in page
    browser.find_element(By.ID, "signin-user").send_keys(user)
    browser.find_element(By.ID, "signin-password").send_keys(password or user)
    browser.find_element(By.ID, "signin-submit").click()
    # The click returns before the POST and its redirect are done: wait for the next page.
    WebDriverWait(browser, 20).until(
        lambda b: b.find_elements(By.ID, "error") or b.find_elements(By.ID, "results"))


def _search(browser: WebDriver, text: str) -> None:
    browser.find_element(By.ID, "search").send_keys(text)
    browser.find_element(By.ID, "search-submit").click()
    WebDriverWait(browser, 20).until(lambda b: f"q={text}" in b.current_url)


def _text(browser: WebDriver) -> str:
    return str(browser.find_element(By.TAG_NAME, "body").text)


def _shot(browser: WebDriver, name: str) -> None:
    """Screenshots for the README: `MESHGATE_SCREENSHOTS=docs/screenshots pytest ...`."""
    directory = os.environ.get("MESHGATE_SCREENSHOTS")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(Path(directory) / f"{name}.png"))


def test_a_wrong_password_is_refused_on_the_page(browser: WebDriver, site: str) -> None:
    _sign_in(browser, site, "analyst", "not-the-password")
    assert "invalid user name or password" in browser.find_element(By.ID, "error").text
    assert "/catalog/signin" in browser.current_url


def test_analyst_searches_and_reads_hr_employees_with_masks_marked(browser: WebDriver,
                                                                     site: str) -> None:
    _sign_in(browser, site, "analyst")
    assert browser.find_element(By.ID, "user").text == "analyst"
    listed = {a.text for a in browser.find_elements(By.CSS_SELECTOR, "#results a")}
    assert "hr.employees" in listed
    assert "sales.orders" in listed
    assert not any(name.startswith("finance.") for name in listed)
    _shot(browser, "catalog-search")

    _search(browser, "salary")
    rows = browser.find_elements(By.CSS_SELECTOR, "#results tr.result")
    assert [r.find_element(By.TAG_NAME, "a").text for r in rows] == ["hr.employees"]
    assert "column salary" in rows[0].text

    rows[0].find_element(By.TAG_NAME, "a").click()
    WebDriverWait(browser, 20).until(lambda b: b.current_url.endswith("/hr/employees"))
    assert browser.find_element(By.ID, "product-name").text == "hr.employees"
    marks = {row.get_attribute("data-column"): row.text
             for row in browser.find_elements(By.CSS_SELECTOR, "#columns tr.column")}
    for masked in ("email", "ssn", "salary"):
        assert marks[masked].endswith("masked"), masked
    assert marks["region"].endswith("as stored")
    assert "FROM hr.employees" in browser.find_element(By.ID, "query").text
    assert "grpc://127.0.0.1:8815" in browser.find_element(By.ID, "adbc").text
    assert "jdbc:arrow-flight-sql://127.0.0.1:8815/" in browser.find_element(By.ID, "jdbc").text
    _shot(browser, "catalog-product")


@pytest.mark.parametrize("path", [
    "/products/finance/budgets",                  # exists, not granted to analyst
    "/products/finance/revenue_by_region",        # exists, not granted
    "/products/finance/no_such_product",          # does not exist
    "/products/finance/budgets/lineage.svg",
    "/products/hr/no_such_product",
])
def test_hidden_and_missing_products_answer_the_same_404(browser: WebDriver, site: str,
                                                         path: str) -> None:
    _sign_in(browser, site, "analyst")
    browser.get(site + path)
    assert browser.find_element(By.ID, "not-found")
    _no_finance_trace(browser.page_source.replace(path, ""))


# What the finance domain holds; the demo's visible text mentions the word "finance" itself
# (hr.departments.cost_center is "Cost center code used by finance."), which is not a trace.
FINANCE_TRACES = ("finance-data@", "budgets", "exchange_rates", "revenue_by_region",
                  "Exchange rates", "finance_lake")


def _no_finance_trace(page: str) -> None:
    assert not re.search(r"finance[./][a-z_]", page)  # finance.budgets, /products/finance/...
    for trace in FINANCE_TRACES:
        assert trace not in page, trace


def test_analyst_finds_no_trace_of_finance(browser: WebDriver, site: str) -> None:
    _sign_in(browser, site, "analyst")
    _no_finance_trace(browser.page_source)
    for term in ("budgets", "exchange_rates", "revenue_by_region", "finance-data", "fx"):
        browser.get(f"{site}/?q={term}")
        assert browser.find_elements(By.CSS_SELECTOR, "#results tr.result") == [], term
    browser.get(f"{site}/?q=finance")
    found = [r.find_element(By.TAG_NAME, "a").text
             for r in browser.find_elements(By.CSS_SELECTOR, "#results tr.result")]
    assert found == ["hr.departments"]  # cost_center: "Cost center code used by finance."
    _no_finance_trace(browser.page_source.replace("q=finance", ""))
    for product in ("hr/employees", "hr/departments", "sales/orders", "sales/customers"):
        browser.get(f"{site}/products/{product}")
        _no_finance_trace(browser.page_source)
        browser.get(f"{site}/products/{product}/lineage.svg")
        _no_finance_trace(browser.page_source)
        for source in ("sales_db", "hr_db", "finance_lake"):  # no configured source names
            assert source not in browser.page_source


def test_admin_sees_everything_with_lineage(browser: WebDriver, site: str) -> None:
    _sign_in(browser, site, "admin")
    listed = {a.text for a in browser.find_elements(By.CSS_SELECTOR, "#results a")}
    assert {"finance.budgets", "finance.revenue_by_region", "hr.employees"} <= listed
    browser.get(f"{site}/products/finance/revenue_by_region")
    assert browser.find_element(By.ID, "product-name").text == "finance.revenue_by_region"
    browser.get(f"{site}/products/finance/revenue_by_region/lineage.svg")
    picture = browser.page_source
    assert "sales.orders" in picture
    assert "hr.employees" in picture
    assert "source " in picture  # admins see which configured source feeds a product
    browser.get(f"{site}/products/finance/revenue_by_region")
    _shot(browser, "catalog-lineage")


def test_pages_are_not_served_without_sign_in(site: str) -> None:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    for path in ("/", "/products/hr/employees", "/products/hr/employees/lineage.svg"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            opener.open(site + path, timeout=10)
        assert refused.value.code == 303
        assert refused.value.headers["Location"].startswith("/catalog/signin")


def test_a_product_page_lists_the_versions_this_deployment_served(demo_dir: Path,
                                                                   tmp_path: Path) -> None:
    import http.cookiejar
    import urllib.parse
    import urllib.request

    config = tmp_path / "config"
    config.mkdir()
    for source in demo_dir.glob("*.yaml"):
        text = source.read_text(encoding="utf-8").replace("path: data/", f"path: {demo_dir}/data/")
        (config / source.name).write_text(text, encoding="utf-8")
    first = QueryService.from_config(config)
    first.note_served_versions()  # as `meshgate serve` does at start
    first.close()
    hr = config / "hr.yaml"
    hr.write_text(hr.read_text(encoding="utf-8").replace("version: 1.0.0", "version: 1.1.0", 1),
                  encoding="utf-8")
    service = QueryService.from_config(config)
    service.note_served_versions()
    app = catalog_app(lambda: service, Connection("127.0.0.1", 8815))
    server = make_server("127.0.0.1", 0, DispatcherMiddleware(Response(status=404),
                                                              {"/catalog": app}), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        browser = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        form = urllib.parse.urlencode({"user": "analyst", "password": "analyst",
                                       "next": "/catalog/products/hr/employees"}).encode()
        base = f"http://127.0.0.1:{server.port}/catalog"
        with browser.open(f"{base}/signin", data=form, timeout=30) as page:
            html = page.read().decode()
        versions = re.findall(r'<tr class="version"><td>([^<]+)</td>', html)
        assert versions == ["1.0.0", "1.1.0"]
    finally:
        server.shutdown()
        service.close()
