"""Digits that were never MNIST images: strokes of a hand-drawn alphabet, varied as hands vary.

``strokes(label, rng)`` gives one digit as pen strokes (lists of (x, y) points, x right and
y down, in a 280x280 canvas), drawn from a few common ways of writing each digit (a 1 with
or without its flag, a 7 with or without a bar, a 4 open or closed...) with random slant,
rotation, size, aspect, position and wobble, sampled densely (a slow hand) or sparsely
(a fast one, the polyline shows). ``canvas_drawings`` feeds them to the drawing page in the
browser tests; ``software_photo`` renders them with a pen, pencil or marker on paper and
photographs them in software (texture, shadow, perspective, blur, JPEG).
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# Each digit's ways of being written: strokes of control points in a unit box (x right,
# y down), traced through by a Catmull-Rom spline.
STYLES: dict[int, list[list[list[tuple[float, float]]]]] = {
    0: [[[(0.55, 0.0), (0.2, 0.12), (0.03, 0.5), (0.2, 0.9), (0.5, 1.0), (0.82, 0.88), (0.97, 0.5),
          (0.82, 0.1), (0.5, 0.0), (0.4, 0.05)]]],
    1: [[[(0.5, 0.0), (0.5, 1.0)]],
        [[(0.2, 0.2), (0.6, 0.0), (0.6, 1.0)]]],
    2: [[[(0.08, 0.25), (0.3, 0.03), (0.62, 0.0), (0.88, 0.2), (0.8, 0.45), (0.45, 0.72), (0.05, 1.0),
          (0.95, 0.98)]],
        [[(0.1, 0.2), (0.45, 0.0), (0.85, 0.15), (0.7, 0.5), (0.1, 0.95), (0.35, 0.85), (0.95, 0.95)]]],
    3: [[[(0.1, 0.12), (0.45, 0.0), (0.82, 0.12), (0.8, 0.35), (0.42, 0.48), (0.85, 0.62), (0.9, 0.85),
          (0.5, 1.0), (0.08, 0.88)]]],
    4: [[[(0.55, 0.0), (0.05, 0.65), (0.95, 0.65)], [(0.72, 0.25), (0.72, 1.0)]],
        [[(0.2, 0.0), (0.1, 0.55), (0.9, 0.55)], [(0.75, 0.0), (0.75, 1.0)]]],
    5: [[[(0.85, 0.0), (0.2, 0.0), (0.15, 0.45), (0.5, 0.37), (0.85, 0.55), (0.85, 0.85), (0.5, 1.0),
          (0.1, 0.9)]],
        [[(0.2, 0.02), (0.15, 0.45), (0.5, 0.37), (0.85, 0.55), (0.85, 0.85), (0.5, 1.0), (0.1, 0.9)],
         [(0.2, 0.02), (0.9, 0.0)]]],
    6: [[[(0.75, 0.0), (0.35, 0.25), (0.1, 0.65), (0.25, 0.95), (0.6, 1.0), (0.88, 0.8), (0.75, 0.55),
          (0.45, 0.5), (0.12, 0.72)]]],
    7: [[[(0.05, 0.02), (0.95, 0.0), (0.45, 1.0)]],
        [[(0.05, 0.05), (0.95, 0.0), (0.5, 1.0)], [(0.3, 0.5), (0.85, 0.48)]]],
    8: [[[(0.85, 0.12), (0.5, 0.0), (0.15, 0.14), (0.2, 0.36), (0.5, 0.5), (0.85, 0.7), (0.75, 0.95),
          (0.5, 1.0), (0.2, 0.94), (0.15, 0.7), (0.5, 0.5), (0.8, 0.32), (0.85, 0.12)]]],
    9: [[[(0.85, 0.3), (0.65, 0.04), (0.35, 0.0), (0.12, 0.2), (0.2, 0.45), (0.5, 0.5), (0.85, 0.3),
          (0.8, 0.6), (0.7, 1.0)]],
        [[(0.85, 0.2), (0.5, 0.0), (0.15, 0.15), (0.2, 0.42), (0.55, 0.45), (0.85, 0.2), (0.85, 1.0)]]],
}
SIDE = 280


def _spline(points: np.ndarray, per_segment: int) -> np.ndarray:
    """A Catmull-Rom curve through ``points`` [K, 2], ``per_segment`` samples between each two."""
    if len(points) < 3:
        t = np.linspace(0, 1, per_segment * (len(points) - 1) + 1)[:, None]
        return points[0] + t * (points[-1] - points[0])
    p = np.vstack([points[:1], points, points[-1:]])
    out = []
    for i in range(1, len(p) - 2):
        t = np.linspace(0, 1, per_segment, endpoint=False)[:, None]
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(0.5 * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                          + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3))
    out.append(p[-2:-1])
    return np.vstack(out)


def strokes(label: int, rng: np.random.Generator, side: int = SIDE) -> list[list[tuple[float, float]]]:
    """One hand-drawn ``label``: pen strokes in canvas pixels (see the module docstring)."""
    style = STYLES[label][int(rng.integers(len(STYLES[label])))]
    height = rng.uniform(0.45, 0.85) * side
    width = height * rng.uniform(0.5, 0.8) * (0.5 if label == 1 else 1.0)
    slant, angle = rng.uniform(-0.35, 0.35), math.radians(rng.uniform(-8, 8))
    cx = rng.uniform(width / 2 + 0.08 * side, side - width / 2 - 0.08 * side) if width < 0.84 * side else side / 2
    cy = rng.uniform(height / 2 + 0.06 * side, side - height / 2 - 0.06 * side)
    per_segment = int(rng.choice([2, 4, 10]))  # a fast hand to a slow one
    out = []
    for stroke in style:
        pts = np.array(stroke) + rng.normal(0, 0.025, (len(stroke), 2))
        curve = _spline(pts, per_segment) - 0.5
        x, y = curve[:, 0] * width, curve[:, 1] * height
        x = x - slant * y  # leaning right as y goes up
        xr = x * math.cos(angle) - y * math.sin(angle) + cx
        yr = x * math.sin(angle) + y * math.cos(angle) + cy
        out.append([(float(a), float(b)) for a, b in zip(xr, yr)])
    return out


def labelled(n: int, seed: int) -> list[tuple[int, list]]:
    """``n`` digits, the ten labels in turn, from one seed."""
    rng = np.random.default_rng(seed)
    return [(i % 10, strokes(i % 10, rng)) for i in range(n)]


def render(digit_strokes: list, width: float, ink: float = 0.0, scale: int = 2, side: int = SIDE) -> np.ndarray:
    """Strokes drawn with a round pen on white: float [side*scale, side*scale] in [0, 1]."""
    img = Image.new("L", (side * scale, side * scale), 255)
    draw = ImageDraw.Draw(img)
    w = max(1, round(width * scale))
    for stroke in digit_strokes:
        pts = [(x * scale, y * scale) for x, y in stroke]
        draw.line(pts, fill=int(ink * 255), width=w, joint="curve")
        for x, y in (pts[0], pts[-1]):
            draw.ellipse((x - w / 2, y - w / 2, x + w / 2, y + w / 2), fill=int(ink * 255))
    return np.asarray(img, dtype=np.float64) / 255.0


TOOLS = ("ballpoint", "pencil", "marker")


def software_photo(digit_strokes: list, rng: np.random.Generator, tool: str) -> bytes:
    """The digit written with ``tool`` on paper and photographed: a JPEG of about 640x480."""
    width = {"ballpoint": rng.uniform(3, 6), "pencil": rng.uniform(4, 8), "marker": rng.uniform(14, 26)}[tool]
    ink = render(digit_strokes, width)  # 1 paper, 0 ink
    coverage = 1.0 - ink
    if tool == "pencil":  # graphite: grey, grainy
        coverage = coverage * rng.uniform(0.45, 0.7) * rng.uniform(0.6, 1.0, coverage.shape)
    side = ink.shape[0]
    # Paper: off-white, fibres (smooth noise), unevenly lit.
    fibres = np.asarray(Image.fromarray((rng.normal(128, 40, (side, side))).clip(0, 255).astype(np.uint8))
                        .filter(ImageFilter.GaussianBlur(2)), dtype=np.float64) / 255.0 - 0.5
    ys, xs = np.mgrid[0:side, 0:side] / side
    paper = rng.uniform(0.75, 0.95) + 0.08 * fibres + 0.06 * (rng.uniform(-1, 1) * xs + rng.uniform(-1, 1) * ys)
    colour = {"ballpoint": (0.1, 0.15, 0.45), "pencil": (0.25, 0.25, 0.27), "marker": (0.05, 0.05, 0.05)}[tool]
    rgb = np.stack([paper * (1 - coverage) + c * paper * coverage for c in colour], axis=-1)
    img = Image.fromarray(np.clip(rgb * 255, 0, 255).astype(np.uint8), "RGB")
    # Perspective: the sheet seen from a little off-axis, with paper around the frame.
    d = side * 0.12
    quad = [(rng.uniform(-d, d), rng.uniform(-d, d)), (rng.uniform(-d, d), side + rng.uniform(-d, d)),
            (side + rng.uniform(-d, d), side + rng.uniform(-d, d)), (side + rng.uniform(-d, d), rng.uniform(-d, d))]
    img = img.transform((side, side), Image.Transform.QUAD, [c for p in quad for c in p],
                        Image.Resampling.BILINEAR, fillcolor=tuple(int(c * 255 * 0.85) for c in (0.9, 0.88, 0.85)))
    # The shadow of the phone or a hand, over the sheet and the table alike.
    ys, xs = np.mgrid[0:side, 0:side] / side
    edge, soft = rng.uniform(0.55, 1.2), rng.uniform(0.05, 0.2)
    shadow = 1.0 - rng.uniform(0.2, 0.45) * np.clip((xs + ys * rng.uniform(-0.5, 0.5) - edge) / soft + 0.5, 0, 1)
    img = Image.fromarray(np.clip(np.asarray(img, dtype=np.float64) * shadow[..., None], 0, 255).astype(np.uint8))
    img = img.resize((640, 480), Image.Resampling.BILINEAR)
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.8)))
    noisy = np.asarray(img, dtype=np.float64) + rng.normal(0, 4, (480, 640, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buf, format="JPEG",
                                                                  quality=int(rng.integers(60, 92)))
    return buf.getvalue()
