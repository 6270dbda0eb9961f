"""Small uploads that are expensive to decode: what issue 14's hostile tester sent, rebuilt here."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def flat_webp(side: int = 7071) -> bytes:
    """A lossless WebP of one colour: ~2 KB on the wire, side x side pixels decoded."""
    return encode(Image.new("RGB", (side, side), (90, 120, 30)), "WEBP", lossless=True, quality=0, method=0)


def sixteen_bit_png(side: int = 5000) -> bytes:
    """A 16-bit greyscale PNG of one value: ~100 KB, decoded as 2-byte samples."""
    return encode(Image.fromarray(np.full((side, side), 40_000, np.uint16)), "PNG", optimize=True)


def rgba_png(side: int = 4000) -> bytes:
    return encode(Image.new("RGBA", (side, side), (10, 20, 30, 128)), "PNG", optimize=True)


def scan_bomb(repeats: int = 10_000, side: int = 2048) -> bytes:
    """A progressive JPEG of one colour whose smallest scan is repeated ``repeats`` times before the
    end marker: libjpeg decodes every one (with a warning), so the CPU cost grows with the repeats."""
    data = encode(Image.new("RGB", (side, side), (200, 30, 90)), "JPEG", progressive=True, quality=90)
    starts = [i for i in range(len(data) - 1) if data[i : i + 2] == b"\xff\xda"]
    scans = [data[start:end] for start, end in zip(starts, starts[1:] + [len(data) - 2], strict=True)]
    return data[:-2] + min(scans, key=len) * repeats + b"\xff\xd9"


def zero_size_png() -> bytes:
    """A PNG whose header declares 0 x 0 pixels (with a valid CRC)."""
    import struct
    import zlib

    header = struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + ihdr + end


def corpus(count: int, seed: int = 0) -> list[bytes]:
    """``count`` uploads mixing what costs memory and CPU to decode: big flat images of every
    format (each a few KB on the wire), photo-sized noise, truncations and bit flips of those, and
    scan bombs. Deterministic for a seed, so passes can be compared."""
    rng = np.random.default_rng(seed)
    expensive = [
        flat_webp(4000),
        flat_webp(7071),
        sixteen_bit_png(4000),
        sixteen_bit_png(5000),
        rgba_png(3000),
        encode(Image.new("RGB", (6000, 4000), (1, 2, 3)), "JPEG", progressive=True),
        encode(Image.new("P", (5000, 5000)), "GIF"),
        scan_bomb(repeats=2000, side=512),
    ]
    uploads = []
    for _ in range(count):
        pick = rng.random()
        if pick < 0.4:
            data = expensive[rng.integers(len(expensive))]
        else:
            side = int(rng.integers(64, 2048))
            noise = Image.effect_noise((side, side * 3 // 4), 50).convert("RGB")
            fmt = ("JPEG", "PNG", "WEBP", "BMP", "GIF")[rng.integers(5)]
            data = encode(noise, fmt)
        if rng.random() < 0.3:
            mutated = bytearray(data)
            for at in rng.integers(0, len(mutated), 8):
                mutated[at] ^= 1 << int(rng.integers(8))
            data = bytes(mutated[: int(len(mutated) * rng.uniform(0.5, 1.0))])
        uploads.append(data)
    return uploads
