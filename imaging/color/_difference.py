"""Colour differences: Delta L*C*H*, CIEDE2000 (Sharma, Wu & Dalal 2005) and CMC l:c.

See :mod:`imaging.color` for the conventions and references.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from imaging.color._arrays import FloatArray, as_colour_array, positive, working_dtype


def _chroma_hue(lab: FloatArray) -> tuple[FloatArray, FloatArray]:
    """CIE 1976 chroma ``C*ab`` and hue angle ``h_ab`` in degrees [0, 360)."""
    a_star, b_star = lab[..., 1], lab[..., 2]
    C_ab = np.hypot(a_star, b_star)
    h_ab = np.degrees(np.arctan2(b_star, a_star)) % 360.0
    return C_ab, h_ab


def delta_lch(
    lab_ref: ArrayLike, lab_sample: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Signed CIE 1976 lightness, chroma and hue differences, sample minus reference.

    Parameters
    ----------
    lab_ref : array_like, shape (..., 3)
        Reference (golden sample) CIELAB.
    lab_sample : array_like, shape (..., 3)
        Sample (production unit) CIELAB. Broadcasts against ``lab_ref``.

    Returns
    -------
    delta_L : ndarray
        ``L*_sample - L*_ref``; positive means the sample is lighter.
    delta_C : ndarray
        ``C*_sample - C*_ref``; positive means the sample is more saturated.
    delta_H : ndarray
        Metric hue difference ``2 sqrt(C*_ref C*_sample) sin(delta_h / 2)``, where
        ``delta_h = h_sample - h_ref`` is wrapped to (-180, 180] degrees; positive
        means the sample's hue is rotated anticlockwise in the a*b* plane
        (e.g. red towards yellow).

    Notes
    -----
    ``delta_L**2 + delta_C**2 + delta_H**2`` equals the squared CIE 1976 colour
    difference ``delta_E_ab**2``. ``delta_H`` is 0 when either colour is neutral.

    References
    ----------
    .. [1] CIE 15:2004, Colorimetry, section 8.2.2, Eq. (8.9)-(8.11).
    """
    Lab_1 = as_colour_array(lab_ref, "lab_ref")
    Lab_2 = as_colour_array(lab_sample, "lab_sample")
    C_1, h_1 = _chroma_hue(Lab_1)
    C_2, h_2 = _chroma_hue(Lab_2)
    delta_L = Lab_2[..., 0] - Lab_1[..., 0]
    delta_C = C_2 - C_1
    delta_h = 180.0 - (180.0 - (h_2 - h_1)) % 360.0  # wrapped to (-180, 180]
    delta_H = 2.0 * np.sqrt(C_1 * C_2) * np.sin(np.radians(delta_h) / 2.0)
    return delta_L, delta_C, delta_H


