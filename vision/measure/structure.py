"""Structural similarity (SSIM) between a unit and the golden sample.

The pipeline registers a production unit onto the golden sample, converts both to greyscale with
:func:`luminance` and measures :func:`structural_similarity` inside the overlap of the two images.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["luminance", "structural_similarity"]

# scipy.ndimage (and therefore skimage) cuts the Gaussian at int(truncate * sigma + 0.5) samples;
# skimage picks truncate = 3.5 so that sigma = 1.5 gives the paper's 11 x 11 window.
_TRUNCATE = 3.5

# ITU-R BT.709 luma coefficients; sRGB shares the BT.709 primaries and white point.
_REC709_LUMA = np.array([[0.2126, 0.7152, 0.0722]], dtype=np.float32)


def _window_radius(sigma: float) -> int:
    return int(_TRUNCATE * sigma + 0.5)


def _gaussian_kernel(sigma: float, radius: int) -> np.ndarray:
    # Built in float64 and normalised exactly as scipy.ndimage does, then rounded once to float32.
    taps = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    return kernel.astype(np.float32)


def _validate_image_pair(im1: np.ndarray, im2: np.ndarray, window: int, sigma: float) -> None:
    for name, im in (("im1", im1), ("im2", im2)):
        if im.ndim != 2:
            raise ValueError(
                f"{name} must be a 2-D greyscale image, got shape {im.shape}; "
                "convert colour images first, e.g. with vision.measure.structure.luminance(rgb)"
            )
        if im.dtype == np.bool_ or not (
            np.issubdtype(im.dtype, np.integer) or np.issubdtype(im.dtype, np.floating)
        ):
            raise TypeError(
                f"{name} must have a real integer or floating dtype, got {im.dtype}; "
                "convert it with im.astype(np.float32)"
            )
    if im1.shape != im2.shape:
        raise ValueError(
            f"im1 and im2 must have the same shape, got {im1.shape} and {im2.shape}; "
            "register im2 onto im1 (or crop both to their overlap) before comparing"
        )
    if min(im1.shape) < window:
        raise ValueError(
            f"images of shape {im1.shape} are smaller than the {window}x{window} Gaussian window "
            f"that sigma={sigma:g} needs; use images of at least {window}x{window} pixels "
            "or pass a smaller sigma"
        )


def _validate_positive(name: str, value: float, hint: str) -> None:
    if value is None or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}; {hint}")


# Rows of output computed per pass. Streaming ten full-image float32 arrays through memory made
# 2016 x 1512 images memory-bound (and page-fault-bound on fresh allocations); with strips of 64
# rows the working buffers (~6 MB at that width) stay in cache. Each strip is filtered with
# `radius` extra rows above and below, so the result is bit-identical to filtering whole images.
_STRIP_ROWS = 64


def _ssim_map(
    im1: np.ndarray,
    im2: np.ndarray,
    *,
    offset: np.float32,
    kernel: np.ndarray,
    C1: np.float32,
    C2: np.float32,
) -> np.ndarray:
    """SSIM map, Eq. (13), of two validated 2-D images; see structural_similarity."""
    height, width = im1.shape
    radius = kernel.size // 2
    ssim_map = np.empty((height, width), dtype=np.float32)
    buffer_rows = min(height, _STRIP_ROWS + 2 * radius)
    x_buf, y_buf, xy_buf, x2_buf, y2_buf, mu_x_buf, mu_y_buf, s_xy_buf, s_x2_buf, s_y2_buf = (
        np.empty((buffer_rows, width), dtype=np.float32) for _ in range(10)
    )

    for top in range(0, height, _STRIP_ROWS):
        bottom = min(top + _STRIP_ROWS, height)
        # Rows read, with the filter's margin; at the image edges OpenCV reflects as scipy does.
        read_top, read_bottom = max(top - radius, 0), min(bottom + radius, height)
        n = read_bottom - read_top
        x, y, xy, x2, y2 = (b[:n] for b in (x_buf, y_buf, xy_buf, x2_buf, y2_buf))
        # The single conversion of the inputs to float32.
        np.subtract(im1[read_top:read_bottom], offset, out=x, dtype=np.float32)
        np.subtract(im2[read_top:read_bottom], offset, out=y, dtype=np.float32)
        np.multiply(x, y, out=xy)
        np.square(x, out=x2)
        np.square(y, out=y2)
        # Weighted local statistics, Eqs. (14)-(16), before the shift back.
        for src, dst in (
            (x, mu_x_buf),
            (y, mu_y_buf),
            (xy, s_xy_buf),
            (x2, s_x2_buf),
            (y2, s_y2_buf),
        ):
            cv2.sepFilter2D(
                src, cv2.CV_32F, kernel, kernel, dst=dst[:n], borderType=cv2.BORDER_REFLECT
            )

        # Keep only the rows of this strip, whose windows lay inside the rows read.
        rows = slice(top - read_top, bottom - read_top)
        mu_x, mu_y = mu_x_buf[rows], mu_y_buf[rows]
        sigma_xy, sigma_x2, sigma_y2 = s_xy_buf[rows], s_x2_buf[rows], s_y2_buf[rows]
        scratch = xy[: bottom - top]
        np.multiply(mu_x, mu_y, out=scratch)
        sigma_xy -= scratch
        np.square(mu_x, out=scratch)
        sigma_x2 -= scratch
        np.square(mu_y, out=scratch)
        sigma_y2 -= scratch
        mu_x += offset
        mu_y += offset

        # Eq. (13), in place: (2 mu_x mu_y + C1)(2 sigma_xy + C2) /
        # ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2)).
        numerator = ssim_map[top:bottom]
        np.multiply(mu_x, mu_y, out=numerator)
        numerator *= 2
        numerator += C1
        sigma_xy *= 2
        sigma_xy += C2
        numerator *= sigma_xy
        denominator = mu_x
        np.square(mu_x, out=denominator)
        np.square(mu_y, out=mu_y)
        denominator += mu_y
        denominator += C1
        sigma_x2 += sigma_y2
        sigma_x2 += C2
        denominator *= sigma_x2
        numerator /= denominator
    return ssim_map


def structural_similarity(
    im1: np.ndarray,
    im2: np.ndarray,
    *,
    data_range: float,
    sigma: float = 1.5,
    K1: float = 0.01,
    K2: float = 0.03,
    mask: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """Mean structural similarity index (SSIM) of two greyscale images, and its map.

    Parameters
    ----------
    im1, im2 : (M, N) ndarray
        Greyscale (luminance) images of the same shape, any real integer or floating dtype.
        They are converted once to float32, so integers above 2**24 lose precision.
    data_range : float
        Dynamic range L of the pixel values (maximum minus minimum possible value): 255 for
        uint8 images and for the output of :func:`luminance`, 1.0 for floats in [0, 1].
        Required because a guess from the dtype is wrong for floating images.
    sigma : float, optional
        Standard deviation, in pixels, of the Gaussian weighting window. The window is cut at
        ``int(3.5 * sigma + 0.5)`` pixels on each side of its centre (11 x 11 for 1.5).
    K1, K2 : float, optional
        Small constants that keep the luminance and contrast-structure terms stable where the
        local means or variances are near zero: ``C1 = (K1 L)**2``, ``C2 = (K2 L)**2``.
    mask : (M, N) ndarray of bool, optional
        Pixels that hold valid data, e.g. the overlap of two registered images. The mean is then
        taken only over pixels whose whole window lies inside `mask`: the mask is eroded by the
        window radius, with pixels beyond the image border counted as invalid. The SSIM map is
        still computed everywhere; its values outside the eroded mask mix in invalid pixels.

    Returns
    -------
    mssim : float
        Mean of the SSIM map over the valid pixels, in [-1, 1]; 1 only for identical images.
    ssim_map : (M, N) ndarray of float32
        Local SSIM at every pixel.

    Raises
    ------
    ValueError
        If the images are not 2-D, differ in shape or are smaller than the window; if
        `data_range`, `sigma`, `K1` or `K2` is not a finite number > 0; if `mask` has the wrong
        shape or leaves no pixel whose whole window lies inside it.
    TypeError
        If an image is boolean, complex or non-numeric, or `mask` is not boolean.

    Notes
    -----
    The defaults reproduce Wang et al. (2004), Section III-B: an 11 x 11 circular-symmetric
    Gaussian window with standard deviation 1.5 normalised to unit sum, K1 = 0.01, K2 = 0.03, and
    weighted population (not sample) statistics, Eqs. (14)-(16), in the SSIM index, Eq. (13).

    Without `mask` the result matches ``skimage.metrics.structural_similarity(im1, im2,
    data_range=L, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, full=True)``:
    the image border is extended by half-sample symmetric reflection (scipy's ``'reflect'``,
    OpenCV's ``BORDER_REFLECT``) and the mean, Eq. (17), leaves out a strip of window-radius
    pixels along every edge, where the window reaches past the image. Passing an all-True
    `mask` gives the same mean.

    Filtering is done with OpenCV in float32. To limit cancellation in ``E[x**2] - E[x]**2``,
    both images are shifted by the mean of their means before filtering and the local means
    shifted back; variances and covariance do not change under the shift. Because that offset
    is a global mean, a single NaN or infinite pixel makes the whole map and mean NaN.

    References
    ----------
    .. [1] Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image quality assessment:
       from error visibility to structural similarity," IEEE Transactions on Image Processing,
       vol. 13, no. 4, pp. 600-612, 2004. :doi:`10.1109/TIP.2003.819861`

    Examples
    --------
    >>> import numpy as np
    >>> im = np.arange(32 * 32, dtype=np.uint8).reshape(32, 32)
    >>> mssim, ssim_map = structural_similarity(im, im, data_range=255)
    >>> mssim, ssim_map.shape
    (1.0, (32, 32))
    """
    im1 = np.asarray(im1)
    im2 = np.asarray(im2)
    _validate_positive(
        "data_range", data_range, "pass the range of possible pixel values (255 for uint8)"
    )
    _validate_positive("sigma", sigma, "the paper uses 1.5")
    _validate_positive("K1", K1, "the paper uses 0.01")
    _validate_positive("K2", K2, "the paper uses 0.03")
    radius = _window_radius(sigma)
    window = 2 * radius + 1
    _validate_image_pair(im1, im2, window, sigma)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype != np.bool_:
            raise TypeError(f"mask must be boolean, got dtype {mask.dtype}; pass e.g. mask != 0")
        if mask.shape != im1.shape:
            raise ValueError(f"mask must have the images' shape {im1.shape}, got {mask.shape}")

    # Shift both images by the mean of their global means so that E[x^2] stays close to the
    # variance, limiting float32 cancellation. One offset for both keeps identical windows
    # bit-identical, so they score exactly 1.
    offset = np.float32(0.5 * (im1.mean(dtype=np.float64) + im2.mean(dtype=np.float64)))
    ssim_map = _ssim_map(
        im1,
        im2,
        offset=offset,
        kernel=_gaussian_kernel(sigma, radius),
        C1=np.float32((K1 * data_range) ** 2),
        C2=np.float32((K2 * data_range) ** 2),
    )

    if mask is None:
        # Same as eroding an all-True mask with invalid pixels beyond the border.
        mssim = ssim_map[radius:-radius, radius:-radius].mean(dtype=np.float64)
    else:
        valid = cv2.erode(
            mask.astype(np.uint8),
            np.ones((window, window), dtype=np.uint8),
            borderType=cv2.BORDER_CONSTANT,
            borderValue=0,
        ).astype(bool)
        if not valid.any():
            raise ValueError(
                f"mask leaves no pixel whose {window}x{window} window lies entirely inside it "
                "and inside the image; the valid region must contain a "
                f"{window}x{window} square"
            )
        mssim = ssim_map[valid].mean(dtype=np.float64)
    return float(mssim), ssim_map


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Greyscale input for :func:`structural_similarity` from an 8-bit RGB image.

    Parameters
    ----------
    rgb : (M, N, 3) ndarray of uint8
        sRGB-encoded image in R, G, B channel order. Images decoded by OpenCV are B, G, R:
        pass ``bgr[..., ::-1]``.

    Returns
    -------
    luma : (M, N) ndarray of float32
        ``0.2126 R' + 0.7152 G' + 0.0722 B'`` in [0, 255]; use ``data_range=255``.

    Notes
    -----
    The weights are the ITU-R BT.709 luma coefficients, applied to the gamma-encoded values
    without linearisation. Strictly this is luma Y', not CIE luminance Y. It is what
    ``skimage.color.rgb2gray`` computes (up to its rounded weights and a 1/255 scale). SSIM was
    designed on gamma-encoded 8-bit greyscale images, so encoded values are the right input.

    References
    ----------
    .. [1] ITU-R Recommendation BT.709-6, "Parameter values for the HDTV standards for
       production and international programme exchange," 2015, Item 3.2.
    .. [2] IEC 61966-2-1:1999, "Multimedia systems and equipment - Colour measurement and
       management - Part 2-1: Default RGB colour space - sRGB."
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"rgb must have shape (M, N, 3), got {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise TypeError(
            f"rgb must be uint8, got {rgb.dtype}; convert with "
            "np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8) for floats in [0, 1]"
        )
    # cv2.transform keeps the source depth, so convert first to get an unrounded float32 result.
    return cv2.transform(rgb.astype(np.float32), _REC709_LUMA)
