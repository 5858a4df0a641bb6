"""Reference colour charts: patch colours, names and physical layout.

Each chart is a :class:`Chart` registered in :data:`CHARTS` by a short key, so
further charts (ColorChecker Passport, Mini, Digital SG) are added as data, not
code. Reference colours are stored exactly as the manufacturer publishes them
(CIE L*a*b*, D50, 2-degree observer); :func:`chart_srgb` derives display values.

References
----------
.. [1] X-Rite (2016). "New color specifications for ColorChecker SG and Classic
       Charts". X-Rite support note 5884 (values for charts made after
       November 2014), retrieved via
       http://xritephoto.com/ph_product_overview.aspx?ID=938&Action=Support&SupportID=5884
.. [2] C. S. McCamy, H. Marcus and J. G. Davidson, "A Color-Rendition Chart",
       Journal of Applied Photographic Engineering 2(3), 95-99 (1976).
.. [3] C. Poynton, "ColorChecker ('Macbeth') Chart",
       http://poynton.com/notes/color/GretagMacbeth-ColorChecker.html
       (card approximately 280 mm x 216 mm).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from imaging.color import (
    D50,
    D65,
    chromatic_adaptation_bradford,
    lab_to_xyz,
    linear_to_srgb,
    xyz_to_linear_rgb,
)

__all__ = [
    "CHARTS",
    "COLORCHECKER_CLASSIC",
    "Chart",
    "chart_srgb",
    "get_chart",
]


@dataclass(frozen=True, eq=False)
class Chart:
    """A rectangular grid of reference colour patches.

    Parameters
    ----------
    name : str
        Human-readable name, including the formulation/edition the data belongs to.
    rows, cols : int
        Patch grid shape as seen with the chart upright (label text readable).
    patch_names : tuple of str
        ``rows * cols`` names in reading order: row-major, top-left first.
    lab_d50 : ndarray, shape (rows * cols, 3)
        Reference CIE L*a*b*, illuminant D50, CIE 1931 2-degree observer, in
        ``patch_names`` order. Stored read-only, float64.
    size_mm : tuple of float
        Overall card size ``(width, height)`` in millimetres, landscape.
    patch_size_mm : float
        Side of one square patch, mm.
    patch_pitch_mm : float
        Centre-to-centre distance of neighbouring patches (both directions), mm.
    source : str
        Where ``lab_d50`` and the geometry come from.
    """

    name: str
    rows: int
    cols: int
    patch_names: tuple[str, ...]
    lab_d50: NDArray[np.float64]
    size_mm: tuple[float, float]
    patch_size_mm: float
    patch_pitch_mm: float
    source: str = field(default="")

    def __post_init__(self) -> None:
        n_patches = self.rows * self.cols
        if len(self.patch_names) != n_patches:
            raise ValueError(
                f"Chart {self.name!r}: expected {n_patches} patch names for a "
                f"{self.rows}x{self.cols} grid, got {len(self.patch_names)}."
            )
        if len(set(self.patch_names)) != n_patches:
            raise ValueError(f"Chart {self.name!r}: patch names must be unique.")
        lab = np.array(self.lab_d50, dtype=np.float64)
        if lab.shape != (n_patches, 3):
            raise ValueError(
                f"Chart {self.name!r}: lab_d50 must have shape ({n_patches}, 3), "
                f"got {lab.shape}. Give one (L*, a*, b*) row per patch in reading order."
            )
        if not self.patch_size_mm <= self.patch_pitch_mm:
            raise ValueError(
                f"Chart {self.name!r}: patch_size_mm ({self.patch_size_mm}) cannot exceed "
                f"patch_pitch_mm ({self.patch_pitch_mm})."
            )
        lab.setflags(write=False)
        object.__setattr__(self, "lab_d50", lab)

    @property
    def n_patches(self) -> int:
        """Number of patches, ``rows * cols``."""
        return self.rows * self.cols

    def patch_index(self, patch_name: str) -> int:
        """Reading-order index of the patch called ``patch_name``."""
        try:
            return self.patch_names.index(patch_name)
        except ValueError:
            raise ValueError(
                f'"{patch_name}" is not a patch of {self.name}; it must be one of '
                f"{list(self.patch_names)}!"
            ) from None

    def patch_centres_mm(self) -> NDArray[np.float64]:
        """Patch centres in mm, shape ``(n_patches, 2)`` as ``(x, y)``, reading order.

        Origin at the centre of the patch grid, x to the right, y downwards (image
        convention), assuming the grid is centred on the card.
        """
        col, row = np.meshgrid(np.arange(self.cols), np.arange(self.rows))
        x = (col.ravel() - (self.cols - 1) / 2.0) * self.patch_pitch_mm
        y = (row.ravel() - (self.rows - 1) / 2.0) * self.patch_pitch_mm
        return np.stack([x, y], axis=-1)


_COLORCHECKER_CLASSIC_NAMES: tuple[str, ...] = (
    "dark skin",
    "light skin",
    "blue sky",
    "foliage",
    "blue flower",
    "bluish green",
    "orange",
    "purplish blue",
    "moderate red",
    "purple",
    "yellow green",
    "orange yellow",
    "blue",
    "green",
    "red",
    "yellow",
    "magenta",
    "cyan",
    "white 9.5",  # X-Rite: "white 9.5 (.05 D)"; the number is the Munsell value
    "neutral 8",  # (.23 D)
    "neutral 6.5",  # (.44 D)
    "neutral 5",  # (.70 D)
    "neutral 3.5",  # (1.05 D)
    "black 2",  # (1.5 D)
)

# X-Rite (2016), ColorChecker Classic produced after November 2014: CIE L*a*b*,
# D50, 2-degree observer, M0 measurement condition. Same numbers as colour-science's
# "ColorChecker24 - After November 2014" (DATA_COLORCHECKER24_AFTER_NOV2014_CIE_LAB).
_COLORCHECKER_CLASSIC_LAB_D50 = np.array(
    [
        [37.54, 14.37, 14.92],  # dark skin
        [64.66, 19.27, 17.50],  # light skin
        [49.32, -3.82, -22.54],  # blue sky
        [43.46, -12.74, 22.72],  # foliage
        [54.94, 9.61, -24.79],  # blue flower
        [70.48, -32.26, -0.37],  # bluish green
        [62.73, 35.83, 56.50],  # orange
        [39.43, 10.75, -45.17],  # purplish blue
        [50.57, 48.64, 16.67],  # moderate red
        [30.10, 22.54, -20.87],  # purple
        [71.77, -24.13, 58.19],  # yellow green
        [71.51, 18.24, 67.37],  # orange yellow
        [28.37, 15.42, -49.80],  # blue
        [54.38, -39.72, 32.27],  # green
        [42.43, 51.05, 28.62],  # red
        [81.80, 2.67, 80.41],  # yellow
        [50.63, 51.28, -14.12],  # magenta
        [49.57, -29.71, -28.32],  # cyan
        [95.19, -1.03, 2.93],  # white 9.5
        [81.29, -0.57, 0.44],  # neutral 8
        [66.89, -0.75, -0.06],  # neutral 6.5
        [50.76, -0.13, 0.14],  # neutral 5
        [35.63, -0.46, -0.48],  # neutral 3.5
        [20.64, 0.07, -0.46],  # black 2
    ]
)

COLORCHECKER_CLASSIC: Chart = Chart(
    name="X-Rite ColorChecker Classic 24 (after November 2014)",
    rows=4,
    cols=6,
    patch_names=_COLORCHECKER_CLASSIC_NAMES,
    lab_d50=_COLORCHECKER_CLASSIC_LAB_D50,
    # 11 x 8.5 in. Poynton gives "approximately 280 mm by 216 mm"; some sources
    # (e.g. Wikipedia) say 11 x 8.25 in (209.6 mm). Measure your card if it matters.
    size_mm=(279.4, 215.9),
    # Nominal: X-Rite publishes no patch dimensions. 40 mm patches with 4 mm black
    # gaps keep the 10:1 patch:gap proportion of OpenCV's mcc ColorChecker model
    # (2.5 : 0.25 units) and give a 260 mm x 172 mm grid inside the card.
    patch_size_mm=40.0,
    patch_pitch_mm=44.0,
    source=(
        "L*a*b* D50: X-Rite (2016), New color specifications for ColorChecker SG and "
        "Classic Charts (charts made after November 2014). Geometry: nominal, see module "
        "notes."
    ),
)
"""X-Rite ColorChecker Classic, 24 patches, formulation made after November 2014.

