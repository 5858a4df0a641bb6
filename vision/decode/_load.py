"""Load phone photos as oriented RGB arrays; refuse bad input with a message a person can act on.

This is the first stage of the pipeline (decode -> calibrate -> register -> measure -> report),
so every later coordinate refers to the array returned here: EXIF orientation is already applied.

Supported formats, recognised from the leading bytes only (never the file name): JPEG, PNG, WebP,
TIFF, HEIF/HEIC (through pillow-heif) and AVIF (through Pillow's own AVIF plugin, when Pillow was
built with libavif). GIF, BMP, SVG, PDF and HTML are refused: GIF and BMP are not what phones
produce and GIF's 256-colour palette destroys the colour detail that sealcheck measures.

Decoders: JPEG and PNG go through OpenCV (libjpeg-turbo with SIMD, DCT-domain reduced decode;
libpng with CRC checks and true 16-bit output), the other formats through Pillow. Pillow also
reads every header, because it parses the size and the EXIF block without decoding pixels, which
lets the pixel cap run before any pixel memory is allocated.

Not done here: ICC profiles and PNG gamma are ignored (colour correction belongs to
``calibration/``), and alpha is dropped rather than composited, since phone photos are opaque and
any compositing background would be an invented colour.
"""

import io
import math
import os
import re
import zlib
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = [
    "MAX_ASPECT",
    "MIN_SIDE",
    "SUPPORTED_FORMATS",
    "ImageDecodeError",
    "load_image",
    "read_image_size",
    "sniff_format",
]

#: Format names returned by :func:`sniff_format`, all of which :func:`load_image` decodes.
SUPPORTED_FORMATS = ("jpeg", "png", "webp", "tiff", "heif", "avif")

#: Smallest width and height accepted; below this the structure and colour windows do not fit.
MIN_SIDE = 16

#: Largest ratio of the long to the short side: a strip is not a product photo, and at the
#: analysis resolution (long side 1024 px) its short side would be too thin for SSIM's window.
MAX_ASPECT = 20

_SUPPORTED_TEXT = "sealcheck reads JPEG, PNG, WebP, TIFF, HEIF/HEIC and AVIF"
_REEXPORT = "re-export or re-upload the photo"
_REDUCE_FACTORS = (1, 2, 4, 8)
_EXIF_ORIENTATION = 0x0112
_BYTES_LABEL = "<image bytes>"

# Pillow plugin names, passed as ``formats=`` so Pillow cannot second-guess the sniffed format.
_PIL_FORMAT = {
    "jpeg": "JPEG",
    "png": "PNG",
    "webp": "WEBP",
    "tiff": "TIFF",
    "heif": "HEIF",
    "avif": "AVIF",
}

# IMREAD_REDUCED_COLOR_n includes the IMREAD_COLOR (BGR) bit, which OpenCV 5 refuses together with
# IMREAD_COLOR_RGB, so the reduced-grayscale bit carries the scale and COLOR_RGB the colour order.
# IGNORE_ORIENTATION because OpenCV's EXIF handling covers only some formats and flags; orientation
# is applied once, here, for every format alike.
_CV2_JPEG_FLAGS = {
    1: cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION,
    2: cv2.IMREAD_REDUCED_GRAYSCALE_2 | cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION,
    4: cv2.IMREAD_REDUCED_GRAYSCALE_4 | cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION,
    8: cv2.IMREAD_REDUCED_GRAYSCALE_8 | cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION,
}

_HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
)
_AVIF_BRANDS = frozenset({b"avif", b"avis"})

_heif_registered = False


class ImageDecodeError(ValueError):
    """An image could not be loaded; ``str()`` is one line: name, problem, and how to fix it.

    Parameters
    ----------
    name : str
        The file path, or the name given by the caller for in-memory data.
    problem : str
        What is wrong with the input.
    fix : str
        What the user can do about it.
    """

    def __init__(self, name: str, problem: str, fix: str) -> None:
        # All three go to ``args`` so the exception survives pickling (batch workers).
        super().__init__(name, problem, fix)
        self.name = name
        self.problem = problem
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.name}: {self.problem}; {self.fix}"


