"""Gateway configuration: read once from the environment, validated, frozen.

Each backend is ``<ROLE>_URL`` (``grpc://host:8500`` or ``http://host:8501``), ``<ROLE>_MODEL`` and a
resize policy (``<ROLE>_RESIZE_SHORTER``, ``<ROLE>_INTERPOLATION``, or ``<ROLE>_MANIFEST`` naming an
export's manifest.json), for ROLE in PRIMARY and FALLBACK. Either backend may be left out, not both.
``<ROLE>_TLS_CA`` (PEM file) turns on TLS to that backend, verified against that CA;
``<ROLE>_TLS_CERT`` and ``<ROLE>_TLS_KEY`` add the client certificate a server with
``client_verify`` requires (mutual TLS).
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

from common.environment import EnvReader, SettingsError
from gateway.imaging import ResizePolicy
from gateway.url_fetch import UrlFetchSettings
from protocol.contract import IMAGE_SIZE

DEFAULT_LABELS = Path(__file__).resolve().parent / "data" / "imagenet1k_labels.json"


@dataclass(frozen=True)
class ClientTls:
    ca: Path  # the CA the backend's certificate must chain to
    cert: Path | None  # client certificate and key, for servers that require one
    key: Path | None


@dataclass(frozen=True)
class BackendSettings:
    role: str  # "primary" or "fallback"
    url: str
    protocol: str  # "grpc" or "rest"
    target: str  # host:port for gRPC, base URL for REST
    model: str
    policy: ResizePolicy
    tls: ClientTls | None = None


@dataclass(frozen=True)
class CanarySettings:
    """A share of primary calls to TF-Serving's ``canary`` label, judged against ``stable``."""

    share: float  # CANARY_SHARE
    window_s: float  # sliding window the arms are compared over
    min_requests: int  # canary calls in the window before any verdict
    max_error_rate_increase: float  # canary error rate minus stable's
    max_fallback_rate_increase: float  # share of canary calls whose answer did not serve, minus stable's
    max_p95_ratio: float  # canary p95 over stable p95 ...
    p95_slack_s: float  # ... plus this, so millisecond noise on fast models is no verdict
    max_disagreement: float  # share of mirrored calls whose top-1 class differs
    grace_s: float  # how long a canary call may trail stable's answer and still serve


@dataclass(frozen=True)
class BreakerSettings:
    failures: int  # consecutive failures that open the circuit
    cooldown_s: float  # first wait before a probe, doubled after each failed probe
    max_cooldown_s: float
    latency_bound_s: float | None  # recent p95 over this opens the circuit; None: latency never does


@dataclass(frozen=True)
class HedgeSettings:
    enabled: bool
    min_delay_s: float  # the primary's recent p95 is clamped to [min, max] to decide when to hedge
    max_delay_s: float
    max_fraction: float  # of recent requests that may be hedged
    primary_grace_s: float  # how long a fallback answer waits for a primary answer that may still win


