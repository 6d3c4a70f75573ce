"""Test pictures made from the repository alone: scikit-image's bundled sample photos (shipped in its
wheel, no download) and two deterministic, procedurally painted "paintings".

``write_fixture_data(root)`` lays them out like a data folder::

    root/content/<photo>.jpg    PHOTOS: 8 whole sample photos + 4 crops of them (long side <= 640 px)
    root/styles/starry.jpg      blue/white swirls of brush strokes, yellow stars and moon, a dark cypress
    root/styles/wave.jpg        a Prussian-blue sea rising into a great wave, white foam, beige sky

The paintings are drawn stroke by stroke with PIL (thousands of short, thick, curved strokes in a
few saturated colours, fixed seeds): strong texture at every scale and a palette far from a photo's,
so Gram-matrix style losses behave as on a real painting. The same seed gives the same pixels.
"""

from __future__ import annotations

import math
import random
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

MAX_SIDE = 640


def _sample(name: str) -> Image.Image:
    import skimage.data as data

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arr = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
    return Image.fromarray(np.asarray(arr)).convert("RGB")


def _crop(name: str, box: tuple[float, float, float, float]):
    """A crop of a sample photo, ``box`` as fractions (left, top, right, bottom) of its size."""
    def make() -> Image.Image:
        img = _sample(name)
        w, h = img.size
        return img.crop((round(box[0] * w), round(box[1] * h), round(box[2] * w), round(box[3] * h)))
    return make


# file stem -> picture (sizes before the MAX_SIDE shrink). Sorted by name, the first six are the training
# folder of `small_data` (held out by its every-3rd split: coffee and motorcycle); the crops sort after them.
PHOTOS = {
    "astronaut": lambda: _sample("astronaut"),                      # 512x512 portrait, flag, shuttle
    "chelsea": lambda: _sample("chelsea"),                          # 451x300 tabby cat
    "coffee": lambda: _sample("coffee"),                            # 600x400 cup: the decoders' held-out photo
    "hubble_deep_field": lambda: _sample("hubble_deep_field"),      # 1000x872 galaxies
    "immunohistochemistry": lambda: _sample("immunohistochemistry"),  # 512x512 stained tissue
    "motorcycle": lambda: _sample("motorcycle"),                    # 741x500 stereo_motorcycle left: photo_path
    "retina": lambda: _sample("retina"),                            # 1411x1411 fundus photo
    "rocket": lambda: _sample("rocket"),                            # 640x427 launch pad at dusk
    "shuttle": _crop("astronaut", (0.45, 0.0, 1.0, 0.55)),          # half her face and the shuttle model
    "stars": _crop("hubble_deep_field", (0.1, 0.1, 0.6, 0.5)),      # galaxies at full resolution
    "tabby": _crop("chelsea", (0.2, 0.0, 0.85, 0.9)),               # the cat's face
    "tower": _crop("rocket", (0.0, 0.0, 0.5, 1.0)),                 # the gantry, portrait
}


def photo(name: str) -> Image.Image:
    """One of PHOTOS as RGB, long side at most MAX_SIDE."""
    img = PHOTOS[name]()
    if max(img.size) > MAX_SIDE:
        s = MAX_SIDE / max(img.size)
        img = img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), Image.LANCZOS)
    return img


# ------------------------------------------------------------------------------------------ paintings

def _jitter(rng: random.Random, colour: tuple[int, int, int], amount: int) -> tuple[int, int, int]:
    return tuple(max(0, min(255, c + rng.randint(-amount, amount))) for c in colour)


def _stroke(draw: ImageDraw.ImageDraw, x: float, y: float, field, steps: int,
            step: float, width: int, colour) -> None:
    """A brush stroke following the direction field ``field(x, y) -> angle`` from (x, y)."""
    pts = [(x, y)]
    for _ in range(steps):
        a = field(x, y)
        x, y = x + step * math.cos(a), y + step * math.sin(a)
        pts.append((x, y))
    draw.line(pts, fill=colour, width=width, joint="curve")
    r = width / 2  # round caps, as a brush leaves them
    for px, py in (pts[0], pts[-1]):
        draw.ellipse((px - r, py - r, px + r, py + r), fill=colour)


