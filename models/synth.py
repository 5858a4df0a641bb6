"""Synthetic registered golden/unit pairs with known defect masks, for training and evaluation.

Each sample is a square crop of a "product" (a real photograph bundled with scikit-image, or
procedural line art: printed circuits, text, shapes), seen twice:

- golden: the flawless product through one simulated camera;
- unit: the same product, optionally with defects drawn in, through another camera, slightly
  misregistered.

Nuisances that must NOT be flagged (both sides, independently): residual exposure, white balance
and tone after colour calibration, a gentle light fall-off, a small uniform colour drift, blur,
sensor noise, JPEG, misregistration up to 3 px (shift, a fraction of a degree, a fraction of a
percent of scale), and for line art the edge jitter of binarisation (DeepPCB-like scans).

Defects that must be flagged: DRAEM's anomalies (a Perlin-noise mask filled with a foreign
texture, blended with the product; Zavrtanik, Kristan & Skocaj 2021,
doi:10.1109/ICCV48922.2021.00822), a patch of the product pasted elsewhere (CutPaste; Li et al.
2021, doi:10.1109/CVPR46437.2021.00954), scratches, stains, holes, missing parts, added parts,
and print defects on line art and text (opens, shorts, spurs, mouse bites, pin holes, spurious
ink). The label is the part of the drawn mask where the unit visibly changed, so an
invisible blend is not asked of the network.

The held-out split never shares a product photograph or a seed with the training split: the
photographs in :data:`HELDOUT_PHOTOS` are used only for evaluation, and procedural products and
all random draws come from disjoint seed ranges (:func:`split_seed`).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math

import cv2
import numpy as np

TRAIN_PHOTOS = (
    "astronaut", "chelsea", "immunohistochemistry", "hubble_deep_field", "retina", "colorwheel",
    "camera", "clock", "coins", "moon", "page", "text", "logo", "cell", "stereo_motorcycle",
    "horse", "checkerboard", "shepp_logan_phantom",
)
"""scikit-image images (no download needed) used as training products."""

HELDOUT_PHOTOS = ("coffee", "rocket")
"""scikit-image photographs kept out of training entirely: evaluation products only."""

TEXTURES = ("brick", "grass", "gravel")
"""scikit-image textures used as DRAEM's foreign fill (besides procedural noise)."""

SPLITS = ("train", "heldout")

_SEED_BASE = {"train": 0, "heldout": 1_000_000_007}


def split_seed(split: str, index: int) -> int:
    """Seed of sample `index` of `split`; the two splits' seed ranges never meet."""
    if split not in SPLITS:
        raise ValueError(f'"{split}" split is invalid, it must be one of {SPLITS}!')
    return _SEED_BASE[split] + index


# --------------------------------------------------------------------------------------------
# Products


@functools.cache
def _skimage_rgb(name: str) -> np.ndarray:
    import skimage.data

    image = getattr(skimage.data, name)()
    if name == "stereo_motorcycle":
        image = image[0]
    image = np.asarray(image)
    if image.dtype == bool:
        image = np.where(image, 235, 25).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image * 255.0, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def _random_colour(rng: np.random.Generator, light: bool | None = None) -> np.ndarray:
    colour = rng.uniform(0, 255, 3)
    if light is True:
        colour = 150 + 0.4 * colour
    elif light is False:
        colour = 0.4 * colour
    return colour.astype(np.float32)


