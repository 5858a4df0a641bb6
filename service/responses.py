"""HTTP answers that the API and the web pages share."""

from __future__ import annotations

from fastapi.responses import FileResponse

__all__ = ["IMMUTABLE", "stored_png"]

IMMUTABLE = {"Cache-Control": "private, max-age=31536000, immutable"}
"""Headers for content addressed by its SHA-256: it never changes, so browsers keep it."""


def stored_png(service, sha256: str) -> FileResponse:  # service: service.operations.Service
    """A PNG the service rendered and stored (never an upload): served as it is, cached."""
    return FileResponse(service.blobs.path(sha256), media_type="image/png", headers=IMMUTABLE)