def starry_painting(size: tuple[int, int] = (512, 336), seed: int = 1889) -> Image.Image:
    """A "Starry Night"-like picture: a sky of blue, cyan and white brush strokes swirling round two
    vortices, a pale band of light curling across it, bright yellow stars with halos and a moon,
    dark rolling hills with village lights and a near-black cypress flaming up on the left."""
    w, h = size
    rng = random.Random(seed)
    img = Image.new("RGB", size, (22, 38, 92))
    draw = ImageDraw.Draw(img)
    horizon = 0.70 * h
    vortices = [(0.36 * w, 0.38 * h, 1.0), (0.58 * w, 0.46 * h, -1.0)]
    stars = [(0.10 * w, 0.12 * h, 0.035 * w), (0.38 * w, 0.10 * h, 0.028 * w), (0.66 * w, 0.14 * h, 0.03 * w),
             (0.30 * w, 0.56 * h, 0.04 * w), (0.10 * w, 0.42 * h, 0.022 * w), (0.86 * w, 0.13 * h, 0.065 * w)]

    def sky(x, y):
        a = 0.15 * math.sin(y / 23.0)  # a sideways wind, bent by the vortices and round the stars
        vx, vy = math.cos(a), math.sin(a)
        for cx, cy, spin in vortices:
            dx, dy = x - cx, y - cy
            d2 = dx * dx + dy * dy + 1.0
            k = 7000.0 / d2
            vx += spin * -dy * k / math.sqrt(d2)
            vy += spin * dx * k / math.sqrt(d2)
        for cx, cy, r in stars:
            dx, dy = x - cx, y - cy
            d2 = dx * dx + dy * dy + 1.0
            k = 40.0 * r / d2
            vx += -dy * k / math.sqrt(d2)
            vy += dx * k / math.sqrt(d2)
        return math.atan2(vy, vx)

    def band(x):  # the pale river of light: its centre line
        return 0.40 * h + 0.10 * h * math.sin(x / (0.16 * w) + 0.6)

    blues = [(28, 52, 128), (44, 82, 168), (72, 118, 196), (100, 150, 210), (18, 32, 80), (12, 24, 64)]
    pales = [(150, 190, 222), (196, 214, 214), (228, 226, 170), (170, 204, 200), (238, 232, 190)]
    for _ in range(3000):
        x, y = rng.uniform(-10, w + 10), rng.uniform(-10, horizon + 10)
        near = abs(y - band(x)) < 0.07 * h * (1 + 0.5 * math.sin(x / 37.0))
        colour = _jitter(rng, rng.choice(pales if near and rng.random() < 0.8 else blues), 14)
        _stroke(draw, x, y, sky, rng.randint(4, 9), rng.uniform(3.0, 4.5), rng.randint(4, 7), colour)
    # stars and moon: rings of yellow/white strokes, a bright core
    yellows = [(246, 214, 72), (252, 236, 140), (232, 186, 40), (255, 250, 210)]
    for cx, cy, r in stars:
        for ring in np.linspace(r * 2.2, r * 0.4, 7):
            n = int(2 * math.pi * ring / 6) + 3
            for i in range(n):
                a = 2 * math.pi * (i + rng.random()) / n
                x, y = cx + ring * math.cos(a), cy + ring * math.sin(a)
                colour = _jitter(rng, rng.choice(yellows if ring < 1.6 * r else yellows[:3] + pales[:2]), 12)
                tangent = lambda _x, _y, a=a: a + math.pi / 2  # noqa: E731
                _stroke(draw, x, y, tangent, 2, rng.uniform(3.0, 4.5), rng.randint(4, 6), colour)
        draw.ellipse((cx - r * 0.45, cy - r * 0.45, cx + r * 0.45, cy + r * 0.45), fill=(255, 246, 190))
    # hills: rolling strokes in deep, dark blues
    hills = [(20, 30, 70), (30, 48, 96), (14, 22, 50), (46, 70, 110), (28, 44, 56)]

    def hill(x, y):
        return 0.35 * math.sin(x / 40.0 + y / 30.0)
    for _ in range(1100):
        x, y = rng.uniform(-10, w + 10), rng.uniform(horizon - 8, h + 10)
        colour = _jitter(rng, rng.choice(hills), 10)
        _stroke(draw, x, y, hill, rng.randint(3, 6), rng.uniform(3.0, 4.5), rng.randint(4, 7), colour)
    # village lights
    for _ in range(45):
        x, y = rng.uniform(0.3 * w, 0.95 * w), rng.uniform(horizon + 10, h - 12)
        draw.rectangle((x, y, x + rng.randint(3, 7), y + rng.randint(3, 5)), fill=_jitter(rng, (240, 200, 80), 15))
    # the cypress: a near-black flame of upward, waving strokes
    base_x = 0.17 * w
    for _ in range(800):
        t = rng.random()
        y = h + 10 - t * 0.95 * h
        half = (1 - t) ** 0.8 * 0.08 * w + 3
        x = base_x + 0.03 * w * math.sin(t * 9) + rng.uniform(-half, half)
        colour = _jitter(rng, rng.choice([(16, 22, 20), (30, 42, 30), (48, 48, 26), (12, 14, 26), (60, 70, 40)]), 8)
        flame = lambda _x, _y: -math.pi / 2 + 0.5 * math.sin(_y / 12.0)  # noqa: E731
        _stroke(draw, x, y, flame, rng.randint(3, 6), rng.uniform(3.0, 5.0), rng.randint(4, 7), colour)
    return img


