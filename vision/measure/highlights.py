"""What the colour measurements leave out: clipped highlights, added light and local change.

A lamp's reflection on a glossy board or a specular band on bent steel is the light, not the
product's colour, and it moves between two photos (the camera or the part moved): where either
photo is clipped white, neither the colour cue nor the region's colour can read the surface.
Where it is not clipped, it adds grey light to what the surface returns (:func:`added_light`),
and the colour cue takes that off the unit first (:func:`light_taken`).
And the region's colour is a drift: what changed the same way everywhere. A patch that
changed unlike the rest (glare's halo, a stain, a moved highlight) is the defect stage's
finding; averaged in, it read as a drift of the whole product (glossy boards of
``benchmarks/eval_randomised.py``: a moved reflection shifted the mean 2.1-9.6 Delta-E00 on
identical pairs).
"""

from __future__ import annotations

import cv2
import numpy as np

from vision.frame import resize_mask
from vision.measure._tiles import tile_pixels

__all__ = [
    "CLIPPED_CODE",
    "added_light",
    "clipped_highlights",
    "light_taken",
    "reflection_over",
    "steady_colour_region",
]

CLIPPED_CODE = 250
"""8-bit sRGB code at and above which a channel counts as clipped (JPEG's ringing leaves a
clipped area at 250-255)."""
_HIGHLIGHT_MIN_SHARE = 0.8  # a highlight's weakest channel is at least this of its strongest
_NEAR_CLIPPED_CODE = 235  # the other photo at or above this: the same white, resampled
_HIGHLIGHT_HALO_PX = 3  # analysis pixels: the blooming and blur around a clipped area
_LOCAL_CHANGE_LAB = 10.0  # CIELAB distance from the typical change: a local change (see below)
_PATCH_HALF_PX = 3  # half-resolution pixels: a local change narrower than 2x this + 1 is a line
_MIN_STEADY_SHARE = 0.25  # of the region; less than this steady: the whole region's colour
_LIGHT_TILE_HALF_PX = 8  # half-resolution pixels: the tiles the added light is measured on
_LIGHT_QUARTILES = (25, 75)  # of a tile's change: light lifts (or lowers) all of it
_LIGHT_SMOOTH_TILES = 3  # the median of 3 x 3 tiles (~48 analysis px): light, not a defect
_REFLECTION_MIN_LIGHT = 0.1  # of the golden's typical luminance: light that changes the colour
# The smallest weakest-channel code that is _HIGHLIGHT_MIN_SHARE of each strongest code.
_SHARE_THRESHOLD = np.ceil(_HIGHLIGHT_MIN_SHARE * np.arange(256) - 1e-9).astype(np.uint8)


def clipped_highlights(golden_rgb8: np.ndarray, unit_rgb8: np.ndarray) -> np.ndarray:
    """Where one photo is clipped white and the other is not even near it: bool, grown by
    the glow around a highlight. Both are 8-bit RGB as photographed, in the same frame.

    Clipped means the strongest channel at CLIPPED_CODE or above and the weakest at least
    _HIGHLIGHT_MIN_SHARE of it (near-white: a specular reflection takes the lamp's colour,
    not the surface's); a saturated red that merely clips one channel is still a colour the
    photo shows. White that both photos show clipped (a scan's bare board, a white label, a
    star) is the subject's own: the same in both, and kept. A pixel near a clipped one in
    the other photo (_NEAR_CLIPPED_CODE) is the same white resampled, also kept.
    """
    # Channel extremes with OpenCV: numpy's max/min over the last axis of an (h, w, 3) array
    # is a strided reduction, ~0.5 s on a 3 MP analysis image against ~5 ms here.
    golden_strongest, golden_weakest = _channel_extremes(golden_rgb8)
    unit_strongest, unit_weakest = _channel_extremes(unit_rgb8)
    moved = ((_clipped(golden_strongest, golden_weakest) & (unit_strongest < _NEAR_CLIPPED_CODE))
             | (_clipped(unit_strongest, unit_weakest) & (golden_strongest < _NEAR_CLIPPED_CODE)))
    side = 2 * _HIGHLIGHT_HALO_PX + 1
    return cv2.dilate(moved.astype(np.uint8), np.ones((side, side), np.uint8)) > 0


