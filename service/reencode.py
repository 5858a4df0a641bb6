"""Stored photos as they are served back: decoded and re-encoded, never the uploaded bytes.

An uploaded file is kept byte for byte (its SHA-256 names it: evidence must not be altered), but
what the API hands out is a fresh encoding of its pixels. So whatever rode along in the upload
(EXIF with GPS positions and serial numbers, ICC or XMP blocks, a polyglot payload after the
image data, a crafted chunk aimed at a viewer's decoder) never reaches the next person's
browser; and the pixels are served as displayed, EXIF orientation applied, like every
coordinate in the reports.

Re-encoded on every request rather than cached: photos are fetched rarely (an audit, a
dispute), so caching would need a second file per photo and a table saying which file it is
(a migration) to save ~0.1-0.3 s on a request that is seldom made. The answers carry
``Cache-Control: immutable``, so a browser asks once.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

__all__ = ["reencoded_photo"]

JPEG_QUALITY = 95
"""Lossy originals are served as JPEG at this quality: re-encoding at q95 adds a Delta-E well
below what the pipeline reports, and keeps a 12 MP photo near its uploaded size."""

_LOSSLESS_FORMATS = frozenset({"png", "tiff"})
# PNG at zlib level 1: photos are served rarely, but a 12 MP PNG at OpenCV's default level 3
# takes several times longer to encode for a few per cent fewer bytes.
_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1]


def reencoded_photo(path: str | os.PathLike[str], stored_format: str) -> tuple[bytes, str]:
    """The photo at `path` decoded (orientation applied) and encoded anew; (bytes, media type).

    Lossless originals (PNG, TIFF) come back as PNG, the others (JPEG, WebP, HEIF, AVIF) as
    JPEG at :data:`JPEG_QUALITY`: never lossier than what was uploaded, in a format every
    browser shows. No metadata is written.
    """
    from vision.decode import load_image

    # Accepted when it was uploaded: a pixel cap lowered since must not make it unreadable.
    rgb = load_image(path, max_pixels=10**12)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    if stored_format in _LOSSLESS_FORMATS:
        ok, buffer = cv2.imencode(".png", bgr, _PNG_PARAMS)
        media_type = "image/png"
    else:
        ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        media_type = "image/jpeg"
    if not ok:
        raise RuntimeError(f"OpenCV could not encode the photo as {media_type}")
    return buffer.tobytes(), media_type
