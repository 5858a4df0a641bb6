"""Domain-randomised photo pairs with known truth: renders that do not flatter the pipeline.

:mod:`testkit.scenes` photographs flat prints under a flat light. Here the table top carries
one of several kinds of product (:data:`PRODUCT_KINDS`: flat prints, textureless moulded parts
whose only detail is their shading, curved metal with highlights, fabric, circuit boards) on a
plain, textured or cluttered background (:data:`BACKGROUNDS`), and each photo session has its
own light and camera:

1. The scene is built in table pixels (:data:`PX_PER_MM`): an sRGB albedo, a height map (mm)
   and a gloss map. The product stays where it is on the table; between the sessions the
   background under it, the clutter and the colour card move, as they do between two sessions
   in a real workshop.
2. A directional light (azimuth, elevation, an ambient share and a gentle gradient across the
   table) shades the surface by its normals (Lambert), casts shadows from the height map
   (a point is shadowed when something between it and the light rises above the light's
   ray), adds Blinn-Phong highlights where the surface is glossy, and a ceiling lamp's
   reflection (specular glare) where the mirror geometry puts it for that camera.
3. A :class:`testkit.scenes.Camera` pose (tilt up to 35 degrees, any rotation, zoom) maps the
   table to an ideal photo; a radial lens distortion bends it; the photo is defocused, then
   developed by the camera (light colour, crosstalk, white balance and exposure errors, tone
   curve, vignetting, noise) and saved as a JPEG of random quality.

The truth of every pair: the exact point map golden -> unit photo (the plane's homography
between the ideal photos, with each lens's distortion), the defect's mask in golden pixels and
the colour drift's true CIEDE2000 (the product's mean colour as printed, read as
:func:`testkit.scenes.make_pair` reads it). Test and benchmark tooling: the library never
imports it. Measured by ``benchmarks/eval_randomised.py``.
"""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

from imaging.color import ciede2000, linear_rgb_to_lab, srgb8_to_linear, srgb_to_linear
from testkit.photos import jpeg
from testkit.scenes import (
    DEFECT_KINDS,
    PRODUCT_IMAGES,
    Camera,
    draw_defect,
    inner_box,
    lab_shift,
    product_artwork,
    random_lit_camera,
    render_card,
)

__all__ = [
    "BACKGROUNDS",
    "CASES",
    "PHOTO_SIZE",
    "PRODUCT_KINDS",
    "PX_PER_MM",
    "Light",
    "RandomisedPair",
    "Shot",
    "randomised_pair",
]

PRODUCT_KINDS = ("print", "moulded", "metal", "fabric", "board")
BACKGROUNDS = ("plain", "textured", "cluttered")
CASES = ("identical", "defect", "drift")
PHOTO_SIZE = (1152, 864)  # ~1 MP: the evaluation stays CPU-light
PX_PER_MM = 3.0  # table resolution: at least the photo's at any zoom drawn here
TABLE_MM = (560.0, 400.0)
PRODUCT_CENTRE_MM = (170.0, 200.0)  # the card, when there is one, lies right of the product
DRIFT_PASS = (0.4, 1.0)  # true Delta-E00 of drifts meant to pass the default tolerance (2.0)
DRIFT_FAIL = (3.5, 7.0)  # ... and of drifts meant to fail it: none near the tolerance


@dataclasses.dataclass(frozen=True)
class Light:
    """A directional light over the table, plus the room's ambient light."""

    azimuth_deg: float = 45.0  # where the light comes from, in the table's plane
    elevation_deg: float = 60.0  # above the table
    ambient: float = 0.35  # share of the light that comes from everywhere (no shadow)
    gradient: tuple[float, float] = (0.0, 0.0)  # irradiance change across the table (x, y)
    lamp: tuple[float, float, float] | None = None  # ceiling lamp (x, y, height), table widths
    glare: float = 0.0  # the lamp reflection's peak, in linear light, on a glossy surface

    def direction(self) -> np.ndarray:
        """Unit vector towards the light (x, y along the table, z up)."""
        a, e = math.radians(self.azimuth_deg), math.radians(self.elevation_deg)
        return np.array([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)])


