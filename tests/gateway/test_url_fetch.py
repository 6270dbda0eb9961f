"""The URL fetcher against a real HTTP(S) server on 127.0.0.1, with a resolver the test controls."""

from __future__ import annotations

import socket
import ssl
import time
from urllib.parse import quote

import pytest
import trustme

from common.environment import EnvReader, SettingsError
from gateway.errors import ApiError
from gateway.url_fetch import UrlFetcher, UrlFetchSettings

MAX_BYTES = 1 << 20
ALLOWLIST = "images.test,.cdn.test,metadata.test,loop.test,nowhere.test"


class Resolver:
    """Answers from a table and counts the questions; an unknown name fails like DNS does."""

    def __init__(self, table: dict[str, list[str]]):
        self.table, self.asked = table, []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.table[host]


TABLE = {
    "images.test": ["127.0.0.1"],
    "a.cdn.test": ["127.0.0.1"],
    "metadata.test": ["169.254.169.254"],
    "loop.test": ["127.0.0.2"],
}


def fetcher(
    mode: str = "allowlist", table: dict | None = None, tls: ssl.SSLContext | None = None, **env: str
) -> UrlFetcher:
    defaults = {
        "URL_FETCH": mode,
        "URL_FETCH_ALLOWLIST": ALLOWLIST,
        "URL_FETCH_ALLOW_NETWORKS": "127.0.0.1/32",
        "URL_FETCH_TIMEOUT_MS": "1000",
    }
    settings = UrlFetchSettings.from_env(EnvReader({**defaults, **env}), MAX_BYTES)
    return UrlFetcher(settings, Resolver(TABLE if table is None else table), tls)


def refused(fetch: UrlFetcher, url: str) -> ApiError:
    with pytest.raises(ApiError) as caught:
        fetch.fetch(url)
    return caught.value


def test_an_allowlisted_host_is_fetched_at_its_checked_address_under_its_own_name(image_origin, jpeg):
    origin = image_origin(max_bytes=MAX_BYTES)
    fetch = fetcher()
    assert fetch.fetch(f"http://images.test:{origin.port}/cat.jpg") == jpeg
    assert fetch.fetch(f"http://a.cdn.test:{origin.port}/cat.jpg") == jpeg  # ".cdn.test" admits subdomains
    assert origin.requests == [("/cat.jpg", f"images.test:{origin.port}"), ("/cat.jpg", f"a.cdn.test:{origin.port}")]


def test_the_name_is_resolved_once_so_a_second_answer_cannot_rebind_it(image_origin, jpeg):
    origin = image_origin(max_bytes=MAX_BYTES)

    class Rebinding(Resolver):
        def __call__(self, host, port):
            self.asked.append(host)
            return ["127.0.0.1"] if len(self.asked) == 1 else ["169.254.169.254"]

    fetch = fetcher()
    fetch._resolve = resolver = Rebinding({})
    assert fetch.fetch(f"http://images.test:{origin.port}/cat.jpg") == jpeg
    assert resolver.asked == ["images.test"]


def test_redirects_are_followed_and_each_hop_is_checked(image_origin, jpeg):
    origin = image_origin(max_bytes=MAX_BYTES)
    base = f"http://images.test:{origin.port}"
    fetch = fetcher()
    assert fetch.fetch(f"{base}/redirect?{quote('/cat.jpg')}") == jpeg
    to_loopback = refused(fetch, f"{base}/redirect?{quote(f'http://127.0.0.1:{origin.port}/cat.jpg')}")
    assert (to_loopback.status, to_loopback.code) == (403, "url_not_allowed")
    assert "127.0.0.1" in to_loopback.message
    to_metadata = refused(fetch, f"{base}/redirect?{quote('http://metadata.test/latest/meta-data/')}")
    assert to_metadata.code == "url_not_allowed" and "metadata" in to_metadata.message
    assert [path for path, _ in origin.requests].count("/cat.jpg") == 1  # neither refused hop was fetched


