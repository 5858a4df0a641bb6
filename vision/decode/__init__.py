"""Load phone photos as oriented RGB arrays; refuse bad input with a message a person can act on.

This is the first stage of the pipeline (decode -> calibrate -> register -> measure -> report),
so every later coordinate refers to the array returned here: EXIF orientation is already applied.

Supported formats, recognised from the leading bytes only (never the file name): JPEG, PNG, WebP,
TIFF, HEIF/HEIC (through pillow-heif) and AVIF (through Pillow's own AVIF plugin, when Pillow was
built with libavif). GIF, BMP, SVG, PDF and HTML are refused: GIF and BMP are not what phones
produce and GIF's 256-colour palette destroys the colour detail that sealcheck measures.

Decoders: JPEG, PNG and WebP go through OpenCV (libjpeg-turbo with SIMD, DCT-domain reduced
decode; libpng with CRC checks and true 16-bit output; libwebp straight into the array), the other
formats through Pillow. Pillow also
reads every header, because it parses the size and the EXIF block without decoding pixels, which
lets the pixel cap run before any pixel memory is allocated.

Not done here: ICC profiles and PNG gamma are ignored (colour correction belongs to
``calibration/``), and alpha is dropped rather than composited, since phone photos are opaque and
any compositing background would be an invented colour.

The stage is split into private modules that each read on their own: ``_sniff`` (the format
from the leading bytes), ``_header`` (the file or bytes in, the header through Pillow),
``_structure`` (container checks that catch truncation and damage before a decoder would
paper over them), ``_pixels`` (the per-format decoders, 8-bit conversion, orientation),
``_errors`` (:class:`ImageDecodeError` and its standard wordings) and ``_load`` (the entry
points :func:`load_image`, :func:`check_image` (every check without decoding) and
:func:`read_image_size`, and the limits they apply: pixels, and decoded bytes per photo).
"""

from vision.decode._errors import ImageDecodeError
from vision.decode._load import (
    DECODED_BYTES_PER_PIXEL,
    DEFAULT_MAX_PIXELS,
    MAX_ASPECT,
    MIN_SIDE,
    check_image,
    load_image,
    read_image_size,
)
from vision.decode._sniff import SUPPORTED_FORMATS, sniff_format

__all__ = [
    "DECODED_BYTES_PER_PIXEL",
    "DEFAULT_MAX_PIXELS",
    "MAX_ASPECT",
    "MIN_SIDE",
    "SUPPORTED_FORMATS",
    "ImageDecodeError",
    "check_image",
    "load_image",
    "read_image_size",
    "sniff_format",
]
