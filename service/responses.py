"""HTTP answers that the API and the web pages share."""

from __future__ import annotations

from fastapi.responses import FileResponse

from service.reencode import cached_reencoding, reencoded_file

__all__ = ["IMMUTABLE", "reencoded_photo", "stored_png"]

IMMUTABLE = {"Cache-Control": "private, max-age=31536000, immutable"}
"""Headers for content addressed by its SHA-256: it never changes, so browsers keep it."""


def stored_png(service, sha256: str) -> FileResponse:  # service: service.operations.Service
    """A PNG the service rendered and stored (never an upload): served as it is, cached."""
    return FileResponse(service.blobs.path(sha256), media_type="image/png", headers=IMMUTABLE)


async def reencoded_photo(service, sha256: str, stored_format: str) -> FileResponse:
    """A stored photo as it is served (re-encoded, service/reencode.py says why), sent from its
    file on disk; the first download makes the file, through the admission budget (Busy when
    it is full)."""
    found = cached_reencoding(service.blobs, sha256, stored_format)
    if found is None:
        found = await service.pool.run(reencoded_file, service.blobs, sha256, stored_format)
    path, media_type = found
    return FileResponse(path, media_type=media_type, headers=IMMUTABLE)
