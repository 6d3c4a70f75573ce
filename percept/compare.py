"""Fast next to slow, for one photo: ``percept compare PHOTO --style PAINTING -o DIR``.

One self-contained HTML page (``DIR/index.html``; every picture inline) with, for the photo and the
painting:

* the per-style networks for that painting (the shipped or user models whose card names the same
  painting, by content hash or file name, or ``--model``): one forward pass each;
* each arbitrary method (WCT, AdaIN with the shipped decoders; no training);
* Gatys et al.'s optimisation at a few step counts (the slow baseline the fast networks approximate);

each with its style loss, content loss (``percept.evaluation.StyleMetric``), structure score (SSIM of the
luminance against the photo) and seconds on this machine, sorted by time, so the trade-off the project
exists for is visible at a glance.
"""

from __future__ import annotations

import hashlib
import html
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from percept.errors import PerceptError
from percept.evaluation import StyleMetric
from percept.images import ImageLike, atomic_write_bytes, check_painting, check_writable, load_image, resize_long_side
from percept.inference.deploy_options import GATYS_STEPS, CompareOptions
from percept.inference.options import METHODS
from percept.inference.stylizer import open_stylizer
from percept.registry import list_models
from percept.visualize.gallery import png_data_uri
from percept.visualize.gatys import optimize_style

__all__ = ["Entry", "build_compare", "networks_for"]


@dataclass
class Entry:
    label: str
    family: str
    """``fast`` (a per-style network), ``arbitrary`` (no training) or ``slow`` (optimisation)."""
    image: Image.Image
    seconds: float
    style: float = float("nan")
    content: float = float("nan")
    structure: float = float("nan")


def structure_score(out: Image.Image, photo: Image.Image, side: int = 256) -> float:
    """SSIM of ``out``'s luminance against ``photo``'s, both at ``side`` px long side (1 = the same layout)."""
    from skimage.metrics import structural_similarity

    a = np.asarray(resize_long_side(out.convert("L"), side), np.float32)
    b = np.asarray(resize_long_side(photo.convert("L"), side).resize(a.shape[::-1]), np.float32)
    return float(structural_similarity(a, b, data_range=255))


def networks_for(painting_path: Path) -> list[str]:
    """The style-network models (shipped or the user's) trained on this painting: the same SHA-1 in their
    card, or, for cards without one, the same file name."""
    sha1 = hashlib.sha1(painting_path.read_bytes()).hexdigest()
    found = []
    for m in list_models("style-transformer"):
        style = m.card.get("style", {}) or {}
        if style.get("sha1") == sha1 or (not style.get("sha1") and style.get("file") == painting_path.name):
            found.append(m.name)
    return found


