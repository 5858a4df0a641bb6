"""What the endpoints do, apart from HTTP: decode and check uploads, seal, inspect, compare.

The functions named ``*_job`` run on a pipeline worker thread (service.work.PipelinePool): they
decode, run the pipeline, write the files and then commit the rows, in that order, so that a
row never points at a missing file. Everything about the input is checked before the first
file is written, so a rejected request stores nothing.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from service.db import Golden, GoldenImage, Inspection, InspectionImage
from service.errors import BadInput
from service.metrics import Metrics
from service.settings import Settings
from service.storage import BlobStore, NewFiles
from service.storage_guard import StorageHealth, Writes, guarded_writes
from service.uploads import Upload
from service.work import GoldenCache, PipelinePool

__all__ = [
    "PICTURE_LONG_SIDE",
    "THUMBNAIL_LONG_SIDE",
    "Decoded",
    "SealedGolden",
    "Service",
    "cached_heat_png",
    "cached_thumbnail",
    "compare_job",
    "decode_uploads",
    "golden_picture_png",
    "golden_thumbnail",
    "heat_png",
    "inspect_job",
    "seal_job",
]

# The overlay and defect map are encoded on every inspection, so this is on the hot path.
# zlib level 1 with the fixed "sub" filter: measured on a 1024 px overlay, 41 ms and 755 kB
# against 74 ms / 673 kB for level 1 with adaptive filters (OpenCV's default level 3 is slower
# still).
_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB]

PICTURE_LONG_SIDE = 1024
"""Long side of the stored overlay and defect map (the golden's size when it is smaller): the
pipeline's analysis size (vision.frame.ANALYSIS_SIZE), whose golden copy they are drawn on.

The pipeline measures at an analysis resolution of 1024 px, so the defect map holds no more
detail than this; a full-size 12 MP overlay took ~2 s to render and ~1 s to PNG-encode on 2
cores, longer than the comparison itself. The photos themselves are stored at full size."""


THUMBNAIL_LONG_SIDE = 320
"""Long side of the golden lists' thumbnails: a 96 px wide tile on a 3x phone screen. WebP at
quality 80, ~7 kB against ~800 kB for the full picture, so a list of 12 loads in ~100 kB."""
_THUMBNAIL_PARAMS = [cv2.IMWRITE_WEBP_QUALITY, 80]


@dataclasses.dataclass(frozen=True)
class SealedGolden:
    """What the cache keeps per golden: the pipeline's preparation."""

    prepared: object  # vision.prepare.PreparedGolden

    @property
    def picture(self) -> np.ndarray:
        """The pictures' background: the golden at the analysis size (PICTURE_LONG_SIDE), RGB
        uint8. The prepared golden already holds this area-filtered copy; shrinking the photo
        again at sealing would make the same pixels twice."""
        return self.prepared.analysis_rgb

    @property
    def scale(self) -> float:
        """Picture pixels per golden pixel."""
        return self.prepared.analysis_scale


@dataclasses.dataclass
class Service:
    """The heavy resources, created once in the app's lifespan and reached through deps."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker
    blobs: BlobStore
    pool: PipelinePool
    goldens: GoldenCache
    metrics: Metrics
    io: concurrent.futures.ThreadPoolExecutor  # fsyncs and PNG encoding beside the pipeline
    # The last storage failure, until /readyz sees storage work again (service.storage_guard).
    storage: StorageHealth = dataclasses.field(default_factory=StorageHealth)


@dataclasses.dataclass
class Decoded:
    """An upload that decoded: its bytes, what they are, and the oriented RGB pixels."""

    upload: Upload
    rgb: np.ndarray | None  # at the size a report needs (vision.load); None: not compared
    format: str
    sha256: str
    size: tuple[int, int]  # (width, height) of the photo, oriented: the report's pixels

    def image_row(self, position: int) -> dict:
        w, h = self.size
        return dict(position=position, sha256=self.sha256, format=self.format, width=w,
                    height=h, size_bytes=len(self.upload.data),
                    filename=(self.upload.filename or None) and self.upload.filename[:255])


@contextmanager
def _stage(metrics: Metrics, name: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        metrics.stage.labels(name).observe(time.perf_counter() - start)


def decode_uploads(uploads: list[Upload], *, field: str, max_pixels: int,
                   decode: int = 1) -> list[Decoded]:
    """Check every upload, decode the first `decode` of them, or raise the BadInput that says
    which one is bad and what to do.

    Only the photos a request compares are decoded (its first); the others are stored with the
    record and checked from their headers alone (:func:`vision.decode.check_image`: format,
    size, pixel and decoded-byte caps, truncation), so extra photos cost no decode: 31 tiny
    80 MP WebPs once held a worker for 88 s. Their ``rgb`` is None.

    Its reason is ``unsupported`` when the bytes are no supported image format, ``too_large``
    when the photo has more pixels (or decodes to more bytes) than the caps, ``invalid`` when
    it is one of the formats but empty, truncated, corrupt or too small.
    """
    from vision.decode import ImageDecodeError, check_image, sniff_format
    from vision.load import load_for_report

    decoded = []
    for index, upload in enumerate(uploads):
        label = f"{field}[{index}]" + (f" ({upload.filename})" if upload.filename else "")
        data = bytes(upload.data)
        rgb = None
        try:
            if index < decode:
                # A 12 MP JPEG at 1/2 through its DCT: the report needs no more (vision.load).
                rgb, size = load_for_report(data, name=label, max_pixels=max_pixels)
            else:
                size = check_image(data, name=label, max_pixels=max_pixels)[1]
        except ImageDecodeError as exc:
            if data and sniff_format(data) is None:
                reason = "unsupported"
            elif "more than the limit" in exc.problem or "bomb" in exc.problem:
                reason = "too_large"
            else:
                reason = "invalid"
            raise BadInput(str(exc), reason) from None
        decoded.append(Decoded(upload, rgb, sniff_format(data) or "unknown",
                               hashlib.sha256(data).hexdigest(), size))
    return decoded


def check_roi(spec, size: tuple[int, int], what: str = "golden") -> None:
    """Refuse an ROI that starts outside the golden photo (it would compare nothing)."""
    if spec.roi is None:
        return
    x, y, _, _ = spec.roi
    width, height = size
    if x >= width or y >= height:
        raise BadInput(f"spec: roi starts at ({x}, {y}), outside the {what} photo "
                       f"({width}x{height}); give it in {what} pixels")


def _encode_png(image: np.ndarray) -> bytes:
    bgr = image[..., ::-1] if image.ndim == 3 else image
    ok, buffer = cv2.imencode(".png", np.ascontiguousarray(bgr), _PNG_PARAMS)
    if not ok:
        raise RuntimeError("OpenCV could not encode a PNG")
    return buffer.tobytes()


def _store_images(service: Service, images: list[Decoded], new_files: NewFiles) -> None:
    for image in images:
        service.blobs.put(bytes(image.upload.data), image.sha256, new_files=new_files)


def seal_job(service: Service, tenant_id: str, uploads: list[Upload], spec, name: str,
             sku: str) -> str:
    """Decode, prepare, store and record a golden; return its id. If it fails, the files it
    wrote are removed, and a storage failure is raised as StorageUnavailable."""
    with guarded_writes(service.io, service.storage) as writes:
        return _seal(service, writes, tenant_id, uploads, spec, name, sku)


def _seal(service: Service, writes: Writes, tenant_id: str, uploads: list[Upload], spec,
          name: str, sku: str) -> str:
    from vision.prepare import prepare_golden

    metrics = service.metrics
    with _stage(metrics, "decode"):
        images = decode_uploads(uploads, field="images", max_pixels=service.settings.max_pixels)
    primary = images[0]
    check_roi(spec, primary.size)
    stored = writes.submit(_store_images, service, images, writes.files)  # during preparation
    with _stage(metrics, "prepare_golden"):
        sealed = SealedGolden(prepare_golden(primary.rgb, photo_size=primary.size))
    # The web pages' golden picture, from the analysis copy the preparation already made;
    # encoded and written while the photos finish writing.
    picture = writes.submit(lambda: service.blobs.put(_encode_png(sealed.picture),
                                                      new_files=writes.files))
    with _stage(metrics, "store"):
        stored.result()
        picture_sha = picture.result()
        _store_thumbnail(service, picture_sha, sealed.picture, writes.files)
        golden = _insert_golden(service.sessions, tenant_id, images, spec, name, sku,
                                picture_sha256=picture_sha)
    service.goldens.put(golden.id, sealed)
    return golden.id


def _insert_golden(sessions: sessionmaker, tenant_id: str, images: list[Decoded], spec,
                   name: str, sku: str, picture_sha256: str | None = None) -> Golden:
    # Two seals of one SKU at once may pick the same version; the unique constraint refuses the
    # second, which then takes the next number.
    for attempt in range(5):
        with sessions() as session:
            version = (session.scalar(
                sa.select(sa.func.max(Golden.version))
                .where(Golden.tenant_id == tenant_id, Golden.sku == sku)) or 0) + 1
            golden = Golden(tenant_id=tenant_id, sku=sku, version=version, name=name,
                            spec=spec.model_dump(mode="json"), picture_sha256=picture_sha256)
            session.add(golden)
            try:
                session.flush()
                session.add_all(GoldenImage(golden_seq=golden.seq, **image.image_row(position))
                                for position, image in enumerate(images))
                session.commit()
                return golden
            except IntegrityError:
                session.rollback()
                if attempt == 4:
                    raise
    raise AssertionError("unreachable")


def sealed_golden(service: Service, golden: Golden) -> SealedGolden:
    """The golden's prepared form: from the cache, else rebuilt from its stored primary photo."""
    from vision.load import load_for_report
    from vision.prepare import prepare_golden

    def rebuild() -> SealedGolden:
        with service.sessions() as session:
            sha256 = session.scalar(sa.select(GoldenImage.sha256).where(
                GoldenImage.golden_seq == golden.seq, GoldenImage.position == 0))
        # Accepted at sealing: the pixel cap must not refuse it now (it may have been lowered).
        rgb, size = load_for_report(service.blobs.path(sha256), max_pixels=10**12)
        with _stage(service.metrics, "prepare_golden"):
            return SealedGolden(prepare_golden(rgb, photo_size=size))

    sealed, hit = service.goldens.get_or_build(golden.id, rebuild)
    service.metrics.golden_cache.labels("hit" if hit else "miss").inc()
    return sealed


def golden_picture_png(service: Service, golden: Golden) -> bytes:
    """The golden at the analysis size as PNG, for goldens sealed before it was stored."""
    from imaging.resample import shrink_to_long_side
    from vision.decode import load_image

    if golden.picture_sha256 is not None:
        return service.blobs.read(golden.picture_sha256)
    with service.sessions() as session:
        sha256 = session.scalar(sa.select(GoldenImage.sha256).where(
            GoldenImage.golden_seq == golden.seq, GoldenImage.position == 0))
    rgb = load_image(service.blobs.path(sha256), max_pixels=10**12)
    return _encode_png(shrink_to_long_side(rgb, PICTURE_LONG_SIDE)[0])


def _store_thumbnail(service: Service, source_sha256: str, rgb: np.ndarray,
                     new_files: NewFiles | None = None) -> Path:
    from imaging.resample import shrink_to_long_side

    small = shrink_to_long_side(rgb, THUMBNAIL_LONG_SIDE)[0]
    ok, buffer = cv2.imencode(".webp", np.ascontiguousarray(small[..., ::-1]),
                              _THUMBNAIL_PARAMS)
    if not ok:
        raise RuntimeError("OpenCV could not encode a WebP thumbnail")
    return service.blobs.put_derived(source_sha256, "thumb.webp", buffer.tobytes(),
                                     new_files=new_files)


def _thumbnail_source(service: Service, golden: Golden) -> str:
    if golden.picture_sha256 is not None:
        return golden.picture_sha256
    with service.sessions() as session:
        return session.scalar(sa.select(GoldenImage.sha256).where(
            GoldenImage.golden_seq == golden.seq, GoldenImage.position == 0))


def cached_thumbnail(service: Service, golden: Golden) -> Path | None:
    """The path of the golden's thumbnail when it is on disk, else None."""
    path = service.blobs.derived_path(_thumbnail_source(service, golden), "thumb.webp")
    return path if path.is_file() else None


def golden_thumbnail(service: Service, golden: Golden) -> Path:
    """The path of the golden's thumbnail (WebP, THUMBNAIL_LONG_SIDE): made at sealing, or
    on the first read for goldens sealed before thumbnails were."""
    source = _thumbnail_source(service, golden)
    path = service.blobs.derived_path(source, "thumb.webp")
    if path.is_file():
        return path
    png = golden_picture_png(service, golden)
    bgr = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    return _store_thumbnail(service, source, bgr[..., ::-1])


def cached_heat_png(service: Service, defect_map_sha256: str) -> Path | None:
    """The path of the defect map's heat picture when it is on disk, else None."""
    path = service.blobs.derived_path(defect_map_sha256, "heat.png")
    return path if path.is_file() else None


def heat_png(service: Service, defect_map_sha256: str) -> Path:
    """The defect map in the overlay's colours (RGBA PNG), the report page's slider layer:
    made on its first request and kept beside the defect map."""
    from vision.render import heat_rgba  # the overlay's colouring, on its own

    defect_map = cv2.imread(str(service.blobs.path(defect_map_sha256)), cv2.IMREAD_UNCHANGED)
    ok, png = cv2.imencode(".png", cv2.cvtColor(heat_rgba(defect_map), cv2.COLOR_RGBA2BGRA),
                           [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError("OpenCV could not encode the heat map")
    return service.blobs.put_derived(defect_map_sha256, "heat.png", png.tobytes())


def inspect_job(service: Service, tenant_id: str, golden: Golden, uploads: list[Upload],
                unit_label: str | None, lot_id: str | None) -> str:
    """Compare the unit's primary photo with the sealed golden, store everything; return id.
    If it fails, the files it wrote are removed, and a storage failure is raised as
    StorageUnavailable."""
    with guarded_writes(service.io, service.storage) as writes:
        return _inspect(service, writes, tenant_id, golden, uploads, unit_label, lot_id)


def _inspect(service: Service, writes: Writes, tenant_id: str, golden: Golden,
             uploads: list[Upload], unit_label: str | None, lot_id: str | None) -> str:
    from vision import render
    from vision.compare import compare
    from vision.spec import stored_spec

    metrics = service.metrics
    with _stage(metrics, "decode"):
        images = decode_uploads(uploads, field="images", max_pixels=service.settings.max_pixels)
    # The photos are valid from here on: write them while the pipeline runs.
    stored = writes.submit(_store_images, service, images, writes.files)
    sealed = sealed_golden(service, golden)
    comparison = compare(sealed.prepared, images[0].rgb, stored_spec(golden.spec),
                         unit_photo_size=images[0].size,
                         render_images=False)
    metrics.observe_stages(comparison.report.timings_ms)
    with _stage(metrics, "encode_png"):
        def store_png(picture: np.ndarray | None) -> str | None:
            return None if picture is None else service.blobs.put(_encode_png(picture),
                                                                  new_files=writes.files)

        # The pictures at the analysis size (PICTURE_LONG_SIDE), drawn by vision.render as
        # the CLI's are. The aligned unit is resampled, encoded and written beside the
        # overlay's drawing and the other two encodes: OpenCV, zlib and file I/O release the GIL.
        sources, report = comparison.sources, comparison.report
        aligning = writes.submit(
            lambda: store_png(render.aligned_unit(sources, at="analysis")))
        pictures = render.draw_pictures(sources, report.defects.regions, report.roi,
                                        at="analysis", with_aligned=False)
        pngs = [writes.submit(store_png, picture)
                for picture in (pictures.overlay, pictures.defect_map)]
        overlay_sha, defect_map_sha = (f.result() for f in pngs)
        aligned_sha = aligning.result()
    with _stage(metrics, "store"):
        stored.result()
        report = comparison.report
        with service.sessions() as session:
            inspection = Inspection(
                tenant_id=tenant_id, golden_seq=golden.seq, unit_label=unit_label,
                lot_id=lot_id, verdict=report.verdict, score=report.score,
                report=report.model_dump(mode="json"), overlay_sha256=overlay_sha,
                defect_map_sha256=defect_map_sha,
                aligned_sha256=aligned_sha)
            session.add(inspection)
            session.flush()
            session.add_all(InspectionImage(inspection_seq=inspection.seq,
                                            **image.image_row(position))
                            for position, image in enumerate(images))
            session.commit()
            return inspection.id


def compare_job(service: Service, golden_upload: Upload, unit_upload: Upload, spec) -> dict:
    """A one-off comparison: nothing is stored, the golden is prepared in this request."""
    from vision.compare import compare

    metrics = service.metrics
    with _stage(metrics, "decode"):
        golden = decode_uploads([golden_upload], field="golden",
                                max_pixels=service.settings.max_pixels)[0]
        unit = decode_uploads([unit_upload], field="unit",
                              max_pixels=service.settings.max_pixels)[0]
    check_roi(spec, golden.size)
    comparison = compare(golden.rgb, unit.rgb, spec, render_images=False,
                         golden_photo_size=golden.size, unit_photo_size=unit.size)
    metrics.observe_stages(comparison.report.timings_ms)
    return comparison.report.model_dump(mode="json")