@dataclass(frozen=True)
class _Header:
    """What the header says, before any pixel is decoded; sizes are as stored (not oriented)."""

    format: str
    width: int
    height: int
    orientation: int

    @property
    def oriented_size(self) -> tuple[int, int]:
        # Orientations 5-8 swap the axes.
        if self.orientation >= 5:
            return self.height, self.width
        return self.width, self.height


def sniff_format(data: bytes) -> str | None:
    """Identify the image format from its leading bytes.

    Parameters
    ----------
    data : bytes
        The file contents, or at least its first 64 bytes.

    Returns
    -------
    str or None
        One of :data:`SUPPORTED_FORMATS` ('jpeg', 'png', 'webp', 'tiff', 'heif', 'avif'), or
        None when the bytes are not one of them (including GIF, BMP, SVG and HTML).

    Notes
    -----
    The file name is never consulted: phones, chat apps and browsers routinely save HEIC or PNG
    data under a ``.jpg`` name. HEIF and AVIF share the ISO base media file format; they are told
    apart by the ``ftyp`` brands, the major brand first, then the compatible brands.
    """
    head = bytes(data[:64])
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    # Classic TIFF (42) and BigTIFF (43), in both byte orders.
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[4:8] == b"ftyp":
        return _sniff_isobmff(data)
    return None


def _sniff_isobmff(data: bytes) -> str | None:
    box_size = int.from_bytes(data[0:4], "big")
    major = bytes(data[8:12])
    # Compatible brands follow the major brand and the 4-byte minor version, up to the box end.
    end = min(box_size if box_size >= 16 else 16, len(data), 4096)
    compatible = {bytes(data[i : i + 4]) for i in range(16, end - 3, 4)}
    if major in _AVIF_BRANDS:
        return "avif"
    if major in _HEIF_BRANDS - {b"mif1", b"msf1"}:
        return "heif"
    # A generic 'mif1' major brand says only "image in a HEIF container"; the codec-specific
    # compatible brand decides which decoder can read it.
    if compatible & (_HEIF_BRANDS - {b"mif1", b"msf1"}):
        return "heif"
    if compatible & _AVIF_BRANDS:
        return "avif"
    if major in _HEIF_BRANDS or compatible & _HEIF_BRANDS:
        return "heif"
    return None


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
    data, label = _read_source(source, name)
    header, _ = _read_header(data, label)
    return header.oriented_size


def load_image(
    source: str | os.PathLike[str] | bytes,
    *,
    name: str | None = None,
    max_pixels: int = 80_000_000,
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
        decoded so a decompression bomb cannot exhaust memory. The default admits 48 MP and
        50 MP phone sensors with room to spare.
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
        corrupt, larger than ``max_pixels``, or smaller than :data:`MIN_SIDE` on either side.
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
    if max_pixels < MIN_SIDE * MIN_SIDE:
        raise ValueError(f"max_pixels must be at least {MIN_SIDE * MIN_SIDE}, got {max_pixels!r}")

    data, label = _read_source(source, name)
    header, pil_image = _read_header(data, label)

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

    _check_structure(data, header.format, label)
    orientation = header.orientation
    if header.format == "jpeg":
        rgb = _decode_jpeg(data, reduce, label)
    else:
        if header.format == "png":
            rgb = _decode_png(data, label)
        else:
            rgb, orientation = _decode_with_pil(pil_image, header.format, label, len(data))
        if reduce > 1:
            height, width = rgb.shape[:2]
            size = (math.ceil(width / reduce), math.ceil(height / reduce))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    rgb = _apply_orientation(rgb, orientation)

    width, height = header.oriented_size
    expected = (math.ceil(height / reduce), math.ceil(width / reduce))
    if rgb.shape[:2] != expected:
        # Would mean the decoder disagrees with the header; never return a surprising size.
        raise ImageDecodeError(
            label,
            f"the decoded image is {rgb.shape[1]} x {rgb.shape[0]} pixels but the header says "
            f"{expected[1]} x {expected[0]}",
            _REEXPORT,
        )
    return np.ascontiguousarray(rgb)


def _read_source(source: str | os.PathLike[str] | bytes, name: str | None) -> tuple[bytes, str]:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source), name or _BYTES_LABEL
    if not isinstance(source, str | os.PathLike):
        raise TypeError(
            f"source must be a path or bytes, got {type(source).__name__}; "
            "pass the file path or the file's contents"
        )
    path = os.fspath(source)
    label = name or os.fsdecode(path)
    # Explicit checks first: on Windows opening a directory raises PermissionError instead.
    if os.path.isdir(path):
        raise ImageDecodeError(label, "this is a directory, not an image file", "pass a file")
    try:
        with open(path, "rb") as file:
            return file.read(), label
    except FileNotFoundError:
        raise ImageDecodeError(label, "no such file", "check the path and the name") from None
    except PermissionError:
        raise ImageDecodeError(
            label, "permission denied when opening the file", "check the file's permissions"
        ) from None
    except OSError as error:
        raise ImageDecodeError(
            label, f"the file could not be read ({error.strerror or error})", "check the file"
        ) from None


