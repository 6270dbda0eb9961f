"""Every input mode, orientation and format the gateway accepts, and every kind of bad input."""

import io
import time

import numpy as np
import pytest
from PIL import Image

from gateway.errors import ImageError
from gateway.imaging import MAX_JPEG_SCANS, ResizePolicy, decode, to_tensor
from tests import hostile_images

POLICY = ResizePolicy(resize_shorter=256, crop=224)
MAX_PIXELS = 50_000_000


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def gradient(width=320, height=240) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.uint8)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, 255 - x], axis=-1), "RGB")


def prepare(data: bytes) -> np.ndarray:
    return to_tensor(decode(data, MAX_PIXELS, POLICY.resize_shorter), POLICY)


def test_output_contract():
    tensor = prepare(encode(gradient(), "PNG"))
    assert tensor.shape == (1, 224, 224, 3) and tensor.dtype == np.uint8 and tensor.flags.c_contiguous


def test_resize_and_centre_crop_match_the_two_step_reference():
    image = gradient(640, 480)
    reference = image.resize((341, 256), Image.Resampling.BILINEAR)
    left, top = round((341 - 224) / 2), round((256 - 224) / 2)
    expected = np.asarray(reference.crop((left, top, left + 224, top + 224)))
    got = to_tensor(image, POLICY)[0]
    assert np.abs(got.astype(int) - expected).mean() < 1.5


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP"])
def test_formats(fmt):
    tensor = prepare(encode(gradient(), fmt))
    reference = to_tensor(gradient(), POLICY)
    tolerance = {"JPEG": 8, "WEBP": 10, "GIF": 40}.get(fmt, 1)
    assert np.abs(tensor.astype(int) - reference).mean() < tolerance


def test_first_frame_of_an_animation():
    red, blue = Image.new("RGB", (300, 300), (255, 0, 0)), Image.new("RGB", (300, 300), (0, 0, 255))
    for fmt in ("GIF", "WEBP"):
        data = encode(red, fmt, save_all=True, append_images=[blue], duration=100, loop=0)
        pixel = prepare(data)[0, 112, 112]
        assert pixel[0] > 200 and pixel[2] < 60, (fmt, pixel)


def _palette() -> Image.Image:
    image = Image.new("P", (320, 240), 1)
    image.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    return image


@pytest.mark.parametrize(
    ("make", "fmt", "expected"),
    [
        (lambda: Image.new("L", (320, 240), 128), "PNG", (128, 128, 128)),
        (lambda: Image.new("1", (320, 240), 1), "PNG", (255, 255, 255)),
        (lambda: Image.new("1", (320, 240), 1), "BMP", (255, 255, 255)),
        (lambda: Image.fromarray(np.full((240, 320), 128 * 257, np.uint16)), "PNG", (128, 128, 128)),  # 16-bit
        (lambda: Image.new("CMYK", (320, 240), (0, 255, 255, 0)), "JPEG", (255, 0, 0)),
        (lambda: Image.new("RGB", (320, 240), (10, 200, 30)).convert("YCbCr"), "JPEG", (10, 200, 30)),
        (_palette, "PNG", (10, 200, 30)),
        (_palette, "GIF", (10, 200, 30)),
        (lambda: Image.new("L", (320, 240), 77), "JPEG", (77, 77, 77)),
    ],
)
def test_modes_become_rgb(make, fmt, expected):
    image = make()
    decoded = decode(encode(image, fmt), MAX_PIXELS, 256)
    assert decoded.mode == "RGB"
    tensor = to_tensor(decoded, POLICY)
    np.testing.assert_allclose(tensor[0, 112, 112], expected, atol=6)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA"])
def test_transparency_is_composited_on_white(mode):
    image = Image.new("RGBA", (300, 300), (255, 0, 0, 0))  # fully transparent red
    image.paste((0, 0, 255, 255), (0, 0, 150, 300))  # opaque blue left half
    if mode == "LA":
        image = image.convert("LA")
    data = encode(image.convert("P") if mode == "PA" else image, "PNG") if mode != "PA" else _palette_with_alpha()
    tensor = prepare(data)[0]
    assert (tensor[112, 200] > 240).all(), "transparent pixels must become white"
    assert not (tensor[112, 20] > 240).all(), "opaque pixels keep their colour"


def _palette_with_alpha() -> bytes:
    image = Image.new("P", (300, 300), 0)
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.paste(1, (0, 0, 150, 300))
    return encode(image, "PNG", transparency=0)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation):
    upright = Image.new("RGB", (300, 200), (0, 0, 0))
    upright.paste((255, 255, 255), (0, 0, 150, 100))  # white top-left quadrant
    stored = (
        upright.transpose(
            {
                1: None,
                2: Image.Transpose.FLIP_LEFT_RIGHT,
                3: Image.Transpose.ROTATE_180,
                4: Image.Transpose.FLIP_TOP_BOTTOM,
                5: Image.Transpose.TRANSPOSE,
                6: Image.Transpose.ROTATE_90,
                7: Image.Transpose.TRANSVERSE,
                8: Image.Transpose.ROTATE_270,
            }[orientation]
        )
        if orientation > 1
        else upright
    )
    exif = Image.Exif()
    exif[0x0112] = orientation
    image = decode(encode(stored, "PNG", exif=exif), MAX_PIXELS, 256)
    assert image.size == (300, 200)
    pixels = np.asarray(image)
    assert pixels[40, 60].min() > 200 and pixels[160, 240].max() < 50


