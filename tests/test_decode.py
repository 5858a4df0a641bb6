"""Tests for vision.decode: every input is generated here, so the expected pixels are known."""

import io
import math
import pickle
import struct
import subprocess
import sys
import time
import tracemalloc
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from vision.decode import (
    MIN_SIDE,
    SUPPORTED_FORMATS,
    ImageDecodeError,
    check_image,
    load_image,
    read_image_size,
    sniff_format,
)

REPO = Path(__file__).resolve().parents[1]

# PIL transpose that turns the stored pixels into the displayed ones for each EXIF orientation
# (the definition used by PIL.ImageOps.exif_transpose, after TIFF 6.0 tag 274).
DISPLAY_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# The stored pixels are the inverse transform of what should be displayed; only 6 and 8 are not
# their own inverse.
STORE_TRANSPOSE = {**DISPLAY_TRANSPOSE, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}

LOSSY = {"jpeg", "heif", "avif"}


def pattern(height: int = 48, width: int = 64) -> np.ndarray:
    """Smooth RGB pattern with no symmetry: every flip or rotation of it differs clearly."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    rgb = np.stack(
        [
            40 + 180 * x / (width - 1),
            30 + 190 * y / (height - 1),
            200 - 80 * (x / (width - 1)) * (y / (height - 1)),
        ],
        axis=-1,
    )
    # A bright patch near the top-left corner, softened so lossy codecs keep it.
    patch = np.exp(-(((x - width * 0.2) ** 2) + (y - height * 0.25) ** 2) / (2 * 6.0**2))
    rgb += 60 * patch[..., None]
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def heif_available() -> str | None:
    """Return why HEIF cannot be written here, or None if it can."""
    try:
        import pillow_heif
    except ImportError:
        return "pillow-heif is not installed"
    encoders = pillow_heif.libheif_info().get("encoders", {})
    if not any("x265" in key or "hevc" in str(value).lower() for key, value in encoders.items()):
        return f"libheif in this pillow-heif build has no HEVC encoder (encoders: {encoders})"
    return None


def avif_available() -> str | None:
    from PIL import features

    if not features.check("avif"):
        return "Pillow was built without libavif"
    try:
        Image.new("RGB", (16, 16)).save(io.BytesIO(), "AVIF")
    except Exception as error:  # the encoder may be absent even when decoding works
        return f"Pillow cannot write AVIF here ({error})"
    return None


def encode(image: Image.Image | np.ndarray, fmt: str, *, orientation: int = 1) -> bytes:
    """Encode with Pillow; lossless where the format allows, JPEG at 4:4:4 quality 95."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    options: dict = {}
    if orientation != 1:
        exif = Image.Exif()
        exif[0x0112] = orientation
        options["exif"] = exif.tobytes()
    if fmt == "jpeg":
        options.update(quality=95, subsampling=0)
    elif fmt == "webp":
        # exact: libwebp would otherwise zero the colour under fully transparent pixels.
        options.update(lossless=True, exact=True)
    elif fmt in ("heif", "avif"):
        reason = heif_available() if fmt == "heif" else avif_available()
        if reason:
            pytest.skip(reason)
        if fmt == "heif":
            from pillow_heif import register_heif_opener

            register_heif_opener()
        options.update(quality=95)
    buffer = io.BytesIO()
    image.save(buffer, {"jpeg": "JPEG", "heif": "HEIF"}.get(fmt, fmt.upper()), **options)
    return buffer.getvalue()


def assert_close(actual: np.ndarray, expected: np.ndarray, fmt: str) -> None:
    assert actual.shape == expected.shape
    assert actual.dtype == np.uint8
    assert actual.flags.c_contiguous
    difference = np.abs(actual.astype(np.int16) - expected.astype(np.int16))
    if fmt in LOSSY:
        assert difference.mean() < 3.0, difference.mean()
        assert np.percentile(difference, 99) < 16
    else:
        assert difference.max() == 0


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


def png_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG whose IHDR claims the given size but whose IDAT holds almost nothing."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + png_chunk(b"IEND", b"")
    )