def _pcb_artwork(size: int, rng: np.random.Generator) -> np.ndarray:
    """Printed-circuit line art: traces at 0/45/90 degrees, pads, vias, copper pours, legends."""
    scale = int(rng.integers(2, 5))  # draw big and shrink: anti-aliased, varied line widths
    big = size * scale
    if rng.random() < 0.5:  # binarised scan look (DeepPCB): dark copper on white
        paper, ink = np.full(3, 250, np.float32), np.full(3, 10, np.float32)
        if rng.random() < 0.3:
            paper, ink = ink, paper
    else:
        paper, ink = _random_colour(rng), _random_colour(rng)
        if np.abs(paper - ink).max() < 60:
            ink = 255 - paper
    board = np.empty((big, big, 3), np.uint8)  # OpenCV 5 draws text on 8-bit images only
    board[:] = paper
    pitch = rng.uniform(0.04, 0.2) * big
    for _ in range(int(rng.integers(3, 14))):
        x, y = rng.uniform(0, big, 2)
        width = max(1, int(rng.uniform(0.004, 0.03) * big))
        for _ in range(int(rng.integers(1, 5))):
            angle = rng.choice([0, 45, 90, 135, 180, 225, 270, 315]) * math.pi / 180
            length = rng.uniform(0.5, 4) * pitch
            x1, y1 = x + length * math.cos(angle), y + length * math.sin(angle)
            cv2.line(board, (int(x), int(y)), (int(x1), int(y1)), ink.tolist(), width, cv2.LINE_AA)
            x, y = x1, y1
        radius = int(width * rng.uniform(1.2, 3))
        if rng.random() < 0.5:
            cv2.circle(board, (int(x), int(y)), radius, ink.tolist(), -1, cv2.LINE_AA)
            if rng.random() < 0.5:
                cv2.circle(board, (int(x), int(y)), max(1, radius // 2), paper.tolist(), -1,
                           cv2.LINE_AA)
        else:
            cv2.rectangle(board, (int(x - radius), int(y - radius)),
                          (int(x + radius), int(y + radius)), ink.tolist(), -1)
    for _ in range(int(rng.integers(0, 3))):  # copper pours
        x0, y0 = rng.uniform(-0.2, 1.0, 2) * big
        w, h = rng.uniform(0.15, 0.6, 2) * big
        cv2.rectangle(board, (int(x0), int(y0)), (int(x0 + w), int(y0 + h)), ink.tolist(), -1)
    for _ in range(int(rng.integers(0, 3))):  # silkscreen legends
        text = "".join(rng.choice(list("ABCDRUQ0123456789+-"), int(rng.integers(1, 5))))
        cv2.putText(board, text, (int(rng.uniform(0, big * 0.8)), int(rng.uniform(0.1, 1) * big)),
                    cv2.FONT_HERSHEY_SIMPLEX, rng.uniform(0.5, 2.0) * scale, ink.tolist(),
                    max(1, scale), cv2.LINE_AA)
    board = cv2.resize(board, (size, size), interpolation=cv2.INTER_AREA)
    return board.astype(np.float32) / 255.0


def _text_artwork(size: int, rng: np.random.Generator) -> np.ndarray:
    """Printed text and rules (labels, packaging, manuals)."""
    paper = _random_colour(rng, light=True)
    ink = _random_colour(rng, light=False)
    page = np.empty((size, size, 3), np.uint8)
    page[:] = paper
    fonts = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
             cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_TRIPLEX)
    font = fonts[int(rng.integers(len(fonts)))]
    font_scale = rng.uniform(0.3, 1.3)
    line_height = int(30 * font_scale) + 4
    letters = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,:%")
    y = int(rng.uniform(0, line_height))
    while y < size + line_height:
        words = " ".join("".join(rng.choice(letters, int(rng.integers(2, 9))))
                         for _ in range(int(rng.integers(2, 8))))
        cv2.putText(page, words, (int(rng.uniform(-20, 10)), y), font, font_scale,
                    ink.tolist(), max(1, int(font_scale * 2)), cv2.LINE_AA)
        if rng.random() < 0.1:
            cv2.line(page, (0, y + 4), (size, y + 4), ink.tolist(), 1)
        y += line_height
    return page.astype(np.float32) / 255.0


