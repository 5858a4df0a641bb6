"""A corpus of bad inputs (broken photos, bad spec sheets) with what the error should say.

Every front end (the CLI, the HTTP API) must refuse each of these as bad input, with one line
that names the problem, and never crash. The corpus is generated (no binary fixtures in git);
:func:`write_corpus` writes it into a directory and returns the cases, so a test can feed each
file to its front end and check the message against :attr:`BadInput.says`.

Cases that are not files (a missing path, a directory, a bad setting, a bad command line)
belong to the front end's own tests; :func:`write_good_image` makes the valid partner photo.

Everything here is test tooling: the library never imports it.
"""

from __future__ import annotations

import dataclasses
import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "BOMB_SIDE",
    "GOOD_SIZE",
    "BadInput",
    "OddPair",
    "bad_images",
    "bad_specs",
    "good_image_bytes",
    "more_bad_images",
    "more_bad_specs",
    "odd_pairs",
    "one_colour_webp",
    "png16_rgba",
    "png_with_one_row",
    "write_corpus",
    "write_good_image",
]

GOOD_SIZE = (96, 64)
"""(width, height) of the valid small photos: big enough to decode, small enough to be fast."""

BOMB_SIDE = 60_000
"""Side of the square image the decompression-bomb PNG claims to be (3.6 gigapixels)."""


@dataclasses.dataclass(frozen=True)
class BadInput:
    """One bad file: its name in the corpus, its bytes, and what the error must mention."""

    kind: str  # short identifier, e.g. "truncated-jpeg"
    filename: str  # the name it is written under (often a lie about its format)
    data: bytes
    says: tuple[str, ...]  # lower-case fragments; the message must contain at least one
    role: str = "image"  # "image" or "spec"
    http_status: int = 422  # what the HTTP API answers (415 not an image, 413 too big)


