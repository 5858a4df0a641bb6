"""Colour spaces: sRGB (IEC 61966-2-1), CIE XYZ and CIELAB (CIE 15:2004), Bradford adaptation.

See :mod:`imaging.color` for the conventions and references.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from imaging.color._arrays import FloatArray, as_colour_array, working_dtype


def _frozen(values: ArrayLike) -> FloatArray:
    array = np.array(values, dtype=np.float64)
    array.setflags(write=False)
    return array


D65: FloatArray = _frozen([0.95047, 1.0, 1.08883])
"""CIE standard illuminant D65, CIE 1931 2-degree observer, XYZ with ``Y = 1``.

The tabulated white (ASTM E308; also the default of ``skimage.color``). It is the
reference white of sRGB and of this project's CIELAB values.
"""

D50: FloatArray = _frozen([0.96422, 1.0, 0.82521])
"""CIE illuminant D50, CIE 1931 2-degree observer, XYZ with ``Y = 1``.

The ICC profile connection space white (ICC.1:2010); the illuminant of the
X-Rite ColorChecker reference L*a*b* values.
"""

# IEC 61966-2-1 primaries, CIE 1931 xy chromaticities (rows R, G, B).
_XY_PRIMARIES_SRGB = np.array([[0.64, 0.33], [0.30, 0.60], [0.15, 0.06]])


def _normalised_primary_matrix(xy_primaries: FloatArray, white: FloatArray) -> FloatArray:
    """RGB -> XYZ matrix whose columns are the primaries scaled so RGB (1, 1, 1) -> white."""
    x, y = xy_primaries[:, 0], xy_primaries[:, 1]
    P = np.stack([x / y, np.ones_like(x), (1.0 - x - y) / y])  # primaries as XYZ columns, Y = 1
    S = np.linalg.solve(P, white)
    return P * S


M_SRGB_TO_XYZ: FloatArray = _frozen(_normalised_primary_matrix(_XY_PRIMARIES_SRGB, D65))
"""Linear sRGB -> CIE XYZ (D65, ``Y = 1``), IEC 61966-2-1 primaries.

Built from the standard's primary chromaticities and normalised to :data:`D65`
(SMPTE RP 177 method), so sRGB white maps exactly onto the CIELAB reference white
and neutral greys have ``a* = b* = 0``. It agrees with the four-decimal matrices
printed in IEC 61966-2-1 to within 2e-4 (forward) and 4e-4 (inverse) per coefficient.
"""

M_XYZ_TO_SRGB: FloatArray = _frozen(np.linalg.inv(M_SRGB_TO_XYZ))
"""CIE XYZ (D65, ``Y = 1``) -> linear sRGB; the inverse of :data:`M_SRGB_TO_XYZ`."""

M_BRADFORD: FloatArray = _frozen(
    [
        [0.8951, 0.2664, -0.1614],
        [-0.7502, 1.7135, 0.0367],
        [0.0389, -0.0685, 1.0296],
    ]
)
"""Bradford cone-response matrix, XYZ -> sharpened RGB (Lam 1985; ICC.1:2010 Annex E)."""

_M_BRADFORD_INV: FloatArray = _frozen(np.linalg.inv(M_BRADFORD))

# CIE 15:2004 exact forms of the CIELAB constants (rather than 0.008856 and 903.3),
# which make the cube-root and linear branches of f meet continuously.
_EPSILON = 216.0 / 24389.0  # (6/29)**3
_KAPPA = 24389.0 / 27.0  # (29/3)**3

# IEC 61966-2-1 transfer function constants.
_SRGB_THRESHOLD_ENCODED = 0.04045
_SRGB_THRESHOLD_LINEAR = 0.0031308


def as_white(values: ArrayLike, name: str) -> FloatArray:
    """Return a reference white as float64 ``(..., 3)`` XYZ with positive components."""
    white = as_colour_array(values, name)
    if not np.all(white > 0):
        raise ValueError(
            f"{name} must be CIE XYZ tristimulus values with all components > 0 "
            f"(e.g. D65 = {tuple(D65.tolist())}); got {white.tolist()}."
        )
    return white


def srgb_to_linear(rgb: ArrayLike) -> FloatArray:
    """Decode sRGB values to linear light with the IEC 61966-2-1 transfer function.

    Parameters
    ----------
    rgb : array_like, shape (..., 3)
        sRGB-encoded values, nominally in [0, 1].

    Returns
    -------
    ndarray, shape (..., 3)
        Linear-light RGB, float64.

    Notes
    -----
    Piecewise curve: ``C / 12.92`` for ``C <= 0.04045``, else
    ``((C + 0.055) / 1.055) ** 2.4``. Values outside [0, 1] use the sign-symmetric
    extension ``f(-C) = -f(C)`` (as in scRGB), so out-of-gamut data never yields NaN.

    References
    ----------
    .. [1] IEC 61966-2-1:1999, Default RGB colour space - sRGB, Eq. (3)-(5).
    """
    V = as_colour_array(rgb, "rgb")
    V_abs = np.abs(V)
    linear = np.where(
        V_abs <= _SRGB_THRESHOLD_ENCODED,
        V_abs / 12.92,
        ((V_abs + 0.055) / 1.055) ** 2.4,
    )
    return np.copysign(linear, V)


_SRGB8_TO_LINEAR = srgb_to_linear(np.repeat(np.arange(256.0)[:, None] / 255.0, 3, axis=1))[:, 0]
_SRGB8_TO_LINEAR_F32 = _SRGB8_TO_LINEAR.astype(np.float32)
_SRGB8_TO_LINEAR_F32.setflags(write=False)


def srgb8_to_linear(rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Decode 8-bit sRGB code values to linear light, as float32, through a 256-entry table.

    Parameters
    ----------
    rgb : ndarray of uint8, any shape
        sRGB code values 0-255 (an image ``(H, W, 3)``, a patch list, ...).

    Returns
    -------
    ndarray of float32, same shape
        ``srgb_to_linear(rgb / 255)`` rounded to float32 (relative error below 6e-8).

    Notes
    -----
    An 8-bit channel has only 256 values, so a table of the exact float64 transfer function
    replaces the power function per pixel (about 40 times faster on a 1 MP image).
    """
    array = np.asarray(rgb)
    if array.dtype != np.uint8:
        raise ValueError(
            f"rgb must be uint8 sRGB code values, got dtype {array.dtype}; for floats in "
            "[0, 1] use srgb_to_linear"
        )
    return _SRGB8_TO_LINEAR_F32[array]