def _channel_extremes(rgb8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the strongest and the weakest of the three channels (uint8)."""
    red, green, blue = cv2.split(rgb8)
    return cv2.max(cv2.max(red, green), blue), cv2.min(cv2.min(red, green), blue)


def _clipped(strongest: np.ndarray, weakest: np.ndarray) -> np.ndarray:
    """Clipped white: the strongest channel at CLIPPED_CODE or above and the weakest at least
    _HIGHLIGHT_MIN_SHARE of it (the share's threshold per code from a table: no float copy)."""
    return (strongest >= CLIPPED_CODE) & (weakest >= cv2.LUT(strongest, _SHARE_THRESHOLD))


def steady_colour_region(golden_lab: np.ndarray, unit_lab: np.ndarray, region: np.ndarray,
                         highlights: np.ndarray | None) -> np.ndarray:
    """The part of `region` whose colour changed as the region's as a whole did: bool, the
    region's shape.

    `golden_lab` and `unit_lab` are the blurred CIELAB maps at half resolution
    (:attr:`vision.views.AnalysisViews.lab_smooth`); `region` and `highlights`
    (:func:`clipped_highlights`) are at analysis resolution. The typical change is the
    per-channel median of unit - golden over the region, highlights left out; a pixel whose
    change differs from it by more than _LOCAL_CHANGE_LAB is a local change and left out too.
    A uniform drift changes every pixel alike and keeps them all. (_LOCAL_CHANGE_LAB chosen on
    eval_randomised's "tune" split, the colour verdicts of its 22 registered identical and
    drift pairs: 6, 10, 15 and no limit gave 4 / 2 / 4 / 4 false drifts and 2 / 2 / 1 / 1
    missed ones; a change of light with a card leaves colour-dependent residuals that a
    tighter limit takes for local change.) When less than
    _MIN_STEADY_SHARE of the region is steady, nothing is typical: the region minus its
    highlights (or, if that is too little too, the region).
    """
    height, width = region.shape
    # np.count_nonzero, not .sum(): a bool array's sum goes through integer conversion, ~50x
    # slower on an analysis image.
    least_steady = _MIN_STEADY_SHARE * np.count_nonzero(region)
    usable = region
    if highlights is not None and highlights.any():
        # Patches only, as below: a speck of white one photo clips and the other resamples
        # a little darker (a star) is the product's light, and the mean needs it.
        patches = cv2.morphologyEx(highlights.astype(np.uint8), cv2.MORPH_OPEN,
                                   np.ones((2 * _HIGHLIGHT_HALO_PX + 3,) * 2, np.uint8))
        usable = region & (patches == 0)
    if np.count_nonzero(usable) < least_steady:
        return region
    half_size = golden_lab.shape[1::-1]
    half_usable = resize_mask(usable, half_size)
    # Channels apart, each plane contiguous: numpy's loops along a last axis of 3 cost several
    # times the arithmetic, and each channel's median runs along a row.
    change = np.subtract(unit_lab.transpose(2, 0, 1), golden_lab.transpose(2, 0, 1), order="C")
    samples = change[:, half_usable]
    if samples.shape[1] == 0:
        return usable
    stride = max(1, samples.shape[1] // 100_000)  # the median of 100,000 samples is plenty
    typical = np.median(samples[:, ::stride], axis=1).astype(change.dtype)
    off_typical = change - typical[:, None, None]
    # Squared distances against the squared limit: no square root over the map.
    squares = off_typical * off_typical
    deviation_sq = squares[0] + squares[1] + squares[2]
    # Only patches are left out, not lines: an edge that the two photos resolve a little
    # differently (a mesh of 1 px traces, a print's outline) changes unlike the rest too, but
    # leaving thin lines out of one photo's mean and not quite the same lines out of the
    # other's (each photo is sampled on its own grid) biased a fine board's colour by 1.9
    # Delta-E00. The patches are grown by as much, to take their rims.
    local = cv2.morphologyEx((deviation_sq > _LOCAL_CHANGE_LAB**2).astype(np.uint8),
                             cv2.MORPH_OPEN,
                             np.ones((2 * _PATCH_HALF_PX + 1,) * 2, np.uint8))
    local = cv2.dilate(local, np.ones((2 * _PATCH_HALF_PX + 1,) * 2, np.uint8))
    steady = usable & (cv2.resize(local, (width, height), interpolation=cv2.INTER_NEAREST) == 0)
    return steady if np.count_nonzero(steady) >= least_steady else usable


def added_light(golden_linear: np.ndarray, unit_linear: np.ndarray, region: np.ndarray
                ) -> np.ndarray:
    """The light that the unit's photo adds to the golden's (negative: the golden's adds),
    as a smooth field of grey: linear RGB per channel, at the maps' half resolution.

    Glare that is not clipped (a lamp's reflection, a glossy part's broad highlight) adds
    the lamp's light to whatever the surface reflects: in linear RGB the unit is the golden
    plus k * white. In CIELAB that is no offset: the same added light lifts a dark green by
    tens of L* and desaturates it, and a pale trace beside it by little, so neither the
    colour drift nor the local drift (an offset per neighbourhood) can remove it. Here k is
    the mean of the three channels' change, on _LIGHT_TILE_HALF_PX tiles the quartile
    nearer none when both quartiles lie on one side of it (else none: light reaches all of a
    tile, a defect covers part of it), and the median of _LIGHT_SMOOTH_TILES x
    _LIGHT_SMOOTH_TILES of those (~48 analysis px: narrower than a lamp's reflection, wider
    than most defects). Tiles mostly outside `region` (analysis resolution) add no light.
    `golden_linear` and `unit_linear` are :attr:`vision.views.AnalysisViews.linear_smooth`.
    """
    t = _LIGHT_TILE_HALF_PX
    hh, hw = golden_linear.shape[:2]
    rows, cols = -(-hh // t), -(-hw // t)
    change = _grey_change(golden_linear, unit_linear)
    inside = resize_mask(region, (hw, hh))
    pad = ((0, rows * t - hh), (0, cols * t - hw))
    change = np.pad(np.where(inside, change, np.nan).astype(np.float32), pad,
                    constant_values=np.nan)
    tiles = tile_pixels(change, t)
    counts = tile_pixels(np.pad(inside, pad), t).sum(axis=-1)
    quartiles = np.zeros((2, rows, cols), np.float32)
    whole, enough = counts == t * t, counts >= 0.5 * t * t
    if whole.any():  # np.percentile is several times faster than np.nanpercentile
        quartiles[:, whole] = np.percentile(tiles[whole], _LIGHT_QUARTILES, axis=1)
    partial = enough & ~whole
    if partial.any():
        quartiles[:, partial] = np.nanpercentile(tiles[partial], _LIGHT_QUARTILES, axis=1)
    # Light reaches all of a tile: both quartiles of the change on one side of none, and the
    # nearer one is how much. A patch of new copper or a stain that covers part of the tile
    # lifts the upper quartile only, and adds no light.
    lower, upper = quartiles
    lit = np.where(lower > 0, lower, np.where(upper < 0, upper, np.float32(0.0)))
    lit = cv2.medianBlur(np.ascontiguousarray(lit, np.float32), _LIGHT_SMOOTH_TILES)
    light = cv2.resize(lit, (cols * t, rows * t), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(light[:hh, :hw])


def light_taken(golden_linear: np.ndarray, unit_linear: np.ndarray, light: np.ndarray
                ) -> np.ndarray:
    """How much of the added `light` (:func:`added_light`) to take off the unit at each
    pixel: as much as brings it nearest the golden, between none and the most the light
    adds within a tile (the medians flatten a reflection's peak). A patch that the light
    did not reach (a hole through a glossy plate, where the matte table shows) keeps its
    colour; a change beyond what the light explains (a stain, a spot brighter than the
    glare) is left whole. The change is read through a 5 x 5 median first, so a line (a
    scratch, darker where the golden was lit) takes its surroundings' light and stays.
    Half resolution, as `light`; the inputs are :attr:`vision.views.AnalysisViews.
    linear_smooth` (or crops of them, with `light`'s)."""
    change = cv2.medianBlur(_grey_change(golden_linear, unit_linear), 5)
    reach = np.ones((2 * _LIGHT_TILE_HALF_PX + 1,) * 2, np.uint8)
    least = cv2.erode(np.minimum(light, 0.0), reach)
    most = cv2.dilate(np.maximum(light, 0.0), reach)
    return np.clip(change, least, most)


def _grey_change(golden_linear: np.ndarray, unit_linear: np.ndarray) -> np.ndarray:
    """Unit - golden, the mean of the three channels (float32): added grey light's k."""
    change = np.asarray(unit_linear, np.float32) - np.asarray(golden_linear, np.float32)
    return cv2.transform(change, np.full((1, 3), 1.0 / 3.0, np.float32))


def reflection_over(golden_linear: np.ndarray, light: np.ndarray, region: np.ndarray
                    ) -> tuple[float, float]:
    """How much of `region` one photo's reflection covers, and how much light it adds there.

    Returns the share (0-1) of `region` where the added `light` (:func:`added_light`) is at
    least _REFLECTION_MIN_LIGHT of the golden's median luminance over the region, and the
    mean added light over the region (linear RGB per channel; negative: the golden's photo
    adds it). `golden_linear` is :attr:`vision.views.AnalysisViews.linear_smooth` and
    `light` is at its resolution; `region` is at analysis resolution.
    """
    hh, hw = golden_linear.shape[:2]
    inside = resize_mask(region, (hw, hh))
    if not inside.any():
        return 0.0, 0.0
    luminance = cv2.transform(np.asarray(golden_linear, np.float32),
                              np.array([[0.2126, 0.7152, 0.0722]], np.float32))[inside]
    lit = light[inside]
    share = np.count_nonzero(np.abs(lit) >= _REFLECTION_MIN_LIGHT * np.median(luminance))
    return share / lit.size, float(lit.mean())