@dataclasses.dataclass(frozen=True)
class Shot:
    """One photo session: the light on the table and the camera with its lens."""

    camera: Camera
    light: Light = Light()
    distortion_k1: float = 0.0  # radial: ideal = distorted * (1 + k1 r^2), r in half-diagonals
    blur_sigma: float = 0.0  # defocus, photo pixels
    jpeg_quality: int = 92

    def to_ideal(self, points: np.ndarray) -> np.ndarray:
        """Photo pixels (as the lens bends them) -> the ideal pinhole photo's pixels."""
        centre, radius = self._centre_radius()
        q = (np.asarray(points, np.float64) - centre) / radius
        return centre + radius * q * (1.0 + self.distortion_k1 * (q ** 2).sum(-1, keepdims=True))

    def from_ideal(self, points: np.ndarray) -> np.ndarray:
        """The ideal photo's pixels -> photo pixels (the inverse of :meth:`to_ideal`)."""
        centre, radius = self._centre_radius()
        q_ideal = (np.asarray(points, np.float64) - centre) / radius
        q = q_ideal.copy()
        for _ in range(20):  # fixed point; |k1| r^2 << 1 converges to 1e-12 in a few steps
            q = q_ideal / (1.0 + self.distortion_k1 * (q ** 2).sum(-1, keepdims=True))
        return centre + radius * q

    def _centre_radius(self) -> tuple[np.ndarray, float]:
        w, h = self.camera.width, self.camera.height
        return np.array([w / 2.0, h / 2.0]), math.hypot(w / 2.0, h / 2.0)


@dataclasses.dataclass
class RandomisedPair:
    """A golden and a unit photo (JPEG bytes and decoded RGB) and their truth."""

    golden_jpeg: bytes
    unit_jpeg: bytes
    golden: np.ndarray
    unit: np.ndarray
    kind: str  # a PRODUCT_KINDS entry
    background: str  # a BACKGROUNDS entry
    case: str  # a CASES entry
    card: bool  # a colour card lies on the table in both sessions
    light_changed: bool  # other light, exposure and white balance for the unit
    golden_shot: Shot
    unit_shot: Shot
    table_to_golden: np.ndarray  # homography, table pixels -> ideal golden photo
    table_to_unit: np.ndarray  # homography, table pixels -> ideal unit photo
    product_quad: np.ndarray  # (4, 2) the product's box corners, golden photo pixels
    roi: tuple[int, int, int, int]  # an axis-aligned box inside the product, golden pixels
    defect_kind: str | None = None
    defect_mask: np.ndarray | None = None  # bool, golden photo pixels
    true_delta_e00: float = 0.0  # CIEDE2000 of the product's colour as printed, golden -> unit

    @property
    def homography_golden_to_unit(self) -> np.ndarray:
        """Golden -> unit between the ideal (undistorted) photos: the plane's homography."""
        H = self.table_to_unit @ np.linalg.inv(self.table_to_golden)
        return H / H[2, 2]

    def golden_to_unit(self, points: np.ndarray) -> np.ndarray:
        """Exact map of golden photo pixels (N, 2) to unit photo pixels, lenses included."""
        ideal = self.golden_shot.to_ideal(points).reshape(-1, 1, 2)
        in_unit = cv2.perspectiveTransform(ideal, self.homography_golden_to_unit)
        return self.unit_shot.from_ideal(in_unit.reshape(-1, 2))

    def defect_box(self) -> tuple[int, int, int, int] | None:
        """The defect mask's bounding box (x, y, w, h), golden pixels."""
        if self.defect_mask is None or not self.defect_mask.any():
            return None
        return tuple(int(v) for v in cv2.boundingRect(self.defect_mask.astype(np.uint8)))

    def expected_verdict(self, tolerance_e00: float = 2.0) -> str:
        """What a right comparison answers: pass, or fail (a defect, a drift beyond it)."""
        if self.case == "defect" or self.true_delta_e00 > tolerance_e00:
            return "fail"
        return "pass"


# --------------------------------------------------------------------------------------------
# Products: albedo (sRGB uint8), footprint, height (mm) and gloss, in table pixels

@dataclasses.dataclass
class _Product:
    albedo: np.ndarray
    mask: np.ndarray  # bool footprint
    height: np.ndarray  # mm, float32
    gloss: float  # Blinn-Phong weight of the directional light's highlight
    shininess: float
    glare: float  # how much of the lamp's reflection the surface shows (0: matte)


def _make_product(kind: str, rng: np.random.Generator) -> _Product:
    width_mm = rng.uniform(170, 250)
    w = int(round(width_mm * PX_PER_MM))
    if kind == "print":
        art = product_artwork(str(rng.choice(PRODUCT_IMAGES)), w, seed=int(rng.integers(1000)))
        art = art[: int(0.85 * w)]
        return _Product(art, np.ones(art.shape[:2], bool), np.full(art.shape[:2], 0.3, np.float32),
                        gloss=0.0, shininess=1.0, glare=float(rng.uniform(0.0, 0.6)))
    if kind in ("fabric", "board"):
        art = product_artwork("weave" if kind == "fabric" else "circuit", w,
                              aspect=rng.uniform(0.6, 0.85), seed=int(rng.integers(1000)))
        if kind == "fabric":  # a random dye: the weave's shading times the cloth's colour
            dye = rng.uniform(0.4, 1.6, 3)
            art = np.clip(art.astype(np.float32) * dye, 0, 255).astype(np.uint8)
        height = 1.0 if kind == "fabric" else 1.6
        return _Product(art, np.ones(art.shape[:2], bool),
                        np.full(art.shape[:2], height, np.float32),
                        gloss=0.0 if kind == "fabric" else 0.15, shininess=60.0,
                        glare=0.0 if kind == "fabric" else float(rng.uniform(0.2, 0.8)))
    h = int(round(w * rng.uniform(0.55, 0.8)))
    if kind == "moulded":
        return _moulded(w, h, rng)
    if kind == "metal":
        return _metal(w, h, rng)
    raise ValueError(f"unknown product kind {kind!r}; expected one of {PRODUCT_KINDS}")