def _read_header(data: bytes, label: str) -> tuple[_Header, Image.Image]:
    """Sniff the format and parse the header with Pillow, which decodes no pixels."""
    if not data:
        raise ImageDecodeError(label, "the file is empty (0 bytes)", _REEXPORT)
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageDecodeError(
            label, _describe_unsupported(data), f"{_SUPPORTED_TEXT}; upload the original photo"
        )
    if fmt == "heif":
        _register_heif(label)
    elif fmt == "avif":
        _require_avif(label)

    try:
        image = Image.open(io.BytesIO(data), formats=[_PIL_FORMAT[fmt]])
    except Image.DecompressionBombError as error:
        # Pillow's own guard (2 x Image.MAX_IMAGE_PIXELS) fires inside open(), before ours.
        found = re.search(r"\((\d+) pixels\)", str(error))
        claimed = f"{int(found.group(1)):,} pixels" if found else "an enormous pixel count"
        raise ImageDecodeError(
            label,
            f"the image header claims {claimed}, far beyond any photo (decompression bomb?)",
            "upload the original photo",
        ) from None
    except (UnidentifiedImageError, SyntaxError, OSError, ValueError, EOFError) as error:
        # A header cut short is the commonest cause; say "truncated" when the structure shows it.
        _check_structure(data, fmt, label)
        raise _pil_error(label, fmt, len(data), error) from None

    width, height = image.size
    if fmt == "tiff":
        # Pillow >= 11 reports TIFF sizes already oriented; the tags hold the stored size.
        width = int(image.tag_v2.get(256, width))
        height = int(image.tag_v2.get(257, height))
    orientation = _read_orientation(image, fmt)
    return _Header(fmt, width, height, orientation), image


def _describe_unsupported(data: bytes) -> str:
    head = bytes(data[:512])
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"GIF87a", b"GIF89a")):
        return (
            "GIF is not supported (its 256-colour palette loses the colour detail "
            "sealcheck measures)"
        )
    if head.startswith(b"BM"):
        return "BMP is not supported"
    if head.startswith(b"%PDF"):
        return "this is a PDF document, not an image"
    if b"<svg" in text:
        return "this is an SVG drawing (vector graphics), not a photo"
    if text.startswith((b"<!doctype html", b"<html")) or b"<html" in text:
        return "this is an HTML page, not an image (often an error page saved instead of the photo)"
    if head[4:8] == b"ftyp":
        brand = head[8:12].decode("ascii", "replace")
        return f"this ISO media file (brand '{brand}') is a video or an unsupported image type"
    if text.startswith((b"<?xml", b"{", b"[")):
        return "this is a text document, not an image"
    return f"the data is not a recognised image format (starts with {head[:8].hex(' ')})"


def _truncated(label: str, fmt: str, size: int) -> ImageDecodeError:
    return ImageDecodeError(
        label,
        f"the {fmt.upper()} data is truncated (file ends after {size:,} bytes)",
        _REEXPORT,
    )


def _corrupt(label: str, fmt: str, detail: str = "") -> ImageDecodeError:
    # Decoder messages can span lines or run long; the error must stay one readable line.
    detail = " ".join(detail.split())
    if len(detail) > 160:
        detail = detail[:157] + "..."
    detail = f" ({detail})" if detail else ""
    return ImageDecodeError(label, f"the {fmt.upper()} data is corrupt{detail}", _REEXPORT)


