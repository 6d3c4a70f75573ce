"""The `percept stylize` runs whose pixels are pinned by tests/test_stylize_pixels.py: one of each route (a
per-style network on onnxruntime and PyTorch, the full-size network, AdaIN, WCT, a blend, the linear model baked
into the engine and through PyTorch with a colour match), small so the test stays quick. Each case: its name and
its options after ``percept stylize PHOTO -o OUT.png``; PAINTING and WAVE stand for the fixture paintings.

The reference PNGs in tests/data/stylize_pixels/ were written by the command line as it was before the one-stylizer
redesign (commit 6f20b5e), with ``python tests/stylize_cases.py OUT_FOLDER`` run against that tree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CASES = {
    "rt_onnx": ["--model", "starry_night_rt", "--size", "96", "--strength", "0.7", "--preserve-color"],
    "rt_torch": ["--model", "starry_night_rt", "--size", "96", "--backend", "torch"],
    "johnson": ["--model", "wave", "--size", "80"],
    "adain": ["--style", "PAINTING", "--method", "adain", "--precision", "fp32", "--size", "96"],
    "wct": ["--style", "PAINTING", "--method", "wct", "--precision", "fp32", "--size", "64"],
    "blend": ["--style", "PAINTING", "--style", "WAVE", "--style-blend", "0.6,0.4", "--precision", "fp32",
              "--size", "64", "--strength", "0.8"],
    "linear_baked": ["--style", "WAVE", "--method", "linear", "--size", "96"],
    "linear_torch": ["--style", "WAVE", "--method", "linear", "--color-match", "0.5", "--precision", "fp32",
                     "--size", "64"],
}
PHOTO = "chelsea.jpg"


def argv(case: str, photo: Path, painting: Path, wave: Path, out: Path) -> list[str]:
    subs = {"PAINTING": str(painting), "WAVE": str(wave)}
    return ["stylize", str(photo), "-o", str(out), "--quiet", *(subs.get(a, a) for a in CASES[case])]


if __name__ == "__main__":  # write the references with whatever percept the interpreter imports
    from images import write_fixture_data

    out = Path(sys.argv[1])
    data = write_fixture_data(out / "fixture")
    for case in CASES:
        args = argv(case, data / "content" / PHOTO, data / "styles" / "starry.jpg", data / "styles" / "wave.jpg",
                    out / f"{case}.png")
        subprocess.run([sys.executable, "-m", "percept", *args], check=True)
        print("wrote", out / f"{case}.png")