_ENCODE_STEPS = 16383  # linear_to_srgb8's table: 1/16383 steps stay below 1 code value


def linear_to_srgb8(rgb: NDArray[np.floating]) -> NDArray[np.uint8]:
    """Encode linear light (clipped to [0, 1]) as 8-bit sRGB through a 16384-entry table.

    For images (a calibrated photo back to displayable pixels): the table replaces the power
    function per pixel; the quantisation of the input to 1/16383 moves no code value by more
    than one.
    """
    index = np.clip(np.asarray(rgb, np.float32), 0.0, 1.0) * np.float32(_ENCODE_STEPS)
    return _LINEAR_TO_SRGB8_U8[(index + np.float32(0.5)).astype(np.int32)]


def linear_to_srgb(rgb: ArrayLike) -> FloatArray:
    """Encode linear-light RGB with the IEC 61966-2-1 sRGB transfer function.

    Parameters
    ----------
    rgb : array_like, shape (..., 3)
        Linear-light RGB, nominally in [0, 1].

    Returns
    -------
    ndarray, shape (..., 3)
        sRGB-encoded values, float64, not clipped.

    Notes
    -----
    ``12.92 L`` for ``L <= 0.0031308``, else ``1.055 L ** (1 / 2.4) - 0.055``, with the
    sign-symmetric extension for negative input. Clip the result yourself when the
    output must be displayable.

    References
    ----------
    .. [1] IEC 61966-2-1:1999, Default RGB colour space - sRGB, Eq. (7)-(9).
    """
    L = as_colour_array(rgb, "rgb")
    L_abs = np.abs(L)
    encoded = np.where(
        L_abs <= _SRGB_THRESHOLD_LINEAR,
        12.92 * L_abs,
        1.055 * L_abs ** (1.0 / 2.4) - 0.055,
    )
    return np.copysign(encoded, L)


_LINEAR_TO_SRGB8_U8 = np.round(255.0 * linear_to_srgb(
    np.repeat(np.linspace(0.0, 1.0, _ENCODE_STEPS + 1)[:, None], 3, axis=1))[:, 0]
).astype(np.uint8)
_LINEAR_TO_SRGB8_U8.setflags(write=False)


def linear_rgb_to_xyz(rgb: ArrayLike) -> FloatArray:
    """Convert linear sRGB to CIE XYZ (D65, ``Y = 1``) with :data:`M_SRGB_TO_XYZ`.

    Parameters
    ----------
    rgb : array_like, shape (..., 3)
        Linear-light sRGB.

    Returns
    -------
    ndarray, shape (..., 3)
        CIE XYZ tristimulus values relative to D65 white ``Y = 1``.

    References
    ----------
    .. [1] IEC 61966-2-1:1999, Default RGB colour space - sRGB, Eq. (6).
    """
    dtype = working_dtype(rgb)
    return as_colour_array(rgb, "rgb", dtype) @ M_SRGB_TO_XYZ.T.astype(dtype)


