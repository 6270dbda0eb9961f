"""The images a classify request names, each decoded or with its own error.

Uploads (every multipart part named ``file`` or ``image``, or a raw image body) or, as JSON,
``{"url": ...}`` or ``{"urls": [...]}``. Several parts, or ``urls``, make a batch: up to
``MAX_BATCH_IMAGES`` images answered in order, where one bad image is that image's error only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from flask import Request
from PIL import Image

from common.memory_budget import OverBudget, Reservation
from gateway import imaging
from gateway.errors import ApiError, EmptyFile, InvalidJson, Overloaded, TooManyImages, TooManyPixels
from gateway.settings import Settings
from gateway.uploads import uploaded_images
from gateway.url_fetch import UrlFetcher

_FETCH_THREADS = 4  # URLs of one batch fetched at once
_JSON_SHAPE = 'a JSON body must be {"url": "https://..."} or {"urls": ["https://...", ...]}'


@dataclass
class Inputs:
    images: list[Image.Image | ApiError]  # in the request's order
    batch: bool
    by_url: bool
    fetch_s: float  # 0 for uploads
    decode_s: float

    @property
    def usable(self) -> list[Image.Image]:
        return [image for image in self.images if not isinstance(image, ApiError)]


def _urls(request: Request) -> tuple[list[str], bool]:
    body = request.get_json(silent=True)
    if isinstance(body, dict) and isinstance(body.get("url"), str) and body["url"]:
        return [body["url"]], False
    urls = body.get("urls") if isinstance(body, dict) else None
    if not isinstance(urls, list) or not urls or not all(isinstance(url, str) for url in urls):
        raise InvalidJson(_JSON_SHAPE)
    return urls, True


def _fetch_or_error(fetcher: UrlFetcher, url: str) -> bytes | ApiError:
    try:
        return fetcher.fetch(url)
    except ApiError as error:
        return error


def _hold(memory: Reservation, nbytes: int) -> None:
    try:
        memory.hold(nbytes)
    except OverBudget as exc:
        if exc.alone:
            raise TooManyPixels(
                f"decoding this image needs {exc.wanted >> 20} MiB with what its request already holds "
                f"(the body, and the images before it in a batch), over the limit of {exc.capacity >> 20} MiB "
                "(MEMORY_BUDGET_BYTES)"
            ) from None
        raise Overloaded("other uploads hold the decoding memory; retry shortly", {"Retry-After": "1"}) from None


def _decode_or_error(
    data: bytes | ApiError, settings: Settings, reserve: Callable[[int], None]
) -> Image.Image | ApiError:
    if isinstance(data, ApiError):
        return data
    if not data:
        return EmptyFile("the uploaded image is empty")
    try:
        return imaging.decode(data, settings.max_pixels, settings.decode_shorter, reserve=reserve)
    except ApiError as error:
        return error


def read_inputs(request: Request, fetcher: UrlFetcher, settings: Settings, memory: Reservation) -> Inputs:
    """Read and decode the request's images, holding ``memory`` for the body (and the multipart copy
    of it) before it is read, for each decode's peak before its pixels are decoded, and in the end
    only for the decoded images."""
    started = time.monotonic()
    by_url = request.mimetype == "application/json"
    datas: list[bytes | ApiError]
    if by_url:
        urls, batch = _urls(request)
        fetcher.require_enabled()
        _check_count(len(urls), settings)
        with ThreadPoolExecutor(min(len(urls), _FETCH_THREADS), thread_name_prefix="fetch") as pool:
            datas = list(pool.map(lambda url: _fetch_or_error(fetcher, url), urls))
        body = sum(len(data) for data in datas if isinstance(data, bytes))
    else:
        body = 2 * (request.content_length or settings.max_body_bytes)
        _hold(memory, body)
        datas = list(uploaded_images(request))
        batch = len(datas) > 1
        _check_count(len(datas), settings)
    fetched = time.monotonic() if by_url else started
    _hold(memory, body)
    kept = 0  # the decoded images' bytes
    images: list[Image.Image | ApiError] = []
    for data in datas:

        def reserve(nbytes: int, held: int = body + kept) -> None:
            _hold(memory, held + nbytes)

        image = _decode_or_error(data, settings, reserve)
        if isinstance(image, Image.Image):
            kept += image.width * image.height * 4
        images.append(image)
    _hold(memory, kept)  # the bodies and the decodes' copies are gone
    return Inputs(images, batch, by_url, fetched - started if by_url else 0.0, time.monotonic() - fetched)


def _check_count(count: int, settings: Settings) -> None:
    if count > settings.max_batch_images:
        raise TooManyImages(f"{count} images in one request; at most MAX_BATCH_IMAGES={settings.max_batch_images}")
