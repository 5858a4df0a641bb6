"""The ONNX defect model at run time: a per-pixel defect probability map, and regions from it.

The model (trained in ``models/``; see ``models/MODEL_CARD.md``) compares a registered,
colour-calibrated unit crop with the golden crop and gives each pixel the probability that the
unit shows a defect there: scratches, stains, holes, foreign matter, missing or added parts,
print errors. It is trained not to flag residual light and white-balance change, misregistration
of up to 3 px, blur, sensor noise, JPEG and a small uniform colour drift.

Only onnxruntime is needed. One inference session per process is created on first use and
shared (onnxruntime sessions are thread-safe for ``run``).

Typical use, at the pipeline's analysis resolution (long side 1024)::

    prob = predict_defect_map(golden_rgb, unit_on_golden_rgb, valid=overlap_mask)
    regions = find_regions(prob, threshold=DEFAULT_THRESHOLD, min_area_px=40)
    score = image_score(prob)
    versions_model = model_version()  # e.g. "sealcheck-defect-unet v1 sha256:0a1b2c3d4e5f"
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from vision._regions import hysteresis, joined_regions
from vision.severity import CRITICAL_AREA_FRACTION, MAJOR_AREA_FRACTION, area_severity

__all__ = [
    "DEFAULT_THRESHOLD",
    "DefectModelError",
    "DefectModelRegion",
    "ModelConfig",
    "configure",
    "find_regions",
    "image_score",
    "model_path",
    "model_version",
    "predict_defect_map",
]

MODEL_FILE = "defect_model.onnx"
MODEL_NAME = "sealcheck-defect-unet"
FORMAT_VERSION = "1"
"""Inputs/outputs contract version this runtime speaks; a model file of another is refused."""

DEFAULT_THRESHOLD = 0.5
"""Probability above which a pixel seeds a defect region (see the model card's figures)."""

JOIN_GAP_PX = 4
"""Region pieces at most this far apart are one region (:func:`find_regions`)."""

TILE = 1024
"""Tile side, px. A pair at the analysis resolution (long side 1024) is one tile."""

_TILE_OVERLAP = 64  # px each tile sees beyond the part it keeps (the network's context)

Severity = Literal["critical", "major", "minor"]


class DefectModelError(ValueError):
    """The model file is missing, is not an exported sealcheck defect model, or cannot load.

    A configuration problem (``SEALCHECK_DEFECT_MODEL``, an incomplete install), not a bug:
    callers report it in one line.
    """


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Which model file the process's sessions load, and how many threads each runs."""

    path: Path | None = None
    """An exported model file; None: the packaged one."""
    threads: int | None = None
    """Intra-op threads; None: the CPUs this process may use, at most 8 (:func:`_threads`)."""


_config = ModelConfig()


def configure(*, path: str | Path | None = None, threads: int | None = None) -> ModelConfig:
    """Use the model file `path` and `threads` intra-op threads; return the configuration
    replaced, so that a caller can put it back.

    This library reads no environment variables: the programs that use it (sealcheck's CLI,
    service and batch workers) read their settings and pass them here. A session already
    created for a path keeps the threads it was created with.
    """
    global _config
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    previous = _config
    _config = ModelConfig(Path(path) if path is not None else None, threads)
    return previous


def model_path() -> Path:
    """The configured model file (:func:`configure`), else the packaged one."""
    if _config.path is not None:
        return _config.path
    import models

    return Path(models.__file__).resolve().parent / MODEL_FILE


def _threads() -> int:
    """Intra-op threads: the configured number, else the CPUs this process may use (<= 8).

    On the 2-core development machine, idle, 2 threads run a 1024x768 pair in about half the
    time of 1; when other processes keep the cores busy, 1 thread is faster (the threads wait
    for each other at every layer), which is what the setting is for.
    """
    if _config.threads is not None:
        return _config.threads
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


_lock = threading.Lock()
_sessions: dict[Path, tuple[object, str]] = {}


def _session(path: str | Path | None = None):
    """The process's onnxruntime session for `path` (created once) and the model's version."""
    path = Path(path or model_path()).resolve()
    with _lock:
        if path not in _sessions:
            _sessions[path] = _load(path)
        return _sessions[path]


def _load(path: Path):
    try:
        import onnxruntime
    except ImportError as error:  # pragma: no cover - a dependency of the package
        raise ImportError("the defect model needs onnxruntime: pip install onnxruntime") from error
    if path.suffix != ".onnx":
        raise DefectModelError(f"defect model {path} is not an .onnx file; set "
                               "SEALCHECK_DEFECT_MODEL to a model exported by models/export.py")
    if not path.is_file():
        raise DefectModelError(
            f"defect model {path} not found; train and export it (see models/MODEL_CARD.md) or "
            "set SEALCHECK_DEFECT_MODEL to an exported .onnx file")
    data = path.read_bytes()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = _threads()
    options.inter_op_num_threads = 1  # one chain of convolutions: nothing to run side by side
    # Idle threads sleep instead of spinning: spinning burns the CPU that the others need.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        session = onnxruntime.InferenceSession(data, options,
                                               providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime's own exception types are not importable API
        raise DefectModelError(f"defect model {path} cannot be loaded ({error}); re-export it "
                               "with models/export.py") from None
    meta = session.get_modelmeta().custom_metadata_map
    if meta.get("name") != MODEL_NAME or meta.get("format_version") != FORMAT_VERSION:
        raise DefectModelError(
            f"{path} is not a {MODEL_NAME} model of format version {FORMAT_VERSION} (its metadata "
            f"says name={meta.get('name')!r}, format_version={meta.get('format_version')!r}); "
            "re-export it with models/export.py")
    digest = hashlib.sha256(data).hexdigest()
    return session, f"{MODEL_NAME} v{FORMAT_VERSION} sha256:{digest[:12]}"


def model_version(path: str | Path | None = None) -> str:
    """Name, format version and SHA-256 prefix of the model, for the report's ``versions``."""
    return _session(path)[1]


def _check_pair(golden_rgb: np.ndarray, unit_rgb: np.ndarray, valid: np.ndarray | None) -> None:
    for name, image in (("golden_rgb", golden_rgb), ("unit_rgb", unit_rgb)):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"{name} must be an 8-bit RGB image (H, W, 3) uint8; got "
                             f"{image.dtype} {image.shape}. Convert with vision.decode first.")
    if golden_rgb.shape != unit_rgb.shape:
        raise ValueError(f"golden_rgb {golden_rgb.shape} and unit_rgb {unit_rgb.shape} differ in "
                         "size; warp the unit onto the golden (registration) first.")
    if min(golden_rgb.shape[:2]) < 16:
        raise ValueError(f"images of {golden_rgb.shape[:2]} are too small; at least 16x16 px "
                         "are needed.")
    if valid is not None and valid.shape != golden_rgb.shape[:2]:
        raise ValueError(f"valid must be a (H, W) mask of the images' size {golden_rgb.shape[:2]}; "
                         f"got {valid.shape}.")


