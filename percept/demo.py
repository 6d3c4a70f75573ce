"""``make demo``: stylise scikit-image's sample photos with every shipped style model.

Writes ``OUT/<photo>_<style>.png`` for each pair and ``OUT/contact_sheet.png``: one row per photo,
the photo first, then each style.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw
from tqdm import tqdm

from percept.errors import PerceptError
from percept.images import load_image, resize_long_side, save_image
from percept.inference.deploy_options import DemoOptions
from percept.inference.stylizer import open_stylizer
from percept.registry import ModelKind, list_models, shipped_dir

SAMPLE_PHOTOS = ("astronaut", "coffee", "chelsea")


def sample_photo(name: str) -> Image.Image:
    """One of scikit-image's bundled sample photos (``skimage.data``), as PIL RGB."""
    import skimage.data

    if name not in SAMPLE_PHOTOS + ("rocket",):
        raise PerceptError(f"unknown sample photo '{name}'")
    return load_image(getattr(skimage.data, name)())


def contact_sheet(rows: list[list[tuple[str, Image.Image]]], tile: int = 256, pad: int = 8,
                  label_h: int = 18) -> Image.Image:
    """A grid of labelled tiles; each row is a list of (label, image), images fit into tile x tile."""
    ncols = max(len(r) for r in rows)
    sheet = Image.new("RGB", (pad + ncols * (tile + pad), pad + len(rows) * (tile + label_h + pad)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, row in enumerate(rows):
        for c, (label, img) in enumerate(row):
            thumb = img.copy()
            thumb.thumbnail((tile, tile), Image.Resampling.LANCZOS)
            x = pad + c * (tile + pad)
            y = pad + r * (tile + label_h + pad)
            draw.text((x + 2, y + 3), label, fill="black")
            sheet.paste(thumb, (x + (tile - thumb.width) // 2, y + label_h + (tile - thumb.height) // 2))
    return sheet


def run_demo(out: str | Path = DemoOptions.output, size: int = DemoOptions.size, photos=SAMPLE_PHOTOS, tile: int = 256,
             device: str = "auto", progress: bool = True) -> Path:
    """Stylise the sample photos with every shipped style model; returns the contact sheet's path."""
    models = list_models(kind=ModelKind.STYLE, source="shipped")
    if not models:
        raise PerceptError(f"no shipped style models in {shipped_dir()} (reinstall percept from a wheel that "
                           "carries its models, or set PERCEPT_CHECKPOINTS)")
    out = Path(out)
    stylizers = [open_stylizer(m.path, device=device) for m in models]
    rows = []
    jobs = [(p, s) for p in photos for s in stylizers]
    bar = tqdm(total=len(jobs), desc="demo", disable=not progress)
    for p in photos:
        photo = resize_long_side(sample_photo(p), size)
        save_image(photo, out / f"{p}.png")
        row = [(p, photo)]
        for m, st in zip(models, stylizers):
            img = st(photo)
            save_image(img, out / f"{p}_{m.name}.png")
            row.append((m.name, img))
            bar.update(1)
        rows.append(row)
    bar.close()
    return save_image(contact_sheet(rows, tile=tile), out / "contact_sheet.png")