@pytest.mark.parametrize(
    ("mode", "location", "why"),
    [
        ("allowlist", "http://loop.test/cat.jpg", "loopback"),  # listed, but 127.0.0.2 is outside the allowed networks
        ("public", "http://127.0.0.2/cat.jpg", "loopback"),
        ("public", "http://[::1]/cat.jpg", "loopback"),
        ("public", "http://metadata.test/latest/meta-data/", "metadata"),
    ],
)
def test_a_redirect_to_a_refused_address_is_not_followed(image_origin, mode, location, why):
    origin = image_origin(max_bytes=MAX_BYTES)
    error = refused(fetcher(mode), f"http://images.test:{origin.port}/redirect?{quote(location)}")
    assert (error.status, error.code) == (403, "url_not_allowed") and why in error.message
    assert len(origin.requests) == 1


def test_redirects_are_limited(image_origin):
    origin = image_origin(max_bytes=MAX_BYTES)
    error = refused(fetcher(URL_FETCH_MAX_REDIRECTS="3"), f"http://images.test:{origin.port}/loop")
    assert (error.status, error.code) == (502, "url_fetch_failed") and "3 redirects" in error.message
    assert len(origin.requests) == 4


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1/cat.jpg", "not in URL_FETCH_ALLOWLIST"),
        ("http://elsewhere.test/cat.jpg", "not in URL_FETCH_ALLOWLIST"),
        ("http://cdn.test.evil/cat.jpg", "not in URL_FETCH_ALLOWLIST"),
        ("http://metadata.test/latest/meta-data/", "cloud metadata"),
        ("http://loop.test/cat.jpg", "loopback"),  # listed, but 127.0.0.2 is outside URL_FETCH_ALLOW_NETWORKS
    ],
)
def test_allowlist_refusals(url, why):
    error = refused(fetcher(URL_FETCH_ALLOW_NETWORKS="127.0.0.1/32,169.254.0.0/16"), url)
    assert (error.status, error.code) == (403, "url_not_allowed") and why in error.message


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.1.1", "private"),
        ("172.16.0.1", "private"),
        ("169.254.10.10", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("169.254.169.254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("100.64.0.1", "not a public address"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "metadata"),
    ],
)
def test_public_mode_refuses_every_non_public_address(address, why):
    fetch = fetcher("public", {"host.test": ["93.184.215.14", address]}, URL_FETCH_ALLOW_NETWORKS="")
    error = refused(fetch, "http://host.test/cat.jpg")
    assert (error.status, error.code) == (403, "url_not_allowed") and why in error.message
    literal = f"[{address}]" if ":" in address else address
    assert refused(fetch, f"http://{literal}/cat.jpg").code == "url_not_allowed"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://images.test/cat.jpg",
        "file:///etc/passwd",
        "http:///cat.jpg",
        "http://user:secret@images.test/cat.jpg",
        "http://images.test:99999/",
        "gopher://images.test/",
    ],
)
def test_only_plain_http_and_https_urls(url):
    error = refused(fetcher(), url)
    assert (error.status, error.code) == (400, "invalid_url")


def test_size_limits(image_origin):
    origin = image_origin(max_bytes=MAX_BYTES)
    fetch = fetcher()
    for path in ("/big", "/chunked"):  # announced by Content-Length, or found while streaming
        error = refused(fetch, f"http://images.test:{origin.port}{path}")
        assert (error.status, error.code) == (413, "url_too_large")


def test_a_server_that_drips_is_cut_off_at_the_total_time_limit(image_origin):
    origin = image_origin(max_bytes=MAX_BYTES)
    started = time.monotonic()
    error = refused(fetcher(URL_FETCH_TIMEOUT_MS="500"), f"http://images.test:{origin.port}/slow")
    assert (error.status, error.code) == (504, "url_fetch_timeout")
    assert time.monotonic() - started < 1.0


