"""The image format, recognised from the leading bytes only (never the file name)."""

#: Format names returned by :func:`sniff_format`, all of which :func:`load_image` decodes.
SUPPORTED_FORMATS = ("jpeg", "png", "webp", "tiff", "heif", "avif")

_HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
)
_AVIF_BRANDS = frozenset({b"avif", b"avis"})


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


def describe_unsupported(data: bytes) -> str:
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