# ---------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "tiff", "heif", "avif"])
def test_round_trip_known_pattern(tmp_path, fmt):
    original = pattern()
    path = write(tmp_path, f"unit.{fmt}", encode(original, fmt))
    assert sniff_format(path.read_bytes()) == fmt
    loaded = load_image(path)
    assert loaded.flags.writeable
    assert_close(loaded, original, fmt)
    assert read_image_size(path) == (original.shape[1], original.shape[0])


def test_bytes_input_matches_path_input(tmp_path):
    data = encode(pattern(), "png")
    path = write(tmp_path, "unit.png", data)
    np.testing.assert_array_equal(load_image(data), load_image(path))
    np.testing.assert_array_equal(load_image(bytearray(data)), load_image(memoryview(data)))


# ---------------------------------------------------------------------------------------------
# EXIF orientation


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "tiff", "heif", "avif"])
def test_exif_orientation_yields_display_image(tmp_path, fmt, orientation):
    """Pixels stored pre-transformed plus the tag must come back as the original picture."""
    original = pattern()
    stored = Image.fromarray(original)
    if orientation != 1:
        stored = stored.transpose(STORE_TRANSPOSE[orientation])
    data = encode(stored, fmt, orientation=orientation)
    if fmt != "heif":
        # Check the test itself against Pillow's reading of the tag.
        shown = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
        assert_close(np.ascontiguousarray(shown), original, fmt)
    path = write(tmp_path, f"rotated.{fmt}", data)

    assert_close(load_image(path), original, fmt)
    assert read_image_size(path) == (original.shape[1], original.shape[0])
    reduced = load_image(path, reduce=2)
    assert reduced.shape == (original.shape[0] // 2, original.shape[1] // 2, 3)


def test_orientation_with_odd_size_and_reduce(tmp_path):
    original = pattern(37, 53)
    stored = Image.fromarray(original).transpose(STORE_TRANSPOSE[6])
    path = write(tmp_path, "odd.jpg", encode(stored, "jpeg", orientation=6))
    for reduce in (1, 2, 4, 8):
        assert load_image(path, reduce=reduce).shape == (
            math.ceil(37 / reduce),
            math.ceil(53 / reduce),
            3,
        )


def test_invalid_orientation_value_is_ignored(tmp_path):
    original = pattern()
    path = write(tmp_path, "odd-tag.jpg", encode(original, "jpeg", orientation=9))
    assert_close(load_image(path), original, "jpeg")


# ---------------------------------------------------------------------------------------------
# Pixel formats


def sixteen_bit_values(height: int = 20, width: int = 24) -> np.ndarray:
    rng = np.random.default_rng(16)
    values = rng.integers(0, 65536, size=(height, width), dtype=np.uint16)
    # Values around the rounding boundaries and at the ends of the range.
    values.flat[:8] = [0, 128, 129, 257, 32767, 32768, 65534, 65535]
    return values


def scaled_to_8_bit(values: np.ndarray) -> np.ndarray:
    # v / 257 is never exactly k + 0.5 for integer v, so rounding has no ties.
    return np.round(values.astype(np.float64) * 255 / 65535).astype(np.uint8)


def test_16_bit_grey_png_is_scaled_not_truncated(tmp_path):
    values = sixteen_bit_values()
    ok, data = cv2.imencode(".png", values)
    assert ok
    loaded = load_image(write(tmp_path, "deep.png", data.tobytes()))
    expected = scaled_to_8_bit(values)
    for channel in range(3):
        np.testing.assert_array_equal(loaded[..., channel], expected)


def test_16_bit_rgb_png_is_scaled_and_in_rgb_order(tmp_path):
    rgb = np.stack(
        [sixteen_bit_values(), sixteen_bit_values()[::-1], 65535 - sixteen_bit_values()], -1
    )
    ok, data = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))  # OpenCV writes BGR
    assert ok
    loaded = load_image(write(tmp_path, "deep-rgb.png", data.tobytes()))
    np.testing.assert_array_equal(loaded, scaled_to_8_bit(rgb))


