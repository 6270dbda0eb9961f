"""The page at / and the docs at /docs/ in a real headless Chromium, against real processes on 127.0.0.1.

Screenshots land in test-artifacts/web/ (git ignores it; CI keeps it as an artefact).
"""

from __future__ import annotations

import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from local_mode.processes import Gateway, free_port
from tests.conftest import REPO
from tests.real_weights import CAT_CLASSES
from tools.browser import headless_chromium

ARTEFACTS = REPO / "test-artifacts" / "web"
WAIT_S = 20


@pytest.fixture(scope="module")
def browser():
    session = headless_chromium((1100, 1000), page_load_timeout=WAIT_S)
    yield session
    session.quit()


@pytest.fixture(scope="module")
def photo_origin(shared_dir):
    """The shared photos over plain HTTP on 127.0.0.1, for classify-by-URL."""
    handler = partial(SimpleHTTPRequestHandler, directory=str(shared_dir / "images"))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def gateway(efficientnet, tmp_path_factory):
    """Primary and fallback both the real-weights model; URLs from 127.0.0.1 allowed."""
    target = f"grpc://{efficientnet.grpc_target}"
    with Gateway(
        tmp_path_factory.mktemp("web") / "log",
        PRIMARY_URL=target,
        PRIMARY_MODEL="efficientnet",
        FALLBACK_URL=target,
        FALLBACK_MODEL="efficientnet",
        HEDGE="false",
        URL_FETCH="allowlist",
        URL_FETCH_ALLOWLIST="127.0.0.1",
        URL_FETCH_ALLOW_NETWORKS="127.0.0.1/32",
    ) as process:
        yield process.start()


@pytest.fixture(scope="module")
def primary_down(efficientnet, tmp_path_factory):
    with Gateway(
        tmp_path_factory.mktemp("web-down") / "log",
        PRIMARY_URL=f"grpc://127.0.0.1:{free_port()}",
        PRIMARY_MODEL="wide_resnet50_2",
        FALLBACK_URL=f"grpc://{efficientnet.grpc_target}",
        FALLBACK_MODEL="efficientnet",
    ) as process:
        yield process.start()


def test_the_page_its_files_and_the_docs_are_served_without_counting_as_classify_requests(client):
    with client.get("/") as page:
        assert page.status_code == 200 and page.mimetype == "text/html" and b'id="file-input"' in page.data
    for asset, mimetype in (
        ("/assets/app.js", "text/javascript"),
        ("/assets/style.css", "text/css"),
        ("/docs/swagger-ui-bundle.js", "text/javascript"),
    ):
        with client.get(asset) as response:  # files are streamed: closed, or a ResourceWarning
            assert response.status_code == 200 and response.mimetype == mimetype, asset
    docs = client.get("/docs/")
    assert docs.status_code == 200 and b"/openapi.json" in docs.data and b"swagger-ui-bundle.js" in docs.data
    assert client.get("/docs").status_code == 308
    assert client.post("/", data=b"cat", content_type="text/plain").status_code == 415  # POST / still classifies
    counted = [
        line
        for line in client.get("/metrics").get_data(as_text=True).splitlines()
        if line.startswith("gateway_classify_requests_total")
    ]
    assert counted == ['gateway_classify_requests_total{code="415",model="none"} 1.0']


def wait_for(browser, css: str, count: int = 1):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, WAIT_S).until(
        lambda b: (found := b.find_elements(By.CSS_SELECTOR, css)) and len(found) >= count and found
    )


def upload(browser, *paths):
    from selenium.webdriver.common.by import By

    browser.find_element(By.ID, "file-input").send_keys("\n".join(str(p) for p in paths))


def screenshot(browser, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(ARTEFACTS / f"{name}.png"))


