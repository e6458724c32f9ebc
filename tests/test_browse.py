"""``saetools browse``: the JSON/HTML endpoints (Flask test client) and the page in a real
headless Chromium driven through its WebDriver (Debian's chromium and chromium-driver, which
``.ci/run`` installs): type a query, move a slider, add a feature, open a feature page, the
family graph and the diff view. With SAETOOLS_SCREENSHOTS=folder the browser test saves one
screenshot per view there (docs/img/browse-*.png come from it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import saetools
from saetools.options import FamiliesOptions

from .corpora import bbc_documents
from .helpers import cli_error, write_jsonl

HOSTILE_ID = "<b>id</b>"
HOSTILE_TEXT = (
    "<script>window.pwned = 1</script><img src=x onerror='window.pwned = 2'> The football "
    "club won the cup final after extra time, its manager said."
)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Two MiniLM stores of news openings: A (business, politics, sports, and one document
    with HTML in its id and text) and B (business, entertainment, tech)."""
    docs = bbc_documents(40, 300, seed=8)
    folder = tmp_path_factory.mktemp("browse")
    in_a, in_b = {"business", "politics", "sports"}, {"business", "entertainment", "tech"}
    a = [{"id": f"a{k}", "text": t} for k, (topic, t) in enumerate(docs) if topic in in_a]
    a.append({"id": HOSTILE_ID, "text": HOSTILE_TEXT})
    b = [{"id": f"b{k}", "text": t} for k, (topic, t) in enumerate(docs) if topic in in_b]
    paths = []
    for name, rows in (("a", a), ("b", b)):
        data = write_jsonl(folder / f"{name}.jsonl", rows)
        out = folder / f"store-{name}"
        saetools.encode(data, out=out, reader="minilm", device="cpu", progress=False)
        paths.append(out)
    return [saetools.open_store(p) for p in paths]


@pytest.fixture(scope="module")
def client(stores):
    from saetools.browse import Browser, create_app

    families = FamiliesOptions(min_support=4, min_share=0.75, top=12)
    app = create_app(Browser(stores[0], stores[1], device="cpu", families=families))
    return app.test_client()


def test_search_endpoint_steers_and_reports_the_rank_before(client):
    plain = client.get("/api/search", query_string={"q": "football cup final"}).get_json()
    assert len(plain["results"]) == 10 and plain["steerable"]
    assert all(r["was"] == r["rank"] for r in plain["results"])
    assert plain["results"][0]["id"] == HOSTILE_ID  # its text answers the query best
    feature = plain["query_features"][0]
    steer = f"{feature['latent']}:{-feature['strength']:.3f}"
    moved = client.get(
        "/api/search", query_string={"q": "football cup final", "steer": steer}
    ).get_json()
    assert moved["steers"][0]["latent"] == feature["latent"] and moved["fidelity"] < 1
    assert [r["id"] for r in moved["results"]] != [r["id"] for r in plain["results"]]
    assert any(r["was"] != r["rank"] for r in moved["results"])


def test_endpoint_errors_are_one_line_json(client):
    bad = client.get("/api/search", query_string={"q": "x", "steer": "a:b"})
    assert bad.status_code == 400 and "expected LATENT:DELTA" in bad.get_json()["error"]
    empty = client.get("/api/search", query_string={"q": " "})
    assert empty.status_code == 400 and empty.get_json()["error"] == "type a query"
    far = client.get("/api/feature/999999")
    assert far.status_code == 400 and "out of range" in far.get_json()["error"]


def test_feature_and_diff_fragments_escape_document_text(client, stores):
    store = stores[0]
    row = int(store.docs.index[store.docs["id"] == HOSTILE_ID][0])
    latent = int(store.matrix[row].indices[store.matrix[row].data.argmax()])
    page = client.get(f"/api/feature/{latent}").get_data(as_text=True)
    assert f"Latent {latent}:" in page and "<svg" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "&lt;b&gt;id&lt;/b&gt;" in page
    assert "href='#feature/" in page  # co-occurring latents link to their pages
    diff = client.get("/api/diff").get_data(as_text=True)
    assert "More frequent in B" in diff and "<script>" not in diff
    assert diff.count("href='#feature/") >= 1  # B's other topics: significant rows
    families = client.get("/api/families").get_json()
    assert set(families) == {"nodes", "edges", "parents"}
    assert 1 <= len(families["parents"]) <= 12 and families["edges"]
    known = {n["latent"] for n in families["nodes"]}
    assert all(e["parent"] in known and e["child"] in known for e in families["edges"])
    labels = client.get("/api/labels", query_string={"q": "football"}).get_json()
    assert len(labels) == 10 and labels[0]["similarity"] >= labels[-1]["similarity"]