def _moulded(w: int, h: int, rng: np.random.Generator) -> _Product:
    """A plastic part of one colour: its detail is only the shading of its relief."""
    mask = np.zeros((h, w), np.uint8)
    radius = int(min(w, h) * rng.uniform(0.08, 0.3))
    cv2.rectangle(mask, (radius, 0), (w - radius, h - 1), 1, -1)
    cv2.rectangle(mask, (0, radius), (w - 1, h - radius), 1, -1)
    for cx, cy in ((radius, radius), (w - radius, radius), (radius, h - radius),
                   (w - radius, h - radius)):
        cv2.circle(mask, (cx, cy), radius, 1, -1)
    inside = cv2.distanceTransform(mask, cv2.DIST_L2, 5) / PX_PER_MM  # mm from the rim
    top = rng.uniform(8, 25)
    height = top * (1.0 - np.exp(-inside / rng.uniform(3, 8)))
    relief = np.zeros((h, w), np.float32)  # bosses and ribs moulded on the top face
    for _ in range(int(rng.integers(2, 6))):
        centre = (int(rng.uniform(0.2, 0.8) * w), int(rng.uniform(0.2, 0.8) * h))
        size = int(rng.uniform(0.04, 0.12) * w)
        if rng.random() < 0.5:
            cv2.circle(relief, centre, size, float(rng.uniform(-3, 4)), -1)
        else:
            angle = rng.uniform(0, 180)
            box = cv2.boxPoints((centre, (size * 3, size / 2), angle)).astype(np.int32)
            cv2.fillConvexPoly(relief, box, float(rng.uniform(-2, 3)))
    height = height + cv2.GaussianBlur(relief, (0, 0), 1.5 * PX_PER_MM) * (inside > 3)
    colour = rng.uniform(30, 230, 3)
    albedo = np.empty((h, w, 3), np.uint8)
    albedo[:] = np.clip(colour + rng.normal(0, 0.6, (h, w, 3)), 0, 255)  # pigment specks
    return _Product(albedo, mask.astype(bool), height.astype(np.float32) * (mask > 0),
                    gloss=float(rng.uniform(0.03, 0.15)), shininess=float(rng.uniform(15, 40)),
                    glare=float(rng.uniform(0.0, 0.3)))