def test_jpeg_draft_decodes_small_but_stays_close():
    big = gradient(2400, 1800)
    data = encode(big, "JPEG", quality=95)
    drafted = decode(data, MAX_PIXELS, 256)
    assert min(drafted.size) >= 256 and drafted.size[0] <= 600, drafted.size
    full = to_tensor(Image.open(io.BytesIO(data)).convert("RGB"), POLICY)
    assert np.abs(to_tensor(drafted, POLICY).astype(int) - full).mean() < 3


def test_draft_never_goes_below_the_largest_resize():
    data = encode(gradient(2400, 1800), "JPEG")
    assert min(decode(data, MAX_PIXELS, 232).size) >= 232


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"hello, I am a text file saved as photo.jpg\n", 415, "unsupported_media_type"),
        (b"", 415, "unsupported_media_type"),
        (b"%PDF-1.4 not an image", 415, "unsupported_media_type"),
    ],
)
def test_not_an_image(data, status, code):
    with pytest.raises(ImageError) as caught:
        decode(data, MAX_PIXELS, 256)
    assert (caught.value.status, caught.value.code) == (status, code)


def test_unsupported_format_is_415():
    with pytest.raises(ImageError) as caught:
        decode(encode(gradient(), "TIFF"), MAX_PIXELS, 256)
    assert caught.value.status == 415


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
def test_truncated_image_is_422(fmt):
    data = encode(gradient(640, 480), fmt)
    with pytest.raises(ImageError) as caught:
        decode(data[: len(data) // 2], MAX_PIXELS, 256)
    assert (caught.value.status, caught.value.code) == (422, "corrupt_image")


def test_corrupt_jpeg_body_is_422():
    data = bytearray(encode(gradient(640, 480), "JPEG"))
    data[600:] = b"\x00" * (len(data) - 600)
    with pytest.raises(ImageError) as caught:
        decode(bytes(data[:2000]), MAX_PIXELS, 256)
    assert caught.value.status == 422


def test_decompression_bomb_is_413_before_decoding():
    bomb = encode(Image.new("L", (20000, 20000)), "PNG")  # ~400 MP, a few hundred KB compressed
    assert len(bomb) < 2_000_000
    with pytest.raises(ImageError) as caught:
        decode(bomb, MAX_PIXELS, 256)
    assert (caught.value.status, caught.value.code) == (413, "too_many_pixels")


def test_pixel_limit_is_configurable():
    with pytest.raises(ImageError, match="over the limit of 1000 pixels"):
        decode(encode(gradient(), "PNG"), 1000, 256)


def test_tiny_images_are_upscaled():
    tensor = prepare(encode(Image.new("RGB", (3, 2), (10, 20, 30)), "PNG"))
    assert tensor.shape == (1, 224, 224, 3) and (tensor == [10, 20, 30]).all()


def test_policy_validation():
    with pytest.raises(ValueError):
        ResizePolicy(resize_shorter=200, crop=224)
    with pytest.raises(ValueError):
        ResizePolicy(interpolation="magic")


class Refused(Exception):
    pass


def test_memory_is_reserved_before_any_pixel_is_decoded(monkeypatch):
    webp = hostile_images.flat_webp()
    loaded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: loaded.append(self))

    def refuse(nbytes):
        raise Refused(nbytes)

    with pytest.raises(Refused) as caught:
        decode(webp, MAX_PIXELS, 256, reserve=refuse)
    assert caught.value.args[0] >= 7071 * 7071 * 4 and not loaded


@pytest.mark.parametrize(
    ("data", "pixels_at_least"),
    [
        (encode(gradient(4000, 3000), "JPEG", quality=80), 4000 * 3000 // 64),  # drafted: only what the resize needs
        (encode(gradient(4000, 3000), "JPEG", progressive=True), 4000 * 3000 * 6),  # coefficients at full size
    ],
)
def test_reservation_follows_draft_and_progressive_coefficients(data, pixels_at_least):
    reserved = []
    decode(data, MAX_PIXELS, 256, reserve=reserved.append)
    assert pixels_at_least <= reserved[0] < 4000 * 3000 * 20


def test_scan_bomb_is_refused_before_decoding():
    bomb = hostile_images.scan_bomb()
    started = time.process_time()
    with pytest.raises(ImageError) as caught:
        decode(bomb, MAX_PIXELS, 256)
    assert (caught.value.status, caught.value.code) == (422, "too_many_scans")
    assert time.process_time() - started < 0.5


def test_ordinary_progressive_jpeg_is_within_the_scan_limit():
    data = encode(gradient(640, 480), "JPEG", progressive=True)
    assert 1 < data.count(b"\xff\xda") <= MAX_JPEG_SCANS
    assert decode(data, MAX_PIXELS, 256).size[0] >= 256


@pytest.mark.parametrize(
    "data",
    [
        hostile_images.zero_size_png(),
        b"\xff\xd8\xff\xc0\x00\x11\x08\x00\x00\x00\x00\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01\xff\xd9",  # JPEG, 0 x 0
        b"GIF89a\x00\x00\x00\x00\x00\x00\x00;",
        b"RIFF\x10\x00\x00\x00WEBPVP8 \x00\x00\x00\x00",
    ],
)
def test_zero_size_or_broken_header_of_a_known_format_is_422(data):
    with pytest.raises(ImageError) as caught:
        decode(data, MAX_PIXELS, 256)
    assert (caught.value.status, caught.value.code) == (422, "corrupt_image")


def test_sixteen_bit_samples_scale_in_place_without_clipping():
    data = encode(Image.fromarray(np.array([[0, 65535], [32768, 257]] * 2, np.uint16)), "PNG")
    grey = np.asarray(decode(data, MAX_PIXELS, 2))[:2, :, 0]
    assert grey.tolist() == [[0, 255], [128, 1]]