def xyz_to_linear_rgb(xyz: ArrayLike) -> FloatArray:
    """Convert CIE XYZ (D65, ``Y = 1``) to linear sRGB with :data:`M_XYZ_TO_SRGB`.

    Parameters
    ----------
    xyz : array_like, shape (..., 3)
        CIE XYZ relative to D65 white ``Y = 1``.

    Returns
    -------
    ndarray, shape (..., 3)
        Linear-light sRGB, not clipped.

    References
    ----------
    .. [1] IEC 61966-2-1:1999, Default RGB colour space - sRGB, Eq. (10).
    """
    return as_colour_array(xyz, "xyz") @ M_XYZ_TO_SRGB.T


def xyz_to_lab(xyz: ArrayLike, *, white: ArrayLike = D65) -> FloatArray:
    """Convert CIE XYZ to CIE 1976 L*a*b*.

    Parameters
    ----------
    xyz : array_like, shape (..., 3)
        CIE XYZ tristimulus values on the ``Y = 1`` scale.
    white : array_like, shape (3,) or broadcastable (..., 3), optional
        XYZ of the reference white, ``Y = 1``. Default :data:`D65`.

    Returns
    -------
    ndarray, shape (..., 3)
        CIELAB ``(L*, a*, b*)``.

    Notes
    -----
    Uses the exact CIE 15:2004 constants ``epsilon = (6/29)**3`` and
    ``kappa = (29/3)**3``. ``skimage.color.xyz2lab`` uses the rounded 0.008856 and
    7.787, which differ from this by at most ~4e-5 in ``L*`` for very dark colours.

    References
    ----------
    .. [1] CIE 15:2004, Colorimetry, section 8.2.1, Eq. (8.1)-(8.5).
    """
    dtype = working_dtype(xyz)
    XYZ = as_colour_array(xyz, "xyz", dtype)
    XYZ_n = as_white(white, "white").astype(dtype)
    t = XYZ / XYZ_n
    f = np.where(t > _EPSILON, np.cbrt(t), (_KAPPA * t + 16.0) / 116.0)
    f_X, f_Y, f_Z = f[..., 0], f[..., 1], f[..., 2]
    L_star = 116.0 * f_Y - 16.0  # Eq. (8.1)
    a_star = 500.0 * (f_X - f_Y)  # Eq. (8.2)
    b_star = 200.0 * (f_Y - f_Z)  # Eq. (8.3)
    return np.stack([L_star, a_star, b_star], axis=-1)


def lab_to_xyz(lab: ArrayLike, *, white: ArrayLike = D65) -> FloatArray:
    """Convert CIE 1976 L*a*b* to CIE XYZ; the exact inverse of :func:`xyz_to_lab`.

    Parameters
    ----------
    lab : array_like, shape (..., 3)
        CIELAB ``(L*, a*, b*)``.
    white : array_like, shape (3,) or broadcastable (..., 3), optional
        XYZ of the reference white, ``Y = 1``. Default :data:`D65`.

    Returns
    -------
    ndarray, shape (..., 3)
        CIE XYZ tristimulus values on the ``Y = 1`` scale. Not clipped: a Lab
        colour outside the real-colour solid can give negative components.

    References
    ----------
    .. [1] CIE 15:2004, Colorimetry, section 8.2.1 (inverse of Eq. 8.1-8.5).
    """
    Lab = as_colour_array(lab, "lab")
    XYZ_n = as_white(white, "white")
    L_star, a_star, b_star = Lab[..., 0], Lab[..., 1], Lab[..., 2]
    f_Y = (L_star + 16.0) / 116.0
    f_X = f_Y + a_star / 500.0
    f_Z = f_Y - b_star / 200.0
    f = np.stack([f_X, f_Y, f_Z], axis=-1)
    t = np.where(f**3 > _EPSILON, f**3, (116.0 * f - 16.0) / _KAPPA)
    return t * XYZ_n