def _pil_error(label: str, fmt: str, size: int, error: BaseException) -> ImageDecodeError:
    message = " ".join(str(error).split())[:160]
    lowered = message.lower()
    if isinstance(error, EOFError) or "truncat" in lowered or "end of" in lowered:
        return _truncated(label, fmt, size)
    if isinstance(error, UnidentifiedImageError):
        # Pillow hides the plugin's reason; the sniffed signature was right, so the header is bad.
        return _corrupt(label, fmt, "its header could not be parsed")
    if "not supported" in lowered or "unsupported" in lowered:
        return ImageDecodeError(
            label,
            f"this {fmt.upper()} variant cannot be decoded ({message})",
            "re-export it as JPEG or PNG",
        )
    return _corrupt(label, fmt, message)


def _check_structure(data: bytes, fmt: str, label: str) -> None:
    """Cheap container checks that catch truncation before a decoder turns it into grey rows."""
    if fmt == "jpeg":
        _check_jpeg_structure(data, label)
    elif fmt == "png":
        _check_png_structure(data, label)
    elif fmt == "webp":
        _check_riff_length(data, label)
    elif fmt in ("heif", "avif"):
        _check_isobmff_boxes(data, fmt, label)


def _check_jpeg_structure(data: bytes, label: str) -> None:
    """Walk the marker segments to the first scan and require an EOI after it.

    libjpeg can fill the missing rows of a truncated file with grey and only warn, which would
    look like a defect; OpenCV 5 returns None instead, but the message should say "truncated".
    The EOI is searched after the first SOS, so an EXIF thumbnail's EOI does not count, and a
    trailer after the EOI (motion photos append a video) is allowed.
    """
    pos = 2
    size = len(data)
    while True:
        # Markers may be preceded by any number of 0xFF fill bytes.
        while pos < size and data[pos] == 0xFF:
            pos += 1
        if pos >= size:
            raise _truncated(label, "jpeg", size)
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            raise _corrupt(label, "jpeg", "it ends before any image data")
        if 0xD0 <= marker <= 0xD8 or marker == 0x01:
            continue  # standalone markers carry no length
        if pos + 2 > size:
            raise _truncated(label, "jpeg", size)
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 2:
            raise _corrupt(label, "jpeg", f"bad segment length {length}")
        pos += length
        if pos > size:
            raise _truncated(label, "jpeg", size)
        if marker == 0xDA:  # SOS: entropy-coded data follows
            break
    # 0xFF bytes in entropy-coded data are stuffed (FF 00), so FF D9 is a real marker.
    if data.find(b"\xff\xd9", pos) < 0:
        raise _truncated(label, "jpeg", size)


def _check_png_structure(data: bytes, label: str) -> None:
    """Walk the chunk lengths to IEND (CRCs are left to libpng, which checks them)."""
    pos = 8
    size = len(data)
    while True:
        if pos + 8 > size:
            raise _truncated(label, "png", size)
        length = int.from_bytes(data[pos : pos + 4], "big")
        chunk_type = data[pos + 4 : pos + 8]
        if length > 0x7FFFFFFF or not chunk_type.isalpha():
            raise _corrupt(label, "png", f"malformed chunk at byte {pos:,}")
        pos += 12 + length
        if pos > size:
            raise _truncated(label, "png", size)
        if chunk_type == b"IEND":
            return


def _check_riff_length(data: bytes, label: str) -> None:
    declared = int.from_bytes(data[4:8], "little") + 8
    if len(data) < declared:
        raise _truncated(label, "webp", len(data))


def _check_isobmff_boxes(data: bytes, fmt: str, label: str) -> None:
    """Walk the top-level boxes; a box reaching past the end means the file was cut short."""
    pos = 0
    size = len(data)
    while pos + 8 <= size:
        box_size = int.from_bytes(data[pos : pos + 4], "big")
        if box_size == 0:  # the box extends to the end of the file
            return
        if box_size == 1:  # a 64-bit size follows the type
            if pos + 16 > size:
                raise _truncated(label, fmt, size)
            box_size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        if box_size < 8:
            raise _corrupt(label, fmt, f"malformed box at byte {pos:,}")
        pos += box_size
    if pos != size:
        raise _truncated(label, fmt, size)


