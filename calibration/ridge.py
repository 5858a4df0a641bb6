"""A ridge on the root-polynomial's cross terms: the correction leans on the 3x3 matrix.

The root-polynomial of degree 2 (Finlayson, Mackiewicz & Hurlbert 2015) maps R, G, B and
sqrt(RG), sqrt(GB), sqrt(RB) to linear sRGB: 18 parameters for at most 24 patches. On real
phone photos the cross terms chase each photo's rendering of a few saturated patches, and a
colour between them (a bluish white sheet, a product) moves from photo to photo with them.
A ridge on those 9 parameters only (the matrix part stays free, so a camera's white balance
and primaries are not shrunk) trades a little of the chart's fit for steadier colours between
the patches.

The penalty is fixed for a photo (it is computed once from all its usable patches and kept
when a patch is left out), so :mod:`calibration.weighted`'s leave-one-out shortcuts stay
exact, and it scales with the data: ``strength`` times the mean diagonal of the normal
equations, trace(sum_i D_i^T R_i^T R_i D_i) / p, which is sum_i |t_i|^2 |R_i|_F^2 / p for a
patch's terms t_i and metric root R_i.

References
----------
.. [1] A. E. Hoerl, R. W. Kennard, "Ridge Regression: Biased Estimation for Nonorthogonal
       Problems", Technometrics 12(1), 55-67 (1970). https://doi.org/10.1080/00401706.1970.10488634
"""

from __future__ import annotations

import numpy as np

from calibration.weighted import model_terms

__all__ = ["CROSS_TERM_RIDGE", "cross_term_penalty"]

CROSS_TERM_RIDGE = 1e-3
"""Strength of the ridge, relative to the normal equations' mean diagonal. Chosen on
`benchmarks/eval_card_real.py --split tune` among 0, 3e-4, 1e-3 and 3e-3 (the nested
leave-one-out with the light left in, and the sheet's colour between photos of one set-up)."""

_MATRIX_TERMS = 3  # R, G, B: the terms the ridge leaves free


def cross_term_penalty(camera: np.ndarray, metric_roots: np.ndarray, model: str, *,
                       strength: float = CROSS_TERM_RIDGE) -> np.ndarray | None:
    """(3k,) ridge weights for :mod:`calibration.weighted`'s fits of `model` to linear camera
    RGB `camera` (m, 3) with `metric_roots` (m, 3, 3); None for models without cross terms."""
    if model != "root-polynomial-2" or strength <= 0:
        return None
    terms = model_terms(np.asarray(camera, np.float64), model)
    k = terms.shape[1]
    trace = float(np.sum((terms**2).sum(axis=1) * (metric_roots**2).sum(axis=(1, 2))))
    penalty = np.zeros((3, k))
    penalty[:, _MATRIX_TERMS:] = strength * trace / (3 * k)
    return penalty.ravel()