def _pattern(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth, asymmetric RGB pattern with a little noise (decodes to known-ish pixels)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    rgb = np.stack([255 * x / max(1, width - 1), 255 * y / max(1, height - 1),
                    128 + 100 * np.sin(x / 7.0 + y / 11.0)], axis=2)
    rgb += rng.normal(0, 4, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _encode(rgb: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def good_image_bytes(fmt: str = "PNG", size: tuple[int, int] = GOOD_SIZE, seed: int = 0) -> bytes:
    """A valid small photo (Pillow format name, e.g. "PNG" or "JPEG"), `size` = (w, h)."""
    return _encode(_pattern(*size, seed=seed), fmt, **({"quality": 90} if fmt == "JPEG" else {}))


def write_good_image(path: str | Path, size: tuple[int, int] = GOOD_SIZE, seed: int = 0) -> Path:
    """Write a valid photo, format from the suffix (.png or .jpg), and return its path."""
    path = Path(path)
    fmt = "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG"
    path.write_bytes(good_image_bytes(fmt, size, seed))
    return path


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


def _bomb_png(side: int) -> bytes:
    """A complete, well-formed PNG whose IHDR claims side x side RGB pixels.

    Its IDAT holds one row only; a decoder that allocates the claimed size before noticing
    would need ~10 GB, so refusing it must happen from the header alone.
    """
    return png_with_one_row(side, side)


def png_with_one_row(width: int, height: int) -> bytes:
    """A PNG whose header and checksums are valid (width x height, 8-bit RGB) but whose
    compressed data holds one row: only decoding it finds that the data ends early."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (1 + 3 * width), 9)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


def png16_rgba(rgb: np.ndarray) -> bytes:
    """`rgb` (uint8) as a 16-bit RGBA PNG, opaque: 8 bytes per pixel once decoded."""
    import cv2

    bgra = np.dstack([rgb[..., ::-1], np.full(rgb.shape[:2], 255, np.uint8)])
    ok, buffer = cv2.imencode(".png", bgra.astype(np.uint16) * 257,
                              [cv2.IMWRITE_PNG_COMPRESSION, 1])
    assert ok
    return buffer.tobytes()


def one_colour_webp(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    """A lossless WebP of one colour: a few dozen bytes that decode to width x height x 3."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "WEBP", lossless=True, quality=0,
                                                   method=0)
    return out.getvalue()


def _corrupt_png() -> bytes:
    """A complete PNG whose compressed pixel data was damaged (the CRC no longer matches)."""
    data = bytearray(good_image_bytes("PNG"))
    start = data.index(b"IDAT") + 4
    for offset in range(20, 60):  # inside the compressed stream, well before its CRC
        data[start + offset] ^= 0x5A
    return bytes(data)


def bad_images() -> list[BadInput]:
    """The broken-photo cases (each one of a different kind)."""
    rng = np.random.default_rng(1234)
    random_bytes = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    if random_bytes[:3] == b"\xff\xd8\xff":  # cannot happen with this seed; keep it honest
        random_bytes = b"\x00" + random_bytes
    jpeg = good_image_bytes("JPEG")
    png = good_image_bytes("PNG")
    svg = (b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
           b'width="640" height="480"><rect width="640" height="480" fill="red"/></svg>\n')
    html = (b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>"
            b"<body><h1>Not Found</h1></body></html>\n")
    gif = _encode(_pattern(*GOOD_SIZE), "GIF")
    return [
        BadInput("empty-file", "empty.jpg", b"", ("empty",)),
        BadInput("random-bytes", "random.jpg", random_bytes,
                 ("not a recognised image format",), http_status=415),
        BadInput("truncated-jpeg", "truncated.jpg", jpeg[: len(jpeg) // 2], ("truncated",)),
        BadInput("jpeg-without-image-data", "headers_only.jpg", b"\xff\xd8\xff\xd9",
                 ("corrupt", "truncated")),
        BadInput("truncated-png", "truncated.png", png[: len(png) // 2], ("truncated",)),
        BadInput("corrupt-png", "corrupt.png", _corrupt_png(), ("corrupt",)),
        BadInput("png-decompression-bomb", "bomb.png", _bomb_png(BOMB_SIDE),
                 ("decompression bomb", "more than the limit"), http_status=413),
        BadInput("svg-as-png", "drawing.png", svg, ("svg",), http_status=415),
        BadInput("html-as-jpg", "error_page.jpg", html, ("html",), http_status=415),
        BadInput("gif-as-jpg", "animation.jpg", gif, ("gif",), http_status=415),
        BadInput("pdf-as-jpg", "scan.jpg", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
                 ("pdf",), http_status=415),
        BadInput("tiny-8x8", "thumbnail.png", _encode(_pattern(8, 8), "PNG"), ("too small",)),
        BadInput("strip-3000x16", "strip.png", _encode(_pattern(3000, 16), "PNG"),
                 ("strip rather than a product photo",)),
    ]


def bad_specs() -> list[BadInput]:
    """The unusable spec sheets (valid photos otherwise)."""
    def spec(value) -> bytes:
        return json.dumps(value).encode()

    return [
        BadInput("spec-malformed-json", "malformed.json", b'{"tolerances": {"delta_e00": 2.0,}',
                 ("neither valid json nor valid yaml",), role="spec"),
        BadInput("spec-unknown-key", "typo.json", spec({"tolerances": {"delta_e": 2.0}}),
                 ("tolerances.delta_e:",), role="spec"),
        BadInput("spec-negative-tolerance", "negative.json",
                 spec({"tolerances": {"delta_e00": -1.0}}), ("tolerances.delta_e00",),
                 role="spec"),
        BadInput("spec-not-a-mapping", "list.json", spec([1, 2, 3]), ("mapping",), role="spec"),
        BadInput("spec-roi-outside", "roi_outside.json",
                 spec({"roi": [5000, 5000, 100, 100]}), ("outside",), role="spec"),
    ]


def write_corpus(directory: str | Path) -> list[BadInput]:
    """Write every bad image and bad spec into `directory`; return the cases written.

    A valid photo of :data:`GOOD_SIZE` is written as ``good.png`` alongside, to pair with the
    bad ones. The roi-outside spec is a valid spec on its own: only the golden photo (``good.png``)
    shows that its ROI lies outside.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cases = bad_images() + bad_specs()
    for case in cases:
        (directory / case.filename).write_bytes(case.data)
    write_good_image(directory / "good.png")
    return cases


# --------------------------------------------------------------------------------------------
# The reliability corpus (tests/test_reliability_corpus.py): more refusals, and inputs that are
# odd but valid, whose correct answer is a verdict rather than an error.


def _jpeg_bomb(side: int) -> bytes:
    """A JPEG whose frame header (SOF0) claims side x side pixels, with a token scan after it.

    Like the PNG bomb it must be refused from the header: decoding would allocate ~side^2 x 3
    bytes (12 GB at 65,500) before finding that the scan holds almost nothing.
    """
    sof = struct.pack(">BHHB", 8, side, side, 3) + bytes([1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1])
    sos = bytes([3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0])
    return (b"\xff\xd8" + b"\xff\xc0" + struct.pack(">H", 2 + len(sof)) + sof
            + b"\xff\xda" + struct.pack(">H", 2 + len(sos)) + sos + b"\x00" * 64 + b"\xff\xd9")


def _animated_gif() -> bytes:
    frames = [Image.fromarray(_pattern(*GOOD_SIZE, seed=n)).convert("P") for n in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100,
                   loop=0)
    return buffer.getvalue()


def _heif(rgb: np.ndarray, quality: int = 90) -> bytes:
    from pillow_heif import register_heif_opener

    register_heif_opener()
    return _encode(rgb, "HEIF", quality=quality)


def more_bad_images() -> list[BadInput]:
    """Broken or unsupported photos beyond :func:`bad_images`: animation, BMP, a JPEG bomb,
    truncated HEIC and WebP. Every front end refuses them like the others."""
    heic = _heif(_pattern(*GOOD_SIZE))
    webp = _encode(_pattern(*GOOD_SIZE), "WEBP", quality=90)
    return [
        BadInput("animated-gif", "animated.gif", _animated_gif(), ("gif",), http_status=415),
        BadInput("bmp-as-jpg", "bitmap.jpg", _encode(_pattern(*GOOD_SIZE), "BMP"), ("bmp",),
                 http_status=415),
        BadInput("jpeg-decompression-bomb", "bomb.jpg", _jpeg_bomb(65_500),
                 ("decompression bomb", "more than the limit"), http_status=413),
        BadInput("truncated-heic", "truncated.heic", heic[: len(heic) // 2], ("truncated",)),
        BadInput("truncated-webp", "truncated.webp", webp[: len(webp) // 2], ("truncated",)),
    ]


def more_bad_specs() -> list[BadInput]:
    """Spec sheets beyond :func:`bad_specs` that once crashed a parser or the pipeline, or
    would (each is refused with a message naming the field)."""
    billion_laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + n)}: &{chr(98 + n)} [{', '.join(['*' + chr(97 + n)] * 9)}]\n"
        for n in range(8))
    return [
        # json.loads and yaml.safe_load recurse per level: RecursionError, a 500 before.
        BadInput("spec-deeply-nested", "nested.json", b"[" * 100_000, ("nested too deeply",),
                 role="spec"),
        # JSON's Infinity/NaN: an infinite card width made every area infinite (a 500).
        BadInput("spec-infinite-number", "infinite.json",
                 b'{"chart": {"width_mm": Infinity}}', ("finite",), role="spec"),
        BadInput("spec-nan-tolerance", "nan.json", b'{"tolerances": {"delta_e00": NaN}}',
                 ("finite",), role="spec"),
        BadInput("spec-absurd-card-width", "wide_card.json",
                 b'{"chart": {"width_mm": 1e300}}', ("chart.width_mm",), role="spec"),
        # YAML aliases expand to 9^9 leaves if anything walks them; the spec must refuse the
        # unknown keys without doing so.
        BadInput("spec-yaml-alias-bomb", "laughs.yaml", billion_laughs.encode(),
                 ("extra inputs are not permitted", "invalid spec"), role="spec"),
        BadInput("spec-roi-empty", "roi_empty.json", b'{"roi": [10, 10, 0, 5]}',
                 ("roi",), role="spec"),
        # Python reads at most 4300 digits into an int: a bare ValueError, a 500 before.
        BadInput("spec-integer-thousands-of-digits", "digits.json",
                 b'{"tolerances": {"max_defects": ' + b"9" * 5000 + b"}}",
                 ("thousands of digits",), role="spec"),
        # Accepted once, stored, and every inspection of the golden overflowed (a 500).
        BadInput("spec-roi-400-digits", "roi_digits.json",
                 b'{"roi": [0, 0, 1' + b"0" * 400 + b', 100]}', ("roi numbers must be",),
                 role="spec"),
        BadInput("spec-yaml-impossible-date", "date.yaml", b"tolerances: 2026-13-45\n",
                 ("cannot be read",), role="spec"),
    ]


@dataclasses.dataclass(frozen=True)
class OddPair:
    """A golden/unit pair that is odd but valid: its correct answer is a verdict, not an error.

    `unit_size` is the unit's size as displayed (EXIF orientation applied), when the case is
    about orientation; the report's ``unit_size`` must equal it.
    """

    kind: str
    golden_name: str
    golden: bytes
    unit_name: str
    unit: bytes
    verdicts: tuple[str, ...]  # the verdicts that are correct
    unit_size: tuple[int, int] | None = None


# EXIF orientation n: the stored pixels are turned by _STORE[n], so that a viewer applying n
# shows the original. (Orientation 5 and 7 are their own inverses; 6 and 8 swap.)
_STORE = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, 1),
    7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),
    8: lambda a: np.rot90(a, -1),
}


def _jpeg_with_orientation(rgb: np.ndarray, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = np.ascontiguousarray(_STORE[orientation](rgb))
    return _encode(stored, "JPEG", quality=92, exif=exif.tobytes())


def _png16(rgb: np.ndarray) -> bytes:
    import cv2

    ok, buffer = cv2.imencode(".png", (rgb[..., ::-1].astype(np.uint16) * 257))
    assert ok
    return buffer.tobytes()


def odd_pairs(golden: np.ndarray, unit: np.ndarray, other: np.ndarray) -> list[OddPair]:
    """The issue's accepted-input cases, built from a golden photo, a unit photo of the same
    product that passes against it, and a photo of another product (RGB uint8 arrays)."""
    g = _encode(golden, "JPEG", quality=92)
    u = _encode(unit, "JPEG", quality=92)
    black = _encode(np.zeros_like(unit), "JPEG", quality=92)
    grey_g = _encode(np.asarray(Image.fromarray(golden).convert("L")), "JPEG", quality=92)
    grey_u = _encode(np.asarray(Image.fromarray(unit).convert("L")), "JPEG", quality=92)
    cmyk = io.BytesIO()
    Image.fromarray(unit).convert("CMYK").save(cmyk, format="JPEG", quality=95)
    height, width = unit.shape[:2]
    cases = [
        OddPair("identical-images", "golden.jpg", g, "same.jpg", g, ("pass",)),
        OddPair("unrelated-products", "golden.jpg", g, "other.jpg",
                _encode(other, "JPEG", quality=92), ("inconclusive",)),
        OddPair("all-black-unit", "golden.jpg", g, "black.jpg", black, ("inconclusive",)),
        OddPair("sixteen-bit-png-unit", "golden.jpg", g, "unit16.png", _png16(unit), ("pass",)),
        OddPair("cmyk-jpeg-unit", "golden.jpg", g, "cmyk.jpg", cmyk.getvalue(), ("pass",)),
        OddPair("greyscale-pair", "golden_grey.jpg", grey_g, "unit_grey.jpg", grey_u,
                ("pass",)),
        OddPair("heic-unit", "golden.jpg", g, "unit.heic", _heif(unit), ("pass",)),
        OddPair("dotdot-and-unicode-names", "../../../etc/passwd", g,
                "..\\..\\ünïcødé 製品 ☃.jpg", u, ("pass",)),
    ]
    for orientation in range(1, 9):
        cases.append(OddPair(f"exif-orientation-{orientation}", "golden.jpg", g,
                             f"unit_orientation_{orientation}.jpg",
                             _jpeg_with_orientation(unit, orientation), ("pass",),
                             unit_size=(width, height)))
    return cases
