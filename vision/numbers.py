"""How a report's numbers are printed for people: one rounding per quantity.

The verdict's reasons (:mod:`vision.judge`), the CLI's summary and the web pages all print
through :func:`format_number`, so the same value reads the same everywhere (the reasons once
said "Delta-E00 1.4" where the colour card said 1.45), and ``-0.0`` is never printed.

Colour differences, sizes and SSIM carry enough decimals that a value next to its limit never
reads as the limit itself: with one decimal, Delta-E00 2.04 would "exceed 2.0" as "2.0".
"""

from __future__ import annotations

import math

__all__ = ["DECIMALS", "format_number"]

DECIMALS: dict[str, int] = {
    "delta_e": 2,  # CIEDE2000, CMC(2:1), dL*, dC*, dH*, card residuals, their tolerance
    "ssim": 3,  # structural similarity and its floor
    "mm": 2,  # size differences and their tolerance
    "scale": 3,  # unit size / golden size
    "px": 2,  # sub-pixel errors (registration RMS) and pixels per millimetre
    "likelihood": 2,  # 0-1 scores: defect likelihood, detection confidence
    "score": 0,  # the 0-100 conformity score
    "lab": 1,  # CIELAB coordinates of a swatch
    "extent_mm": 1,  # a defect's width and height
    "area_mm2": 1,  # a defect's area
}
"""Decimals printed per quantity."""


def format_number(value: float, quantity: str, *, signed: bool = False) -> str:
    """`value` as text with the decimals of `quantity` (a key of :data:`DECIMALS`).

    `signed` puts '+' before a positive value (a difference: "dL* +1.20"). A value that
    rounds to zero prints as zero without a sign, never as "-0.00" or "+0.00".

    >>> format_number(1.449, "delta_e"), format_number(-0.004, "mm", signed=True)
    ('1.45', '0.00')
    """
    if quantity not in DECIMALS:
        raise ValueError(f'"{quantity}" quantity is invalid, it must be one of '
                         f"{sorted(DECIMALS)}!")
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    decimals = DECIMALS[quantity]
    text = f"{value:{'+' if signed else ''}.{decimals}f}"
    if float(text) == 0.0:
        return f"{0.0:.{decimals}f}"
    return text