def _register_heif(label: str) -> None:
    # Deferred so that importing sealcheck does not pay for loading libheif.
    global _heif_registered
    if not _heif_registered:
        try:
            from pillow_heif import register_heif_opener
        except ImportError:
            raise ImageDecodeError(
                label,
                "HEIF/HEIC decoding needs the pillow-heif package, which is not installed",
                "run 'pip install pillow-heif' or upload the photo as JPEG",
            ) from None
        register_heif_opener()
        _heif_registered = True


def _require_avif(label: str) -> None:
    from PIL import features

    if not features.check("avif"):
        raise ImageDecodeError(
            label,
            "AVIF decoding is not available (this Pillow was built without libavif)",
            "upload the photo as JPEG or HEIC",
        )


def _read_orientation(image: Image.Image, fmt: str) -> int:
    try:
        if fmt == "png":
            # PngImageFile.getexif() decodes the whole image when no eXIf chunk was seen.
            raw = image.info.get("exif")
            if not raw:
                return 1
            exif = Image.Exif()
            exif.load(raw)
        else:
            exif = image.getexif()
        orientation = int(exif.get(_EXIF_ORIENTATION, 1))
    except Exception:
        # A damaged EXIF block must not make the photo unreadable; viewers show such photos
        # as stored, so do the same.
        return 1
    return orientation if 1 <= orientation <= 8 else 1


def _decode_jpeg(data: bytes, reduce: int, label: str) -> np.ndarray:
    try:
        rgb = cv2.imdecode(np.frombuffer(data, np.uint8), _CV2_JPEG_FLAGS[reduce])
    except cv2.error as error:
        raise _corrupt(label, "jpeg", str(error).strip().splitlines()[-1]) from None
    if rgb is None:
        raise _corrupt(label, "jpeg")
    if rgb.dtype != np.uint8:  # 12-bit JPEG
        rgb = _to_uint8(rgb, label)
    return rgb


def _decode_png(data: bytes, label: str) -> np.ndarray:
    _check_png_data(data, label)
    # IMREAD_UNCHANGED keeps 16 bits (IMREAD_COLOR would truncate them) and ignores orientation.
    try:
        raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as error:
        raise _corrupt(label, "png", str(error).strip().splitlines()[-1]) from None
    if raw is None:
        raise _corrupt(label, "png", "bad checksum or damaged compressed data")
    raw = _to_uint8(raw, label)
    if raw.ndim == 2:
        return cv2.cvtColor(raw, cv2.COLOR_GRAY2RGB)
    channels = raw.shape[2]
    if channels in (1, 2):  # grey, grey + alpha
        return cv2.cvtColor(np.ascontiguousarray(raw[:, :, 0]), cv2.COLOR_GRAY2RGB)
    if channels == 3:
        return cv2.cvtColor(raw, cv2.COLOR_BGR2RGB)
    return cv2.cvtColor(raw, cv2.COLOR_BGRA2RGB)


def _check_png_data(data: bytes, label: str) -> None:
    """Verify the critical chunks' CRCs and inflate the image data, discarding the output.

    libpng's default error handler, which OpenCV keeps, prints "libpng error: ..." to the
    process's stderr before giving up, and redirecting file descriptor 2 around the call is not
    thread-safe. So the damage libpng reports as an error (bad CRC in a critical chunk, a broken
    or short zlib stream) is found here first. The output is counted, not kept, so memory stays
    at one slice; this costs about as much as the inflate step of the decode itself.
    Expects :func:`_check_png_structure` to have passed (the chunk walk stays in bounds).
    """
    expected = _png_raw_size(data)
    inflater = zlib.decompressobj()
    produced = 0
    pos = 8
    while True:
        length = int.from_bytes(data[pos : pos + 4], "big")
        chunk_type = data[pos + 4 : pos + 8]
        end = pos + 8 + length
        critical = chunk_type[0:1].isupper()
        if critical:
            crc = zlib.crc32(memoryview(data)[pos + 4 : end])
            if crc != int.from_bytes(data[end : end + 4], "big"):
                kind = chunk_type.decode("ascii")
                raise _corrupt(label, "png", f"the checksum of its {kind} chunk does not match")
        if chunk_type == b"IDAT" and produced <= expected and not inflater.eof:
            produced = _inflate_counting(inflater, memoryview(data)[pos + 8 : end], produced,
                                         expected, label)
        if chunk_type == b"IEND":
            break
        pos = end + 4
    # More data than the rows need is only a warning for libpng; less is an error.
    if produced < expected:
        raise _corrupt(label, "png", "its compressed image data ends early")