@dataclass(frozen=True)
class Settings:
    primary: BackendSettings | None
    fallback: BackendSettings | None
    host: str
    port: int
    threads: int
    deadline_s: float  # whole request, from arrival to answer
    primary_timeout_s: float  # most the primary may take of it
    fallback_reserve_s: float  # left for the fallback while it could answer
    min_call_s: float  # least time left for a model call to be started: a healthy backend answers within it
    status_timeout_s: float
    max_body_bytes: int
    max_pixels: int
    max_in_flight: int
    memory_budget_bytes: int  # bodies and decoded pixels of all requests in flight together
    connection_limit: int
    probe_port: int | None  # a second port for /healthz, /readyz and /metrics only; None: none
    header_read_timeout_s: float  # from a request's first byte to the end of its headers
    request_read_timeout_s: float  # from a request's first byte to the end of its body
    labels_path: Path
    breaker: BreakerSettings
    hedge: HedgeSettings
    shutdown_grace_s: float
    url_fetch: UrlFetchSettings
    max_batch_images: int
    canary: CanarySettings | None = None

    @property
    def backends(self) -> list[BackendSettings]:
        return [b for b in (self.primary, self.fallback) if b is not None]

    @cached_property
    def decode_shorter(self) -> int:
        """The smallest shorter side a backend resizes to: how far JPEG draft decoding may shrink."""
        return min(b.policy.resize_shorter for b in self.backends)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Durations are given in milliseconds (``*_MS``) or seconds (``*_S``) and held in seconds."""
        reader = EnvReader(os.environ if env is None else env)
        primary = _backend(reader, "primary")
        fallback = _backend(reader, "fallback")
        if primary is None and fallback is None:
            raise SettingsError("set PRIMARY_URL, FALLBACK_URL or both (for example grpc://localhost:8500)")
        deadline_ms = reader.int("REQUEST_DEADLINE_MS", 2000, 50, 120_000)
        max_in_flight = reader.int("MAX_IN_FLIGHT", 32, 1, 100_000)
        max_body_bytes = reader.int("MAX_BODY_BYTES", 10 << 20, 1024, 1 << 30)
        # Every admitted request needs a thread; the extra ones refuse the overflow at once.
        threads = reader.int("THREADS", max_in_flight + 8, 1, 100_008)
        if threads <= max_in_flight:
            raise SettingsError(
                f"THREADS={threads} must exceed MAX_IN_FLIGHT={max_in_flight}: requests past "
                "the limit are refused by a free thread, never queued"
            )
        settings = cls(
            primary=primary,
            fallback=fallback,
            host=reader.text("HOST", "0.0.0.0"),
            port=reader.int("PORT", 8080, 0, 65535),
            threads=threads,
            deadline_s=deadline_ms / 1000,
            primary_timeout_s=reader.milliseconds("PRIMARY_TIMEOUT_MS", deadline_ms, 1, deadline_ms),
            fallback_reserve_s=reader.milliseconds("FALLBACK_RESERVE_MS", 400, 0, deadline_ms),
            min_call_s=reader.milliseconds("MIN_MODEL_CALL_MS", min(50, deadline_ms), 1, deadline_ms),
            status_timeout_s=reader.milliseconds("STATUS_TIMEOUT_MS", 500, 10, 60_000),
            max_body_bytes=max_body_bytes,
            max_pixels=reader.int("MAX_PIXELS", 50_000_000, 1, 1_000_000_000),
            max_in_flight=max_in_flight,
            memory_budget_bytes=reader.int("MEMORY_BUDGET_BYTES", 256 << 20, 1 << 20, 1 << 40),
            connection_limit=reader.int("CONNECTION_LIMIT", 1000, 1, 100_000),
            probe_port=reader.int("PROBE_PORT", 0, 0, 65535) if reader.raw("PROBE_PORT") else None,
            header_read_timeout_s=reader.float("HEADER_READ_TIMEOUT_S", 10.0, 0.1, 3600.0),
            request_read_timeout_s=reader.float("REQUEST_READ_TIMEOUT_S", 60.0, 0.1, 3600.0),
            labels_path=Path(reader.text("LABELS_PATH", str(DEFAULT_LABELS))),
            breaker=_breaker(reader),
            hedge=_hedge(reader),
            shutdown_grace_s=reader.float("SHUTDOWN_GRACE_S", 10.0, 0.0, 600.0),
            url_fetch=UrlFetchSettings.from_env(reader, max_body_bytes),
            max_batch_images=reader.int("MAX_BATCH_IMAGES", 16, 1, 1024),
            canary=_canary(reader),
        )
        _check_min_call(settings)
        if settings.probe_port is not None and settings.probe_port == settings.port != 0:
            raise SettingsError(f"PROBE_PORT={settings.probe_port} must differ from PORT")
        if settings.canary is not None and primary is None:
            raise SettingsError("CANARY_SHARE needs PRIMARY_URL: the canary is a version of the primary model")
        if settings.memory_budget_bytes < 2 * settings.max_body_bytes:
            raise SettingsError(
                f"MEMORY_BUDGET_BYTES={settings.memory_budget_bytes} must hold at least two "
                f"MAX_BODY_BYTES ({2 * settings.max_body_bytes}): a body and its multipart copy"
            )
        if not settings.labels_path.is_file():
            raise SettingsError(f"LABELS_PATH={settings.labels_path} is not a file")
        return settings


def _check_min_call(settings: Settings) -> None:
    """A budget under MIN_MODEL_CALL_MS could never start a call: refuse it rather than silently never call."""
    least = round(settings.min_call_s * 1000)
    if settings.primary_timeout_s < settings.min_call_s:
        raise SettingsError(
            f"PRIMARY_TIMEOUT_MS={round(settings.primary_timeout_s * 1000)} is under MIN_MODEL_CALL_MS={least}: "
            "the primary would never be called"
        )
    if 0 < settings.fallback_reserve_s < settings.min_call_s:
        raise SettingsError(
            f"FALLBACK_RESERVE_MS={round(settings.fallback_reserve_s * 1000)} is under MIN_MODEL_CALL_MS={least}: "
            "the reserve could never start a fallback call; raise it or set 0 (no reserve)"
        )


def _breaker(reader: EnvReader) -> BreakerSettings:
    return BreakerSettings(
        failures=reader.int("BREAKER_FAILURES", 5, 1, 1000),
        cooldown_s=reader.milliseconds("BREAKER_COOLDOWN_MS", 2000, 10, 600_000),
        max_cooldown_s=reader.milliseconds("BREAKER_MAX_COOLDOWN_MS", 30_000, 10, 3_600_000),
        latency_bound_s=reader.milliseconds("BREAKER_LATENCY_MS", 0, 0, 120_000) or None,
    )


def _hedge(reader: EnvReader) -> HedgeSettings:
    min_ms = reader.int("HEDGE_MIN_MS", 50, 0, 60_000)
    max_ms = reader.int("HEDGE_MAX_MS", 800, 0, 120_000)
    if min_ms > max_ms:
        raise SettingsError(f"HEDGE_MIN_MS={min_ms} exceeds HEDGE_MAX_MS={max_ms}")
    return HedgeSettings(
        enabled=reader.bool("HEDGE", True),
        min_delay_s=min_ms / 1000,
        max_delay_s=max_ms / 1000,
        max_fraction=reader.float("HEDGE_MAX_FRACTION", 0.1, 0.0, 1.0),
        primary_grace_s=reader.milliseconds("PRIMARY_GRACE_MS", 20, 0, 10_000),
    )


def _canary(reader: EnvReader) -> CanarySettings | None:
    share = reader.float("CANARY_SHARE", 0.0, 0.0, 1.0)
    if share == 0:
        return None
    return CanarySettings(
        share=share,
        window_s=reader.float("CANARY_WINDOW_S", 60.0, 1.0, 86_400.0),
        min_requests=reader.int("CANARY_MIN_REQUESTS", 20, 1, 1_000_000),
        max_error_rate_increase=reader.float("CANARY_MAX_ERROR_RATE_INCREASE", 0.05, 0.0, 1.0),
        max_fallback_rate_increase=reader.float("CANARY_MAX_FALLBACK_RATE_INCREASE", 0.05, 0.0, 1.0),
        max_p95_ratio=reader.float("CANARY_MAX_P95_RATIO", 1.5, 1.0, 100.0),
        p95_slack_s=reader.milliseconds("CANARY_P95_SLACK_MS", 20, 0, 60_000),
        max_disagreement=reader.float("CANARY_MAX_DISAGREEMENT", 0.1, 0.0, 1.0),
        grace_s=reader.milliseconds("CANARY_GRACE_MS", 100, 0, 60_000),
    )


def _backend(reader: EnvReader, role: str) -> BackendSettings | None:
    prefix = role.upper()
    url = reader.raw(f"{prefix}_URL")
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("grpc", "http", "https") or not parts.hostname:
        raise SettingsError(f"{prefix}_URL={url!r}: use grpc://host:port or http(s)://host:port")
    try:
        port = parts.port or (8500 if parts.scheme == "grpc" else 8501)
    except ValueError:
        raise SettingsError(f"{prefix}_URL={url!r} has an invalid port") from None
    model = reader.raw(f"{prefix}_MODEL")
    if not model:
        raise SettingsError(f"{prefix}_MODEL is required with {prefix}_URL (the TF-Serving model name)")
    protocol = "grpc" if parts.scheme == "grpc" else "rest"
    target = f"{parts.hostname}:{port}" if protocol == "grpc" else f"{parts.scheme}://{parts.hostname}:{port}"
    tls = _tls(reader, prefix, parts.scheme)
    return BackendSettings(role, url, protocol, target, model, _policy(reader, prefix), tls)


def _tls(reader: EnvReader, prefix: str, scheme: str) -> ClientTls | None:
    """Check the CA, certificate and key load as OpenSSL will load them for every connection."""
    ca, cert, key = (reader.raw(f"{prefix}_TLS_{part}") for part in ("CA", "CERT", "KEY"))
    if bool(cert) != bool(key):
        raise SettingsError(f"{prefix}_TLS_CERT and {prefix}_TLS_KEY go together: set both or neither")
    if not ca:
        if cert:
            raise SettingsError(f"{prefix}_TLS_CERT needs {prefix}_TLS_CA, the CA the server's certificate chains to")
        return None
    if scheme == "http":
        raise SettingsError(f"{prefix}_TLS_CA is set but {prefix}_URL is http://; use https:// (or grpc://)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=ca)
    except ssl.SSLError:  # an OSError too: first
        raise SettingsError(f"{prefix}_TLS_CA={ca}: holds no PEM certificate") from None
    except OSError as exc:
        raise SettingsError(f"{prefix}_TLS_CA={ca}: cannot read it ({exc.strerror})") from None
    if context.cert_store_stats()["x509_ca"] == 0:
        raise SettingsError(f"{prefix}_TLS_CA={ca}: holds no CA certificate (basicConstraints CA:TRUE)")
    if cert:
        try:
            context.load_cert_chain(cert, key)
        except ssl.SSLError as exc:
            raise SettingsError(
                f"{prefix}_TLS_CERT={cert} / {prefix}_TLS_KEY={key}: not a matching PEM certificate "
                f"and key ({exc.reason})"
            ) from None
        except OSError as exc:
            raise SettingsError(
                f"{prefix}_TLS_CERT={cert} / {prefix}_TLS_KEY={key}: cannot read ({exc.strerror})"
            ) from None
    return ClientTls(Path(ca), Path(cert) if cert else None, Path(key) if key else None)


def _policy(reader: EnvReader, prefix: str) -> ResizePolicy:
    manifest = reader.raw(f"{prefix}_MANIFEST")
    values: dict = {}
    if manifest:
        try:
            values = dict(json.loads(Path(manifest).read_text())["preprocessing"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SettingsError(f"{prefix}_MANIFEST={manifest}: cannot read its preprocessing ({exc})") from None
    shorter = reader.int(f"{prefix}_RESIZE_SHORTER", int(values.get("resize_shorter", 256)), 1, 4096)
    interpolation = reader.raw(f"{prefix}_INTERPOLATION") or values.get("interpolation", "bilinear")
    try:
        return ResizePolicy(
            resize_shorter=shorter, crop=int(values.get("crop", IMAGE_SIZE)), interpolation=interpolation
        )
    except ValueError as exc:
        raise SettingsError(f"{prefix}_RESIZE_SHORTER/{prefix}_INTERPOLATION: {exc}") from None
