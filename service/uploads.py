"""Multipart uploads read as they stream in, with the size cap applied per file on the way.

Starlette's own form parser limits text fields but not files, and would spool an oversized
photo to disk before anyone could refuse it; here a part that passes the cap, or one part too
many, stops the upload at once (BadInput, too large: 413). Parts are kept in memory: each is
at most ``max_file_bytes``, the whole body at most the route's cap (service.limits), and the
photo has to be in memory to be hashed and decoded anyway.
"""

from __future__ import annotations

import dataclasses

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from service.errors import BadInput
from service.limits import size_text

__all__ = ["MAX_PHOTOS", "Form", "Upload", "read_form"]

_MAX_FIELD_BYTES = 256 * 1024  # spec sheets and labels; far above any real one
MAX_PHOTOS = 16  # file parts per request: a golden's views, a unit's
_MAX_FIELDS = 24  # text parts: the web page's seal form has 16
_MAX_HEADER_BYTES = 8 * 1024  # one header line of a part (its name and file name)


@dataclasses.dataclass
class Upload:
    """One uploaded file."""

    field: str
    filename: str | None
    data: bytearray


@dataclasses.dataclass
class Form:
    files: dict[str, list[Upload]]
    fields: dict[str, str]

    def text(self, name: str) -> str | None:
        return self.fields.get(name)


class _Collector:
    """python-multipart callbacks that build the parts and enforce the limits."""

    def __init__(self, file_fields: frozenset[str], max_file_bytes: int, max_files: int
                 ) -> None:
        self.file_fields = file_fields
        self.max_file_bytes = max_file_bytes
        self.max_files = max_files
        self.files = self.fields = 0
        self.parts: list[tuple[str, str | None, bytearray]] = []
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, bytes] = {}
        self._name = ""
        self._filename: str | None = None
        self._data = bytearray()
        self._limit = 0
        self.complete = False

    def on_part_begin(self) -> None:
        self._headers = {}
        self._data = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]
        self._check_header()

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]
        self._check_header()

    def _check_header(self) -> None:
        if len(self._header_field) + len(self._header_value) > _MAX_HEADER_BYTES:
            raise BadInput(f"a multipart part has a header longer than {_MAX_HEADER_BYTES:,} "
                           "bytes; let your HTTP client build the multipart body", "too_large")

    def on_header_end(self) -> None:
        self._headers[bytes(self._header_field).decode("latin-1").lower()] = bytes(
            self._header_value)
        self._header_field = bytearray()
        self._header_value = bytearray()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get("content-disposition", b""))
        name = options.get(b"name")
        if name is None:
            raise BadInput("a multipart part has no name in its Content-Disposition header; "
                           "send each field as name=... (curl -F name=value)", "malformed")
        self._name = name.decode("utf-8", "replace")
        filename = options.get(b"filename")
        self._filename = None if filename is None else filename.decode("utf-8", "replace")
        if self._filename is not None and "\x00" in self._filename:
            # Stored with the photo's row, and PostgreSQL refuses NUL in text: refuse it now,
            # before the photo is written, rather than at the commit.
            raise BadInput(f"the file name of field '{self._name}' contains a NUL character; "
                           "rename the file", "malformed")
        is_file = self._filename is not None or self._name in self.file_fields
        self._limit = self.max_file_bytes if is_file else _MAX_FIELD_BYTES
        # Counted when the part's headers are in, before a byte of it is kept.
        self.files += is_file
        self.fields += not is_file
        if self.files > self.max_files:
            raise BadInput(f"too many parts in the upload: more than {self.max_files} photos; "
                           f"send at most {self.max_files} per request", "too_large")
        if self.fields > _MAX_FIELDS:
            raise BadInput(f"too many parts in the upload: more than {_MAX_FIELDS} text "
                           "fields; send only the fields the form has (see /docs)",
                           "too_large")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._data += data[start:end]
        if len(self._data) > self._limit:
            what = self._filename or self._name
            if self._limit == self.max_file_bytes:
                raise BadInput(
                    f"{what}: the file is larger than the limit of "
                    f"{size_text(self.max_file_bytes)} per file; send a smaller photo (JPEG at "
                    "quality 90 is plenty) or raise SEALCHECK_MAX_UPLOAD_BYTES", "too_large")
            raise BadInput(f"field '{self._name}' is larger than {size_text(_MAX_FIELD_BYTES)}; a "
                           "spec or label is never that big", "too_large")

    def on_part_end(self) -> None:
        self.parts.append((self._name, self._filename, self._data))

    def on_end(self) -> None:
        self.complete = True  # the closing boundary arrived


async def read_form(request: Request, *, file_fields: frozenset[str],
                    max_file_bytes: int, max_files: int = MAX_PHOTOS) -> Form:
    """Parse a ``multipart/form-data`` body; parts named in `file_fields` are files.

    Raises BadInput: unsupported for another content type, malformed for a malformed body,
    too large as soon as one file passes `max_file_bytes` or the files `max_files`.
    """
    content_type, options = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data":
        got = content_type.decode("latin-1") or "no Content-Type"
        raise BadInput(f"expected a multipart/form-data upload, got {got}; send the photos as "
                       "form fields (curl -F images=@photo.jpg)", "unsupported")
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadInput("the multipart/form-data Content-Type has no boundary; let your HTTP "
                       "client build the multipart body", "malformed")
    collector = _Collector(file_fields, max_file_bytes, max_files)
    callbacks = {name: getattr(collector, name) for name in (
        "on_part_begin", "on_header_field", "on_header_value", "on_header_end",
        "on_headers_finished", "on_part_data", "on_part_end", "on_end")}
    try:
        parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except BadInput:
        raise
    except Exception as exc:  # python-multipart's parse errors: the body is malformed
        raise BadInput(f"the multipart body could not be parsed ({exc}); let your HTTP client "
                       "build it (curl -F, requests files=...)", "malformed") from None
    if not collector.complete:
        raise BadInput("the multipart body ended before its closing boundary (the upload was "
                       "cut short); send the request again", "malformed")
    files: dict[str, list[Upload]] = {}
    fields: dict[str, str] = {}
    for name, filename, data in collector.parts:
        if filename is not None or name in file_fields:
            files.setdefault(name, []).append(Upload(name, filename, data))
        else:
            try:
                fields[name] = data.decode("utf-8")
            except UnicodeDecodeError:
                raise BadInput(f"field '{name}' is not UTF-8 text; send text fields in UTF-8",
                               "malformed") from None
    return Form(files, fields)