def test_16_bit_grey_tiff_is_scaled(tmp_path):
    values = sixteen_bit_values()
    data = encode(Image.fromarray(values), "tiff")
    loaded = load_image(write(tmp_path, "deep.tiff", data))
    np.testing.assert_array_equal(loaded[..., 1], scaled_to_8_bit(values))


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "tiff"])
def test_greyscale_becomes_three_equal_channels(tmp_path, fmt):
    grey = pattern()[..., 0]
    loaded = load_image(write(tmp_path, f"grey.{fmt}", encode(Image.fromarray(grey, "L"), fmt)))
    assert loaded.shape == (*grey.shape, 3)
    np.testing.assert_array_equal(loaded[..., 0], loaded[..., 1])
    np.testing.assert_array_equal(loaded[..., 0], loaded[..., 2])
    assert_close(np.repeat(loaded[..., :1], 3, axis=2), np.repeat(grey[..., None], 3, 2), fmt)


@pytest.mark.parametrize("fmt", ["png", "webp", "tiff"])
def test_alpha_is_dropped_not_composited(tmp_path, fmt):
    rgb = pattern()
    alpha = np.random.default_rng(3).integers(0, 256, size=rgb.shape[:2], dtype=np.uint8)
    alpha[:, :10] = 0  # fully transparent pixels keep their colour too
    rgba = np.dstack([rgb, alpha])
    loaded = load_image(write(tmp_path, f"alpha.{fmt}", encode(Image.fromarray(rgba), fmt)))
    np.testing.assert_array_equal(loaded, rgb)


@pytest.mark.parametrize("mode", ["LA", "P", "1", "CMYK", "I;16"])
def test_other_modes_become_rgb_png_or_tiff(tmp_path, mode):
    source = Image.fromarray(pattern())
    converted = source.convert(mode) if mode != "I;16" else source.convert("L")
    fmt = "tiff" if mode == "CMYK" else "png"
    loaded = load_image(write(tmp_path, f"mode.{fmt}", encode(converted, fmt)))
    expected = np.asarray(converted.convert("RGB"))
    assert loaded.shape == expected.shape
    assert np.abs(loaded.astype(int) - expected.astype(int)).max() <= 1


def test_palette_png_with_transparency(tmp_path):
    image = Image.fromarray(pattern()).quantize(64)
    image.info["transparency"] = 0
    buffer = io.BytesIO()
    image.save(buffer, "PNG", transparency=0)
    loaded = load_image(write(tmp_path, "palette.png", buffer.getvalue()))
    np.testing.assert_array_equal(loaded, np.asarray(image.convert("RGB")))


def test_cmyk_jpeg(tmp_path):
    original = pattern()
    data = encode(Image.fromarray(original).convert("CMYK"), "jpeg")
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    assert_close(load_image(write(tmp_path, "print.jpg", data)), original, "jpeg")


# ---------------------------------------------------------------------------------------------
# Format sniffing


def test_png_named_jpg_and_jpeg_named_png_load(tmp_path):
    original = pattern()
    np.testing.assert_array_equal(
        load_image(write(tmp_path, "really-png.jpg", encode(original, "png"))), original
    )
    assert_close(
        load_image(write(tmp_path, "really-jpeg.png", encode(original, "jpeg"))), original, "jpeg"
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "png"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "webp"),
        (b"II*\x00\x08\x00\x00\x00", "tiff"),
        (b"MM\x00*\x00\x00\x00\x08", "tiff"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "heif"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic", "heif"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf", "avif"),
        (b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avifmiaf", "avif"),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2", None),  # MP4 video
        (b"GIF89a\x10\x00\x10\x00", None),
        (b"BM6\x00\x00\x00", None),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', None),
        (b"<!DOCTYPE html><html></html>", None),
        (b"", None),
        (b"\xff\xd8", None),
    ],
)
def test_sniff_format(data, expected):
    assert sniff_format(data) == expected
    if expected is not None:
        assert expected in SUPPORTED_FORMATS