def ciede2000(
    lab1: ArrayLike,
    lab2: ArrayLike,
    *,
    kL: float = 1.0,
    kC: float = 1.0,
    kH: float = 1.0,
) -> FloatArray:
    """CIEDE2000 colour difference between two CIELAB arrays.

    Parameters
    ----------
    lab1, lab2 : array_like, shape (..., 3)
        CIELAB colours; the two broadcast against each other. The formula is
        symmetric, so the order does not matter.
    kL, kC, kH : float, optional
        Parametric weighting factors for lightness, chroma and hue. 1 (the
        reference conditions) unless an industry practice says otherwise
        (textiles often use ``kL = 2``).

    Returns
    -------
    ndarray, shape (...)
        ``delta_E_00``, >= 0: float32 when both inputs are float32 arrays (about 3x faster
        on images, within 1e-4 of float64 for colours in the CIELAB gamut), else float64.

    Notes
    -----
    Implements Eq. (1)-(22) of Sharma, Wu & Dalal (2005), including their
    conventions for the discontinuities: the hue of a neutral colour is 0, the
    hue difference is 0 when either chroma is 0, and the mean hue of a pair with
    a neutral member is the sum of the two hues (Eq. 14). Reproduces all 34 pairs
    of their Table 1 to 1e-4.

    References
    ----------
    .. [1] G. Sharma, W. Wu and E. N. Dalal, "The CIEDE2000 color-difference formula:
           Implementation notes, supplementary test data, and mathematical
           observations", Color Research & Application 30(1), 21-30 (2005).
           doi:10.1002/col.20070
    .. [2] CIE 142-2001, "Improvement to industrial colour-difference evaluation".
    """
    dtype = working_dtype(lab1, lab2)
    Lab_1 = as_colour_array(lab1, "lab1", dtype)
    Lab_2 = as_colour_array(lab2, "lab2", dtype)
    k_L = positive(kL, "kL")
    k_C = positive(kC, "kC")
    k_H = positive(kH, "kH")
    L_1, a_1, b_1 = Lab_1[..., 0], Lab_1[..., 1], Lab_1[..., 2]
    L_2, a_2, b_2 = Lab_2[..., 0], Lab_2[..., 1], Lab_2[..., 2]

    # Step 1: C'_i, h'_i.
    C_1_ab = np.hypot(a_1, b_1)  # Eq. (2)
    C_2_ab = np.hypot(a_2, b_2)
    C_bar_ab = (C_1_ab + C_2_ab) / 2.0  # Eq. (3)
    C_bar_ab_7 = C_bar_ab**7
    G = 0.5 * (1.0 - np.sqrt(C_bar_ab_7 / (C_bar_ab_7 + 25.0**7)))  # Eq. (4)
    a_1_p = (1.0 + G) * a_1  # Eq. (5)
    a_2_p = (1.0 + G) * a_2
    C_1_p = np.hypot(a_1_p, b_1)  # Eq. (6)
    C_2_p = np.hypot(a_2_p, b_2)
    # Eq. (7); arctan2(0, 0) = 0 gives the paper's h' = 0 for neutrals. The hues, and the
    # branches of Eq. (10) and (14) that compare their difference with 180 degrees, are
    # computed in float64 even for float32 input: a pair whose hues lie 180 degrees apart
    # (Sharma's pair 14) falls on either side of the branch with float32 rounding, and the
    # side depends on the CPU's vectorised arctan2 (it moved by 0.06 between two machines).
    h_1_p = np.degrees(np.arctan2(b_1.astype(np.float64), a_1_p.astype(np.float64))) % 360.0
    h_2_p = np.degrees(np.arctan2(b_2.astype(np.float64), a_2_p.astype(np.float64))) % 360.0

    # Step 2: delta L', delta C', delta H'.
    delta_L_p = L_2 - L_1  # Eq. (8)
    delta_C_p = C_2_p - C_1_p  # Eq. (9)
    C_1_p_C_2_p = C_1_p * C_2_p
    h_diff = h_2_p - h_1_p
    delta_h_p = np.where(h_diff > 180.0, h_diff - 360.0, h_diff)  # Eq. (10)
    delta_h_p = np.where(h_diff < -180.0, h_diff + 360.0, delta_h_p)
    delta_h_p = np.where(C_1_p_C_2_p == 0.0, 0.0, delta_h_p).astype(dtype, copy=False)
    delta_H_p = 2.0 * np.sqrt(C_1_p_C_2_p) * np.sin(np.radians(delta_h_p) / 2.0)  # Eq. (11)

    # Step 3: weighting functions and rotation term.
    L_bar_p = (L_1 + L_2) / 2.0  # Eq. (12)
    C_bar_p = (C_1_p + C_2_p) / 2.0  # Eq. (13)
    h_sum = h_1_p + h_2_p
    h_bar_p = np.where(
        np.abs(h_diff) <= 180.0,
        h_sum / 2.0,
        np.where(h_sum < 360.0, (h_sum + 360.0) / 2.0, (h_sum - 360.0) / 2.0),
    )  # Eq. (14)
    h_bar_p = np.where(C_1_p_C_2_p == 0.0, h_sum, h_bar_p).astype(dtype, copy=False)
    T = (
        1.0
        - 0.17 * np.cos(np.radians(h_bar_p - 30.0))
        + 0.24 * np.cos(np.radians(2.0 * h_bar_p))
        + 0.32 * np.cos(np.radians(3.0 * h_bar_p + 6.0))
        - 0.20 * np.cos(np.radians(4.0 * h_bar_p - 63.0))
    )  # Eq. (15)
    delta_theta = 30.0 * np.exp(-(((h_bar_p - 275.0) / 25.0) ** 2))  # Eq. (16)
    C_bar_p_7 = C_bar_p**7
    R_C = 2.0 * np.sqrt(C_bar_p_7 / (C_bar_p_7 + 25.0**7))  # Eq. (17)
    L_bar_p_50_2 = (L_bar_p - 50.0) ** 2
    S_L = 1.0 + 0.015 * L_bar_p_50_2 / np.sqrt(20.0 + L_bar_p_50_2)  # Eq. (18)
    S_C = 1.0 + 0.045 * C_bar_p  # Eq. (19)
    S_H = 1.0 + 0.015 * C_bar_p * T  # Eq. (20)
    R_T = -np.sin(np.radians(2.0 * delta_theta)) * R_C  # Eq. (21)

    # Eq. (22)
    term_L = delta_L_p / (k_L * S_L)
    term_C = delta_C_p / (k_C * S_C)
    term_H = delta_H_p / (k_H * S_H)
    delta_E_00_2 = term_L**2 + term_C**2 + term_H**2 + R_T * term_C * term_H
    # R_T * term_C * term_H can make the sum a rounding error below zero for near-identical pairs.
    return np.sqrt(np.maximum(delta_E_00_2, 0.0))


