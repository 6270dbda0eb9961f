"""Hypothesis strategies for hostile uploads: valid images of every format and mode, then mutated."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from hypothesis import strategies as st
from PIL import Image

from tests import hostile_images

FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
MODES = {
    "JPEG": ("RGB", "L", "CMYK"),
    "PNG": ("RGB", "RGBA", "L", "LA", "P", "I;16", "1"),
    "WEBP": ("RGB", "RGBA"),
    "GIF": ("P", "L"),
    "BMP": ("RGB", "L", "1", "P"),
    "TIFF": ("RGB", "L", "CMYK"),
}


@st.composite
def valid_images(draw) -> bytes:
    fmt = draw(st.sampled_from(FORMATS))
    mode = draw(st.sampled_from(MODES[fmt]))
    width, height = draw(st.integers(1, 96)), draw(st.integers(1, 96))
    seed = draw(st.integers(0, 2**16))
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGB")
    image = image.convert("I;16") if mode == "I;16" else image.convert(mode)
    options = {"progressive": draw(st.booleans())} if fmt == "JPEG" else {}
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@st.composite
def huge_declared_png(draw) -> bytes:
    """A valid PNG header declaring up to 2^31-1 on a side, with a little compressed data."""
    width, height = draw(st.integers(0, 2**31 - 1)), draw(st.integers(0, 2**31 - 1))
    header = struct.pack(">IIBBBBB", width, height, 8, draw(st.sampled_from([0, 2, 6])), 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 4096))
        + _png_chunk(b"IEND", b"")
    )


@st.composite
def huge_declared_jpeg(draw) -> bytes:
    """A valid JPEG whose frame header (SOF) is patched to declare other dimensions."""
    data = bytearray(draw(valid_images().filter(lambda d: d[:2] == b"\xff\xd8")))
    for marker in (b"\xff\xc0", b"\xff\xc2", b"\xff\xc1"):
        at = data.find(marker)
        if at > 0:
            data[at + 5 : at + 9] = struct.pack(">HH", draw(st.integers(0, 65535)), draw(st.integers(0, 65535)))
            break
    return bytes(data)


@st.composite
def mutated(draw, seeds: st.SearchStrategy[bytes]) -> bytes:
    data = bytearray(draw(seeds))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "overwrite"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "truncate":
            del data[at:]
        elif kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        else:
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[at : at + len(chunk)] = chunk
    return bytes(data)


def uploads() -> st.SearchStrategy[bytes]:
    return st.one_of(
        valid_images(),
        mutated(valid_images()),
        huge_declared_png(),
        huge_declared_jpeg(),
        mutated(huge_declared_png()),
        st.binary(max_size=2048),
        st.sampled_from([b"", hostile_images.zero_size_png(), hostile_images.scan_bomb(repeats=300, side=64)]),
        st.just(hostile_images.flat_webp(4000)),
    )
