"""The entry points: :func:`load_image` decodes a photo, :func:`read_image_size` reads only its
size; both refuse bad input with an :class:`ImageDecodeError`."""

import math
import os

import cv2
import numpy as np

from vision.decode._errors import REEXPORT, ImageDecodeError
from vision.decode._header import read_header, read_source
from vision.decode._pixels import (
    apply_orientation,
    decode_jpeg,
    decode_png,
    decode_webp,
    decode_with_pil,
)
from vision.decode._structure import check_png_data, check_structure

#: The per-photo pixel cap every entry point defaults to.
DEFAULT_MAX_PIXELS = 80_000_000

#: Smallest width and height accepted; below this the structure and colour windows do not fit.
MIN_SIDE = 16

#: Largest ratio of the long to the short side: a strip is not a product photo, and at the
#: analysis resolution (long side 1024 px) its short side would be too thin for SSIM's window.
MAX_ASPECT = 20

#: Decoded bytes per pixel that the default decode budget allows at the pixel cap: 8-bit RGB.
DECODED_BYTES_PER_PIXEL = 3

_REDUCE_FACTORS = (1, 2, 4, 8)


def read_image_size(
    source: str | os.PathLike[str] | bytes, *, name: str | None = None
) -> tuple[int, int]:
    """Return the oriented ``(width, height)`` of an image without decoding its pixels.

    Parameters
    ----------
    source : str, os.PathLike or bytes
        A path to the file, or its contents.
    name : str, optional
        Name used in error messages; defaults to the path, or ``"<image bytes>"`` for bytes.

    Returns
    -------
    tuple of int
        ``(width, height)`` after the EXIF orientation is applied, i.e. the shape of
        :func:`load_image`'s result at ``reduce=1`` is ``(height, width, 3)``.

    Raises
    ------
    ImageDecodeError
        If the file is missing, empty, not a supported format, its header is damaged, or it
        claims more pixels than Pillow's decompression-bomb guard allows (2 x
        ``PIL.Image.MAX_IMAGE_PIXELS``).
    """
    data, label = read_source(source, name)
    header, _ = read_header(data, label)
    return header.oriented_size


def check_image(
    source: str | os.PathLike[str] | bytes,
    *,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_decoded_bytes: int | None = None,
) -> tuple[str, tuple[int, int]]:
    """Check an image as :func:`load_image` would, without decoding a pixel.

    Runs every check that needs no pixel: the format, the header, the size limits
    (``max_pixels``, ``max_decoded_bytes``, :data:`MIN_SIDE`, :data:`MAX_ASPECT`) and the
    container walk that finds truncation (and, for PNG, damage its checksums show). Damage
    that only decoding finds (a zlib or entropy-coded stream that is short or broken under a
    valid checksum) is not found.

    Returns
    -------
    tuple
        ``(format, (width, height))``: the sniffed format name and the oriented size.

    Raises
    ------
    ImageDecodeError
        As :func:`load_image`, for every problem found without decoding.
    """
    max_decoded_bytes = _limits(max_pixels, max_decoded_bytes)
    data, label = read_source(source, name)
    header, _ = _checked_header(data, label, max_pixels, max_decoded_bytes)
    if header.format == "png":
        check_png_data(data, label, inflate=False)
    return header.format, header.oriented_size


