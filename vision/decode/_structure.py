"""Cheap container checks, run before any decoder sees the data.

Decoders turn a truncated or damaged file into grey rows or a warning on stderr; these walks
of the container (JPEG segments, PNG chunks, RIFF length, ISO media boxes) and the PNG
checksums find the damage first, so the message can say what is wrong.
"""

import zlib

from vision.decode._errors import corrupt, truncated


def check_structure(data: bytes, fmt: str, label: str) -> None:
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
            raise truncated(label, "jpeg", size)
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            raise corrupt(label, "jpeg", "it ends before any image data")
        if 0xD0 <= marker <= 0xD8 or marker == 0x01:
            continue  # standalone markers carry no length
        if pos + 2 > size:
            raise truncated(label, "jpeg", size)
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 2:
            raise corrupt(label, "jpeg", f"bad segment length {length}")
        pos += length
        if pos > size:
            raise truncated(label, "jpeg", size)
        if marker == 0xDA:  # SOS: entropy-coded data follows
            break
    # 0xFF bytes in entropy-coded data are stuffed (FF 00), so FF D9 is a real marker.
    if data.find(b"\xff\xd9", pos) < 0:
        raise truncated(label, "jpeg", size)


def _check_png_structure(data: bytes, label: str) -> None:
    """Walk the chunk lengths to IEND (CRCs are left to libpng, which checks them)."""
    pos = 8
    size = len(data)
    while True:
        if pos + 8 > size:
            raise truncated(label, "png", size)
        length = int.from_bytes(data[pos : pos + 4], "big")
        chunk_type = data[pos + 4 : pos + 8]
        if length > 0x7FFFFFFF or not chunk_type.isalpha():
            raise corrupt(label, "png", f"malformed chunk at byte {pos:,}")
        pos += 12 + length
        if pos > size:
            raise truncated(label, "png", size)
        if chunk_type == b"IEND":
            return


def _check_riff_length(data: bytes, label: str) -> None:
    declared = int.from_bytes(data[4:8], "little") + 8
    if len(data) < declared:
        raise truncated(label, "webp", len(data))


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
                raise truncated(label, fmt, size)
            box_size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        if box_size < 8:
            raise corrupt(label, fmt, f"malformed box at byte {pos:,}")
        pos += box_size
    if pos != size:
        raise truncated(label, fmt, size)


def check_png_data(data: bytes, label: str, *, inflate: bool = True) -> None:
    """Verify the critical chunks' CRCs and inflate the image data, discarding the output
    (`inflate` False: the checksums only, which cost one pass over the file's bytes, not over
    the decoded image's).

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
                raise corrupt(label, "png", f"the checksum of its {kind} chunk does not match")
        if inflate and chunk_type == b"IDAT" and produced <= expected and not inflater.eof:
            produced = _inflate_counting(inflater, memoryview(data)[pos + 8 : end], produced,
                                         expected, label)
        if chunk_type == b"IEND":
            break
        pos = end + 4
    # More data than the rows need is only a warning for libpng; less is an error.
    if inflate and produced < expected:
        raise corrupt(label, "png", "its compressed image data ends early")


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
                raise corrupt(
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
