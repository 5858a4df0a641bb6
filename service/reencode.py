"""Stored photos as they are served back: decoded and re-encoded, never the uploaded bytes.

An uploaded file is kept byte for byte (its SHA-256 names it: evidence must not be altered), but
what the API hands out is a fresh encoding of its pixels. So whatever rode along in the upload
(EXIF with GPS positions and serial numbers, ICC or XMP blocks, a polyglot payload after the
image data, a crafted chunk aimed at a viewer's decoder) never reaches the next person's
browser; and the pixels are served as displayed, EXIF orientation applied, like every
coordinate in the reports.

The re-encoding is a file made once, on the photo's first download, beside the original in
the store's derived files (``<sha256>.display.jpg`` or ``.display.png``, written atomically),
and sent from disk from then on. Re-encoding on every request let a few concurrent downloads
of an 80 MP photo (a 3 KB lossless WebP is enough) hold gigabytes: decoding one takes ~0.8 GB
and seconds of CPU. It is not made at upload: an inspection's extra photos are never decoded
(service.operations.decode_uploads), and most photos are never downloaded (an audit, a
dispute). Making it passes the admission budget (service.work); ``sealcheck gc`` removes it
with its original. The answers carry ``Cache-Control: immutable``, so a browser asks once.
"""

from __future__ import annotations

from pathlib import Path

import cv2

from service.errors import BadInput
from service.storage import BlobStore
from service.work import KeyedOnce

__all__ = ["JPEG_QUALITY", "cached_reencoding", "reencoded_file"]

JPEG_QUALITY = 95
"""Lossy originals are served as JPEG at this quality: re-encoding at q95 adds a Delta-E well
below what the pipeline reports, and keeps a 12 MP photo near its uploaded size."""

_LOSSLESS_FORMATS = frozenset({"png", "tiff"})
# PNG at zlib level 1: a 12 MP PNG at OpenCV's default level 3 takes several times longer to
# encode for a few per cent fewer bytes.
_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1]
_JPEG_PARAMS = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]

# Concurrent first downloads of one photo make its file once; the others wait for it.
_making = KeyedOnce()


def _kind(stored_format: str) -> tuple[str, str]:
    """(derived file kind, media type) of a stored format's re-encoding."""
    if stored_format in _LOSSLESS_FORMATS:
        return "display.png", "image/png"
    return "display.jpg", "image/jpeg"


def cached_reencoding(blobs: BlobStore, sha256: str, stored_format: str
                      ) -> tuple[Path, str] | None:
    """(path, media type) of the photo's re-encoding when it is on disk already, else None."""
    kind, media_type = _kind(stored_format)
    path = blobs.derived_path(sha256, kind)
    return (path, media_type) if path.is_file() else None


def reencoded_file(blobs: BlobStore, sha256: str, stored_format: str) -> tuple[Path, str]:
    """(path, media type) of the stored photo `sha256` decoded (orientation applied) and
    encoded anew, made now if it is not on disk yet.

    Lossless originals (PNG, TIFF) come back as PNG, the others (JPEG, WebP, HEIF, AVIF) as
    JPEG at :data:`JPEG_QUALITY`: never lossier than what was uploaded, in a format every
    browser shows. No metadata is written. Raises BadInput (invalid) when the stored photo does
    not decode: photos a request did not compare were only checked from their headers.
    """
    kind, media_type = _kind(stored_format)

    def make() -> Path:
        from vision.decode import ImageDecodeError, load_image

        try:
            # Accepted when it was uploaded: a pixel cap lowered since must not refuse it.
            rgb = load_image(blobs.path(sha256), name=f"stored photo {sha256[:12]}",
                             max_pixels=10**12)
        except ImageDecodeError as exc:
            raise BadInput(f"{exc.problem}: the photo is kept as it was uploaded (sha256 "
                           f"{sha256}) but cannot be shown") from None
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR, dst=rgb)  # in place: no second copy
        ok, buffer = cv2.imencode(".png" if kind.endswith("png") else ".jpg", bgr,
                                  _PNG_PARAMS if kind.endswith("png") else _JPEG_PARAMS)
        del rgb, bgr
        if not ok:
            raise RuntimeError(f"OpenCV could not encode the photo as {media_type}")
        return blobs.put_derived(sha256, kind, buffer.data)

    def on_disk() -> Path | None:
        found = cached_reencoding(blobs, sha256, stored_format)
        return None if found is None else found[0]

    path, _ = _making.get_or_build(sha256, on_disk, make)
    return path, media_type