def wave_painting(size: tuple[int, int] = (480, 336), seed: int = 1831) -> Image.Image:
    """A "Great Wave"-like picture: a sea of Prussian-blue and lighter-blue brush strokes rising on the
    left into a huge wave that curls over, white claw-like foam along every crest and spray dots,
    a small snowy mountain in the trough, under a streaky beige sky."""
    w, h = size
    rng = random.Random(seed)
    img = Image.new("RGB", size, (222, 206, 170))
    draw = ImageDraw.Draw(img)
    # the sky: horizontal beige/grey streaks
    for _ in range(420):
        x, y = rng.uniform(-20, w), rng.uniform(0, 0.7 * h)
        colour = _jitter(rng, rng.choice([(222, 206, 170), (200, 188, 160), (236, 224, 196), (180, 172, 160)]), 8)
        flat = lambda _x, _y: 0.05 * math.sin(_x / 50.0)  # noqa: E731
        _stroke(draw, x, y, flat, rng.randint(3, 8), rng.uniform(4, 7), rng.randint(2, 5), colour)
    # a snowy mountain far away, in the trough
    cx, base = 0.66 * w, 0.64 * h
    draw.polygon([(cx - 46, base), (cx, base - 38), (cx + 46, base)], fill=(46, 62, 100))
    draw.polygon([(cx - 16, base - 25), (cx, base - 38), (cx + 16, base - 25)], fill=(240, 240, 236))

    def surface(x: float) -> float:
        """Height of the sea at x: a choppy swell and the big wave's hump on the left."""
        return (0.66 * h - 0.035 * h * math.sin(x / 21.0) - 0.03 * h * math.sin(x / 9.0 + 1.0)
                - 0.40 * h * math.exp(-((x - 0.30 * w) / (0.15 * w)) ** 2))

    blues = [(18, 36, 84), (28, 58, 112), (50, 90, 146), (92, 134, 178), (146, 180, 204)]
    whites = [(244, 242, 232), (226, 232, 232), (255, 255, 250)]
    poly = [(x, surface(x)) for x in range(-4, w + 5, 4)] + [(w + 4, h + 4), (-4, h + 4)]
    draw.polygon(poly, fill=blues[0])

    def along(x, y):  # strokes follow the slope of the surface above them, fading to flat at depth
        slope = (surface(x + 2) - surface(x - 2)) / 4.0
        depth = max(0.0, y - surface(x)) / (0.3 * h)
        return math.atan(slope) * max(0.0, 1 - depth) + 0.2 * math.sin(x / 11.0 + y / 7.0)
    for _ in range(2300):
        x = rng.uniform(-10, w + 10)
        top = surface(x)
        depth = rng.random() ** 1.6 * (h + 10 - top)
        y = top + depth
        band = min(len(blues) - 1, int(depth / 10.0))  # light bands near the crest, dark in depth
        colour = blues[len(blues) - 1 - band] if rng.random() < 0.7 else rng.choice(blues)
        _stroke(draw, x, y, along, rng.randint(3, 7), rng.uniform(3, 5), rng.randint(3, 6),
                _jitter(rng, colour, 10))
    # the curl: a spiral of strokes at the top of the big wave, falling to the right
    cx, cy, r = 0.36 * w, surface(0.30 * w) + 0.06 * h, 0.11 * h
    for _ in range(700):
        turn = rng.uniform(0.0, 1.7 * math.pi)
        rad = r * math.exp(-0.25 * turn) * rng.uniform(0.6, 1.3)
        a = -math.pi * 0.9 + turn
        x, y = cx + rad * math.cos(a), cy + rad * math.sin(a)
        band = int(min(len(blues) - 1, max(0, (rad / r - 0.6) / 0.7 * len(blues))))
        colour = _jitter(rng, blues[len(blues) - 1 - band] if rng.random() < 0.75 else rng.choice(blues), 10)

        def spiral(_x, _y, cx=cx, cy=cy):
            return math.atan2(_y - cy, _x - cx) + math.pi / 2 + 0.25
        _stroke(draw, x, y, spiral, rng.randint(3, 6), rng.uniform(3, 5), rng.randint(3, 6), colour)
    # foam: white claws along every crest and round the curl
    crest = [(x, surface(x)) for x in np.arange(0, w, 3.0)]
    crest += [(cx + r * 1.2 * math.exp(-0.25 * t) * math.cos(-math.pi * 0.9 + t),
               cy + r * 1.2 * math.exp(-0.25 * t) * math.sin(-math.pi * 0.9 + t)) for t in np.linspace(0, 5, 60)]
    for x, y in crest:
        for _ in range(2):
            a = rng.uniform(0, 2 * math.pi)
            claw = lambda _x, _y, a=a: a + rng.uniform(-0.5, 0.5)  # noqa: E731
            _stroke(draw, x + rng.uniform(-3, 3), y + rng.uniform(-4, 2), claw, rng.randint(2, 3),
                    rng.uniform(2, 3.5), rng.randint(2, 4), _jitter(rng, rng.choice(whites), 6))
    # spray: white dots flying off the big wave
    for _ in range(400):
        x, y = rng.gauss(0.42 * w, 0.14 * w), rng.gauss(0.22 * h, 0.10 * h)
        if y < surface(x):
            r = rng.uniform(1.0, 3.0)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=_jitter(rng, rng.choice(whites), 5))
    return img


PAINTINGS = {"starry": starry_painting, "wave": wave_painting}


def write_fixture_data(root: Path, quality: int = 92) -> Path:
    """``root/content/*.jpg`` (PHOTOS) and ``root/styles/*.jpg`` (PAINTINGS); returns ``root``."""
    root = Path(root)
    (root / "content").mkdir(parents=True, exist_ok=True)
    (root / "styles").mkdir(parents=True, exist_ok=True)
    for name in PHOTOS:
        photo(name).save(root / "content" / f"{name}.jpg", quality=quality)
    for name, paint in PAINTINGS.items():
        paint().save(root / "styles" / f"{name}.jpg", quality=quality)
    return root
