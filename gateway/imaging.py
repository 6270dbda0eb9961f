"""Bytes -> uint8 RGB [1, 224, 224, 3], with Pillow and numpy only.

Decoding happens once per request (``decode``); each model then gets its own resize policy
(``to_tensor``). For JPEG, ``draft`` lets the decoder scale by 1/2, 1/4 or 1/8 in the DCT while
staying at least as large as the biggest size any policy needs: a 4 MP photo decodes ~7x faster.

Before any pixel is decoded, the header tells what decoding will allocate (``peak_bytes``) and the
caller reserves it (``reserve``), so a small file declaring a huge image is refused, not decoded.
Decoding time grows with pixels x scans; pixels are bounded by that reservation, and JPEG scans by
``MAX_JPEG_SCANS`` (a progressive JPEG has about 10; a scan bomb repeats a cheap one thousands of times).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from gateway.errors import CorruptImage, TooManyPixels, TooManyScans, UnsupportedMediaType
from protocol.contract import IMAGE_SIZE

FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")
MEDIA_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp")
_INTERPOLATION = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
}
WHITE = (255, 255, 255)
MAX_JPEG_SCANS = 100
# What each format's file starts with: a file that does but cannot be opened is broken (422), not foreign (415).
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")
_SOS = b"\xff\xda"  # JPEG start-of-scan; entropy-coded data never holds it (0xFF is followed by 0x00 or RSTn)
# Bytes per pixel Pillow stores for a mode; every other mode is stored in 4 (RGB included).
_STORAGE = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
_DECODER_STATE = 8 << 20  # tables, row buffers, small copies: under 2 MB measured for a 24 MP JPEG
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")


_BROKEN = (OSError, SyntaxError, ValueError, EOFError)  # what Pillow raises for damaged data


@dataclass(frozen=True)
class ResizePolicy:
    resize_shorter: int = 256
    crop: int = IMAGE_SIZE
    interpolation: str = "bilinear"

    def __post_init__(self) -> None:
        if self.interpolation not in _INTERPOLATION:
            raise ValueError(f"interpolation {self.interpolation!r} not in {sorted(_INTERPOLATION)}")
        if not 0 < self.crop <= self.resize_shorter:
            raise ValueError(f"need 0 < crop ({self.crop}) <= resize_shorter ({self.resize_shorter})")


def _corrupt(exc: Exception) -> CorruptImage:
    return CorruptImage(f"image data is truncated or corrupt: {exc}")


def _is_webp(data: bytes) -> bool:
    return data[:4] == b"RIFF" and data[8:12] == b"WEBP"


def _may_rotate(image: Image.Image) -> bool:
    """Could exif_transpose copy the image? JPEG and WebP carry EXIF in the header (read without
    decoding); a PNG may carry it after the pixels (Pillow's getexif() would decode them to find out)."""
    if image.format == "PNG":
        return True
    raw = image.info.get("exif")
    if not raw:
        return False
    exif = Image.Exif()
    try:
        exif.load(raw)
    except _BROKEN:
        return True
    return exif.get(ExifTags.Base.Orientation, 1) != 1


def peak_bytes(image: Image.Image, full_size: tuple[int, int], encoded_bytes: int) -> int:
    """The most memory decoding ``image`` (opened, drafted, not loaded) and turning it into RGB takes:
    the decoded pixels, the RGB copy, the copy a rotation makes, the 16-bit scaling's arrays, WebP's
    decoder's buffers (libwebp's canvases and the copy handed to Pillow: 12 more bytes per pixel
    measured, 14 charged), a progressive JPEG's coefficients, which libjpeg keeps for the whole undrafted image
    (2 bytes per sample), a copy of the encoded data and the decoders' fixed state.
    Checked against the measured peak for each format in tests/gateway/test_decode_memory.py."""
    width, height = image.size
    pixels = width * height
    total = _DECODER_STATE + encoded_bytes + pixels * _STORAGE.get(image.mode, 4)
    if image.mode != "RGB":
        total += pixels * 4
    if _may_rotate(image):
        total += pixels * 4
    if image.mode in _SIXTEEN_BIT:
        total += pixels * (2 + 1 + 1)
    if image.format == "WEBP":
        total += pixels * 14
    if image.format == "JPEG" and image.info.get("progressive"):
        total += full_size[0] * full_size[1] * 2 * len(image.getbands())
    return total


def decode(
    data: bytes, max_pixels: int, min_shorter: int, reserve: Callable[[int], None] = lambda _nbytes: None
) -> Image.Image:
    """Open, check size, reserve the memory decoding takes (``reserve(nbytes)`` raises to refuse),
    decode (JPEG at reduced DCT scale), orient and convert to RGB."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        if data.startswith(_SIGNATURES) or _is_webp(data):  # for example a declared size of zero
            raise CorruptImage("the image header is broken or declares no pixels") from None
        raise UnsupportedMediaType(f"not an image in a supported format ({', '.join(FORMATS)})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise TooManyPixels(f"image has more than {max_pixels} pixels") from None
    except _BROKEN as exc:  # recognised, but the header is broken
        raise _corrupt(exc) from None
    width, height = image.size
    if width * height > max_pixels:
        raise TooManyPixels(f"image is {width}x{height}, over the limit of {max_pixels} pixels")
    if width < 1 or height < 1:
        raise CorruptImage("image has no pixels")
    if image.format == "JPEG":
        scans = data.count(_SOS)
        if scans > MAX_JPEG_SCANS:
            raise TooManyScans(f"the JPEG has {scans} scans, over the limit of {MAX_JPEG_SCANS}")
        scale = min_shorter / min(width, height)
        image.draft("RGB", (max(1, round(width * scale)), max(1, round(height * scale))))
    reserve(peak_bytes(image, (width, height), len(data)))
    try:
        image.seek(0)  # first frame of an animation
        image.load()
        ImageOps.exif_transpose(image, in_place=True)  # no copy when there is nothing to rotate
        return _to_rgb(image)
    except _BROKEN as exc:
        raise _corrupt(exc) from None


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in _SIXTEEN_BIT:
        # Pillow's convert() clips 16-bit samples at 255; scale them to 8 bits instead, in place.
        samples = np.array(image)  # a writable copy: Pillow's buffer is read-only
        if mode == "I":
            np.clip(samples, 0, 65535, out=samples)
        shift = 8 if samples.max(initial=0) > 255 else 0
        samples >>= shift
        return Image.fromarray(samples.astype(np.uint8), "L").convert("RGB")
    if mode == "P" and "transparency" in image.info or mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image if mode == "RGBA" else image.convert("RGBA")
        background = Image.new("RGB", rgba.size, WHITE)
        background.paste(rgba, mask=rgba)  # alpha-blends onto white without another RGBA copy
        return background
    return image.convert("RGB")


def to_tensor(image: Image.Image, policy: ResizePolicy) -> np.ndarray:
    """Resize the shorter side to ``resize_shorter`` and centre-crop ``crop``: one resample of
    just the source box that lands in the crop, instead of resizing the whole image first."""
    width, height = image.size
    scale = policy.resize_shorter / min(width, height)
    box_size = policy.crop / scale
    # The crop origin is rounded in resized pixels, as torchvision's center_crop does.
    left = round((width * scale - policy.crop) / 2) / scale
    top = round((height * scale - policy.crop) / 2) / scale
    box = (left, top, left + box_size, top + box_size)
    resized = image.resize((policy.crop, policy.crop), _INTERPOLATION[policy.interpolation], box=box, reducing_gap=None)
    return np.asarray(resized, dtype=np.uint8)[np.newaxis]
