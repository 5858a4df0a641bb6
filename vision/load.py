"""The first stage: photos decoded at the size a report needs.

Measurements run at the analysis size (:data:`vision.frame.ANALYSIS_SIZE`, 1024 px) and
registration refines at up to :data:`vision.register.FINE_SIZE` (2048 px), so a 12 MP JPEG
need not be decoded whole: its DCT gives a half-size decode in about a third of the time.
Positions in reports stay in the photo's own pixels (the photo's size travels with the array).
"""

from __future__ import annotations

import concurrent.futures

import numpy as np

from vision.decode import DEFAULT_MAX_PIXELS, ImageDecodeError, load_image, read_image_size

__all__ = ["REDUCED_DECODE_MIN_SIDE", "decode_reduction", "load_for_report", "load_pair"]

REDUCED_DECODE_MIN_SIDE = 1800
"""Long side a reduced decode must keep (see :func:`decode_reduction`)."""


def decode_reduction(photo_size: tuple[int, int]) -> int:
    """The largest ``load_image(reduce=...)`` factor that loses nothing the report needs.

    Measurements run at ANALYSIS_SIZE (1024 px) and registration refines at up to
    register.FINE_SIZE (2048 px), so a photo decoded to a long side of at least
    REDUCED_DECODE_MIN_SIDE gives the same report (half a 12 MP photo is 2016 px: templates
    then run at 2016 instead of 2048 px). A JPEG decodes at 1/2 through its DCT in about a
    third of the time. Pictures at the photo's size need the full decode.
    """
    long_side = max(photo_size)
    for factor in (8, 4, 2):
        if long_side / factor >= REDUCED_DECODE_MIN_SIDE:
            return factor
    return 1


def load_for_report(source, *, name: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
                    ) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode a photo for a report only: (RGB at the :func:`decode_reduction` size, the
    photo's (width, height)). Pass the size on as `golden_photo_size` / `unit_photo_size`
    (or `photo_size` of :func:`vision.prepare.prepare_golden`); pictures at full size need
    ``load_image``."""
    try:
        size = read_image_size(source, name=name)
    except ImageDecodeError:
        # A header that cannot be read: the full decode below raises the same error every
        # other caller of load_image gets (the messages and their HTTP statuses are one set).
        size = None
    rgb = load_image(source, name=name, max_pixels=max_pixels,
                     reduce=1 if size is None else decode_reduction(size))
    return rgb, size or (rgb.shape[1], rgb.shape[0])


def load_pair(golden_source, unit_source, *, for_report: bool = True,
              max_pixels: int = DEFAULT_MAX_PIXELS
              ) -> tuple[tuple[np.ndarray, tuple[int, int]], tuple[np.ndarray, tuple[int, int]]]:
    """Decode the golden and the unit photo at once, in two threads (the decoders release
    the GIL): ((rgb, photo size), (rgb, photo size)).

    `for_report`: at the :func:`load_for_report` size; False decodes every pixel (pictures
    at full size). When both fail, the golden's error is the one raised.
    """
    def decode(source) -> tuple[np.ndarray, tuple[int, int]]:
        if for_report:
            return load_for_report(source, max_pixels=max_pixels)
        rgb = load_image(source, max_pixels=max_pixels)
        return rgb, (rgb.shape[1], rgb.shape[0])

    with concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="sealcheck-decode") as pool:
        golden, unit = pool.map(decode, (golden_source, unit_source))
    return golden, unit
