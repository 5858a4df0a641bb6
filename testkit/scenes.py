"""Synthetic phone photographs of flat products with known truth.

A "scene" is a table top (a plane, in millimetres) with a product printed on it (one of
scikit-image's bundled photographs, 300 mm wide unless told otherwise) and a rendered
ColorChecker Classic beside it. Two simulated phone cameras photograph the scene: each has its
own pose (in-plane rotation, tilt, distance), light (exposure and white balance), tone curve,
sensor noise and JPEG quality. Because the scene is a plane, each photo is a homography of the
table, so the true unit -> golden homography, the true colour drift of the product and the
true defect masks are all known exactly.

Everything here is test and benchmark tooling: the library never imports it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import cv2
import numpy as np

# --------------------------------------------------------------------------------------------
# Products

PRODUCT_IMAGES = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
    "retina",
    "colorwheel",
)
"""Colour photographs bundled with scikit-image that stand in for printed products."""

REPETITIVE_PATTERNS = ("circuit", "weave")
"""Synthetic repetitive products (printed circuit, fabric) where feature matching is ambiguous."""


def _skimage_rgb(name: str) -> np.ndarray:
    import skimage.data

    image = getattr(skimage.data, name)()
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3]).astype(np.uint8)


def _circuit_pattern(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A printed-circuit-like product: a regular grid of pads joined by traces."""
    h, w = size
    board = np.empty((h, w, 3), np.uint8)
    board[:] = (30, 90, 40)  # solder mask green
    pitch = max(8, w // 24)
    copper = (200, 160, 70)
    for y in range(pitch // 2, h, pitch):
        for x in range(pitch // 2, w, pitch):
            cv2.circle(board, (x, y), pitch // 5, copper, -1, cv2.LINE_AA)
            if x + pitch < w:
                cv2.line(board, (x, y), (x + pitch, y), copper, max(1, pitch // 12), cv2.LINE_AA)
            if y + pitch < h and rng.random() < 0.3:
                cv2.line(board, (x, y), (x, y + pitch), copper, max(1, pitch // 12), cv2.LINE_AA)
    return board


def _weave_pattern(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A fabric-like product: a fine periodic twill with a little yarn irregularity."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = max(6.0, w / 60.0)
    twill = 0.5 + 0.25 * np.sin(2 * np.pi * (xx + yy) / period) * np.sin(2 * np.pi * xx / period)
    yarn = cv2.GaussianBlur(rng.normal(0, 0.04, (h, w)).astype(np.float32), (0, 0), 2)
    shade = np.clip(twill + yarn, 0, 1)
    base = np.array([60, 80, 150], np.float32)  # denim blue
    return np.clip(shade[..., None] * base * 1.6, 0, 255).astype(np.uint8)


def product_artwork(name: str, width_px: int, aspect: float | None = None, seed: int = 0):
    """The product's printed artwork (sRGB uint8) resized to `width_px` wide."""
    rng = np.random.default_rng(seed)
    if name in REPETITIVE_PATTERNS:
        height_px = int(round(width_px * (aspect or 0.75)))
        maker = _circuit_pattern if name == "circuit" else _weave_pattern
        return maker((height_px, width_px), rng)
    image = _skimage_rgb(name)
    aspect = aspect or image.shape[0] / image.shape[1]
    height_px = int(round(width_px * aspect))
    return cv2.resize(image, (width_px, height_px), interpolation=cv2.INTER_CUBIC)


# --------------------------------------------------------------------------------------------
# Colour card

def card_colours_srgb() -> np.ndarray:
    """The 24 ColorChecker Classic patches as sRGB in [0, 1] (D65), reading order."""
    from calibration.charts import CHARTS, chart_srgb

    return np.asarray(chart_srgb(CHARTS["colorchecker-classic"]), dtype=np.float64)


CARD_SCALE = 0.75
"""The rendered ColorChecker is 3/4 of the Classic's size (about a Passport's)."""

CARD_WIDTH_MM = 279.4 * CARD_SCALE
"""Physical width of the rendered card, mm: what a spec's `chart.width_mm` says for it."""


def render_card(px_per_mm: float, *, scale: float = CARD_SCALE) -> np.ndarray:
    """A ColorChecker Classic at `scale` x its size, with the chart model's patch geometry.

    The patches sit where :data:`calibration.charts.COLORCHECKER_CLASSIC` says (a 6 x 4 grid,
    40 mm patches at 44 mm pitch, centred on a 279.4 x 215.9 mm card, all times `scale`), on a
    black frame, so that millimetres measured from the patch grid are the truth.
    """
    from calibration.charts import COLORCHECKER_CLASSIC as chart

    colours = (card_colours_srgb() * 255.0 + 0.5).astype(np.uint8)
    mm = px_per_mm * scale  # table pixels per millimetre of the full-size chart model
    width, height = (int(round(side * mm)) for side in chart.size_mm)
    card = np.full((height, width, 3), 20, np.uint8)
    centres = chart.patch_centres_mm() * mm + np.array([width / 2.0, height / 2.0])
    half = chart.patch_size_mm * mm / 2.0
    for colour, (cx, cy) in zip(colours, centres, strict=True):
        x0, y0 = int(round(cx - half)), int(round(cy - half))
        x1, y1 = int(round(cx + half)), int(round(cy + half))
        card[y0:y1, x0:x1] = colour
    return card


# --------------------------------------------------------------------------------------------
# Defects (drawn on the product in table coordinates)

DEFECT_KINDS = ("scratch", "stain", "hole", "foreign", "missing")


def _blob_mask(shape, centre, radius, rng, roughness=0.35):
    """A soft irregular blob (low-frequency noise threshold, in the spirit of DRAEM's masks)."""
    h, w = shape
    noise = rng.normal(0, 1, (max(4, h // 8), max(4, w // 8))).astype(np.float32)
    noise = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    noise = cv2.GaussianBlur(noise, (0, 0), max(1.0, radius / 3))
    noise /= np.abs(noise).max() + 1e-6
    yy, xx = np.mgrid[0:h, 0:w]
    dist = np.hypot(xx - centre[0], yy - centre[1]) / radius
    return (dist + roughness * noise) < 1.0


def draw_defect(
    world: np.ndarray, kind: str, centre_px: tuple[float, float], size_px: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draw one defect into `world` (sRGB uint8, modified in place); return its bool mask."""
    h, w = world.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    cx, cy = centre_px
    if kind == "scratch":
        angle = rng.uniform(0, np.pi)
        dx, dy = math.cos(angle) * size_px / 2, math.sin(angle) * size_px / 2
        thickness = max(2, int(size_px / 12))
        p0 = (int(cx - dx), int(cy - dy))
        p1 = (int(cx + dx), int(cy + dy))
        cv2.line(mask, p0, p1, 1, thickness, cv2.LINE_8)
        m = mask.astype(bool)
        tone = 235 if world[m].mean() < 128 else 25
        world[m] = (0.2 * world[m] + 0.8 * tone).astype(np.uint8)
        return m
    if kind == "stain":
        m = _blob_mask((h, w), (cx, cy), size_px / 2, rng)
        stain = np.array([110, 70, 30], np.float32)  # brown, like coffee or rust
        world[m] = (0.35 * world[m] + 0.65 * stain).astype(np.uint8)
        return m
    if kind == "hole":
        # A hole through the product: its torn dark rim, and the shaded table seen through it.
        cv2.circle(mask, (int(cx), int(cy)), int(size_px / 2), 1, -1)
        m = mask.astype(bool)
        world[m] = (12, 12, 12)
        inner = np.zeros_like(mask)
        cv2.circle(inner, (int(cx), int(cy)), max(1, int(size_px / 2 - max(2, size_px / 10))),
                   1, -1)
        world[inner.astype(bool)] = (150, 146, 138)
        return m
    if kind == "foreign":
        m = _blob_mask((h, w), (cx, cy), size_px / 2, rng)
        patch = _skimage_rgb("gravel")
        patch = cv2.resize(patch, (w, h), interpolation=cv2.INTER_LINEAR)
        patch = (patch.astype(np.float32) * np.array([1.0, 0.8, 0.5])).astype(np.uint8)
        world[m] = patch[m]
        return m
    if kind == "missing":
        # A missing part: a rectangular piece of the print gone, the bare table showing.
        x0, y0 = int(cx - size_px / 2), int(cy - size_px / 3)
        cv2.rectangle(mask, (x0, y0), (int(x0 + size_px), int(y0 + 2 * size_px / 3)), 1, -1)
        m = mask.astype(bool)
        world[m] = (205, 200, 190)
        return m
    raise ValueError(f"unknown defect kind {kind!r}; expected one of {DEFECT_KINDS}")


# --------------------------------------------------------------------------------------------
# Cameras

@dataclasses.dataclass(frozen=True)
class Camera:
    """A phone camera photographing the table plane, and how it renders light."""

    width: int = 2016
    height: int = 1512
    rotation_deg: float = 0.0  # in-plane rotation of the photo
    tilt_deg: float = 0.0  # angle between the optical axis and the table normal
    tilt_azimuth_deg: float = 0.0  # direction the camera leans towards
    fill: float = 0.8  # fraction of the photo width the scene (table) covers when frontal
    offset: tuple[float, float] = (0.0, 0.0)  # shift of the scene centre, fraction of size
    exposure: float = 1.0  # multiplies linear light
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)  # per-channel linear gains
    gamma: float | None = None  # None: sRGB encoding; else a pure power curve 1/gamma
    noise_sigma: float = 1.5  # sensor noise, in 8-bit code values
    jpeg_quality: int | None = 92  # None: no JPEG round trip
    focal_factor: float = 0.8  # focal length as a fraction of the photo width (~26 mm phone lens)
    # The light and the sensor. The scene's sRGB colours are its colours under D65; another
    # illuminant (XYZ white) scales their linear channels (von Kries), the sensor mixes its
    # channels by `crosstalk` (rows sum to 1), and the lens darkens the corners by `vignetting`
    # (fraction of light lost at the far corner, falling off with the squared radius).
    illuminant: tuple[float, float, float] | None = None
    crosstalk: tuple[tuple[float, float, float], ...] | None = None
    vignetting: float = 0.0
    # A lamp to one side: the light level is exp(gx * x + gy * y), x and y from the photo's
    # centre in photo widths (0.5: the light rises by 65 % across the photo's width).
    light_gradient: tuple[float, float] = (0.0, 0.0)

    def homography(self, table_size_px: tuple[int, int]) -> np.ndarray:
        """3x3 homography from table pixels to photo pixels (a pinhole looking at a plane)."""
        tw, th = table_size_px
        f = self.focal_factor * self.width
        K = np.array([[f, 0, self.width / 2], [0, f, self.height / 2], [0, 0, 1.0]])
        # Table coordinates centred, in units where the scene spans `fill` of the frontal width.
        scale = 1.0 / tw
        C = np.array([[scale, 0, -0.5], [0, scale, -0.5 * th / tw], [0, 0, 1.0]])
        tilt = math.radians(self.tilt_deg)
        az = math.radians(self.tilt_azimuth_deg)
        axis = np.array([math.cos(az), math.sin(az), 0.0])
        R_tilt, _ = cv2.Rodrigues(axis * tilt)
        rot = math.radians(self.rotation_deg)
        R_z = np.array([[math.cos(rot), -math.sin(rot), 0], [math.sin(rot), math.cos(rot), 0],
                        [0, 0, 1.0]])
        R = R_z @ R_tilt
        distance = f / (self.fill * self.width)  # frontal: 1 table width -> fill * photo width
        t = np.array([self.offset[0], self.offset[1], distance])
        H_plane = K @ np.column_stack([R[:, 0], R[:, 1], t])
        H = H_plane @ C
        return H / H[2, 2]

    def develop(self, linear_rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Linear light on the sensor -> an 8-bit sRGB photo (exposure, WB, tone, noise, JPEG)."""
        mix = self.sensor_matrix()
        light = linear_rgb if mix is None else cv2.transform(linear_rgb, mix)
        light = light * (self.exposure * np.asarray(self.white_balance, np.float32))
        if self.vignetting:
            h, w = light.shape[:2]
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            r2 = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2) / ((w / 2) ** 2 + (h / 2) ** 2)
            light = light * (1.0 - self.vignetting * r2)[..., None]
        if any(self.light_gradient):
            h, w = light.shape[:2]
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            gx, gy = self.light_gradient
            light = light * np.exp((gx * (xx - w / 2) + gy * (yy - h / 2)) / w)[..., None]
        light = np.clip(light, 0.0, 1.0)
        if self.gamma is None:
            encoded = _linear_to_srgb(light)
        else:
            encoded = light ** (1.0 / self.gamma)
        photo = encoded * 255.0
        if self.noise_sigma > 0:
            photo = photo + rng.normal(0, self.noise_sigma, photo.shape).astype(np.float32)
        photo = np.clip(photo + 0.5, 0, 255).astype(np.uint8)
        if self.jpeg_quality is not None:
            ok, buf = cv2.imencode(".jpg", photo[..., ::-1],
                                   [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            photo = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
        return np.ascontiguousarray(photo)


    def sensor_matrix(self) -> np.ndarray | None:
        """3x3 (float32) from the scene's linear sRGB under D65 to raw sensor RGB; None: identity.

        The light scales each linear channel by the illuminant's white relative to D65 (a von
        Kries scaling on RGB), then the sensor mixes its channels. Both keep every response
        positive, as a sensor's are: a Bradford transform applied to RGB data instead pushes
        saturated colours below zero, which no sensor records and no card can correct.
        """
        if self.illuminant is None and self.crosstalk is None:
            return None
        from imaging.color import xyz_to_linear_rgb

        mix = np.eye(3)
        if self.illuminant is not None:
            mix = np.diag(xyz_to_linear_rgb(np.asarray(self.illuminant, np.float64)))
        if self.crosstalk is not None:
            mix = np.asarray(self.crosstalk, np.float64) @ mix
        return mix.astype(np.float32)


ILLUMINANTS = {
    # CIE XYZ of the white (Y = 1), CIE 15:2004 Table T.3 (2-degree observer).
    "A (tungsten)": (1.09850, 1.0, 0.35585),
    "F11 (tri-band fluorescent)": (1.00962, 1.0, 0.64350),
    "D50": (0.96422, 1.0, 0.82521),
    "D65": (0.95047, 1.0, 1.08883),
    "D75": (0.94972, 1.0, 1.22638),
}
"""Lights for the calibration tests, from warm tungsten to cool daylight."""


def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _linear_to_srgb(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.0031308, 12.92 * x,
                    1.055 * np.power(np.maximum(x, 0), 1 / 2.4) - 0.055).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Scenes and pairs

@dataclasses.dataclass
class Scene:
    """A table top in sRGB uint8 at `px_per_mm`, and where things are on it (table pixels)."""

    image: np.ndarray
    px_per_mm: float
    product_box: tuple[int, int, int, int]  # x, y, w, h
    card_box: tuple[int, int, int, int]
    defect_mask: np.ndarray  # bool, table pixels


def make_scene(
    product: str = "astronaut",
    *,
    px_per_mm: float = 4.0,
    product_width_mm: float = 300.0,
    card: bool = True,
    seed: int = 0,
    table_seed: int | None = None,
    card_shift_mm: tuple[float, float] = (0.0, 0.0),
    drift: Callable[[np.ndarray], np.ndarray] | None = None,
    defects: tuple[tuple[str, float], ...] = (),
    stretch: tuple[float, float] = (1.0, 1.0),
) -> Scene:
    """Lay out the table: product, ColorChecker beside it, a faint table texture.

    `drift` maps the product's artwork (float sRGB 0..1) to the drifted artwork (a unit printed
    a shade off). `defects` is a tuple of (kind, size in mm), drawn at random spots inside the
    product, away from its edges. The scene's coordinates follow the product; `table_seed`
    draws another table texture under it and `card_shift_mm` moves the card, because between
    two photo sessions neither the table nor the card stays put relative to the product.
    """
    rng = np.random.default_rng(seed)
    card_w_mm, card_h_mm = (279.4 * CARD_SCALE, 215.9 * CARD_SCALE) if card else (0.0, 0.0)
    margin_mm = 25.0
    art = product_artwork(product, int(round(product_width_mm * px_per_mm)), seed=seed)
    if stretch != (1.0, 1.0):  # a unit made bigger or smaller than the golden sample
        size = (int(round(art.shape[1] * stretch[0])), int(round(art.shape[0] * stretch[1])))
        art = cv2.resize(art, size, interpolation=cv2.INTER_CUBIC)
    ph, pw = art.shape[:2]
    width = int(round((margin_mm * 3 + product_width_mm + card_w_mm) * px_per_mm))
    height_mm = max(ph / px_per_mm, card_h_mm) + 2 * margin_mm
    height = int(round(height_mm * px_per_mm))
    # Table: a light, faintly textured surface (real tables are not perfectly flat grey).
    table_rng = np.random.default_rng(seed if table_seed is None else table_seed)
    grain = table_rng.normal(0, 1, (height, width)).astype(np.float32)
    grain = cv2.GaussianBlur(grain, (0, 0), 6)
    grain = 200 + 6 * grain / (grain.std() + 1e-6)
    table = np.clip(np.stack([grain, grain * 0.97, grain * 0.92], axis=2), 0, 255).astype(np.uint8)

    px0, py0 = int(margin_mm * px_per_mm), int((height - ph) / 2)
    if drift is not None:
        art = np.clip(drift(art.astype(np.float32) / 255.0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    table[py0:py0 + ph, px0:px0 + pw] = art
    product_box = (px0, py0, pw, ph)

    card_box = (0, 0, 0, 0)
    if card:
        card_img = render_card(px_per_mm)
        ch, cw = card_img.shape[:2]
        cx0 = px0 + pw + int((margin_mm + card_shift_mm[0]) * px_per_mm)
        cy0 = int((height - ch) / 2 + card_shift_mm[1] * px_per_mm)
        cx0, cy0 = min(max(cx0, px0 + pw + 4), width - cw), min(max(cy0, 0), height - ch)
        table[cy0:cy0 + ch, cx0:cx0 + cw] = card_img
        card_box = (cx0, cy0, cw, ch)

    defect_mask = np.zeros((height, width), bool)
    for kind, size_mm in defects:
        size_px = size_mm * px_per_mm
        inset = size_px + 10 * px_per_mm
        centre = (rng.uniform(px0 + inset, px0 + pw - inset),
                  rng.uniform(py0 + inset, py0 + ph - inset))
        defect_mask |= draw_defect(table, kind, centre, size_px, rng)
    return Scene(table, px_per_mm, product_box, card_box, defect_mask)


def photograph(scene: Scene, camera: Camera, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Take a photo of `scene` with `camera`: (sRGB uint8 photo, table -> photo homography)."""
    rng = np.random.default_rng(seed)
    th, tw = scene.image.shape[:2]
    H = camera.homography((tw, th))
    linear = _srgb_to_linear(scene.image.astype(np.float32) / 255.0)
    # Render in linear light; the floor outside the table is a dark grey.
    sensor = cv2.warpPerspective(linear, H, (camera.width, camera.height), flags=cv2.INTER_AREA
                                 if _minification(H, (tw, th)) > 1.5 else cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=(0.02, 0.02, 0.02))
    return camera.develop(sensor, rng), H


def _minification(H: np.ndarray, size: tuple[int, int]) -> float:
    """How many table pixels land on one photo pixel, roughly (for the choice of filter)."""
    w, h = size
    corners = np.array([[[0, 0]], [[w, 0]], [[w, h]], [[0, h]]], np.float32)
    projected = cv2.perspectiveTransform(corners, H).reshape(-1, 2)
    area = cv2.contourArea(projected.astype(np.float32))
    return float(np.sqrt(w * h / max(area, 1.0)))


@dataclasses.dataclass
class Pair:
    """A golden photo and a unit photo of the same (or another) product, with the truth."""

    golden: np.ndarray
    unit: np.ndarray
    homography_unit_to_golden: np.ndarray  # true, in full-resolution photo pixels
    roi: tuple[int, int, int, int]  # the product's box in golden pixels (x, y, w, h)
    golden_defect_mask: np.ndarray  # bool, golden pixels: defects the unit photo shows
    same_product: bool = True
    description: str = ""
    defect_visible_fraction: float = 1.0  # of the defects' area, how much the unit photo shows
    # Colour truth: the ROI's colour as printed (CIELAB D65, linear RGB averaged over the ROI
    # first), whatever the light and camera did to the photos.
    golden_lab: np.ndarray | None = None
    unit_lab: np.ndarray | None = None
    # Card truth: the patch grid's outer corners in each photo (card's own top-left,
    # top-right, bottom-right, bottom-left; None without a card), and the photo's pixels per
    # millimetre at the card's centre.
    golden_card_quad: np.ndarray | None = None
    unit_card_quad: np.ndarray | None = None
    golden_px_per_mm: float | None = None
    unit_px_per_mm: float | None = None

    @property
    def true_delta_e00(self) -> float:
        """CIEDE2000 between the true ROI colours of golden and unit."""
        from imaging.color import ciede2000

        return float(ciede2000(self.golden_lab, self.unit_lab))


def _project_box(H: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = box
    pts = np.array([[[x, y]], [[x + w, y]], [[x + w, y + h]], [[x, y + h]]], np.float64)
    return cv2.perspectiveTransform(pts, H).reshape(-1, 2)


def inner_box(quad: np.ndarray, shrink: float = 0.03) -> tuple[int, int, int, int]:
    """An axis-aligned box inside a nearly axis-aligned quadrilateral, shrunk a little."""
    xs, ys = np.sort(quad[:, 0]), np.sort(quad[:, 1])
    x0, x1, y0, y1 = xs[1], xs[2], ys[1], ys[2]
    dx, dy = (x1 - x0) * shrink, (y1 - y0) * shrink
    return int(x0 + dx), int(y0 + dy), int(x1 - x0 - 2 * dx), int(y1 - y0 - 2 * dy)


def make_pair(
    product: str = "astronaut",
    *,
    golden_camera: Camera | None = None,
    unit_camera: Camera | None = None,
    unit_product: str | None = None,
    drift: Callable[[np.ndarray], np.ndarray] | None = None,
    defects: tuple[tuple[str, float], ...] = (),
    px_per_mm: float = 4.0,
    card: bool = True,
    same_setup: bool = False,
    unit_stretch: tuple[float, float] = (1.0, 1.0),
    seed: int = 0,
) -> Pair:
    """Photograph the golden sample and a unit; return both photos and the truth.

    The golden scene is the flawless product; the unit scene is the same product (or
    `unit_product`), optionally colour-drifted and with defects. Between the two sessions the
    table texture under the product and the card's place change, unless `same_setup`.
    `unit_stretch` makes the unit product wider/taller by those factors (a dimension change);
    the true homography then holds for the table and card, not for the product.
    """
    golden_camera = golden_camera or Camera()
    unit_camera = unit_camera or golden_camera
    golden_scene = make_scene(product, px_per_mm=px_per_mm, card=card, seed=seed)
    # The unit session: another spot on the table, the card put down a little elsewhere;
    # unless `same_setup` (a fixture or light box: same background, card fixed in place).
    jitter = np.random.default_rng(seed + 104729).uniform(-15, 15, 2)
    unit_scene = make_scene(
        unit_product or product, px_per_mm=px_per_mm, card=card, seed=seed,
        table_seed=seed if same_setup else seed + 7919,
        card_shift_mm=(0.0, 0.0) if same_setup else (float(jitter[0]), float(jitter[1])),
        drift=drift, defects=defects, stretch=unit_stretch,
    )
    golden, H_g = photograph(golden_scene, golden_camera, seed=seed * 2 + 1)
    unit, H_u = photograph(unit_scene, unit_camera, seed=seed * 2 + 2)
    H = H_g @ np.linalg.inv(H_u)
    H /= H[2, 2]
    roi = inner_box(_project_box(H_g, golden_scene.product_box))
    size = (golden_camera.width, golden_camera.height)
    mask = cv2.warpPerspective(unit_scene.defect_mask.astype(np.uint8) * 255, H_g, size,
                               flags=cv2.INTER_LINEAR) > 127
    # Only what the unit photo shows can be found: a zoomed-in unit may crop a defect away.
    visible = mask & (cv2.warpPerspective(np.ones(unit.shape[:2], np.uint8), H, size,
                                          flags=cv2.INTER_NEAREST) > 0)
    visible_fraction = float(visible.sum() / mask.sum()) if mask.any() else 1.0
    # The ROI's table region (the same in both scenes: the product does not move on the table).
    roi_quad = _project_box(np.linalg.inv(H_g), roi)
    return Pair(golden, unit, H, roi, visible, same_product=unit_product in (None, product),
                description=f"{product} vs {unit_product or product}",
                defect_visible_fraction=visible_fraction,
                golden_lab=_region_lab(golden_scene.image, roi_quad),
                unit_lab=_region_lab(unit_scene.image, roi_quad),
                golden_card_quad=_card_quad(golden_scene, H_g),
                unit_card_quad=_card_quad(unit_scene, H_u),
                golden_px_per_mm=_px_per_mm_at_card(golden_scene, H_g),
                unit_px_per_mm=_px_per_mm_at_card(unit_scene, H_u))


def _region_lab(table: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """CIELAB of a table region's mean linear RGB: the colour a spectrophotometer reads."""
    from imaging.color import linear_rgb_to_lab

    mask = np.zeros(table.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(quad).astype(np.int32)], 1)
    linear = _srgb_to_linear(table[mask > 0].astype(np.float32) / 255.0)
    return linear_rgb_to_lab(linear.astype(np.float64).mean(axis=0))


def _card_patch_corners_table(scene: Scene) -> np.ndarray | None:
    """The patch grid's outer corners on the table (the card lies upright on the table)."""
    from calibration.charts import COLORCHECKER_CLASSIC as chart

    x, y, w, h = scene.card_box
    if w == 0:
        return None
    mm = scene.px_per_mm * CARD_SCALE
    half_w = ((chart.cols - 1) * chart.patch_pitch_mm + chart.patch_size_mm) / 2 * mm
    half_h = ((chart.rows - 1) * chart.patch_pitch_mm + chart.patch_size_mm) / 2 * mm
    cx, cy = x + w / 2.0, y + h / 2.0
    return np.array([[cx - half_w, cy - half_h], [cx + half_w, cy - half_h],
                     [cx + half_w, cy + half_h], [cx - half_w, cy + half_h]])


def _card_quad(scene: Scene, H: np.ndarray) -> np.ndarray | None:
    corners = _card_patch_corners_table(scene)
    if corners is None:
        return None
    return cv2.perspectiveTransform(corners.reshape(-1, 1, 2), H).reshape(-1, 2)


def _px_per_mm_at_card(scene: Scene, H: np.ndarray) -> float | None:
    """Photo pixels per millimetre at the card's centre: sqrt of the local area scale."""
    x, y, w, h = scene.card_box
    if w == 0:
        return None
    cx, cy = x + w / 2.0, y + h / 2.0
    eps = 1.0
    pts = np.array([[cx, cy], [cx + eps, cy], [cx, cy + eps]]).reshape(-1, 1, 2)
    p0, px, py = cv2.perspectiveTransform(pts, H).reshape(-1, 2)
    (ax, ay), (bx, by) = px - p0, py - p0
    area_scale = abs(ax * by - ay * bx) / eps**2  # photo px^2 per table px^2
    return float(np.sqrt(area_scale) * scene.px_per_mm)


def random_phone_camera(rng: np.random.Generator, base: Camera | None = None, *,
                        rotation: str = "any", max_tilt_deg: float = 25.0,
                        scale_range: tuple[float, float] = (0.7, 1.4),
                        light: bool = True) -> Camera:
    """A unit camera as an inspector holds a phone: any rotation, tilt, zoom, other light."""
    base = base or Camera()
    if rotation == "any":
        rotation_deg = float(rng.uniform(-180, 180))
    elif rotation == "right":
        rotation_deg = float(rng.choice([0, 90, 180, 270]) + rng.uniform(-5, 5))
    else:
        rotation_deg = 0.0
    scale = float(np.exp(rng.uniform(np.log(scale_range[0]), np.log(scale_range[1]))))
    changes = dict(
        rotation_deg=rotation_deg,
        tilt_deg=float(rng.uniform(0, max_tilt_deg)),
        tilt_azimuth_deg=float(rng.uniform(0, 360)),
        fill=base.fill * scale,
        offset=(float(rng.uniform(-0.05, 0.05)), float(rng.uniform(-0.05, 0.05))),
    )
    if light:
        changes.update(
            exposure=float(rng.uniform(0.7, 1.3)),
            white_balance=(float(rng.uniform(0.85, 1.15)), 1.0, float(rng.uniform(0.85, 1.15))),
            gamma=float(rng.choice([2.2, 2.4])) if rng.random() < 0.5 else None,
            noise_sigma=float(rng.uniform(1.0, 3.0)),
            jpeg_quality=int(rng.integers(80, 96)),
        )
    return dataclasses.replace(base, **changes)


def random_lit_camera(rng: np.random.Generator, base: Camera | None = None, *,
                      pose: bool = True, vignetting: float = 0.1,
                      scale_range: tuple[float, float] = (0.7, 1.4)) -> Camera:
    """A phone under some light: illuminant, crosstalk, auto white balance, tone curve, noise.

    The illuminant is drawn from :data:`ILLUMINANTS` (warm tungsten to cool daylight); the
    camera's auto white balance corrects it only partly (60-100 %), as phones do; the sensor
    mixes its channels (crosstalk); the tone curve is sRGB or a power curve of gamma 1.9-2.5;
    exposure keeps the white patch below clipping; the lens darkens the corners by up to
    `vignetting` (what is left after a phone's lens-shading correction; the card and the
    product lie at different radii, so it is an error the card cannot remove). With `pose`,
    also a hand-held pose.
    """
    base = (random_phone_camera(rng, base, light=False, scale_range=scale_range) if pose
            else (base or Camera()))
    illuminant = ILLUMINANTS[list(ILLUMINANTS)[int(rng.integers(len(ILLUMINANTS)))]]
    leak = rng.uniform(0.02, 0.12, (3, 3))
    np.fill_diagonal(leak, 0.0)
    crosstalk = np.eye(3) + leak
    crosstalk /= crosstalk.sum(axis=1, keepdims=True)
    trial = dataclasses.replace(base, illuminant=illuminant,
                                crosstalk=tuple(map(tuple, crosstalk)))
    grey = trial.sensor_matrix() @ np.ones(3)
    balance = (grey[1] / grey) ** rng.uniform(0.6, 1.0)  # partial auto white balance
    white = grey * balance  # sensor response to a perfect white, after white balance
    exposure = float(rng.uniform(0.65, 0.95) / white.max())
    return dataclasses.replace(
        trial, white_balance=tuple(float(g) for g in balance), exposure=exposure,
        gamma=None if rng.random() < 0.4 else float(rng.uniform(1.9, 2.5)),
        vignetting=float(rng.uniform(0.0, vignetting)),
        noise_sigma=float(rng.uniform(1.0, 3.0)), jpeg_quality=int(rng.integers(80, 96)),
    )


def lab_shift(delta_L: float = 0.0, delta_a: float = 0.0, delta_b: float = 0.0):
    """A drift that shifts every pixel's CIELAB by (dL, da, db): a unit printed a shade off."""
    from imaging.color import lab_to_srgb, srgb_to_lab

    def apply(srgb: np.ndarray) -> np.ndarray:
        lab = srgb_to_lab(srgb.astype(np.float64))
        lab = lab + np.array([delta_L, delta_a, delta_b])
        return np.clip(lab_to_srgb(lab), 0, 1)

    return apply
