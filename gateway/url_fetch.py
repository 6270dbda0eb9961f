"""Images by URL (``POST /classify`` with ``{"url": ...}``), refused unless ``URL_FETCH`` allows it.

``URL_FETCH=off`` (default) refuses every URL; ``allowlist`` fetches only from the hosts in
``URL_FETCH_ALLOWLIST``; ``public`` from any host. Either way the host is resolved once, every
address it resolves to is checked, and the connection is made to a checked address with the name
kept only for the Host header and TLS (SNI and certificate check): a second DNS answer can never
point the connection elsewhere (DNS rebinding). Loopback, private, link-local, multicast, reserved
and other non-public addresses are refused unless inside ``URL_FETCH_ALLOW_NETWORKS``; cloud
metadata addresses are refused always. Each redirect is checked the same way, up to
``URL_FETCH_MAX_REDIRECTS``. The body is capped at ``URL_FETCH_MAX_BYTES`` and the whole fetch at
``URL_FETCH_TIMEOUT_MS`` (a watchdog closes the socket then, however slowly the server drips).
The origin's Content-Type is ignored: the bytes are sniffed by the decoder, as uploads are.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import certifi

from common.environment import EnvReader, SettingsError
from gateway.errors import (
    ApiError,
    InvalidUrl,
    UrlFetchDisabled,
    UrlFetchFailed,
    UrlFetchTimeout,
    UrlNotAllowed,
    UrlTooLarge,
)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]  # (host, port) -> IP addresses
FetchObserver = Callable[[str, float], None]  # (outcome, seconds)
MODES = ("off", "allowlist", "public")
REDIRECTS = (301, 302, 303, 307, 308)
_CHUNK = 64 << 10
# AWS/GCP/Azure/OpenStack, AWS ECS task credentials, Alibaba Cloud, AWS over IPv6.
METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)


@dataclass(frozen=True)
class UrlFetchSettings:
    mode: str
    allowlist: tuple[str, ...]  # host names; ".example.com" also admits its subdomains
    allow_networks: tuple[Network, ...]
    max_bytes: int
    connect_timeout_s: float
    timeout_s: float
    max_redirects: int

    @classmethod
    def from_env(cls, reader: EnvReader, max_bytes: int) -> UrlFetchSettings:
        mode = reader.raw("URL_FETCH").lower() or "off"
        if mode not in MODES:
            raise SettingsError(f"URL_FETCH={mode!r}: use one of {', '.join(MODES)}")
        allowlist = tuple(
            h.strip().lower().rstrip(".") for h in reader.raw("URL_FETCH_ALLOWLIST").split(",") if h.strip()
        )
        if mode == "allowlist" and not allowlist:
            raise SettingsError("URL_FETCH=allowlist needs URL_FETCH_ALLOWLIST (comma-separated host names)")
        try:
            networks = tuple(
                ipaddress.ip_network(n.strip(), strict=False)
                for n in reader.raw("URL_FETCH_ALLOW_NETWORKS").split(",")
                if n.strip()
            )
        except ValueError as exc:
            raise SettingsError(f"URL_FETCH_ALLOW_NETWORKS: {exc}") from None
        timeout_ms = reader.int("URL_FETCH_TIMEOUT_MS", 5000, 100, 120_000)
        return cls(
            mode=mode,
            allowlist=allowlist,
            allow_networks=networks,
            max_bytes=reader.int("URL_FETCH_MAX_BYTES", max_bytes, 1024, 1 << 30),
            connect_timeout_s=reader.int("URL_FETCH_CONNECT_TIMEOUT_MS", min(2000, timeout_ms), 10, timeout_ms) / 1000,
            timeout_s=timeout_ms / 1000,
            max_redirects=reader.int("URL_FETCH_MAX_REDIRECTS", 3, 0, 20),
        )


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[Address, ...]

    @property
    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return name if self.port == default else f"{name}:{self.port}"


class UrlFetcher:
    def __init__(
        self,
        settings: UrlFetchSettings,
        resolver: Resolver = system_resolver,
        tls: ssl.SSLContext | None = None,
        observe: FetchObserver | None = None,
    ):
        """``resolver`` and ``tls`` (certificate authorities) are replaced in tests only; ``observe``
        is told each fetch's outcome ("ok" or the error's code) and seconds."""
        self.settings = settings
        self._resolve = resolver
        self._tls = tls or ssl.create_default_context(cafile=certifi.where())
        self._observe = observe or (lambda _outcome, _seconds: None)

    def require_enabled(self) -> None:
        if self.settings.mode == "off":
            raise UrlFetchDisabled("classifying by URL is off on this gateway (URL_FETCH=off)")

    def fetch(self, url: str) -> bytes:
        """The body of ``url`` after at most ``max_redirects`` redirects, or an ApiError."""
        self.require_enabled()
        started = time.monotonic()
        outcome = "internal_error"  # an unexpected exception
        try:
            body = self._follow(url, started + self.settings.timeout_s)
            outcome = "ok"
            return body
        except ApiError as error:
            outcome = error.code
            raise
        finally:
            self._observe(outcome, time.monotonic() - started)

    def _follow(self, url: str, deadline: float) -> bytes:
        for _ in range(self.settings.max_redirects + 1):
            target = self._check(url)
            status, location, body = self._get(target, deadline)
            if status not in REDIRECTS:
                if status != 200:
                    raise UrlFetchFailed(f"{url} answered HTTP {status}")
                return body
            if not location:
                raise UrlFetchFailed(f"{url} answered HTTP {status} without a Location")
            url = urljoin(url, location)
        raise UrlFetchFailed(f"more than {self.settings.max_redirects} redirects")

    def _check(self, url: str) -> _Target:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise InvalidUrl(f"not a valid URL: {exc}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidUrl(f"{url[:200]!r}: only http:// and https:// URLs with a host")
        if parts.username is not None or parts.password is not None:
            raise InvalidUrl("URLs with credentials are not fetched")
        host = parts.hostname.rstrip(".")
        if self.settings.mode == "allowlist" and not self._listed(host):
            raise UrlNotAllowed(f"host {host!r} is not in URL_FETCH_ALLOWLIST")
        port = port or (443 if parts.scheme == "https" else 80)
        addresses: tuple[Address, ...]
        try:
            addresses = (ipaddress.ip_address(host),)
        except ValueError:
            try:
                addresses = tuple(ipaddress.ip_address(a.split("%")[0]) for a in self._resolve(host, port))
            except OSError as exc:
                raise UrlFetchFailed(f"cannot resolve {host!r}: {exc}") from None
        if not addresses:
            raise UrlFetchFailed(f"{host!r} resolves to no address")
        for address in addresses:
            problem = self._address_problem(address)
            if problem:
                raise UrlNotAllowed(f"{host!r} resolves to {address}, {problem}")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return _Target(parts.scheme, host, port, path, addresses)

    def _listed(self, host: str) -> bool:
        return any(
            host == entry or (entry.startswith(".") and (host.endswith(entry) or host == entry[1:]))
            for entry in self.settings.allowlist
        )

    def _address_problem(self, address: Address) -> str | None:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if address in METADATA:
            return "a cloud metadata address"
        if any(address in network for network in self.settings.allow_networks):
            return None
        for kind in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
            if getattr(address, f"is_{kind}"):
                return f"a {kind.replace('_', '-')} address"
        return None if address.is_global else "not a public address"

    def _connect(self, target: _Target, deadline: float) -> socket.socket:
        errors = []
        for address in target.addresses:
            timeout = min(self.settings.connect_timeout_s, deadline - time.monotonic())
            if timeout <= 0:
                break
            try:
                sock = socket.create_connection((str(address), target.port), timeout=timeout)
            except OSError as exc:
                errors.append(f"{address}: {exc}")
                continue
            if target.scheme == "https":
                try:
                    sock = self._tls.wrap_socket(sock, server_hostname=target.host)
                except (OSError, ssl.SSLError) as exc:
                    sock.close()
                    raise UrlFetchFailed(f"TLS with {target.host!r} failed: {exc}") from None
            return sock
        raise UrlFetchFailed(f"cannot connect to {target.host!r}: {'; '.join(errors) or 'timed out'}")

    def _get(self, target: _Target, deadline: float) -> tuple[int, str | None, bytes]:
        sock = self._connect(target, deadline)
        remaining = deadline - time.monotonic()
        watchdog = threading.Timer(max(remaining, 0.0), _shut, (sock,))
        watchdog.start()
        connection = http.client.HTTPConnection(target.host, target.port)
        connection.sock = sock  # already connected to the checked address: http.client must not resolve
        try:
            sock.settimeout(max(remaining, 0.001))
            connection.request(
                "GET",
                target.path,
                headers={
                    "Host": target.host_header,
                    "Accept": "image/*",
                    "Accept-Encoding": "identity",
                    "User-Agent": "classifier-gateway",
                },
            )
            response = connection.getresponse()
            if response.status != 200:
                return response.status, response.getheader("Location"), b""
            length = response.getheader("Content-Length", "")
            if length.isdigit() and int(length) > self.settings.max_bytes:
                raise UrlTooLarge(f"the image is {length} bytes, over the limit of {self.settings.max_bytes}")
            chunks, size = [], 0
            while chunk := response.read1(_CHUNK):
                size += len(chunk)
                if size > self.settings.max_bytes:
                    raise UrlTooLarge(f"the image is over the limit of {self.settings.max_bytes} bytes")
                chunks.append(chunk)
            if time.monotonic() >= deadline:
                raise _timed_out(self.settings.timeout_s)
            if response.length:  # http.client ends a short Content-Length body quietly
                raise UrlFetchFailed(f"{target.host!r} closed the connection {response.length} bytes early")
            return 200, None, b"".join(chunks)
        except (OSError, http.client.HTTPException) as exc:
            if time.monotonic() >= deadline:
                raise _timed_out(self.settings.timeout_s) from None
            raise UrlFetchFailed(f"fetching from {target.host!r} failed: {exc}") from None
        finally:
            watchdog.cancel()
            connection.close()


def _timed_out(timeout_s: float) -> UrlFetchTimeout:
    return UrlFetchTimeout(f"fetching the image took longer than {timeout_s:g} s")


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed: the fetch ended as the watchdog fired
        sock.shutdown(socket.SHUT_RDWR)
