"""Colour maths for sealcheck: sRGB, CIE XYZ, CIELAB and colour differences.

The bottom layer (with :mod:`imaging.geometry` and :mod:`imaging.resample`): calibration and
every vision stage import it, it imports neither.

Pure numpy, float64 by default; float32 images stay float32 through :func:`linear_rgb_to_xyz`,
:func:`xyz_to_lab`, :func:`linear_rgb_to_lab` and :func:`ciede2000` (about 3x faster, errors
~1e-5 Delta-E), and :func:`srgb8_to_linear` is a float32 table lookup for 8-bit images.
Vectorised over any leading shape: every colour
argument is an array whose *last* axis holds the three channels, so a single
colour ``(3,)``, a patch list ``(N, 3)`` and an image ``(H, W, 3)`` all work.

Conventions
-----------
- sRGB values are floats with nominal range [0, 1] (divide 8-bit data by 255).
- CIE XYZ is relative, with the white's luminance ``Y = 1`` (not 100).
- CIELAB is on the usual scale, ``L*`` in [0, 100].
- Hue angles are in degrees.

References
----------
.. [1] IEC 61966-2-1:1999, "Multimedia systems and equipment - Colour measurement
       and management - Part 2-1: Colour management - Default RGB colour space - sRGB".
.. [2] CIE 15:2004, "Colorimetry", 3rd edition. Commission Internationale de
       l'Eclairage, Vienna.
.. [3] G. Sharma, W. Wu and E. N. Dalal, "The CIEDE2000 color-difference formula:
       Implementation notes, supplementary test data, and mathematical
       observations", Color Research & Application 30(1), 21-30 (2005).
       doi:10.1002/col.20070
.. [4] F. J. J. Clarke, R. McDonald and B. Rigg, "Modification to the JPC79
       colour-difference formula", Journal of the Society of Dyers and Colourists
       100(4), 128-132 (1984). doi:10.1111/j.1478-4408.1984.tb00969.x
.. [5] K. M. Lam, "Metamerism and colour constancy", PhD thesis, University of
       Bradford (1985); linearised Bradford transform as adopted in ICC.1:2010,
       Annex E.
"""

from __future__ import annotations

from imaging.color._difference import ciede2000, delta_e_cmc, delta_lch
from imaging.color._spaces import (
    D50,
    D65,
    M_BRADFORD,
    M_SRGB_TO_XYZ,
    M_XYZ_TO_SRGB,
    chromatic_adaptation_bradford,
    lab_to_srgb,
    lab_to_xyz,
    linear_rgb_to_lab,
    linear_rgb_to_xyz,
    linear_to_srgb,
    linear_to_srgb8,
    srgb8_to_linear,
    srgb_to_lab,
    srgb_to_linear,
    xyz_to_lab,
    xyz_to_linear_rgb,
)

__all__ = [
    "D50",
    "D65",
    "M_BRADFORD",
    "M_SRGB_TO_XYZ",
    "M_XYZ_TO_SRGB",
    "chromatic_adaptation_bradford",
    "ciede2000",
    "delta_e_cmc",
    "delta_lch",
    "lab_to_srgb",
    "lab_to_xyz",
    "linear_rgb_to_lab",
    "linear_rgb_to_xyz",
    "linear_to_srgb",
    "linear_to_srgb8",
    "srgb8_to_linear",
    "srgb_to_lab",
    "srgb_to_linear",
    "xyz_to_lab",
    "xyz_to_linear_rgb",
]
