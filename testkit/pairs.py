"""The bench's synthetic 12 MP phone-photo pairs, generated once and cached as JPEG.

The same flawless product photographed by a frontal golden camera and by a hand-held unit
camera (any rotation, tilt, zoom, other light; testkit/scenes.py), so every pair should pass.
Cached in ``bench-out/pairs/``: generation takes seconds per pair, timing does not depend on it.
Used by benchmarks/bench_pipeline.py, bench_rescore.py and bench_service.py.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import multiprocessing
import os
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from testkit.scenes import PRODUCT_IMAGES, Camera, make_pair, random_phone_camera

REPO = Path(__file__).resolve().parents[1]
PHOTO_SIZE = (4032, 3024)  # width, height of a 12 MP phone photo
PX_PER_MM = 8.0  # table resolution at which the product is still sharp in a 12 MP photo
JPEG_QUALITY = 92
OUT_DIR = REPO / "bench-out"
# Bump when the generated content changes for the same parameters (e.g. scenes.py changes).
_GENERATOR_VERSION = 2  # 2: the card drawn with the chart model's patch geometry


@dataclasses.dataclass(frozen=True)
class PairSpec:
    """Everything that determines a generated pair; its hash names the cache directory."""

    seed: int
    product: str
    width: int = PHOTO_SIZE[0]
    height: int = PHOTO_SIZE[1]
    px_per_mm: float = PX_PER_MM
    jpeg_quality: int = JPEG_QUALITY
    generator_version: int = _GENERATOR_VERSION

    @property
    def key(self) -> str:
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return f"{self.product}-seed{self.seed}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def pair_specs(count: int) -> list[PairSpec]:
    """`count` pairs cycling through the bundled products, one seed each."""
    return [PairSpec(seed=i, product=PRODUCT_IMAGES[i % len(PRODUCT_IMAGES)]) for i in range(count)]


def _generate(spec: PairSpec, directory: str) -> dict:
    """Render one pair into `directory` (runs in a worker process)."""
    golden_camera = Camera(width=spec.width, height=spec.height)
    rng = np.random.default_rng(spec.seed)
    unit_camera = random_phone_camera(rng, base=golden_camera)
    pair = make_pair(spec.product, golden_camera=golden_camera, unit_camera=unit_camera,
                     px_per_mm=spec.px_per_mm, seed=spec.seed)
    # Write to a temporary name first so an interrupted run never leaves a half-written cache.
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=Path(directory).parent))
    tmp.chmod(0o755)  # mkdtemp's private 0700 is pointless for a shared cache
    params = [cv2.IMWRITE_JPEG_QUALITY, spec.jpeg_quality]
    for name, rgb in (("golden.jpg", pair.golden), ("unit.jpg", pair.unit)):
        if not cv2.imwrite(str(tmp / name), np.ascontiguousarray(rgb[..., ::-1]), params):
            raise OSError(f"could not write {tmp / name}")
    meta = {
        "spec": dataclasses.asdict(spec),
        "unit_camera": dataclasses.asdict(unit_camera),
        "homography_unit_to_golden": pair.homography_unit_to_golden.tolist(),
        "description": pair.description,
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(tmp, directory)
    return meta


def ensure_pairs(specs: list[PairSpec], cache: Path) -> list[Path]:
    """Directories holding golden.jpg/unit.jpg for `specs`, generating the missing ones.

    Generation runs in child processes: it peaks at ~1.4 GB per pair, which would otherwise
    swamp the pipeline's own peak RSS, and the children can work in parallel.
    """
    cache.mkdir(parents=True, exist_ok=True)
    directories = [cache / spec.key for spec in specs]
    missing = [(spec, d) for spec, d in zip(specs, directories, strict=True)
               if not all((d / name).is_file() for name in ("golden.jpg", "unit.jpg", "meta.json"))]
    if missing:
        workers = max(1, min(len(missing), os.cpu_count() or 1, 4))
        print(f"generating {len(missing)} pair(s) in {cache} ({workers} worker(s)) ...",
              flush=True)
        start = time.perf_counter()
        context = multiprocessing.get_context("spawn")  # no fork of a threaded OpenCV
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            jobs = [pool.submit(_generate, spec, str(d)) for spec, d in missing]
            for job in jobs:
                job.result()
        print(f"  done in {time.perf_counter() - start:.1f} s", flush=True)
    return directories