def test_a_chosen_photo_gets_labelled_bars(browser, gateway, shared_dir):
    browser.get(gateway.url + "/")
    upload(browser, shared_dir / "images" / "chelsea.jpg")
    labels = wait_for(browser, ".result .prediction .label", 5)
    expected = requests.post(
        f"{gateway.url}/classify", timeout=10, files={"file": (shared_dir / "images" / "chelsea.jpg").read_bytes()}
    ).json()
    assert expected["predictions"][0]["index"] in CAT_CLASSES
    assert [label.text for label in labels] == [p["label"] for p in expected["predictions"]]
    result = browser.find_element("css selector", ".result")
    assert "model: efficientnet v1" in result.find_element("css selector", ".badges").text
    assert not result.find_elements("css selector", ".badge-fallback")
    assert "infer" in result.find_element("css selector", ".timings").text
    widths = [bar.size["width"] for bar in result.find_elements("css selector", ".bar span")]
    assert widths == sorted(widths, reverse=True) and widths[0] > widths[-1]
    assert result.find_element("css selector", ".preview").get_attribute("naturalWidth") != "0"
    screenshot(browser, "chelsea")


def test_dropped_photos_are_sent_as_one_batch_and_answered_in_order(browser, gateway, shared_dir, tmp_path):
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("just some text\n")
    photos = [shared_dir / "images" / "chelsea.jpg", not_an_image, shared_dir / "images" / "coffee.jpg"]
    browser.get(gateway.url + "/")
    # A drop carries files the page did not pick itself: stage them in a helper input, then drop them.
    staging = browser.execute_script(
        "const i = document.createElement('input'); i.type = 'file'; i.multiple = true; i.id = 'staging';"
        "document.body.append(i); return i;"
    )
    staging.send_keys("\n".join(str(p) for p in photos))
    browser.execute_script(
        "const data = new DataTransfer(); for (const f of document.getElementById('staging').files) data.items.add(f);"
        "document.getElementById('drop-zone').dispatchEvent("
        "  new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true}));"
    )
    wait_for(browser, ".result .prediction .label", 10)
    cards = browser.find_elements("css selector", ".result")
    assert [c.find_element("css selector", ".source").text for c in cards] == ["chelsea.jpg", "notes.jpg", "coffee.jpg"]
    first = cards[0].find_elements("css selector", ".prediction .label")[0].text
    assert first in ("tabby", "tiger cat", "Egyptian cat", "Persian cat")
    assert "(unsupported_media_type)" in cards[1].find_element("css selector", ".error").text
    assert cards[2].find_elements("css selector", ".prediction .label")[0].text == "espresso"
    assert "model: efficientnet v1" in cards[2].find_element("css selector", ".badges").text
    screenshot(browser, "batch")


def test_the_fallback_badge_and_its_reason_show_when_the_primary_is_down(browser, primary_down, shared_dir):
    browser.get(primary_down.url + "/")
    upload(browser, shared_dir / "images" / "coffee.jpg")
    badge = wait_for(browser, ".result .badge-fallback")[0]
    assert badge.text == "fallback: unavailable"
    assert browser.find_element("css selector", ".result .prediction .label").text == "espresso"
    screenshot(browser, "fallback")


def test_an_api_error_is_shown_with_the_apis_message(browser, gateway, tmp_path):
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("just some text\n")
    browser.get(gateway.url + "/")
    upload(browser, not_an_image)
    error = wait_for(browser, ".result .error:not([hidden])")[0]
    assert "not an image in a supported format" in error.text and "(unsupported_media_type)" in error.text


def test_an_image_url_is_fetched_and_classified(browser, gateway, photo_origin):
    browser.get(gateway.url + "/")
    browser.find_element("id", "url-input").send_keys(f"{photo_origin}/chelsea.jpg")
    browser.find_element("id", "url-submit").click()
    wait_for(browser, ".result .prediction .label", 5)
    assert "fetch" in browser.find_element("css selector", ".result .timings").text
    browser.find_element("id", "url-input").clear()
    browser.find_element("id", "url-input").send_keys("http://10.0.0.1/cat.jpg")
    browser.find_element("id", "url-submit").click()
    error = wait_for(browser, ".result .error:not([hidden])")[0]
    assert "(url_not_allowed)" in error.text
    screenshot(browser, "url")


def test_the_docs_page_renders_the_spec(browser, gateway):
    browser.get(gateway.url + "/docs/")
    paths = wait_for(browser, ".opblock-summary-path", 3)
    assert {"/classify", "/readyz", "/openapi.json"} <= {p.text.replace("\u200b", "") for p in paths}
    assert "Resilient image classifier" in wait_for(browser, ".info .title")[0].text
    assert not browser.find_elements("css selector", ".errors-wrapper")
    screenshot(browser, "docs")
