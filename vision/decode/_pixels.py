"""The per-format pixel decoders: JPEG and PNG through OpenCV, the other formats through
Pillow; every result 8-bit RGB, and the EXIF orientation applied last."""

import cv2
import numpy as np
from PIL import Image

from vision.decode._errors import ImageDecodeError, corrupt, pil_error
from vision.decode._header import read_orientation
from vision.decode._structure import check_png_data

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



def decode_jpeg(data: bytes, reduce: int, label: str) -> np.ndarray:
    try:
        rgb = cv2.imdecode(np.frombuffer(data, np.uint8), _CV2_JPEG_FLAGS[reduce])
    except cv2.error as error:
        raise corrupt(label, "jpeg", str(error).strip().splitlines()[-1]) from None
    if rgb is None:
        raise corrupt(label, "jpeg")
    if rgb.dtype != np.uint8:  # 12-bit JPEG
        rgb = _to_uint8(rgb, label)
    return rgb


def decode_webp(data: bytes, label: str) -> np.ndarray:
    """WebP through OpenCV's libwebp (the library Pillow uses too, same pixels), alpha dropped.

    Pillow holds a decoded WebP three times over (its decoder's buffer, its image at 4 bytes
    per pixel, the array's copy): 1.4 GB of peak memory for an 80 MP photo, which a WebP of one
    colour makes from a few dozen bytes; OpenCV peaks at 0.46 GB.
    """
    try:
        rgb = cv2.imdecode(np.frombuffer(data, np.uint8),
                           cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error as error:
        raise corrupt(label, "webp", str(error).strip().splitlines()[-1]) from None
    if rgb is None:
        raise corrupt(label, "webp")
    return rgb


def decode_png(data: bytes, label: str) -> np.ndarray:
    check_png_data(data, label)
    # IMREAD_UNCHANGED keeps 16 bits (IMREAD_COLOR would truncate them) and ignores orientation.
    try:
        raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as error:
        raise corrupt(label, "png", str(error).strip().splitlines()[-1]) from None
    if raw is None:
        raise corrupt(label, "png", "bad checksum or damaged compressed data")
    raw = _to_uint8(raw, label)
    if raw.ndim == 2:
        return cv2.cvtColor(raw, cv2.COLOR_GRAY2RGB)
    channels = raw.shape[2]
    if channels in (1, 2):  # grey, grey + alpha
        return cv2.cvtColor(np.ascontiguousarray(raw[:, :, 0]), cv2.COLOR_GRAY2RGB)
    if channels == 3:
        return cv2.cvtColor(raw, cv2.COLOR_BGR2RGB)
    return cv2.cvtColor(raw, cv2.COLOR_BGRA2RGB)


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


def decode_with_pil(image: Image.Image, fmt: str, label: str, size: int) -> tuple[np.ndarray, int]:
    """Decode through Pillow; return the RGB pixels and the orientation still to be applied.

    Some decoders orient while loading (libheif applies HEIF irot/imir, recent Pillow applies
    the TIFF orientation tag) and then remove the tag, so the tag is read again after loading.
    """
    try:
        image.load()
        orientation = read_orientation(image, fmt)
        return _pil_pixels(image, label), orientation
    except ImageDecodeError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise pil_error(label, fmt, size, error) from None


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


def apply_orientation(rgb: np.ndarray, orientation: int) -> np.ndarray:
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