def load_image(
    source: str | os.PathLike[str] | bytes,
    *,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_decoded_bytes: int | None = None,
    reduce: int = 1,
) -> np.ndarray:
    """Decode an image file into an oriented RGB uint8 array.

    Parameters
    ----------
    source : str, os.PathLike or bytes
        A path to the file, or its contents. The format is sniffed from the bytes.
    name : str, optional
        Name used in error messages; defaults to the path, or ``"<image bytes>"`` for bytes
        (pass the upload's file name so the user can tell which photo failed).
    max_pixels : int, optional
        Largest accepted ``width * height`` as stored in the header, checked before any pixel is
        decoded so a decompression bomb cannot exhaust memory. The default,
        :data:`DEFAULT_MAX_PIXELS`, admits 48 MP and 50 MP phone sensors with room to spare.
    max_decoded_bytes : int, optional
        Largest accepted ``width * height * bytes per pixel`` of the decoder's output (samples
        per pixel times bytes per sample, read from the header), also checked before decoding:
        the decode's time and memory grow with it, so a 16-bit RGBA PNG (8 bytes per pixel)
        costs nearly three times an 8-bit RGB photo of the same size. Default:
        :data:`DECODED_BYTES_PER_PIXEL` times ``max_pixels``, i.e. 8-bit RGB at the pixel cap.
    reduce : {1, 2, 4, 8}, optional
        Decode at ``1/reduce`` of the size; each side becomes ``ceil(side / reduce)``.

    Returns
    -------
    numpy.ndarray
        C-contiguous, writable ``uint8`` array of shape ``(H, W, 3)`` in RGB order, with the
        EXIF orientation applied.

    Raises
    ------
    ImageDecodeError
        If the file is missing or a directory, empty, not a supported format, truncated,
        corrupt, larger than ``max_pixels`` or ``max_decoded_bytes``, or smaller than
        :data:`MIN_SIDE` on either side.
    ValueError
        If ``reduce`` or ``max_pixels`` is invalid (a programming error, not a bad file).

    Notes
    -----
    - JPEG is decoded by OpenCV's libjpeg-turbo; with ``reduce > 1`` it scales in the DCT domain,
      which takes about half the time of a full decode. Other formats are decoded in full and
      shrunk with area interpolation.
    - 16-bit images are scaled to 8 bits with rounding (``v * 255 / 65535``; Pillow keeps the
      high byte of 16-bit RGB TIFF, which is within 1 of that), greyscale is
      repeated into three channels, alpha is dropped (not composited), and palette, CMYK,
      grey+alpha and similar modes are converted to RGB.
    - HEIF transforms (``irot``/``imir``) are applied by libheif; for AVIF Pillow reports them as
      the EXIF orientation, which is applied here like for every other format.
    - A PNG ``eXIf`` chunk placed after the image data is not read (the PNG specification puts
      it before), because reading it would require decoding the image twice.
    - A JPEG whose entropy-coded data is damaged but complete may decode with visible artefacts
      and no error: libjpeg only warns about it.
    - The :data:`MIN_SIDE` check applies to the stored image, not to the reduced result.
    """
    if reduce not in _REDUCE_FACTORS:
        raise ValueError(f"reduce must be one of {_REDUCE_FACTORS}, got {reduce!r}")
    max_decoded_bytes = _limits(max_pixels, max_decoded_bytes)

    data, label = read_source(source, name)
    header, pil_image = _checked_header(data, label, max_pixels, max_decoded_bytes)
    orientation = header.orientation
    if header.format == "jpeg":
        rgb = decode_jpeg(data, reduce, label)
    else:
        if header.format == "png":
            rgb = decode_png(data, label)
        elif header.format == "webp":
            rgb = decode_webp(data, label)
        else:
            rgb, orientation = decode_with_pil(pil_image, header.format, label, len(data))
        if reduce > 1:
            height, width = rgb.shape[:2]
            size = (math.ceil(width / reduce), math.ceil(height / reduce))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    rgb = apply_orientation(rgb, orientation)

    width, height = header.oriented_size
    expected = (math.ceil(height / reduce), math.ceil(width / reduce))
    if rgb.shape[:2] != expected:
        # Would mean the decoder disagrees with the header; never return a surprising size.
        raise ImageDecodeError(
            label,
            f"the decoded image is {rgb.shape[1]} x {rgb.shape[0]} pixels but the header says "
            f"{expected[1]} x {expected[0]}",
            REEXPORT,
        )
    return np.ascontiguousarray(rgb)


def _limits(max_pixels: int, max_decoded_bytes: int | None) -> int:
    if max_pixels < MIN_SIDE * MIN_SIDE:
        raise ValueError(f"max_pixels must be at least {MIN_SIDE * MIN_SIDE}, got {max_pixels!r}")
    if max_decoded_bytes is None:
        return DECODED_BYTES_PER_PIXEL * max_pixels
    if max_decoded_bytes < 1:
        raise ValueError(f"max_decoded_bytes must be positive, got {max_decoded_bytes!r}")
    return max_decoded_bytes


def _megabytes(n: int) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 10**7 else f"{n / 1e6:.2g} MB"


def _checked_header(data: bytes, label: str, max_pixels: int, max_decoded_bytes: int):
    """The header, once every limit that needs no pixel has passed (the checks
    :func:`load_image` runs before decoding, and :func:`check_image` runs alone)."""
    header, pil_image = read_header(data, label)

    pixels = header.width * header.height
    if pixels > max_pixels:
        width, height = header.oriented_size
        raise ImageDecodeError(
            label,
            f"the image is {width:,} x {height:,} pixels ({pixels:,} pixels), "
            f"more than the limit of {max_pixels:,}",
            "downscale the photo before uploading, or raise max_pixels if it is genuine",
        )
    if min(header.width, header.height) < MIN_SIDE:
        width, height = header.oriented_size
        raise ImageDecodeError(
            label,
            f"the image is {width} x {height} pixels, too small to inspect "
            f"(at least {MIN_SIDE} x {MIN_SIDE} needed)",
            "upload the full-resolution photo, not a thumbnail",
        )
    if max(header.width, header.height) > MAX_ASPECT * min(header.width, header.height):
        width, height = header.oriented_size
        raise ImageDecodeError(
            label,
            f"the image is {width} x {height} pixels, a strip rather than a product photo "
            f"(longer than {MAX_ASPECT}:1)",
            "photograph the whole product, or crop less",
        )

    decoded_bytes = pixels * header.bytes_per_pixel
    if decoded_bytes > max_decoded_bytes:
        width, height = header.oriented_size
        raise ImageDecodeError(
            label,
            f"decoding it takes {_megabytes(decoded_bytes)} ({width:,} x {height:,} pixels at "
            f"{header.bytes_per_pixel} bytes each), more than the limit of "
            f"{_megabytes(max_decoded_bytes)}",
            "save it with 8 bits per channel and no alpha (JPEG, or an 8-bit RGB PNG), or "
            "downscale it",
        )
    check_structure(data, header.format, label)
    return header, pil_image