def _to_input(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32 in [0, 1], one channel plane at a time (4x faster
    than a transposed astype, which walks memory against its layout)."""
    planes = np.empty((1, 3, *image.shape[:2]), np.float32)
    for channel in range(3):
        np.multiply(image[..., channel], np.float32(1 / 255), out=planes[0, channel])
    return planes


def _tiles(length: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(read_start, read_stop, keep_start, keep_stop) along one axis."""
    if length <= tile:
        return [(0, length, 0, length)]
    step = tile - 2 * overlap
    spans = []
    keep_start = 0
    while keep_start < length:
        keep_stop = min(length, keep_start + step)
        read_start = max(0, min(keep_start - overlap, length - tile))
        read_stop = min(length, read_start + tile)
        spans.append((read_start, read_stop, keep_start, keep_stop))
        keep_start = keep_stop
    return spans


def predict_defect_map(golden_rgb: np.ndarray, unit_rgb: np.ndarray,
                       valid: np.ndarray | None = None, *, tile: int = TILE,
                       model: str | Path | None = None) -> np.ndarray:
    """Per-pixel defect probability of a registered golden/unit pair.

    Parameters
    ----------
    golden_rgb, unit_rgb : (H, W, 3) uint8
        The golden and the unit, sRGB, **registered** (the unit warped onto the golden, residual
        misregistration up to ~3 px is tolerated), **colour-calibrated** (the residual exposure
        and white-balance difference is tolerated, a large one is not), and the **same size**.
        The model was trained at the pipeline's analysis resolution (long side 1024 px), where
        a 1 cm defect on a 30 cm product spans ~30 px; much finer or coarser scales are
        outside its training.
    valid : (H, W) bool, optional
        Where the unit was seen (the warped unit's footprint). Outside it, the unit is replaced
        by the golden before inference and the probability is 0.
    tile : int
        Images larger than this (either side) are processed in overlapping tiles of this size.
        The model's gain match uses each tile's mean colour, so tiles much larger than the
        product part they show weaken it.
    model : Path, optional
        Another exported model file (default: the packaged one, see :func:`model_path`).

    Returns
    -------
    (H, W) float32 in [0, 1]
        Defect probability. Regions: :func:`find_regions`; image score: :func:`image_score`.
        :data:`DEFAULT_THRESHOLD` (0.5) is the operating point the model card's figures use.
    """
    _check_pair(golden_rgb, unit_rgb, valid)
    if tile < 64:
        raise ValueError(f"tile must be at least 64 px; got {tile}")
    session, _ = _session(model)
    if valid is not None:
        valid = valid.astype(bool)
        unit_rgb = np.where(valid[..., None], unit_rgb, golden_rgb)
    h, w = golden_rgb.shape[:2]
    overlap = min(_TILE_OVERLAP, tile // 4)
    prob = np.zeros((h, w), np.float32)
    for ry0, ry1, ky0, ky1 in _tiles(h, tile, overlap):
        for rx0, rx1, kx0, kx1 in _tiles(w, tile, overlap):
            (logits,) = session.run(["logits"], {
                "golden": _to_input(golden_rgb[ry0:ry1, rx0:rx1]),
                "unit": _to_input(unit_rgb[ry0:ry1, rx0:rx1]),
            })
            part = logits[0, 0, ky0 - ry0:ky1 - ry0, kx0 - rx0:kx1 - rx0]
            prob[ky0:ky1, kx0:kx1] = 1.0 / (1.0 + np.exp(-part))
    if valid is not None:
        prob[~valid] = 0.0
    return prob


def image_score(prob: np.ndarray) -> float:
    """Image-level defect score, 0-1: the peak of the map after a 3x3 mean.

    The mean keeps a lone confident pixel (noise, a JPEG block edge) from setting the score.
    """
    if prob.size == 0:
        return 0.0
    return float(cv2.blur(prob.astype(np.float32), (3, 3)).max())


@dataclasses.dataclass(frozen=True)
class DefectModelRegion:
    """A connected defect region of the probability map, in the map's pixels."""

    bbox: tuple[int, int, int, int]  # x, y, w, h
    area_px: int  # pixels of the region itself, not of its box
    score: float  # peak probability in the region, 0-1
    severity: Severity
    area_mm2: float | None = None  # when the scale (px per mm) is known


def find_regions(prob: np.ndarray, *, threshold: float = DEFAULT_THRESHOLD,
                 min_area_px: int, grow_threshold: float | None = None,
                 compared_area_px: int | None = None, px_per_mm: float | None = None,
                 critical_fraction: float = CRITICAL_AREA_FRACTION,
                 major_fraction: float = MAJOR_AREA_FRACTION,
                 join_gap_px: int = JOIN_GAP_PX) -> list[DefectModelRegion]:
    """Defect regions of a probability map, largest first.

    A region needs a core of pixels at or above `threshold` and extends over the connected
    pixels at or above `grow_threshold` (default: half the threshold): hysteresis, as in Canny's
    edge detector, so a defect is measured at its real size rather than its confident core.
    Pieces with a gap of at most `join_gap_px` between them are one region (one defect to the
    reader: a scratch the map shows as dashes; the evaluation's truth joins pieces the same
    way). Regions smaller than `min_area_px` (map pixels, the pieces' sum) are dropped.

    Severity follows the report's rule: 'critical' when the region covers more than
    `critical_fraction` of the compared area (`compared_area_px`, default the whole map),
    'major' above `major_fraction`, else 'minor'. `px_per_mm` (from the colour card) adds the
    area in mm2.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1); got {threshold}")
    if min_area_px < 1:
        raise ValueError(f"min_area_px must be at least 1; got {min_area_px}")
    grow = threshold / 2 if grow_threshold is None else grow_threshold
    if not 0.0 < grow <= threshold:
        raise ValueError(f"grow_threshold must be in (0, threshold]; got {grow}")
    compared = compared_area_px or prob.size
    regions = []
    for (x, y, w, h), pixels, area in joined_regions(
            hysteresis(prob >= threshold, prob >= grow), join_gap_px):
        if area < min_area_px:
            continue
        peak = float(prob[y:y + h, x:x + w][pixels].max())
        fraction = area / compared
        severity: Severity = area_severity(fraction, critical=critical_fraction,
                                           major=major_fraction)
        area_mm2 = None if px_per_mm is None else area / (px_per_mm * px_per_mm)
        regions.append(DefectModelRegion((x, y, w, h), area, round(peak, 4), severity, area_mm2))
    regions.sort(key=lambda r: (-r.area_px, -r.score))
    return regions