def test_a_port_in_use_is_a_one_line_error(stores):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        message = cli_error("browse", stores[0].folder, "--port", port, "--device", "cpu")
    assert f"cannot listen on 127.0.0.1:{port}" in message and "--port" in message


def _browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip("needs chromium and chromedriver (Debian: apt install chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1300,1000"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver_path), options=options)


def _serve(stores):
    """Start ``saetools browse A --compare B --port 0`` and return (process, url)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "saetools.cli",
            "browse",
            str(stores[0].folder),
            "--compare",
            str(stores[1].folder),
            "--port",
            "0",
            "--device",
            "cpu",
            "--min-support",
            "4",
            "--min-share",
            "0.75",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "TQDM_DISABLE": "1"},
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if "saetools browse: http" in line:
            return process, line.split()[2]
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError(f"saetools browse did not start: {process.stderr.read()}")


def test_the_page_in_headless_chromium(stores):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    shots = os.environ.get("SAETOOLS_SCREENSHOTS")
    driver = _browser()
    process, url = _serve(stores)
    try:
        wait = WebDriverWait(driver, 60)
        driver.get(url)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))

        def ranking():  # read in one script call: the list may be re-rendered meanwhile
            return driver.execute_script(
                "return [...document.querySelectorAll('#results .doc-id')].map(e => e.textContent)"
            )

        def feature_title():
            return driver.execute_script(
                "const t = document.querySelector('#feature .feature-title');"
                "return t && !document.getElementById('view-feature').hidden ? t.textContent : ''"
            )

        box = driver.find_element(By.ID, "query")
        box.send_keys("football cup final", Keys.ENTER)
        wait.until(lambda d: len(ranking()) == 10)
        first = ranking()
        assert HOSTILE_ID in first  # shown as text, not parsed
        assert driver.execute_script("return window.pwned === undefined")
        sliders = driver.find_elements(By.CSS_SELECTOR, "#sliders input[type=range]")
        assert len(sliders) == 8
        sliders[0].send_keys(Keys.HOME)  # the query's strongest feature to 0
        wait.until(lambda d: ranking() != first)
        assert driver.find_elements(By.CSS_SELECTOR, "#results .moved-up, #results .new")
        assert "cosine" in driver.find_element(By.ID, "fidelity").text
        steered = ranking()

        driver.find_element(By.ID, "label-search").send_keys("computer software")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#label-matches button.add"))
        add = driver.find_element(By.CSS_SELECTOR, "#label-matches button.add")
        added = add.get_attribute("data-latent")
        add.click()
        slider = wait.until(lambda d: d.find_element(By.ID, f"slider-{added}"))
        slider.send_keys(Keys.END)
        wait.until(lambda d: ranking() != steered)
        if shots:
            driver.save_screenshot(str(Path(shots) / "browse-search.png"))

        link = driver.find_element(By.CSS_SELECTOR, "#sliders a.feature-link")
        latent = link.get_attribute("data-latent")
        link.click()
        wait.until(lambda d: feature_title().startswith(f"Latent {latent}:"))
        assert driver.find_elements(By.CSS_SELECTOR, "#feature svg.histogram rect")
        assert driver.find_elements(By.CSS_SELECTOR, "#feature table.examples tr")
        if shots:
            driver.save_screenshot(str(Path(shots) / "browse-feature.png"))

        driver.find_element(By.ID, "tab-families").click()
        node = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#families g.family-node"))
        if shots:
            driver.save_screenshot(str(Path(shots) / "browse-families.png"))
        child = node.get_attribute("data-latent")
        node.click()
        wait.until(lambda d: feature_title().startswith(f"Latent {child}:"))
        driver.find_element(By.ID, "tab-diff").click()
        wait.until(lambda d: "More frequent in B" in d.find_element(By.ID, "diff").text)
        if shots:
            driver.save_screenshot(str(Path(shots) / "browse-diff.png"))
        assert driver.execute_script("return window.pwned === undefined")
    finally:
        driver.quit()
        process.terminate()
        process.wait(timeout=30)
