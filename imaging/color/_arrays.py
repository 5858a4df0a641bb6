"""Array checks shared by the colour conversions and the colour differences."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


def working_dtype(*arrays: ArrayLike) -> type:
    """float32 when every input is a float32 array (images: ~3x faster, errors far below
    what a colour difference can show), float64 otherwise (lists, scalars, float64 data)."""
    return np.float32 if all(getattr(a, "dtype", None) == np.float32 for a in arrays) \
        else np.float64


def as_colour_array(values: ArrayLike, name: str, dtype: type = np.float64) -> FloatArray:
    """Return ``values`` as `dtype` (float64) with three channels on the last axis, or raise."""
    array = np.asarray(values, dtype=dtype)
    if array.ndim == 0 or array.shape[-1] != 3:
        raise ValueError(
            f"{name} must have shape (..., 3) with the three colour channels on the last "
            f"axis; got shape {array.shape}. Put the channel axis last "
            f"(e.g. np.moveaxis(image, 0, -1) for channel-first data), or pass a single "
            f"colour as a length-3 sequence."
        )
    return array


def positive(value: float, name: str) -> float:
    value = float(value)
    if not value > 0:
        raise ValueError(f"{name} must be a positive weighting factor; got {value}.")
    return value