def chromatic_adaptation_bradford(
    xyz: ArrayLike, white_src: ArrayLike, white_dst: ArrayLike
) -> FloatArray:
    """Adapt CIE XYZ from one illuminant to another with the linear Bradford transform.

    A von Kries scaling in the Bradford sharpened cone space:
    ``XYZ_dst = M_A^-1 diag(rho_d/rho_s, gamma_d/gamma_s, beta_d/beta_s) M_A XYZ_src``.

    Parameters
    ----------
    xyz : array_like, shape (..., 3)
        CIE XYZ under ``white_src``.
    white_src, white_dst : array_like, shape (3,) or broadcastable (..., 3)
        XYZ of the source and destination whites, e.g. :data:`D50` and :data:`D65`.

    Returns
    -------
    ndarray, shape (..., 3)
        Corresponding colours under ``white_dst``.

    Notes
    -----
    This is the linearised Bradford transform used by ICC colour management (the
    original also has a small non-linear correction on the blue channel). It maps
    ``white_src`` exactly onto ``white_dst``.

    References
    ----------
    .. [1] K. M. Lam, "Metamerism and colour constancy", PhD thesis, University of
           Bradford (1985).
    .. [2] ICC.1:2010, Image technology colour management - Architecture, profile
           format, and data structure, Annex E.
    """
    XYZ = as_colour_array(xyz, "xyz")
    XYZ_ws = as_white(white_src, "white_src")
    XYZ_wd = as_white(white_dst, "white_dst")
    cone_ws = XYZ_ws @ M_BRADFORD.T
    cone_wd = XYZ_wd @ M_BRADFORD.T
    cone = (XYZ @ M_BRADFORD.T) * (cone_wd / cone_ws)
    return cone @ _M_BRADFORD_INV.T


def linear_rgb_to_lab(rgb: ArrayLike, *, white: ArrayLike = D65) -> FloatArray:
    """Convert linear sRGB to CIELAB.

    Parameters
    ----------
    rgb : array_like, shape (..., 3)
        Linear-light sRGB.
    white : array_like, shape (3,), optional
        CIELAB reference white. Default :data:`D65`, the sRGB white. Any other
        white first Bradford-adapts the D65 XYZ to it (ICC practice), so sRGB
        white still maps to ``L* = 100, a* = b* = 0``.

    Returns
    -------
    ndarray, shape (..., 3)
        CIELAB ``(L*, a*, b*)``.
    """
    XYZ = linear_rgb_to_xyz(rgb)
    XYZ_n = as_white(white, "white")
    if not np.array_equal(XYZ_n, D65):
        XYZ = chromatic_adaptation_bradford(XYZ, D65, XYZ_n)
    return xyz_to_lab(XYZ, white=XYZ_n)


def srgb_to_lab(rgb: ArrayLike, *, white: ArrayLike = D65) -> FloatArray:
    """Convert sRGB-encoded values in [0, 1] to CIELAB.

    Parameters
    ----------
    rgb : array_like, shape (..., 3)
        sRGB-encoded floats, nominally [0, 1] (divide 8-bit data by 255).
    white : array_like, shape (3,), optional
        CIELAB reference white, default :data:`D65`; see :func:`linear_rgb_to_lab`.

    Returns
    -------
    ndarray, shape (..., 3)
        CIELAB ``(L*, a*, b*)``.

    Notes
    -----
    Matches ``skimage.color.rgb2lab`` (illuminant D65, 2 degree) to about 0.01 in
    L*a*b*; the residue comes from skimage's RGB -> XYZ matrix, whose white
    (0.950456, 1, 1.088754) is not exactly its own Lab white (0.95047, 1, 1.08883).
    Here sRGB white maps exactly to ``(100, 0, 0)``.

    References
    ----------
    .. [1] IEC 61966-2-1:1999, Default RGB colour space - sRGB.
    .. [2] CIE 15:2004, Colorimetry, section 8.2.1.
    """
    return linear_rgb_to_lab(srgb_to_linear(rgb), white=white)


def lab_to_srgb(lab: ArrayLike, *, white: ArrayLike = D65) -> FloatArray:
    """Convert CIELAB to sRGB-encoded values; the inverse of :func:`srgb_to_lab`.

    Parameters
    ----------
    lab : array_like, shape (..., 3)
        CIELAB ``(L*, a*, b*)`` relative to ``white``.
    white : array_like, shape (3,), optional
        CIELAB reference white, default :data:`D65`.

    Returns
    -------
    ndarray, shape (..., 3)
        sRGB-encoded floats. Not clipped: out-of-gamut colours fall outside [0, 1]
        so that callers can detect them; use ``np.clip(out, 0, 1)`` for display.
    """
    XYZ_n = as_white(white, "white")
    XYZ = lab_to_xyz(lab, white=XYZ_n)
    if not np.array_equal(XYZ_n, D65):
        XYZ = chromatic_adaptation_bradford(XYZ, XYZ_n, D65)
    return linear_to_srgb(xyz_to_linear_rgb(XYZ))


