"""Cursors of the lists (API and pages): an opaque token for "the rows after this one"."""

from __future__ import annotations

import base64
import binascii

from service.errors import BadInput

__all__ = ["decode_cursor", "encode_cursor"]

# Row positions are 32-bit integer columns (service.db): beyond them PostgreSQL refuses the
# parameter and SQLite's driver overflows past 64 bits. No cursor handed out is larger.
_MAX_SEQ = 2**31 - 1
_MAX_CURSOR_CHARS = 64


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The row position a cursor stands for; BadInput (malformed) for anything this service
    did not hand out."""
    if cursor is None:
        return None
    if len(cursor) <= _MAX_CURSOR_CHARS:  # ours are about 20 characters
        try:
            text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            kind, _, value = text.partition(":")
            if kind == "seq" and value.isascii() and value.isdigit() and int(value) <= _MAX_SEQ:
                return int(value)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            pass
    raise BadInput("cursor is not one this API returned; pass next_cursor from the previous "
                   "page unchanged, or leave it out to start at the newest", "malformed")