def _metal(w: int, h: int, rng: np.random.Generator) -> _Product:
    """A brushed steel plate, gently bent (highlights move with the view), holes and slots."""
    grain = rng.normal(0, 1, (h, w)).astype(np.float32)
    grain = cv2.GaussianBlur(grain, (0, 0), sigmaX=25, sigmaY=0.7)  # brushed along x
    shade = 150 + 18 * grain / (grain.std() + 1e-6)
    albedo = np.clip(np.stack([shade, shade * 1.01, shade * 1.03], 2), 0, 255).astype(np.uint8)
    mask = np.ones((h, w), np.uint8)
    for _ in range(int(rng.integers(3, 8))):  # holes and slots through the plate
        centre = (int(rng.uniform(0.1, 0.9) * w), int(rng.uniform(0.12, 0.88) * h))
        size = int(rng.uniform(0.02, 0.06) * w)
        if rng.random() < 0.6:
            cv2.circle(mask, centre, size, 0, -1)
        else:
            cv2.rectangle(mask, (centre[0] - 2 * size, centre[1] - size // 2),
                          (centre[0] + 2 * size, centre[1] + size // 2), 0, -1)
    for _ in range(int(rng.integers(1, 4))):  # engraved lines
        y = int(rng.uniform(0.1, 0.9) * h)
        cv2.line(albedo, (int(0.1 * w), y), (int(rng.uniform(0.3, 0.9) * w), y), (70, 70, 72),
                 2, cv2.LINE_AA)
    xx = (np.arange(w, dtype=np.float32) / w - 0.5)[None, :]
    bend = rng.uniform(5, 20)  # mm the middle rises over the ends
    height = 4.0 + bend * (1 - 4 * xx ** 2) * np.ones((h, 1), np.float32)
    return _Product(albedo, mask.astype(bool), height * mask, gloss=float(rng.uniform(0.4, 1.0)),
                    shininess=float(rng.uniform(8, 30)), glare=float(rng.uniform(0.3, 1.0)))


# --------------------------------------------------------------------------------------------
# Backgrounds and the table

def _background(kind: str, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A table surface (sRGB uint8) larger than the table, so sessions can take other parts."""
    w, h = size
    base = rng.uniform(40, 220) * rng.uniform(0.8, 1.2, 3)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 4)
    if kind == "plain":
        shade = 1.0 + 0.02 * noise / (noise.std() + 1e-6)
    else:  # wood-like grain: warped stripes (the warp made coarse, then enlarged)
        warp = cv2.GaussianBlur(rng.normal(0, 1, (h // 8, w // 8)).astype(np.float32), (0, 0), 5)
        warp = cv2.resize(warp, (w, h), interpolation=cv2.INTER_CUBIC)
        yy = np.arange(h, dtype=np.float32)[:, None]
        stripes = np.sin(2 * np.pi * (yy + 300 * warp / (warp.std() + 1e-6)) / rng.uniform(9, 25))
        shade = 1.0 + 0.12 * stripes + 0.05 * noise / (noise.std() + 1e-6)
    return np.clip(shade[..., None] * base, 0, 255).astype(np.uint8)


def _clutter(rng: np.random.Generator, keep_out: list[tuple[int, int, int, int]],
             size: tuple[int, int]) -> list[dict]:
    """Objects on the table away from the product and card: boxes, discs, pens."""
    objects = []
    for _ in range(200):
        if len(objects) >= int(rng.integers(4, 9)):
            break
        w, h = (int(v) for v in rng.uniform(20, 90, 2) * PX_PER_MM)
        x, y = int(rng.uniform(0, size[0] - w)), int(rng.uniform(0, size[1] - h))
        margin = int(15 * PX_PER_MM)
        if any(x < kx + kw + margin and kx - margin < x + w and y < ky + kh + margin
               and ky - margin < y + h for kx, ky, kw, kh in keep_out):
            continue
        objects.append({"box": (x, y, w, h), "colour": tuple(rng.uniform(0, 255, 3)),
                        "disc": bool(rng.random() < 0.4), "height": float(rng.uniform(2, 30))})
    return objects


def _draw_clutter(albedo: np.ndarray, height: np.ndarray, objects: list[dict],
                  move: np.ndarray) -> None:
    for obj, (dx, dy) in zip(objects, move, strict=True):
        x, y, w, h = obj["box"]
        x, y = int(x + dx), int(y + dy)
        shape = np.zeros(height.shape, np.uint8)
        if obj["disc"]:
            cv2.ellipse(shape, (x + w // 2, y + h // 2), (w // 2, h // 2), 0, 0, 360, 1, -1)
        else:
            cv2.rectangle(shape, (x, y), (x + w, y + h), 1, -1)
        inside = shape.astype(bool)
        albedo[inside] = np.asarray(obj["colour"], np.uint8)
        height[inside] = obj["height"]


@dataclasses.dataclass
class _Table:
    """One session's table: sRGB albedo, height (mm), gloss and glare weights, defect mask."""

    albedo: np.ndarray
    height: np.ndarray
    gloss: np.ndarray  # Blinn-Phong weight per pixel
    shininess: float
    glare: np.ndarray  # lamp-reflection weight per pixel
    defect: np.ndarray  # bool


def _radiance(table: _Table, light: Light, camera: Camera) -> np.ndarray:
    """Linear light leaving the table towards `camera` (float32, table pixels)."""
    th, tw = table.height.shape
    gy, gx = np.gradient(table.height)  # mm of height per table pixel
    normal = np.dstack([-gx * PX_PER_MM, -gy * PX_PER_MM, np.ones_like(gx)]).astype(np.float32)
    normal /= np.sqrt((normal * normal).sum(2, keepdims=True))
    to_light = light.direction().astype(np.float32)
    lambert = np.clip(normal @ to_light, 0, None)
    # Cast shadows: a point is shadowed when the height map, stepped towards the light,
    # rises above the light's ray through it.
    step = np.array([to_light[0], to_light[1]]) / max(math.hypot(*to_light[:2]), 1e-9)
    rise = math.tan(math.radians(light.elevation_deg))
    shadow = np.zeros((th, tw), np.float32)
    reach_mm = float(table.height.max()) / max(rise, 1e-3)
    for s_mm in np.linspace(1.0, max(1.0, reach_mm), 24):
        dx, dy = step * s_mm * PX_PER_MM
        moved = cv2.warpAffine(table.height, np.float32([[1, 0, -dx], [0, 1, -dy]]), (tw, th),
                               flags=cv2.INTER_LINEAR, borderValue=0)
        shadow = np.maximum(shadow, (moved - table.height - s_mm * rise > 0.2).astype(np.float32))
    shadow = cv2.GaussianBlur(shadow, (0, 0), 1.5 * PX_PER_MM)  # penumbra
    yy, xx = np.mgrid[0:th, 0:tw].astype(np.float32)
    ramp = (1.0 + light.gradient[0] * (xx / tw - 0.5) + light.gradient[1] * (yy / th - 0.5))
    direct = (1.0 - light.ambient) * lambert * (1.0 - shadow)
    radiance = srgb8_to_linear(table.albedo) * ((light.ambient + direct) * ramp)[..., None]
    # Highlights: Blinn-Phong towards the camera, and the lamp's mirror image.
    eye = _camera_centre(camera, (tw, th)).astype(np.float32)
    px = np.dstack([xx / tw, yy / tw, np.zeros_like(xx)])
    specular = np.zeros((th, tw), np.float32)
    if table.gloss.any():
        half = eye - px
        half /= np.sqrt((half * half).sum(2, keepdims=True))
        half += to_light
        half /= np.sqrt((half * half).sum(2, keepdims=True))
        highlight = np.clip((normal * half).sum(2), 0, 1) ** table.shininess
        specular = table.gloss * (1.0 - light.ambient) * highlight * (1.0 - shadow) * (lambert > 0)
    if light.lamp is not None and light.glare > 0:
        lamp = np.asarray(light.lamp)
        mirror = (eye[:2] * lamp[2] + lamp[:2] * eye[2]) / (eye[2] + lamp[2])
        spread = 0.04 * (eye[2] + lamp[2]) / 2  # the lamp's reflection, in table widths
        spot = np.exp(-((px[..., 0] - mirror[0]) ** 2 + (px[..., 1] - mirror[1]) ** 2)
                      / (2 * spread ** 2))
        specular = specular + light.glare * table.glare * spot
    return (radiance + (specular * ramp)[..., None]).astype(np.float32)


def _camera_centre(camera: Camera, table_size: tuple[int, int]) -> np.ndarray:
    """The camera's centre over the table (x, y in table widths from the table's corner, z up)."""
    tw, th = table_size
    H = camera.homography(table_size)
    f = camera.focal_factor * camera.width
    K = np.array([[f, 0, camera.width / 2], [0, f, camera.height / 2], [0, 0, 1.0]])
    C = np.array([[1.0 / tw, 0, -0.5], [0, 1.0 / tw, -0.5 * th / tw], [0, 0, 1.0]])
    plane = np.linalg.inv(K) @ H @ np.linalg.inv(C)  # [r1 r2 t] up to scale
    plane /= np.linalg.norm(plane[:, 0])
    if plane[2, 2] < 0:  # the scale's sign: the table lies in front of the camera
        plane = -plane
    r1, r2, t = plane[:, 0], plane[:, 1], plane[:, 2]
    R = np.column_stack([r1, r2, np.cross(r1, r2)])
    centre = -R.T @ t  # centred table units; the camera looks from -z in the camera's frame
    return np.array([centre[0] + 0.5, centre[1] + 0.5 * th / tw, abs(centre[2])])


# --------------------------------------------------------------------------------------------
# Photographs

def _photo_maps(shot: Shot, H: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each photo pixel, the table pixel it sees (for cv2.remap)."""
    w, h = shot.camera.width, shot.camera.height
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    ideal = shot.to_ideal(np.dstack([xx, yy]).reshape(-1, 2)).reshape(-1, 1, 2)
    table = cv2.perspectiveTransform(ideal, np.linalg.inv(H)).reshape(h, w, 2)
    return table[..., 0].astype(np.float32), table[..., 1].astype(np.float32)


def _photograph(radiance: np.ndarray, shot: Shot, H: np.ndarray, maps,
                rng: np.random.Generator) -> bytes:
    """Radiance on the table -> the JPEG bytes of the photo."""
    mx, my = (m[::16, ::16].astype(np.float64) / 16 for m in maps)
    jacobian = np.gradient(mx, axis=1) * np.gradient(my, axis=0) - (
        np.gradient(mx, axis=0) * np.gradient(my, axis=1))
    minification = math.sqrt(float(np.median(np.abs(jacobian))))  # table px per photo px
    if minification > 1.0:  # prefilter so the remap does not alias
        radiance = cv2.GaussianBlur(radiance, (0, 0), 0.5 * minification)
    sensor = cv2.remap(radiance, *maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                       borderValue=(0.02, 0.02, 0.02))
    if shot.blur_sigma > 0.05:
        sensor = cv2.GaussianBlur(sensor, (0, 0), shot.blur_sigma)
    photo = dataclasses.replace(shot.camera, jpeg_quality=None).develop(sensor, rng)
    return jpeg(photo, quality=shot.jpeg_quality)


def _decode(data: bytes) -> np.ndarray:
    return np.ascontiguousarray(cv2.imdecode(np.frombuffer(data, np.uint8),
                                             cv2.IMREAD_COLOR)[..., ::-1])


def _random_light(rng: np.random.Generator) -> Light:
    return Light(azimuth_deg=float(rng.uniform(0, 360)), elevation_deg=float(rng.uniform(35, 80)),
                 ambient=float(rng.uniform(0.25, 0.5)),
                 gradient=(float(rng.uniform(-0.15, 0.15)), float(rng.uniform(-0.15, 0.15))),
                 lamp=(float(rng.uniform(0.2, 0.6)), float(rng.uniform(0.2, 0.5)),
                       float(rng.uniform(1.0, 2.5))),
                 glare=float(rng.uniform(0.0, 0.8)) if rng.random() < 0.5 else 0.0)


def _pose(rng: np.random.Generator, base: Camera, golden: bool) -> Camera:
    if golden:  # the golden photo is taken with care: nearly frontal and upright
        rotation, tilt, zoom = rng.uniform(-5, 5), rng.uniform(0, 10), rng.uniform(0.9, 1.1)
    else:  # a unit photographed by hand: any rotation, up to 35 degrees of perspective
        rotation, tilt, zoom = rng.uniform(-180, 180), rng.uniform(0, 35), rng.uniform(0.8, 1.25)
    return dataclasses.replace(
        base, rotation_deg=float(rotation), tilt_deg=float(tilt),
        tilt_azimuth_deg=float(rng.uniform(0, 360)), fill=0.9 * float(zoom),
        offset=(float(rng.uniform(-0.05, 0.05)), float(rng.uniform(-0.05, 0.05))))


def _fits(shot: Shot, H: np.ndarray, quads: list[np.ndarray]) -> bool:
    """True when every quad (table pixels) lies inside the photo with a 2% margin."""
    w, h = shot.camera.width, shot.camera.height
    for quad in quads:
        ideal = cv2.perspectiveTransform(quad.reshape(-1, 1, 2), H).reshape(-1, 2)
        p = shot.from_ideal(ideal)
        if not np.all((p >= [0.02 * w, 0.02 * h]) & (p <= [0.98 * w, 0.98 * h])):
            return False
    return True


def _box_quad(box: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = box
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float64)


def _framed_shot(rng: np.random.Generator, camera: Camera, light: Light, golden: bool,
                 table_size: tuple[int, int], quads: list[np.ndarray]) -> tuple[Shot, np.ndarray]:
    """A shot whose photo holds the product (and card): re-aimed, then zoomed out, until so."""
    lens = dict(distortion_k1=float(rng.uniform(-0.006, 0.006)),
                blur_sigma=float(rng.uniform(0.0, 1.2)),
                jpeg_quality=int(rng.integers(85, 96) if golden else rng.integers(60, 96)))
    for attempt in range(40):
        pose = _pose(rng, camera, golden)
        if attempt >= 10:
            pose = dataclasses.replace(pose, fill=pose.fill * 0.97 ** (attempt - 9))
        shot = Shot(pose, light, **lens)
        H = pose.homography(table_size)
        if _fits(shot, H, quads):
            return shot, H
    raise RuntimeError("no pose frames the product; widen the photo or shrink the table")


def _mean_lab(albedo: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """CIELAB of a region's mean linear RGB: the colour as printed, read as a spectrometer."""
    linear = srgb_to_linear(albedo[mask].astype(np.float64) / 255.0)
    return linear_rgb_to_lab(linear.mean(axis=0))


def _drift(rng: np.random.Generator, albedo: np.ndarray, mask: np.ndarray,
           target: float) -> tuple[np.ndarray, float]:
    """The albedo with a uniform CIELAB shift of about `target` CIEDE2000; the exact truth.

    The shift's direction is drawn again while it would push the colour out of sRGB's gamut
    (clipped channels change the colour by less than the shift and no longer uniformly).
    """
    golden_lab = _mean_lab(albedo, mask)
    clipped = ((albedo[mask] == 0) | (albedo[mask] == 255)).mean()

    def shifted(direction: np.ndarray, scale: float) -> tuple[np.ndarray, float]:
        srgb = lab_shift(*(direction * scale))(albedo.astype(np.float64) / 255.0)
        out = np.clip(srgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return out, float(ciede2000(golden_lab, _mean_lab(out, mask)))

    for _ in range(20):
        direction = rng.normal(0, 1, 3)
        direction /= np.linalg.norm(direction)
        scale = target
        for _ in range(3):  # Delta-E00 is nearly linear in a small shift
            out, truth = shifted(direction, scale)
            scale *= target / max(truth, 1e-6)
        out, truth = shifted(direction, scale)
        if ((out[mask] == 0) | (out[mask] == 255)).mean() <= clipped + 0.01:
            break
    return out, truth


def randomised_pair(seed, *, kind: str | None = None, background: str | None = None,
                    case: str | None = None, card: bool | None = None,
                    photo_size: tuple[int, int] = PHOTO_SIZE,
                    golden_shot: Shot | None = None, unit_shot: Shot | None = None,
                    defect: tuple[str, float] | None = None,
                    drift_e00: float | None = None,
                    card_shift_mm: tuple[float, float] | None = None) -> RandomisedPair:
    """A golden and a unit photo of one randomised scene, and the truth.

    Everything not given is drawn from `seed` (an int or a sequence, as numpy's
    ``default_rng`` takes): the product kind, background, case (identical, a defect of one of
    :data:`testkit.scenes.DEFECT_KINDS` 8-14 mm across, or a uniform colour drift of a true
    Delta-E00 in :data:`DRIFT_PASS` or :data:`DRIFT_FAIL`), whether a colour card lies
    beside the product, both sessions' light and camera. With a card the unit's light,
    exposure and white balance change (the card is there to correct them); without one the
    unit is photographed under the golden's light with the same camera settings (a light box),
    since nothing could tell a change of light from a change of colour. `golden_shot` and
    `unit_shot` fix a session's light and camera (tests); their pose is used as given.
    `card_shift_mm` fixes where the unit's card lies against the golden's (drawn in +-15 mm
    otherwise; kept within the table and right of the product).
    """
    rng = np.random.default_rng(seed)
    kind = kind or str(rng.choice(PRODUCT_KINDS))
    background = background or str(rng.choice(BACKGROUNDS))
    case = case or str(rng.choice(CASES, p=(0.4, 0.4, 0.2)))
    card = bool(rng.random() < 0.7) if card is None else card
    table_size = (int(TABLE_MM[0] * PX_PER_MM), int(TABLE_MM[1] * PX_PER_MM))
    tw, th = table_size
    product = _make_product(kind, rng)
    ph, pw = product.mask.shape
    px0 = int(PRODUCT_CENTRE_MM[0] * PX_PER_MM - pw / 2)
    py0 = int(PRODUCT_CENTRE_MM[1] * PX_PER_MM - ph / 2)
    product_box = (px0, py0, pw, ph)
    card_image = render_card(PX_PER_MM) if card else None

    def card_box(shift_mm) -> tuple[int, int, int, int]:
        ch, cw = card_image.shape[:2]
        x = int(px0 + pw + (15 + shift_mm[0]) * PX_PER_MM)
        y = int((th - ch) / 2 + shift_mm[1] * PX_PER_MM)
        return min(max(x, px0 + pw + 4), tw - cw), min(max(y, 0), th - ch), cw, ch

    drawn_shift = rng.uniform(-15, 15, 2) if card else None  # drawn always: the same scene
    boxes = {"golden": card_box((0.0, 0.0)) if card else None,
             "unit": card_box(drawn_shift if card_shift_mm is None else card_shift_mm)
             if card else None}
    surface = _background("plain" if background == "plain" else "textured",
                          (tw + 400, th + 400), rng)
    keep_out = [product_box] + [b for b in boxes.values() if b]
    clutter = _clutter(rng, keep_out, table_size) if background == "cluttered" else []

    # The unit's product: defect and drift drawn on its artwork, in table pixels.
    unit_albedo, defect_mask, truth_e00, defect_kind = product.albedo, None, 0.0, None
    if case == "defect":
        defect_kind, size_mm = defect or (str(rng.choice(DEFECT_KINDS)), rng.uniform(8, 14))
        padded = np.pad(product.mask.astype(np.uint8), 1)  # the artwork's edge is an edge
        inside = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
        ys, xs = np.nonzero(inside > (size_mm + 8) * PX_PER_MM)
        if len(xs) == 0:  # a product too small or holed for the defect: its middle
            ys, xs = np.array([ph // 2]), np.array([pw // 2])
        pick = int(rng.integers(len(xs)))
        unit_albedo = product.albedo.copy()
        defect_mask = draw_defect(unit_albedo, defect_kind, (float(xs[pick]), float(ys[pick])),
                                  size_mm * PX_PER_MM, rng) & product.mask
    elif case == "drift":
        target = drift_e00 if drift_e00 is not None else float(
            rng.uniform(*(DRIFT_FAIL if rng.random() < 0.5 else DRIFT_PASS)))
        unit_albedo, truth_e00 = _drift(rng, product.albedo, product.mask, target)

    def table(session: str) -> _Table:
        offset = (200, 200) if session == "golden" else tuple(int(v) for v in
                                                              rng.integers(0, 400, 2))
        albedo = surface[offset[1]:offset[1] + th, offset[0]:offset[0] + tw].copy()
        height = np.zeros((th, tw), np.float32)
        move = (np.zeros((len(clutter), 2)) if session == "golden"
                else rng.uniform(-10, 10, (len(clutter), 2)) * PX_PER_MM)
        _draw_clutter(albedo, height, clutter, move)
        region = albedo[py0:py0 + ph, px0:px0 + pw]
        art = product.albedo if session == "golden" else unit_albedo
        region[product.mask] = art[product.mask]
        height[py0:py0 + ph, px0:px0 + pw][product.mask] = product.height[product.mask]
        gloss, glare = np.zeros((th, tw), np.float32), np.zeros((th, tw), np.float32)
        gloss[py0:py0 + ph, px0:px0 + pw][product.mask] = product.gloss
        glare[py0:py0 + ph, px0:px0 + pw][product.mask] = product.glare
        if card:
            x, y, cw, ch = boxes[session]
            albedo[y:y + ch, x:x + cw] = card_image
            height[y:y + ch, x:x + cw] = 1.0
            glare[y:y + ch, x:x + cw] = 0.1  # a card's semi-matt surface
        defect = np.zeros((th, tw), bool)
        if session == "unit" and defect_mask is not None:
            defect[py0:py0 + ph, px0:px0 + pw] = defect_mask
        return _Table(albedo, height, gloss, product.shininess, glare, defect)

    base = Camera(width=photo_size[0], height=photo_size[1])
    quads = [_box_quad(product_box)] + ([_box_quad(boxes["golden"])] if card else [])
    if golden_shot is None:
        lit = random_lit_camera(rng, base, pose=False) if card else dataclasses.replace(
            base, exposure=0.85, noise_sigma=float(rng.uniform(1.0, 2.5)))
        golden_shot, H_g = _framed_shot(rng, lit, _random_light(rng), True, table_size, quads)
    else:
        H_g = golden_shot.camera.homography(table_size)
    quads = [_box_quad(product_box)] + ([_box_quad(boxes["unit"])] if card else [])
    light_changed = card
    if unit_shot is None:
        if card:  # another light, white balance and exposure (an error of up to +-0.6 EV)
            lit = random_lit_camera(rng, base, pose=False)
            lit = dataclasses.replace(lit, exposure=lit.exposure * float(rng.uniform(0.65, 1.5)),
                                      white_balance=tuple(g * float(rng.uniform(0.85, 1.18))
                                                          for g in lit.white_balance))
            light = _random_light(rng)
        else:
            lit, light = golden_shot.camera, golden_shot.light
        unit_shot, H_u = _framed_shot(rng, lit, light, False, table_size, quads)
    else:
        H_u = unit_shot.camera.homography(table_size)
        light_changed = unit_shot.light != golden_shot.light
    shots = {"golden": (golden_shot, H_g), "unit": (unit_shot, H_u)}
    photos, maps = {}, {}
    for session, (shot, H) in shots.items():
        scene = table(session)
        light = shot.light  # exposure: a flat white at the table's centre gives 1
        centre_irradiance = light.ambient + (1 - light.ambient) * light.direction()[2]
        radiance = _radiance(scene, light, shot.camera) / centre_irradiance
        maps[session] = _photo_maps(shot, H)
        photos[session] = _photograph(radiance, shot, H, maps[session], rng)
        if session == "unit" and scene.defect.any():
            golden_maps = maps["golden"]
            warped = cv2.remap(scene.defect.astype(np.float32), *golden_maps, cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            defect_golden = warped > 0.5
    product_quad = golden_shot.from_ideal(
        cv2.perspectiveTransform(_box_quad(product_box).reshape(-1, 1, 2), H_g).reshape(-1, 2))
    return RandomisedPair(
        photos["golden"], photos["unit"], _decode(photos["golden"]), _decode(photos["unit"]),
        kind=kind, background=background, case=case, card=card, light_changed=light_changed,
        golden_shot=golden_shot, unit_shot=unit_shot, table_to_golden=H_g, table_to_unit=H_u,
        product_quad=product_quad, roi=inner_box(product_quad), defect_kind=defect_kind,
        defect_mask=defect_golden if case == "defect" else None, true_delta_e00=truth_e00)

