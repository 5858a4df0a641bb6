"""Reading the input and its header: the file or bytes, the sniffed format, the size and the
EXIF orientation as Pillow parses them without decoding a pixel."""

import io
import os
import re
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from vision.decode._errors import REEXPORT, ImageDecodeError, pil_error
from vision.decode._sniff import describe_unsupported, sniff_format
from vision.decode._structure import check_structure

_SUPPORTED_TEXT = "sealcheck reads JPEG, PNG, WebP, TIFF, HEIF/HEIC and AVIF"
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

_heif_registered = False


@dataclass(frozen=True)
class _Header:
    """What the header says, before any pixel is decoded; sizes are as stored (not oriented)."""

    format: str
    width: int
    height: int
    orientation: int
    bytes_per_pixel: int  # of the decoder's full-size output, before the 8-bit RGB conversion

    @property
    def oriented_size(self) -> tuple[int, int]:
        # Orientations 5-8 swap the axes.
        if self.orientation >= 5:
            return self.height, self.width
        return self.width, self.height


def read_source(source: str | os.PathLike[str] | bytes, name: str | None) -> tuple[bytes, str]:
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


def read_header(data: bytes, label: str) -> tuple[_Header, Image.Image]:
    """Sniff the format and parse the header with Pillow, which decodes no pixels."""
    if not data:
        raise ImageDecodeError(label, "the file is empty (0 bytes)", REEXPORT)
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageDecodeError(
            label, describe_unsupported(data), f"{_SUPPORTED_TEXT}; upload the original photo"
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
        check_structure(data, fmt, label)
        raise pil_error(label, fmt, len(data), error) from None

    width, height = image.size
    if fmt == "tiff":
        # Pillow >= 11 reports TIFF sizes already oriented; the tags hold the stored size.
        width = int(image.tag_v2.get(256, width))
        height = int(image.tag_v2.get(257, height))
    orientation = read_orientation(image, fmt)
    return _Header(fmt, width, height, orientation, _bytes_per_pixel(data, fmt, image)), image


# PNG colour types -> samples per pixel (palette PNGs decode to three samples).
_PNG_SAMPLES = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}


def _bytes_per_pixel(data: bytes, fmt: str, image: Image.Image) -> int:
    """Bytes per pixel of the decoded full-size image, from the header alone: samples per pixel
    times bytes per sample, as the file stores them (a 16-bit RGBA PNG decodes to 8)."""
    if fmt == "png":
        bit_depth, colour_type = data[24], data[25]
        return _PNG_SAMPLES.get(colour_type, 4) * (2 if bit_depth > 8 else 1)
    if fmt == "tiff":
        samples = int(image.tag_v2.get(277, 1) or 1)
        bits = image.tag_v2.get(258, (8,))
        bits = max(bits) if isinstance(bits, tuple | list) and bits else int(bits or 8)
        return max(1, samples) * max(1, -(-int(bits) // 8))
    return len(image.getbands())


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


def read_orientation(image: Image.Image, fmt: str) -> int:
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
