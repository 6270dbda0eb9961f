"""The memory a decode reserves covers what it really takes: peak RSS measured in a fresh process."""

import json
import subprocess
import sys

import pytest
from PIL import Image

from tests import hostile_images
from tests.conftest import REPO

# Runs in a fresh interpreter so the high-water mark belongs to this one decode. VmHWM, unlike
# ru_maxrss, is max(recorded peak, current RSS) when read, so a peak still mapped is counted too.
_MEASURE = """
import json, pathlib, sys
from gateway.imaging import decode, to_tensor, ResizePolicy
def hwm():
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024
data = pathlib.Path(sys.argv[1]).read_bytes()
reserved = []
before = hwm()
image = decode(data, 10**9, 232, reserve=reserved.append)
to_tensor(image, ResizePolicy(232, 224))
print(json.dumps({"peak": hwm() - before, "reserved": reserved[0]}))
"""


def noise(width: int, height: int, mode: str) -> Image.Image:
    return Image.effect_noise((width, height), 60).convert(mode)


CASES = {
    "lossless WebP 4000x4000": lambda: hostile_images.flat_webp(4000),
    "lossy WebP 3000x3000": lambda: hostile_images.encode(noise(3000, 3000, "RGB"), "WEBP", quality=80),
    "16-bit PNG 4000x4000": lambda: hostile_images.sixteen_bit_png(4000),
    "RGBA PNG 3000x3000": lambda: hostile_images.rgba_png(3000),
    "progressive JPEG 3000x2000": lambda: hostile_images.encode(noise(3000, 2000, "RGB"), "JPEG", progressive=True),
    "baseline JPEG 6000x4000": lambda: hostile_images.encode(noise(6000, 4000, "RGB"), "JPEG"),
    "GIF 4000x3000": lambda: hostile_images.encode(noise(4000, 3000, "P"), "GIF"),
    "BMP 4000x3000": lambda: hostile_images.encode(noise(4000, 3000, "RGB"), "BMP"),
}


def measure(data: bytes, path) -> dict:
    path.write_bytes(data)
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path)], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(result.stdout)


@pytest.mark.parametrize("case", CASES)
def test_reservation_covers_the_measured_peak(case, tmp_path):
    measured = measure(CASES[case](), tmp_path / "upload")
    assert 0 < measured["peak"] <= measured["reserved"], measured