4 rows x 6 columns, reading order from "dark skin" (top left, with the label text
upright) to "black 2" (bottom right). The bottom row is the neutral scale; the
numbers in the names are Munsell values (optical densities .05, .23, .44, .70,
1.05 and 1.5 D). Charts made before November 2014 have different colorants and
differ by up to a few delta E 2000 on some patches; do not mix the two data sets.
"""

CHARTS: dict[str, Chart] = {
    "colorchecker-classic": COLORCHECKER_CLASSIC,
}
"""Registered charts by key. Add new charts here as data."""


def get_chart(key: str) -> Chart:
    """Return the registered chart called ``key``, with a helpful error otherwise."""
    try:
        return CHARTS[key]
    except KeyError:
        raise ValueError(f'"{key}" chart is invalid, it must be one of {sorted(CHARTS)}!') from None


def chart_srgb(chart: Chart | str, *, white: ArrayLike = D65) -> NDArray[np.float64]:
    """sRGB-encoded colours of a chart's patches, for rendering synthetic scenes.

    L*a*b* (D50) -> XYZ (D50) -> Bradford adaptation to ``white`` -> linear sRGB ->
    sRGB encoding -> clip to [0, 1].

    Parameters
    ----------
    chart : Chart or str
        A :class:`Chart` or a key of :data:`CHARTS`.
    white : array_like, shape (3,), optional
        XYZ white the patch colours are adapted to before sRGB encoding. :data:`D65`
        (default) gives what a camera white-balanced to the scene records. Any
        other white gives the colour cast of a scene lit by that illuminant when
        the camera stays balanced for D65 (e.g. ``D50`` looks warm).

    Returns
    -------
    ndarray, shape (n_patches, 3)
        sRGB-encoded floats in [0, 1], reading order. Patches outside the sRGB
        gamut (the ColorChecker "cyan" is slightly) are clipped per channel.

    References
    ----------
    .. [1] ICC.1:2010, Annex E (linear Bradford chromatic adaptation).
    .. [2] IEC 61966-2-1:1999, Default RGB colour space - sRGB.
    """
    if isinstance(chart, str):
        chart = get_chart(chart)
    XYZ_d50 = lab_to_xyz(chart.lab_d50, white=D50)
    XYZ = chromatic_adaptation_bradford(XYZ_d50, D50, white)
    rgb = linear_to_srgb(xyz_to_linear_rgb(XYZ))
    return np.clip(rgb, 0.0, 1.0)
