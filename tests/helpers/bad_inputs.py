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
    "bad_images",
    "bad_specs",
    "good_image_bytes",
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
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (1 + 3 * side), 9)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


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
                 ("not a recognised image format",)),
        BadInput("truncated-jpeg", "truncated.jpg", jpeg[: len(jpeg) // 2], ("truncated",)),
        BadInput("jpeg-without-image-data", "headers_only.jpg", b"\xff\xd8\xff\xd9",
                 ("corrupt", "truncated")),
        BadInput("truncated-png", "truncated.png", png[: len(png) // 2], ("truncated",)),
        BadInput("corrupt-png", "corrupt.png", _corrupt_png(), ("corrupt",)),
        BadInput("png-decompression-bomb", "bomb.png", _bomb_png(BOMB_SIDE),
                 ("decompression bomb", "more than the limit")),
        BadInput("svg-as-png", "drawing.png", svg, ("svg",)),
        BadInput("html-as-jpg", "error_page.jpg", html, ("html",)),
        BadInput("gif-as-jpg", "animation.jpg", gif, ("gif",)),
        BadInput("pdf-as-jpg", "scan.jpg", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
                 ("pdf",)),
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