def test_failures_name_what_failed(image_origin):
    origin = image_origin(max_bytes=MAX_BYTES)
    fetch = fetcher()
    missing = refused(fetch, f"http://images.test:{origin.port}/missing.jpg")
    assert (missing.status, missing.code) == (502, "url_fetch_failed") and "HTTP 404" in missing.message
    truncated = refused(fetch, f"http://images.test:{origin.port}/truncated")
    assert truncated.code == "url_fetch_failed" and "970 bytes early" in truncated.message
    unknown = refused(fetch, "http://nowhere.test/cat.jpg")
    assert unknown.code == "url_fetch_failed" and "resolve" in unknown.message
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    refused_connect = refused(fetch, f"http://images.test:{port}/cat.jpg")
    assert refused_connect.code == "url_fetch_failed" and "connect" in refused_connect.message


def test_https_checks_the_certificate_against_the_name_not_the_address(image_origin, jpeg):
    authority = trustme.CA()
    client_tls = ssl.create_default_context()
    authority.configure_trust(client_tls)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("images.test").configure_cert(server_tls)
    origin = image_origin(server_tls, MAX_BYTES)
    fetch = fetcher(tls=client_tls, table={**TABLE, "a.cdn.test": ["127.0.0.1"]})
    assert fetch.fetch(f"https://images.test:{origin.port}/cat.jpg") == jpeg
    wrong_name = refused(fetch, f"https://a.cdn.test:{origin.port}/cat.jpg")
    assert wrong_name.code == "url_fetch_failed" and "TLS" in wrong_name.message
    untrusted = refused(fetcher(), f"https://images.test:{origin.port}/cat.jpg")  # default CAs: not ours
    assert untrusted.code == "url_fetch_failed" and "certificate" in untrusted.message


def test_off_refuses_everything():
    error = refused(fetcher("off"), "https://images.test/cat.jpg")
    assert (error.status, error.code) == (403, "url_fetch_disabled")


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"URL_FETCH": "sometimes"}, "URL_FETCH"),
        ({"URL_FETCH": "allowlist"}, "URL_FETCH_ALLOWLIST"),
        ({"URL_FETCH": "public", "URL_FETCH_ALLOW_NETWORKS": "10.0.0.0/33"}, "URL_FETCH_ALLOW_NETWORKS"),
        ({"URL_FETCH": "public", "URL_FETCH_TIMEOUT_MS": "50"}, "URL_FETCH_TIMEOUT_MS"),
        ({"URL_FETCH": "public", "URL_FETCH_MAX_REDIRECTS": "-1"}, "URL_FETCH_MAX_REDIRECTS"),
    ],
)
def test_settings_are_checked_at_start(env, variable):
    with pytest.raises(SettingsError, match=variable):
        UrlFetchSettings.from_env(EnvReader(env), MAX_BYTES)


def test_classify_by_url_through_the_api(make_app, image_origin):
    origin = image_origin(max_bytes=MAX_BYTES)
    app = make_app(URL_FETCH="allowlist", URL_FETCH_ALLOWLIST="images.test", URL_FETCH_ALLOW_NETWORKS="127.0.0.1/32")
    service = app.extensions["classifier"]
    service.fetcher = UrlFetcher(service.settings.url_fetch, Resolver(TABLE))
    client = app.test_client()
    for path in ("/classify", "/"):
        ok = client.post(path, json={"url": f"http://images.test:{origin.port}/cat.jpg"})
        assert ok.status_code == 200, ok.get_json()
        body = ok.get_json()
        assert body["model"] == "wide_resnet50_2" and len(body["predictions"]) == 5
        assert body["timings_ms"]["fetch"] > 0
    text = client.post("/classify", json={"url": f"http://images.test:{origin.port}/notes.txt"})
    assert text.status_code == 415 and text.get_json()["error"]["code"] == "unsupported_media_type"
    private = client.post("/classify", json={"url": "http://10.0.0.1/cat.jpg"})
    assert private.status_code == 403 and private.get_json()["error"]["code"] == "url_not_allowed"