def delta_e_cmc(
    lab1: ArrayLike,
    lab2: ArrayLike,
    *,
    l: float = 2.0,  # noqa: E741 - the formula's own name for the lightness weight
    c: float = 1.0,
) -> FloatArray:
    """CMC l:c colour difference of ``lab2`` from the standard ``lab1``.

    Parameters
    ----------
    lab1 : array_like, shape (..., 3)
        CIELAB of the standard (reference). The tolerance ellipsoid is built
        around this colour, so the formula is **not** symmetric.
    lab2 : array_like, shape (..., 3)
        CIELAB of the sample (batch). Broadcasts against ``lab1``.
    l, c : float, optional
        Lightness and chroma weights: 2:1 (default) for acceptability, 1:1 for
        perceptibility.

    Returns
    -------
    ndarray, shape (...)
        ``delta_E_CMC(l:c)``, float64, >= 0.

    Notes
    -----
    Same as ``skimage.color.deltaE_cmc(lab1, lab2, kL=l, kC=c)``; note skimage
    defaults to 1:1.

    References
    ----------
    .. [1] F. J. J. Clarke, R. McDonald and B. Rigg, "Modification to the JPC79
           colour-difference formula", Journal of the Society of Dyers and
           Colourists 100(4), 128-132 (1984). doi:10.1111/j.1478-4408.1984.tb00969.x
    """
    Lab_1 = as_colour_array(lab1, "lab1")
    Lab_2 = as_colour_array(lab2, "lab2")
    l_weight = positive(l, "l")
    c_weight = positive(c, "c")
    L_1 = Lab_1[..., 0]
    C_1, h_1 = _chroma_hue(Lab_1)
    delta_L, delta_C, delta_H = delta_lch(Lab_1, Lab_2)

    S_L = np.where(L_1 < 16.0, 0.511, 0.040975 * L_1 / (1.0 + 0.01765 * L_1))
    S_C = 0.0638 * C_1 / (1.0 + 0.0131 * C_1) + 0.638
    C_1_4 = C_1**4
    F = np.sqrt(C_1_4 / (C_1_4 + 1900.0))
    T = np.where(
        (h_1 >= 164.0) & (h_1 <= 345.0),
        0.56 + np.abs(0.2 * np.cos(np.radians(h_1 + 168.0))),
        0.36 + np.abs(0.4 * np.cos(np.radians(h_1 + 35.0))),
    )
    S_H = S_C * (F * T + 1.0 - F)
    return np.sqrt(
        (delta_L / (l_weight * S_L)) ** 2 + (delta_C / (c_weight * S_C)) ** 2 + (delta_H / S_H) ** 2
    )