# ---------------------------------------------------------------------------------------------
# Bad input: each error names the file and says what is wrong, on one line


def flip_byte(data: bytes, offset: int) -> bytes:
    damaged = bytearray(data)
    damaged[offset] ^= 0xFF
    return bytes(damaged)


def garble_idat_keeping_crc(data: bytes) -> bytes:
    """Replace the IDAT payload with noise but give it a valid CRC, so only zlib can object."""
    start = data.index(b"IDAT") - 4
    length = struct.unpack(">I", data[start : start + 4])[0]
    noise = np.random.default_rng(7).integers(0, 256, size=length, dtype=np.uint8).tobytes()
    return data[:start] + png_chunk(b"IDAT", noise) + data[start + 12 + length :]


def bad_inputs() -> list:
    jpeg = encode(pattern(), "jpeg")
    png = encode(pattern(), "png")
    webp = encode(pattern(), "webp")
    gif = io.BytesIO()
    Image.fromarray(pattern()).convert("P").save(gif, "GIF")
    tiny = encode(pattern(8, 8), "png")
    noise = np.random.default_rng(0).integers(0, 256, size=4096, dtype=np.uint8).tobytes()
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="64"/>'
    html = b"<!DOCTYPE html>\n<html><body>502 Bad Gateway</body></html>"
    return [
        pytest.param("empty.jpg", b"", "empty", id="empty"),
        pytest.param("noise.jpg", noise, "not a recognised image format", id="random-bytes"),
        pytest.param(
            "cut.jpg",
            jpeg[: len(jpeg) // 2],
            f"ends after {len(jpeg) // 2:,} bytes",
            id="trunc-jpeg",
        ),
        pytest.param("cut-header.jpg", jpeg[:40], "truncated", id="trunc-jpeg-header"),
        pytest.param("cut.png", png[: len(png) // 2], "truncated", id="trunc-png"),
        pytest.param("cut.webp", webp[: len(webp) // 2], "truncated", id="trunc-webp"),
        pytest.param("soi-only.jpg", b"\xff\xd8\xff\xd9", "corrupt", id="jpeg-no-image"),
        pytest.param(
            "badcrc.png", flip_byte(png, png.index(b"IDAT") + 10), "corrupt", id="png-crc"
        ),
        pytest.param("garbled.png", garble_idat_keeping_crc(png), "corrupt", id="png-idat"),
        pytest.param("drawing.png", svg, "SVG", id="svg"),
        pytest.param("error-page.jpg", html, "HTML", id="html"),
        pytest.param("animation.gif", gif.getvalue(), "GIF is not supported", id="gif"),
        pytest.param("thumb.png", tiny, "too small to inspect", id="8x8"),
    ]


@pytest.mark.parametrize(("filename", "data", "expected"), bad_inputs())
def test_bad_input_raises_with_file_name(tmp_path, filename, data, expected):
    path = write(tmp_path, filename, data)
    with pytest.raises(ImageDecodeError) as caught:
        load_image(path)
    message = str(caught.value)
    assert filename in message
    assert expected in message
    assert "\n" not in message
    assert isinstance(caught.value, ValueError)
    # Bytes input reports the caller's name instead of a path.
    with pytest.raises(ImageDecodeError, match=rf"^upload-{filename}: "):
        load_image(data, name=f"upload-{filename}")


def png_with_idat(header: bytes, idat: bytes) -> bytes:
    """A PNG from an IHDR payload and a zlib stream, with valid CRCs on every chunk."""
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat)
            + png_chunk(b"IEND", b""))


def damaged_zlib_pngs() -> list:
    rgb = pattern()
    height, width = rgb.shape[:2]
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = np.concatenate([np.zeros((height, 1), np.uint8), rgb.reshape(height, -1)], axis=1)
    stream = zlib.compress(rows.tobytes(), 9)
    middle = bytearray(stream)
    middle[len(middle) // 2] ^= 0x5A
    short = zlib.compress(rows[: height // 2].tobytes(), 9)
    return [
        pytest.param(png_with_idat(header, bytes(middle)), id="damaged-mid-stream"),
        pytest.param(png_with_idat(header, stream[: len(stream) // 2]), id="cut-stream"),
        pytest.param(png_with_idat(header, short), id="too-few-rows"),
        pytest.param(garble_idat_keeping_crc(encode(rgb, "png")), id="noise"),
        pytest.param(flip_byte(encode(rgb, "png"), 60), id="bad-crc"),
    ]


@pytest.mark.parametrize("data", damaged_zlib_pngs())
def test_damaged_png_data_is_refused_without_libpng_output(capfd, data):
    """libpng prints its own error line to fd 2; the CLI promises exactly one line there."""
    capfd.readouterr()
    with pytest.raises(ImageDecodeError, match="PNG data is corrupt"):
        load_image(data, name="damaged.png")
    assert capfd.readouterr().err == ""


def adam7_png(image: np.ndarray, bit_depth: int = 8) -> bytes:
    """An interlaced PNG (Pillow and OpenCV only write non-interlaced ones)."""
    height, width = image.shape[:2]
    channels = 1 if image.ndim == 2 else image.shape[2]
    color_type = {1: 0, 3: 2, 4: 6}[channels]
    samples = image.astype(">u2") if bit_depth == 16 else image.astype(np.uint8)
    raw = b""
    for x, y, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
                         (1, 0, 2, 2), (0, 1, 1, 2)):
        sub = samples[y::dy, x::dx]
        if sub.size:
            raw += b"".join(b"\x00" + row.tobytes() for row in sub)
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 1)
    return png_with_idat(header, zlib.compress(raw))


@pytest.mark.parametrize("size", [(48, 64), (17, 23), (16, 16)])
def test_interlaced_png_loads(size):
    rgb = pattern(*size)
    np.testing.assert_array_equal(load_image(adam7_png(rgb)), rgb)
    values = sixteen_bit_values(*size)
    expected = np.repeat(scaled_to_8_bit(values)[:, :, None], 3, axis=2)
    np.testing.assert_array_equal(load_image(adam7_png(values, 16)), expected)


@pytest.mark.parametrize("fmt", ["tiff", "heif", "avif"])
def test_truncated_container_formats(tmp_path, fmt):
    data = encode(pattern(), fmt)
    path = write(tmp_path, f"cut.{fmt}", data[: len(data) // 2])
    with pytest.raises(ImageDecodeError, match=rf"cut\.{fmt}: the {fmt.upper()} data is truncated"):
        load_image(path)


def test_jpeg_with_trailer_after_eoi_loads(tmp_path):
    """Motion photos append a video after the JPEG's EOI; the still image must still load."""
    original = pattern()
    trailer = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(4096)
    path = write(tmp_path, "motion.jpg", encode(original, "jpeg") + trailer)
    assert_close(load_image(path), original, "jpeg")


def test_truncated_jpeg_with_eoi_inside_app_segment_is_detected(tmp_path):
    """An EXIF thumbnail ends with its own EOI; only an EOI after the main scan counts."""
    jpeg = encode(pattern(), "jpeg")
    thumbnail_like = b"\xff\xd8" + bytes(32) + b"\xff\xd9"
    app1 = b"\xff\xe1" + struct.pack(">H", len(thumbnail_like) + 2) + thumbnail_like
    with_app1 = jpeg[:2] + app1 + jpeg[2:]
    path = write(tmp_path, "cut-thumb.jpg", with_app1[: len(with_app1) - 200])
    with pytest.raises(ImageDecodeError, match="truncated"):
        load_image(path)


def test_unsupported_message_lists_supported_formats(tmp_path):
    with pytest.raises(ImageDecodeError, match="JPEG, PNG, WebP, TIFF, HEIF/HEIC and AVIF"):
        load_image(write(tmp_path, "noise.bin", b"\x00\x01\x02\x03" * 64))


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    """A 60000 x 60000 header (10.8 GB of RGB) must be refused from the header alone."""
    path = write(tmp_path, "bomb.png", png_claiming(60000, 60000))
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ImageDecodeError, match=r"bomb\.png: .*3,600,000,000 pixels"):
            load_image(path)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 5_000_000


def test_header_over_the_pixel_cap_is_refused_before_decoding(tmp_path):
    # 81 MP: above the default cap but below Pillow's own bomb guard, so our check is what fires.
    path = write(tmp_path, "huge.png", png_claiming(9000, 9000))
    started = time.perf_counter()
    with pytest.raises(ImageDecodeError, match=r"huge\.png: the image is 9,000 x 9,000 pixels"):
        load_image(path)
    assert time.perf_counter() - started < 1.0


def test_pixel_cap_smaller_than_image(tmp_path):
    path = write(tmp_path, "unit.jpg", encode(pattern(), "jpeg"))
    with pytest.raises(ImageDecodeError, match=r"unit\.jpg: .*more than the limit of 1,000"):
        load_image(path, max_pixels=1000)
    assert load_image(path, max_pixels=48 * 64).shape == (48, 64, 3)


def test_smallest_accepted_size(tmp_path):
    assert load_image(encode(pattern(MIN_SIDE, MIN_SIDE), "png")).shape == (16, 16, 3)
    with pytest.raises(ImageDecodeError, match="too small"):
        load_image(encode(pattern(MIN_SIDE, MIN_SIDE - 1), "png"))


def test_missing_file(tmp_path):
    path = tmp_path / "missing.jpg"
    with pytest.raises(ImageDecodeError, match=r"missing\.jpg: no such file"):
        load_image(path)
    with pytest.raises(ImageDecodeError, match=r"missing\.jpg: no such file"):
        read_image_size(str(path))


def test_directory_instead_of_file(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    with pytest.raises(ImageDecodeError, match=r"photos: this is a directory"):
        load_image(folder)


def test_bytes_without_name_get_a_placeholder():
    with pytest.raises(ImageDecodeError, match=r"^<image bytes>: the file is empty"):
        load_image(b"")


def test_error_survives_pickling(tmp_path):
    with pytest.raises(ImageDecodeError) as caught:
        load_image(b"", name="unit.jpg")
    restored = pickle.loads(pickle.dumps(caught.value))
    assert str(restored) == str(caught.value)
    assert restored.name == "unit.jpg"


@pytest.mark.parametrize("reduce", [0, 3, 16])
def test_invalid_reduce_is_a_programming_error(reduce):
    with pytest.raises(ValueError, match="reduce must be one of"):
        load_image(encode(pattern(), "png"), reduce=reduce)


# ---------------------------------------------------------------------------------------------
# Reduced decoding


@pytest.mark.parametrize("reduce", [1, 2, 4, 8])
@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "tiff"])
def test_reduce_gives_ceil_divided_shape(tmp_path, fmt, reduce):
    original = pattern(101, 203)
    loaded = load_image(write(tmp_path, f"odd.{fmt}", encode(original, fmt)), reduce=reduce)
    height, width = math.ceil(101 / reduce), math.ceil(203 / reduce)
    assert loaded.shape == (height, width, 3)
    assert loaded.flags.c_contiguous
    expected = cv2.resize(original, (width, height), interpolation=cv2.INTER_AREA)
    difference = np.abs(loaded.astype(int) - expected.astype(int))
    if fmt == "jpeg":
        # DCT scaling is not area averaging, and the last partial block differs most.
        assert difference[:-1, :-1].mean() < 3.0
    else:
        assert difference.max() == 0


def test_importing_does_not_load_pillow_heif():
    code = "import sys, vision.decode; print('pillow_heif' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_load_pair_decodes_both_at_the_report_size_and_names_the_golden_first(tmp_path):
    """vision.load.load_pair: both photos at once, at the size a report needs (1/2 for a
    12 MP JPEG), with the photos' own sizes; when both are bad, the golden's error."""
    from vision.load import load_pair

    big = np.zeros((3024, 4032, 3), np.uint8)
    big[::7] = 200
    golden = write(tmp_path, "golden.jpg", encode(big, "jpeg"))
    unit = write(tmp_path, "unit.png", encode(big[:600, :800], "png"))
    (g, g_size), (u, u_size) = load_pair(golden, unit)
    assert g.shape == (1512, 2016, 3) and g_size == (4032, 3024)
    assert u.shape == (600, 800, 3) and u_size == (800, 600)
    (full, full_size), _ = load_pair(golden, unit, for_report=False)
    assert full.shape == (3024, 4032, 3) and full_size == (4032, 3024)
    empty_golden = write(tmp_path, "golden-empty.jpg", b"")
    empty_unit = write(tmp_path, "unit-empty.jpg", b"")
    with pytest.raises(ImageDecodeError, match="golden-empty"):
        load_pair(empty_golden, empty_unit)


def _tiff16_rgb(width: int, height: int) -> bytes:
    ok, buffer = cv2.imencode(".tiff", np.zeros((height, width, 3), np.uint16))
    assert ok
    return buffer.tobytes()


@pytest.mark.parametrize(("kind", "bytes_per_pixel"), [
    ("png16-rgba", 8), ("png-rgb", 3), ("png-grey", 1), ("tiff16-rgb", 6), ("webp-rgba", 4),
    ("jpeg", 3)])
def test_the_decode_cost_is_pixels_times_bytes_per_pixel_read_from_the_header(kind,
                                                                              bytes_per_pixel):
    """The budget is checked before decoding: one byte below pixels x bytes per pixel refuses
    the photo, the exact cost is accepted."""
    from testkit.bad_inputs import png16_rgba

    width, height = 64, 48
    rgb = np.full((height, width, 3), 120, np.uint8)
    data = {
        "png16-rgba": lambda: png16_rgba(rgb),
        "png-rgb": lambda: cv2.imencode(".png", rgb)[1].tobytes(),
        "png-grey": lambda: cv2.imencode(".png", rgb[..., 0])[1].tobytes(),
        "tiff16-rgb": lambda: _tiff16_rgb(width, height),
        "webp-rgba": lambda: cv2.imencode(".webp", np.dstack([rgb, rgb[..., 0]]),
                                          [cv2.IMWRITE_WEBP_QUALITY, 101])[1].tobytes(),
        "jpeg": lambda: cv2.imencode(".jpg", rgb)[1].tobytes(),
    }[kind]()
    cost = width * height * bytes_per_pixel
    assert load_image(data, max_decoded_bytes=cost).shape == (height, width, 3)
    assert check_image(data, max_decoded_bytes=cost) == (kind.split("-")[0].rstrip("16"),
                                                         (width, height))
    for check in (load_image, check_image):
        with pytest.raises(ImageDecodeError, match=f"at {bytes_per_pixel} bytes each"):
            check(data, max_decoded_bytes=cost - 1)


def test_the_default_decode_budget_is_8_bit_rgb_at_the_pixel_cap():
    from testkit.bad_inputs import png16_rgba

    deep = png16_rgba(np.zeros((100, 100, 3), np.uint8))  # 80,000 bytes decoded
    assert load_image(deep, max_pixels=26_667).shape == (100, 100, 3)
    with pytest.raises(ImageDecodeError, match=r"more than the limit of 0.08 MB; save it with 8"):
        load_image(deep, max_pixels=26_666)


def test_check_image_finds_what_the_header_and_checksums_tell_without_decoding():
    from testkit.bad_inputs import png_with_one_row

    one_row = png_with_one_row(900, 800)  # checksums valid, data for one row
    assert check_image(one_row) == ("png", (900, 800))
    with pytest.raises(ImageDecodeError, match="ends early"):
        load_image(one_row)
    damaged = bytearray(cv2.imencode(".png", np.full((64, 64, 3), 7, np.uint8))[1].tobytes())
    damaged[damaged.index(b"IDAT") + 6] ^= 0x5A
    with pytest.raises(ImageDecodeError, match="checksum"):
        check_image(bytes(damaged))
    with pytest.raises(ImageDecodeError, match="more than the limit"):
        check_image(png_with_one_row(900, 800), max_pixels=700_000)
