"""Local alignment: what one homography leaves of the unit's misalignment, tile by tile.

A homography maps a plane seen through a pinhole. A real lens bends straight lines (radial
distortion), a board is not quite flat, a scan's feed wanders: after registration the unit
still lies a pixel or three off the golden in parts of the frame. Differencing then reads
every edge there as a change (DeepPCB's pairs as given: thin regions along traces; renders
with lens distortion: the mesh of a circuit board). The residual is smooth across the frame,
so it is measured on tiles by phase correlation and interpolated between them; a tile whose
correlation is weak (no structure, or a defect that the golden does not show) says nothing
and takes its neighbours' shift. The shift is bounded (_MAX_SHIFT_PX): it is a correction of
registration, never an explanation of a real change.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["TILE_PX", "local_shifts"]

TILE_PX = 64
"""Analysis pixels: the edge of the tiles on which the residual shift is measured."""
_MAX_SHIFT_PX = 3.0  # a larger residual is a registration's failure, not its remainder
_MIN_RESPONSE = 0.2  # phase correlation's peak: below it the tile shows too little in common
_MIN_TILE_COVERAGE = 0.75  # of a tile inside the compared region, to be measured
_MIN_MEASURED_TILES = 4  # fewer measured tiles: no field, the homography stands
_NEGLIGIBLE_SHIFT_PX = 0.25  # a field nowhere larger than this is not worth a resample


def local_shifts(golden_grey: np.ndarray, unit_grey: np.ndarray, region: np.ndarray
                 ) -> np.ndarray | None:
    """The unit's residual shift against the golden at every analysis pixel: (h, w, 2)
    float32 (dx, dy) such that the unit at p + shift(p) shows what the golden shows at p; or
    None when the residual is negligible or cannot be measured.

    `golden_grey` and `unit_grey` are the analysis frame's greys (the unit already warped
    into it), `region` the compared pixels (bool). Measured on TILE_PX tiles mostly inside
    the region; a tile without a confident measurement takes the median of its measured
    neighbours (or 0); the grid is then median-filtered (one tile fooled by a defect does not
    bend its neighbours) and interpolated bilinearly between the tiles' centres.
    """
    h, w = region.shape
    rows, cols = h // TILE_PX, w // TILE_PX
    if rows < 2 or cols < 2:
        return None
    window = cv2.createHanningWindow((TILE_PX, TILE_PX), cv2.CV_32F)
    shift = np.full((rows, cols, 2), np.nan, np.float32)
    golden = golden_grey.astype(np.float32)
    unit = unit_grey.astype(np.float32)
    oy, ox = (h - rows * TILE_PX) // 2, (w - cols * TILE_PX) // 2
    for r in range(rows):
        for c in range(cols):
            tile = np.s_[oy + r * TILE_PX:oy + (r + 1) * TILE_PX,
                         ox + c * TILE_PX:ox + (c + 1) * TILE_PX]
            if region[tile].mean() < _MIN_TILE_COVERAGE:
                continue
            g, u = golden[tile], unit[tile]
            if g.std() < 1.0 or u.std() < 1.0:  # flat: nothing to correlate
                continue
            (dx, dy), response = cv2.phaseCorrelate(g, u, window)
            if response >= _MIN_RESPONSE and np.hypot(dx, dy) <= _MAX_SHIFT_PX:
                shift[r, c] = dx, dy
    measured = ~np.isnan(shift[..., 0])
    if measured.sum() < _MIN_MEASURED_TILES:
        return None
    filled = shift.copy()
    for r, c in zip(*np.nonzero(~measured), strict=True):
        near = shift[max(0, r - 1):r + 2, max(0, c - 1):c + 2].reshape(-1, 2)
        near = near[~np.isnan(near[:, 0])]
        filled[r, c] = np.median(near, axis=0) if len(near) else 0.0
    smooth = np.stack([cv2.medianBlur(np.ascontiguousarray(filled[..., i]), 3)
                       for i in range(2)], axis=2)
    if np.abs(smooth).max() <= _NEGLIGIBLE_SHIFT_PX:
        return None
    # Tile centres sit at oy + (r + 0.5) * TILE_PX: a resize of the grid to the tiles' extent
    # places them so (pixel centres kept); the margins take the edge tiles' values.
    field = cv2.resize(smooth, (cols * TILE_PX, rows * TILE_PX), interpolation=cv2.INTER_LINEAR)
    return cv2.copyMakeBorder(field, oy, h - oy - rows * TILE_PX, ox, w - ox - cols * TILE_PX,
                              cv2.BORDER_REPLICATE)