def build_compare(photo: ImageLike, painting: str | os.PathLike, out: str | os.PathLike,
                  models: Sequence[str] | None = None, size: int = CompareOptions.size,
                  gatys_steps: Sequence[int] = GATYS_STEPS, methods: Sequence[str] = METHODS, device: str = "auto",
                  progress: bool = True) -> Path:
    """Write the comparison page into the folder ``out``; returns the page's path."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:  # before any work: not after the first methods ran
        raise PerceptError(f"`methods`: unknown method '{unknown[0]}' (use {', '.join(METHODS)})")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PerceptError(f"{out}: not a folder (-o takes the folder to write index.html into)")
    check_writable(out.parent if not out.exists() else out)
    painting = Path(painting)
    art = load_image(painting)
    check_painting(art, str(painting))
    src = resize_long_side(load_image(photo), size)
    nets = list(models) if models else networks_for(painting)
    engines = [open_stylizer(m, device=device) for m in nets]  # a bad --model fails before the slow work
    metric = StyleMetric(art, size)
    entries: list[Entry] = []

    def scored(e: Entry) -> Entry:
        s = metric(e.image, src)
        e.style, e.content, e.structure = s.style, s.content, structure_score(e.image, src)
        return e

    from tqdm import tqdm

    steps = [("net", e) for e in engines] + [("any", m) for m in methods] + [("gatys", n) for n in gatys_steps]
    for kind, what in tqdm(steps, desc="compare", disable=not progress):
        if kind == "net":
            what(src)  # warm-up: the session's first run pays for its set-up
            t = time.perf_counter()
            img = what(src)
            entries.append(scored(Entry(f"{what.name} (per-style network)", "fast", img, time.perf_counter() - t)))
        elif kind == "any":
            any_style = open_stylizer(style=art, method=str(what), backend="torch", device=device)
            img = any_style(src)
            entries.append(scored(Entry(f"{str(what).upper()} (any painting, no training)", "arbitrary", img,
                                        any_style.last.seconds)))
        else:
            r = optimize_style(src, art, iterations=int(what), size=size, device=device, progress=False)
            entries.append(scored(Entry(f"Gatys et al., {what} L-BFGS steps", "slow", r.image, r.seconds)))
    page = render(src, art, painting.name, entries, size, nets)
    out.mkdir(parents=True, exist_ok=True)
    target = out / "index.html"
    atomic_write_bytes(target, page.encode())
    return target


_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.2rem auto; max-width: 1300px; padding: 0 1rem; color: #222; }
h1 { font-size: 1.3rem; margin-bottom: .2rem; } .sub { color: #666; margin-top: 0; }
.grid { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; width: 300px; } figure img { width: 100%; display: block; border-radius: 4px; }
figcaption { font-size: .85rem; margin-top: .3rem; line-height: 1.35; }
.fast { border-top: 4px solid #2a7; } .arbitrary { border-top: 4px solid #37c; } .slow { border-top: 4px solid #c63; }
.ref { border-top: 4px solid #999; }
table { border-collapse: collapse; margin: 1rem 0; font-size: .9rem; }
td, th { padding: .25rem .6rem; border-bottom: 1px solid #ddd; text-align: right; }
td:first-child, th:first-child { text-align: left; }
"""


def render(photo: Image.Image, painting: Image.Image, painting_name: str, entries: list[Entry], size: int,
           nets: list[str]) -> str:
    entries = sorted(entries, key=lambda e: e.seconds)
    esc = html.escape
    figs = [f'<figure class="ref" data-kind="photo"><img src="{png_data_uri(photo)}" alt="photo"><figcaption>'
            f'<b>the photo</b><br>{photo.width}x{photo.height}</figcaption></figure>',
            f'<figure class="ref" data-kind="painting"><img src="{png_data_uri(resize_long_side(painting, size))}" '
            f'alt="painting"><figcaption><b>the painting</b><br>{esc(painting_name)}</figcaption></figure>']
    rows = []
    for e in entries:
        figs.append(f'<figure class="{e.family}" data-kind="result" data-family="{e.family}">'
                    f'<img src="{png_data_uri(e.image)}" alt="{esc(e.label)}"><figcaption><b>{esc(e.label)}</b><br>'
                    f'style {e.style:.3f} &middot; content {e.content:.3f} &middot; structure {e.structure:.2f}<br>'
                    f'<span class="seconds">{e.seconds:.2f} s</span></figcaption></figure>')
        rows.append(f"<tr><td>{esc(e.label)}</td><td>{e.family}</td><td>{e.seconds:.2f}</td><td>{e.style:.3f}</td>"
                    f"<td>{e.content:.3f}</td><td>{e.structure:.2f}</td></tr>")
    none = "" if nets else ("<p>No per-style network was trained on this painting: "
                            "<code>percept train-style --style PAINTING --data PHOTOS</code> makes one, "
                            "or pass <code>--model</code>.</p>")
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>percept compare: {esc(painting_name)}</title>
<style>{_CSS}</style></head><body>
<h1>Fast next to slow: {esc(painting_name)}</h1>
<p class="sub">{photo.width}x{photo.height} px. Style and content: the perceptual losses (relative Gram error over
relu1_1..relu5_1, relative relu4_2 error; lower is better); structure: SSIM of the luminance against the photo
(higher keeps more of the layout); seconds on this machine. Green: per-style network; blue: any painting, no
training; orange: optimisation.</p>{none}
<table id="summary"><tr><th>method</th><th>kind</th><th>seconds</th><th>style</th><th>content</th><th>structure</th></tr>
{''.join(rows)}</table>
<div class="grid">{''.join(figs)}</div>
</body></html>
"""