def _photo_crop(name: str, size: int, rng: np.random.Generator) -> np.ndarray:
    image = _skimage_rgb(name)
    h, w = image.shape[:2]
    # The analysis resolution sees a product at various scales.
    scale = rng.uniform(0.5, 1.6) * max(size / min(h, w), 1.0 if min(h, w) > 2 * size else 0.0)
    scale = max(scale, (size + 2) / min(h, w))
    image = cv2.resize(image, (max(size, int(w * scale)), max(size, int(h * scale))),
                       interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    h, w = image.shape[:2]
    y0, x0 = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    return image[y0:y0 + size, x0:x0 + size].astype(np.float32) / 255.0


_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                        [0.596, -0.274, -0.322],
                        [0.211, -0.523, 0.312]], np.float32)


def _recoloured(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Half the time, the same product in other colours: hue turned and saturation scaled.

    Training only. Most of scikit-image's photographs are grey or share a few palettes, and
    the model did clearly better on them than on held-out products; a new product is as often
    a known pattern in a new colour as a new pattern. The rotation is of the chroma plane of
    YIQ, so lightness and structure stay; the truth (masks, misregistration) is untouched.
    """
    if rng.random() < 0.5:
        return image
    angle, saturation = rng.uniform(-np.pi, np.pi), rng.uniform(0.5, 1.5)
    c, s = np.cos(angle) * saturation, np.sin(angle) * saturation
    turn = np.array([[1, 0, 0], [0, c, -s], [0, s, c]], np.float32)
    matrix = np.linalg.inv(_RGB_TO_YIQ) @ turn @ _RGB_TO_YIQ
    return np.clip(image @ matrix.T.astype(np.float32), 0, 1)


def _dead_leaves_artwork(size: int, rng: np.random.Generator) -> np.ndarray:
    """Occluding discs, boxes and ellipses with power-law sizes: a "dead leaves" image.

    The dead-leaves model (Matheron 1968; Lee, Mumford & Huang 2001,
    doi:10.1023/A:1011109015675) reproduces the scale-invariant statistics of natural images,
    so it stands in for the many products the bundled photographs do not show. Surfaces are
    flat, shaded or finely textured, as moulded, painted or printed parts are.
    """
    canvas = np.empty((size, size, 3), np.float32)
    canvas[:] = _random_colour(rng) / 255.0
    r_min, r_max = 0.03 * size, 0.6 * size
    for _ in range(int(rng.integers(60, 200))):
        # r ~ r^-3 on [r_min, r_max] (scale invariance), by inverting its distribution.
        u = rng.random()
        radius = (r_min ** -2 - u * (r_min ** -2 - r_max ** -2)) ** -0.5
        cx, cy = rng.uniform(-0.1, 1.1, 2) * size
        colour = (_random_colour(rng) / 255.0).tolist()
        layer = np.zeros((size, size), np.uint8)
        shape = rng.random()
        if shape < 0.45:
            cv2.circle(layer, (int(cx), int(cy)), int(radius), 1, -1, cv2.LINE_AA)
        elif shape < 0.8:
            sides = (float(2 * radius), float(2 * radius * rng.uniform(0.2, 1)))
            box = ((float(cx), float(cy)), sides, float(rng.uniform(0, 180)))
            cv2.fillPoly(layer, [cv2.boxPoints(box).astype(np.int32)], 1, cv2.LINE_AA)
        else:
            cv2.ellipse(layer, (int(cx), int(cy)),
                        (int(radius), max(1, int(radius * rng.uniform(0.2, 1)))),
                        float(rng.uniform(0, 180)), 0, 360, 1, -1, cv2.LINE_AA)
        inside = layer.astype(bool)
        canvas[inside] = colour
    if rng.random() < 0.5:  # shading of a curved or unevenly lit surface
        canvas *= (1 + 0.25 * perlin_noise((size, size), (2, 2), rng))[..., None]
    if rng.random() < 0.4:  # fine surface texture (grain, weave, print screen)
        canvas += 0.04 * perlin_noise((size, size), (size // 8, size // 8), rng)[..., None]
    return np.clip(canvas, 0, 1).astype(np.float32)


def product_crop(split: str, size: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """A flawless product crop (float32 RGB in [0, 1]) and whether it is line art.

    Training also draws dead-leaves products (half of the photographs' share goes to them);
    the held-out split keeps the draws it was evaluated with, so its figures stay comparable
    from one model to the next.
    """
    photos = TRAIN_PHOTOS if split == "train" else HELDOUT_PHOTOS
    choice = rng.random()
    if split == "train" and choice < 0.25:
        return _recoloured(_dead_leaves_artwork(size, rng), rng), False
    if choice < 0.5:
        crop = _photo_crop(photos[int(rng.integers(len(photos)))], size, rng)
        return (_recoloured(crop, rng) if split == "train" else crop), False
    if choice < 0.8:
        return _pcb_artwork(size, rng), True
    return _text_artwork(size, rng), True


# --------------------------------------------------------------------------------------------
# Masks and fills


def perlin_noise(shape: tuple[int, int], cells: tuple[int, int],
                 rng: np.random.Generator) -> np.ndarray:
    """2-D Perlin gradient noise (Perlin 2002, improved fade curve), roughly in [-1, 1]."""
    h, w = shape
    cy, cx = cells
    angles = rng.uniform(0, 2 * np.pi, (cy + 1, cx + 1))
    gradients = np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    ys = np.linspace(0, cy, h, endpoint=False)
    xs = np.linspace(0, cx, w, endpoint=False)
    yi, xi = ys.astype(int), xs.astype(int)
    yf, xf = (ys - yi)[:, None], (xs - xi)[None, :]

    def corner(dy: int, dx: int) -> np.ndarray:
        g = gradients[(yi + dy)[:, None], (xi + dx)[None, :]]
        return g[..., 0] * (yf - dy) + g[..., 1] * (xf - dx)

    def fade(t: np.ndarray) -> np.ndarray:
        return t * t * t * (t * (t * 6 - 15) + 10)

    u, v = fade(xf), fade(yf)
    top = corner(0, 0) * (1 - u) + corner(0, 1) * u
    bottom = corner(1, 0) * (1 - u) + corner(1, 1) * u
    return ((top * (1 - v) + bottom * v) * math.sqrt(2)).astype(np.float32)


def _perlin_blob(size: int, centre: tuple[float, float], radius: float,
                 rng: np.random.Generator) -> np.ndarray:
    """DRAEM's thresholded Perlin noise, confined to a window of about `radius` (bool)."""
    cells = int(2 ** rng.integers(1, 4))
    noise = perlin_noise((size, size), (cells, cells), rng)
    yy, xx = np.mgrid[0:size, 0:size]
    window = 1.0 - np.hypot(xx - centre[0], yy - centre[1]) / radius
    mask = (noise + 1.5 * window) > 1.0
    if not mask.any():
        cv2.circle(mask.view(np.uint8), (int(centre[0]), int(centre[1])), max(2, int(radius / 2)),
                   1, -1)
    return mask


def _foreign_texture(size: int, rng: np.random.Generator, split: str) -> np.ndarray:
    """A fill that does not belong to the product (DRAEM uses DTD; we have no download)."""
    kind = rng.random()
    if kind < 0.45:
        texture = _photo_crop(TEXTURES[int(rng.integers(len(TEXTURES)))], size, rng)
    elif kind < 0.7:
        photos = TRAIN_PHOTOS if split == "train" else HELDOUT_PHOTOS
        texture = _photo_crop(photos[int(rng.integers(len(photos)))], size, rng)
    elif kind < 0.85:
        octaves = sum(perlin_noise((size, size), (c, c), rng) / (i + 1)
                      for i, c in enumerate((4, 8, 16)))
        texture = np.repeat(0.5 + 0.35 * octaves[..., None], 3, axis=2)
    else:
        texture = np.empty((size, size, 3), np.float32)
        texture[:] = _random_colour(rng) / 255.0
    # Random colour transform (DRAEM augments its fills the same way: brightness, hue, invert).
    texture = texture * rng.uniform(0.5, 1.5, 3).astype(np.float32) + rng.uniform(-0.2, 0.2)
    if rng.random() < 0.2:
        texture = 1.0 - texture
    return np.clip(texture, 0, 1).astype(np.float32)


def _random_centre(size: int, margin: float, rng: np.random.Generator) -> tuple[float, float]:
    margin = min(margin, size / 2 - 1)
    return float(rng.uniform(margin, size - margin)), float(rng.uniform(margin, size - margin))


def _edge_point(image: np.ndarray, rng: np.random.Generator, margin: int) -> tuple[float, float]:
    """A point on an edge of the artwork (where opens, spurs and mouse bites happen)."""
    grey = (image.mean(axis=2) * 255).astype(np.uint8)
    edges = cv2.Canny(grey, 40, 120)
    edges[:margin], edges[-margin:], edges[:, :margin], edges[:, -margin:] = 0, 0, 0, 0
    ys, xs = np.nonzero(edges)
    if len(xs) == 0:
        return _random_centre(image.shape[0], margin, rng)
    i = int(rng.integers(len(xs)))
    return float(xs[i]), float(ys[i])


# --------------------------------------------------------------------------------------------
# Defects

DEFECT_KINDS = ("draem", "cutpaste", "scratch", "stain", "hole", "missing", "added", "print")
"""Defects the generator draws; "print" is an ink or paper speck, line or bite on line art."""


def _ink_and_paper(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    grey = image.mean(axis=2)
    lo, hi = np.percentile(grey, [5, 95])
    ink = image[grey <= lo].mean(axis=0) if (grey <= lo).any() else np.zeros(3)
    paper = image[grey >= hi].mean(axis=0) if (grey >= hi).any() else np.ones(3)
    return ink.astype(np.float32), paper.astype(np.float32)


def draw_defect(image: np.ndarray, kind: str, rng: np.random.Generator, *, split: str,
                line_art: bool) -> np.ndarray:
    """Draw one defect of `kind` into `image` (float RGB, modified in place); return its mask."""
    size = image.shape[0]
    radius = float(rng.uniform(3, 0.16 * size))
    centre = _random_centre(size, radius + 4, rng)
    mask = np.zeros((size, size), np.uint8)
    if kind == "draem":
        m = _perlin_blob(size, centre, radius, rng)
        beta = rng.uniform(0.0, 0.6)  # share of the product left under the foreign texture
        image[m] = beta * image[m] + (1 - beta) * _foreign_texture(size, rng, split)[m]
        return m
    if kind == "cutpaste":
        m = _perlin_blob(size, centre, radius, rng)
        shift = rng.uniform(radius, 3 * radius, 2) * rng.choice([-1, 1], 2)
        M = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])
        moved = cv2.warpAffine(image, M, (size, size), borderMode=cv2.BORDER_REFLECT)
        if rng.random() < 0.5:
            moved = cv2.rotate(moved, cv2.ROTATE_90_CLOCKWISE)
        image[m] = moved[m]
        return m
    if kind == "scratch":
        points = [np.array(centre)]
        for _ in range(int(rng.integers(1, 4))):
            angle = rng.uniform(0, 2 * np.pi)
            points.append(points[-1] + rng.uniform(0.5, 1.5) * radius
                          * np.array([math.cos(angle), math.sin(angle)]))
        pts = np.array(points, np.int32).reshape(-1, 1, 2)
        cv2.polylines(mask, [pts], False, 1, int(rng.integers(1, 4)), cv2.LINE_8)
        m = mask.astype(bool)
        tone = 0.92 if image[m].mean() < 0.5 else 0.08
        if rng.random() < 0.3:
            tone = _random_colour(rng) / 255.0
        alpha = rng.uniform(0.6, 1.0)
        image[m] = (1 - alpha) * image[m] + alpha * np.asarray(tone, np.float32)
        return m
    if kind == "stain":
        m = _perlin_blob(size, centre, radius, rng)
        soft = cv2.GaussianBlur(m.astype(np.float32), (0, 0), rng.uniform(0.5, 2.5))[..., None]
        tint = _random_colour(rng) / 255.0
        alpha = rng.uniform(0.35, 0.8)
        image[:] = image * (1 - alpha * soft) + alpha * soft * tint
        return soft[..., 0] > 0.3
    if kind == "hole":
        r = int(min(radius, 0.08 * size))
        cv2.circle(mask, (int(centre[0]), int(centre[1])), max(2, r), 1, -1)
        m = mask.astype(bool)
        image[m] = rng.uniform(0.0, 0.1)
        inner = np.zeros_like(mask)
        cv2.circle(inner, (int(centre[0]), int(centre[1])), max(1, r - max(1, r // 4)), 1, -1)
        image[inner.astype(bool)] = _random_colour(rng, light=rng.random() < 0.5) / 255.0
        return m
    if kind == "missing":
        # A part of the print gone: the bare substrate, or the surroundings smeared in.
        w, h = rng.uniform(0.5, 2.0, 2) * radius
        box = cv2.boxPoints(((centre[0], centre[1]), (w, h), float(rng.uniform(0, 180))))
        cv2.fillPoly(mask, [box.astype(np.int32)], 1)
        m = mask.astype(bool)
        if rng.random() < 0.5:
            image[m] = _random_colour(rng, light=True) / 255.0
        else:
            filled = cv2.inpaint((image * 255).astype(np.uint8), mask, 5, cv2.INPAINT_TELEA)
            image[m] = filled[m].astype(np.float32) / 255.0
        return m
    if kind == "added":
        # An extra part: a label, a screw, a blob of glue; solid, with a slight shade.
        w, h = rng.uniform(0.4, 1.6, 2) * radius
        if rng.random() < 0.5:
            box = cv2.boxPoints(((centre[0], centre[1]), (w, h), float(rng.uniform(0, 180))))
            cv2.fillPoly(mask, [box.astype(np.int32)], 1)
        else:
            cv2.ellipse(mask, (int(centre[0]), int(centre[1])), (int(w / 2) + 1, int(h / 2) + 1),
                        float(rng.uniform(0, 180)), 0, 360, 1, -1)
        m = mask.astype(bool)
        colour = _random_colour(rng) / 255.0
        yy = np.linspace(-0.08, 0.08, size, dtype=np.float32)[:, None, None]
        image[m] = np.clip(colour + yy, 0, 1)[np.nonzero(m)[0], 0]
        return m
    if kind == "print":
        # DeepPCB's defect classes as ink or paper: open, short, mouse bite, spur, spurious
        # copper, pin hole. Small, and mostly on edges, where they happen.
        ink, paper = _ink_and_paper(image)
        if not line_art and rng.random() < 0.5:
            ink, paper = _random_colour(rng, light=False) / 255.0, _random_colour(rng, True) / 255.0
        small = float(rng.uniform(2, 12))
        cx, cy = _edge_point(image, rng, int(small) + 4) if rng.random() < 0.7 else centre
        colour = ink if rng.random() < 0.5 else paper
        if rng.random() < 0.5:  # a speck or bite
            blob = _perlin_blob(size, (cx, cy), small, rng)
            mask[blob] = 1
        else:  # a short line: a cut or a bridge
            angle = rng.uniform(0, np.pi)
            dx, dy = math.cos(angle) * small, math.sin(angle) * small
            cv2.line(mask, (int(cx - dx), int(cy - dy)), (int(cx + dx), int(cy + dy)), 1,
                     int(rng.integers(1, 5)))
        m = mask.astype(bool)
        image[m] = colour
        return m
    raise ValueError(f'"{kind}" defect kind is invalid, it must be one of {DEFECT_KINDS}!')


# --------------------------------------------------------------------------------------------
# Cameras (applied to registered crops)


@dataclasses.dataclass(frozen=True)
class Look:
    """How one side (golden or unit) was photographed, as left after colour calibration."""

    gain: tuple[float, float, float] = (1.0, 1.0, 1.0)  # residual exposure x white balance
    gamma: float = 1.0  # residual tone curve
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)  # small uniform colour drift
    shading: float = 0.0  # light fall-off across the crop (fraction)
    blur_sigma: float = 0.0
    noise_sigma: float = 0.0  # in [0, 1] units
    jpeg_quality: int | None = None
    shift: tuple[float, float] = (0.0, 0.0)  # misregistration, px
    angle_deg: float = 0.0
    scale: float = 1.0


def random_look(rng: np.random.Generator, *, strength: float = 1.0,
                misregister: bool = True) -> Look:
    """A random residual photographic condition; `strength` scales every nuisance."""
    s = strength
    exposure = float(np.exp(rng.uniform(-0.15, 0.15) * s))
    wb = np.exp(rng.uniform(-0.06, 0.06, 3) * s)
    shift = rng.uniform(-3, 3, 2) * (1.0 if misregister else 0.0)
    return Look(
        gain=tuple(float(g) for g in exposure * wb),
        gamma=float(np.exp(rng.uniform(-0.12, 0.12) * s)),
        offset=tuple(float(o) for o in rng.uniform(-0.025, 0.025, 3) * s),
        shading=float(rng.uniform(-0.08, 0.08) * s),
        blur_sigma=float(rng.choice([0.0, rng.uniform(0.3, 1.3)]) * min(s, 1.0)),
        noise_sigma=float(rng.uniform(0.0, 0.02) * s),
        jpeg_quality=int(rng.integers(55, 96)) if rng.random() < 0.7 * min(s, 1.0) else None,
        shift=(float(shift[0]), float(shift[1])),
        angle_deg=float(rng.uniform(-0.3, 0.3)) if misregister else 0.0,
        scale=float(1.0 + rng.uniform(-0.004, 0.004)) if misregister else 1.0,
    )


def geometric(image: np.ndarray, look: Look, *, interpolation: int = cv2.INTER_LINEAR
              ) -> np.ndarray:
    """Apply the look's misregistration (a small similarity about the crop's centre)."""
    size = image.shape[0]
    M = cv2.getRotationMatrix2D((size / 2, size / 2), look.angle_deg, look.scale)
    M[:, 2] += look.shift
    return cv2.warpAffine(image, M, (size, size), flags=interpolation,
                          borderMode=cv2.BORDER_REFLECT)


def photograph(image: np.ndarray, look: Look, rng: np.random.Generator) -> np.ndarray:
    """Render a registered crop (float RGB in [0, 1]) under `look`; return uint8 RGB."""
    size = image.shape[0]
    out = geometric(image, look)
    if look.blur_sigma > 0:
        out = cv2.GaussianBlur(out, (0, 0), look.blur_sigma)
    out = np.power(np.clip(out, 0, 1), np.float32(look.gamma))
    ramp = np.linspace(-1, 1, size, dtype=np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    shade = 1 + look.shading * (math.cos(angle) * ramp[None, :] + math.sin(angle) * ramp[:, None])
    out = out * shade[..., None] * np.asarray(look.gain, np.float32)
    out = out + np.asarray(look.offset, np.float32)
    if look.noise_sigma > 0:
        out = out + look.noise_sigma * rng.standard_normal(out.shape, dtype=np.float32)
    photo = np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8)
    if look.jpeg_quality is not None:
        ok, buf = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, look.jpeg_quality])
        photo = cv2.imdecode(buf, cv2.IMREAD_COLOR)  # channel order does not matter here
    return photo


# --------------------------------------------------------------------------------------------
# Samples


@dataclasses.dataclass
class Sample:
    """One registered pair with its truth."""

    golden: np.ndarray  # uint8 RGB, size x size
    unit: np.ndarray  # uint8 RGB, size x size
    mask: np.ndarray  # bool, where the unit shows a defect
    kinds: tuple[str, ...]  # defects drawn (empty: a defect-free pair)


VISIBLE_CHANGE = 0.08
"""A drawn defect pixel counts in the label when it changed the product by this much (0-1)."""


def make_sample(split: str, index: int, *, size: int = 160, defect_probability: float = 0.6,
                kinds: tuple[str, ...] = DEFECT_KINDS, nuisance: float = 1.0,
                same_look_probability: float = 0.2) -> Sample:
    """Sample `index` of `split`: deterministic, so an evaluation set is a list of indices.

    `same_look_probability` is the share of pairs whose two sides are photographed alike (a
    fixture); the rest differ in light, camera and colour drift.
    """
    rng = np.random.default_rng(split_seed(split, index))
    margin = 8  # room for misregistration without border effects
    full = size + 2 * margin
    clean, line_art = product_crop(split, full, rng)
    binarise = line_art and rng.random() < 0.35
    if rng.random() < 0.15:  # greyscale products and scans
        clean = np.repeat(clean.mean(axis=2, keepdims=True), 3, axis=2)
    unit_art = clean.copy()
    mask = np.zeros((full, full), bool)
    drawn: list[str] = []
    if rng.random() < defect_probability:
        weights = np.array([3.0 if k in ("draem", "print") else 1.0 for k in kinds])
        if line_art:
            weights = weights * np.array([3.0 if k == "print" else 1.0 for k in kinds])
        for _ in range(int(rng.choice([1, 1, 1, 2, 3]))):
            kind = str(rng.choice(kinds, p=weights / weights.sum()))
            before = unit_art.copy()
            m = draw_defect(unit_art, kind, rng, split=split, line_art=line_art)
            visible = np.abs(unit_art - before).max(axis=2) > VISIBLE_CHANGE
            m = m & visible
            if m.sum() >= 6:
                mask |= m
                drawn.append(kind)
    both_same = rng.random() < same_look_probability
    golden_look = random_look(rng, strength=0.5 * nuisance, misregister=False)
    unit_look = golden_look if both_same else random_look(rng, strength=nuisance)
    unit_look = dataclasses.replace(unit_look, shift=random_look(rng).shift if nuisance > 0
                                    else (0.0, 0.0))
    golden = photograph(clean, golden_look, rng)
    # The unit as it would look without its defects: the same look and the same noise (a copy
    # of the generator), so that the truth keeps only what the defects visibly changed in the
    # final photograph. Blur, JPEG and a scan's threshold can erase a faint or thin defect, and
    # a defect nobody can see in the photo must not be asked of the model (or counted missed).
    unit_rng = copy.deepcopy(rng)
    unit = photograph(unit_art, unit_look, rng)
    unit_without_defects = photograph(clean, unit_look, unit_rng) if mask.any() else unit
    unit_mask = geometric(mask.astype(np.float32), unit_look) > 0.5
    if binarise:  # scanned line art: both thresholded, edges jitter independently
        golden = _binarise(golden)
        unit = _binarise(unit)
        unit_without_defects = _binarise(unit_without_defects)
    visible = np.abs(unit.astype(np.int16) - unit_without_defects).max(axis=2) > (
        VISIBLE_CHANGE * 255)
    unit_mask &= cv2.dilate(visible.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    crop = (slice(margin, margin + size), slice(margin, margin + size))
    unit_mask = unit_mask[crop]
    return Sample(np.ascontiguousarray(golden[crop]), np.ascontiguousarray(unit[crop]),
                  unit_mask, tuple(drawn) if unit_mask.sum() >= 6 else ())


def _binarise(photo: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    _, binary = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return np.repeat(binary[..., None], 3, axis=2)