def _inflate_counting(
    inflater: "zlib._Decompress", payload: memoryview, produced: int, expected: int, label: str
) -> int:
    step = 1 << 20
    for start in range(0, len(payload), step):
        pending = payload[start : start + step]
        while pending and not inflater.eof:
            try:
                produced += len(inflater.decompress(pending, step))
            except zlib.error as error:
                detail = str(error).split(": ", 1)[-1]  # "Error -3 while ...: <reason>"
                raise _corrupt(
                    label, "png", f"its compressed image data is damaged: {detail}"
                ) from None
            if produced > expected:
                return produced
            pending = inflater.unconsumed_tail
        if inflater.eof:
            break
    return produced


def _png_raw_size(data: bytes) -> int:
    """Bytes of filtered scanlines the IHDR promises (filter byte + packed samples per row)."""
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    bit_depth, color_type, interlace = data[24], data[25], data[28]
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(color_type, 1)
    bits = bit_depth * channels

    def rows(w: int, h: int) -> int:
        return 0 if w == 0 or h == 0 else h * (1 + (w * bits + 7) // 8)

    if interlace != 1:
        return rows(width, height)
    # Adam7: (x start, y start, x step, y step) of the seven passes.
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
              (1, 0, 2, 2), (0, 1, 1, 2))
    return sum(
        rows(max(0, -(-(width - x) // dx)), max(0, -(-(height - y) // dy)))
        for x, y, dx, dy in passes
    )


def _to_uint8(array: np.ndarray, label: str) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        # Scale, not truncate: 65535 -> 255 and 257 -> 1, rounded to nearest.
        return cv2.convertScaleAbs(array, alpha=255.0 / 65535.0)
    raise ImageDecodeError(
        label,
        f"{array.dtype} samples are not supported (only 8- and 16-bit images)",
        "export the image with 8 or 16 bits per channel",
    )


def _decode_with_pil(image: Image.Image, fmt: str, label: str, size: int) -> tuple[np.ndarray, int]:
    """Decode through Pillow; return the RGB pixels and the orientation still to be applied.

    Some decoders orient while loading (libheif applies HEIF irot/imir, recent Pillow applies
    the TIFF orientation tag) and then remove the tag, so the tag is read again after loading.
    """
    try:
        image.load()
        orientation = _read_orientation(image, fmt)
        return _pil_pixels(image, label), orientation
    except ImageDecodeError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise _pil_error(label, fmt, size, error) from None


def _pil_pixels(image: Image.Image, label: str) -> np.ndarray:
    mode = image.mode
    if mode.startswith("I;16"):
        grey = _to_uint8(np.array(image).astype(np.uint16, copy=False), label)
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
    if mode == "I":
        values = np.array(image)
        if values.min() < 0 or values.max() > 65535:
            raise ImageDecodeError(
                label,
                "32-bit integer samples are not supported",
                "export the image with 8 or 16 bits per channel",
            )
        grey = _to_uint8(values.astype(np.uint16), label)
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
    if mode == "F":
        raise ImageDecodeError(
            label,
            "floating-point samples are not supported (their range is undefined)",
            "export the image with 8 or 16 bits per channel",
        )
    if mode != "RGB":
        # Palette, CMYK, YCbCr, grey, grey + alpha, RGBA (alpha dropped), 1-bit.
        image = image.convert("RGB")
    return np.array(image)


def _apply_orientation(rgb: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels into display pixels for an EXIF orientation (TIFF 6.0 tag 274).

    Same result as ``PIL.ImageOps.exif_transpose``; OpenCV's flips and rotations are used
    because they are several times faster than copying numpy's strided views.
    """
    if orientation == 2:
        return cv2.flip(rgb, 1)
    if orientation == 3:
        return cv2.rotate(rgb, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(rgb, 0)
    if orientation == 5:
        return cv2.transpose(rgb)
    if orientation == 6:
        return cv2.rotate(rgb, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.rotate(cv2.transpose(rgb), cv2.ROTATE_180)
    if orientation == 8:
        return cv2.rotate(rgb, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return rgb
