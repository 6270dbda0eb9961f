"""Bytes -> uint8 RGB [1, 224, 224, 3], with Pillow and numpy only.

Decoding happens once per request (``decode``); each model then gets its own resize policy
(``to_tensor``). For JPEG, ``draft`` lets the decoder scale by 1/2, 1/4 or 1/8 in the DCT while
staying at least as large as the biggest size any policy needs: a 4 MP photo decodes ~7x faster.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from gateway.errors import CorruptImage, TooManyPixels, UnsupportedMediaType
from protocol.contract import IMAGE_SIZE

FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")
MEDIA_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp")
_INTERPOLATION = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
                  "nearest": Image.Resampling.NEAREST, "lanczos": Image.Resampling.LANCZOS}
WHITE = (255, 255, 255)


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


def decode(data: bytes, max_pixels: int, min_shorter: int) -> Image.Image:
    """Open, check size, decode (JPEG at reduced DCT scale), orient and convert to RGB."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
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
        scale = min_shorter / min(width, height)
        image.draft("RGB", (max(1, round(width * scale)), max(1, round(height * scale))))
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
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # Pillow's convert() clips 16-bit samples at 255; scale them to 8 bits instead.
        samples = np.asarray(image, dtype=np.int64)
        shift = 8 if samples.max(initial=0) > 255 else 0
        return Image.fromarray(np.clip(samples >> shift, 0, 255).astype(np.uint8), "L").convert("RGB")
    if mode == "P" and "transparency" in image.info or mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
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
    resized = image.resize((policy.crop, policy.crop), _INTERPOLATION[policy.interpolation], box=box,
                           reducing_gap=None)
    return np.asarray(resized, dtype=np.uint8)[np.newaxis]
