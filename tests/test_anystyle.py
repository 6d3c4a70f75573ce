"""Arbitrary style transfer with the shipped decoders (WCT, AdaIN): the transforms' statistics, pictures
that take the painting's colours and keep the photo's layout, blends, strength, colour preservation,
and the errors of bad paintings and options."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from percept.errors import PerceptError
from percept.inference import anystyle as A


def _photo(size: int = 128) -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut()).resize((size, size), Image.Resampling.LANCZOS)


def _painting() -> Image.Image:
    """A stand-in painting: scikit-image's coffee photo, its colours pushed to warm oranges and deep blues and
    its detail to coarse strokes (a rich, multi-dimensional colour distribution, as real paintings have)."""
    from scipy.ndimage import gaussian_filter
    from skimage import data

    img = np.asarray(Image.fromarray(data.coffee()).resize((192, 128)), np.float32)
    img = gaussian_filter(img, (1.5, 3, 0))[..., [2, 1, 0]] * np.array([1.1, 0.8, 1.3], np.float32)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def test_wct_matches_the_style_statistics(monkeypatch):
    monkeypatch.setattr(A, "EIG_FLOOR", 1e-12)  # the transform itself: exact up to float64 (the floor cuts the tail)
    torch.manual_seed(0)
    content = torch.randn(1, 16, 20, 24) * 3 + 1
    style = torch.randn(16, 16) @ torch.randn(16, 900) * 0.5 - 2  # correlated channels
    ms, cov = A._stats(style)
    sq, inv = A._sqrt_pair(cov)
    assert torch.allclose(sq @ sq, cov, atol=1e-8) and torch.allclose(sq @ inv, torch.eye(16, dtype=cov.dtype), atol=1e-6)
    out = A.wct(content, [(ms, sq)], [1.0], alpha=1.0)[0].reshape(16, -1).double()
    m2, c2 = out.mean(1, keepdim=True), torch.cov(out)
    assert torch.allclose(m2, ms, atol=1e-4) and torch.allclose(c2, cov, rtol=1e-3, atol=1e-3)
    half = A.wct(content, [(ms, sq)], [1.0], alpha=0.0)
    assert torch.equal(half, content)  # strength 0: the photo's own features


def test_wct_floors_degenerate_covariances():
    flat = torch.ones(8, 500, dtype=torch.float64)  # a rank-0 covariance: nothing to whiten, no NaN
    sq, inv = A._sqrt_pair(A._stats(flat)[1] + 0)
    assert torch.isfinite(sq).all() and torch.isfinite(inv).all()


def test_adain_sets_channel_statistics():
    content = torch.randn(1, 8, 10, 10) * 2 + 5
    ms, ss = torch.full((1, 8, 1, 1), -1.0), torch.full((1, 8, 1, 1), 0.5)
    out = A.adain(content, [(ms, ss)], [1.0], 1.0)
    assert torch.allclose(out.mean((2, 3)), ms[..., 0, 0], atol=1e-5)
    assert torch.allclose(out.std((2, 3)), ss[..., 0, 0], atol=1e-4)


@pytest.mark.parametrize("method", ["wct", "adain"])
def test_a_picture_with_the_paintings_colours_and_the_photos_layout(method):
    from skimage.metrics import structural_similarity

    photo, painting = _photo(), _painting()
    r = A.AnyStyle(method, "cpu")(photo, [painting])
    out = np.asarray(r.image, np.float32)
    assert out.shape == (128, 128, 3) and r.seconds > 0
    assert r.layers == (["relu4_1", "relu3_1", "relu2_1"] if method == "wct" else ["relu4_1"])
    from scipy.ndimage import gaussian_filter

    src = np.asarray(photo, np.float32)
    art = np.asarray(painting, np.float32).reshape(-1, 3)
    # the colours move to the painting's: the mean colour, and the share of pixels nearer the painting's palette
    assert np.linalg.norm(out.reshape(-1, 3).mean(0) - art.mean(0)) < 0.5 * np.linalg.norm(src.reshape(-1, 3).mean(0) - art.mean(0))
    # the layout stays: the coarse luminance follows the photo's (strokes are the fine part)
    lum = lambda a: gaussian_filter(a @ np.array([0.299, 0.587, 0.114], np.float32), 3)  # noqa: E731
    assert np.corrcoef(lum(out).ravel(), lum(src).ravel())[0, 1] > 0.4
    assert structural_similarity(lum(out), lum(src), data_range=255) > 0.2


def test_adain_takes_its_own_decoder_unless_told_otherwise():
    from percept.models.decoder import shipped_decoder

    assert shipped_decoder("relu4_1", adain=True) == A.ADAIN_DECODER == "decoder_relu4_1_adain"  # shipped
    assert shipped_decoder("relu3_1", adain=True) == "decoder_relu3_1"  # none of its own: the reconstruction one
    own, recon = A.AnyStyle("adain", "cpu"), A.AnyStyle("adain", "cpu", decoders={"relu4_1": "decoder_relu4_1"})
    photo, painting = _photo(96), _painting()
    a, b = (np.asarray(m(photo, [painting]).image, np.float32) for m in (own, recon))
    assert a.shape == b.shape and np.abs(a - b).mean() > 3  # two different decoders
    assert A.AnyStyle("wct", "cpu").decoders["relu4_1"] is not own.decoders["relu4_1"]


def test_precision_bf16_is_close_to_fp32_and_auto_follows_the_cpu():
    from percept.device import cpu_has_bf16

    photo, painting = _photo(96), _painting()
    fp32, bf16 = A.AnyStyle("adain", "cpu", precision="fp32"), A.AnyStyle("adain", "cpu", precision="bf16")
    assert (fp32.precision, bf16.precision) == ("fp32", "bf16")
    assert A.AnyStyle("wct", "cpu").precision == ("bf16" if cpu_has_bf16() else "fp32")
    a, b = (np.asarray(m(photo, [painting]).image, np.float32) for m in (fp32, bf16))
    assert a.shape == b.shape
    diff = np.abs(a - b)
    assert 0 < diff.mean() < 3 and np.percentile(diff, 99) < 20  # bf16 rounding, not another picture
    again = np.asarray(A.AnyStyle("adain", "cpu", precision="fp32")(photo, [painting]).image, np.float32)
    assert np.array_equal(a, again)
    with pytest.raises(PerceptError, match=r"^unknown precision 'fp16'; use auto, fp32, bf16$"):
        A.AnyStyle("adain", "cpu", precision="fp16")


def test_match_colors_moves_the_mean_and_covariance_to_the_target():
    from percept.models.transforms import color_moments, color_stats, match_colors

    torch.manual_seed(0)
    mix = torch.tensor([[0.2, 0.05, 0.0], [0.1, 0.15, 0.02], [-0.05, 0.0, 0.1]])
    img = (mix @ torch.randn(3, 40 * 50) + torch.tensor([[0.4], [0.5], [0.45]])).reshape(1, 3, 40, 50).clamp(0, 1)
    target = (torch.tensor([[0.1, 0.0, 0.0], [0.05, 0.08, 0.0], [0.0, 0.03, 0.05]]) @ torch.randn(3, 900)
              + torch.tensor([[0.6], [0.35], [0.3]])).reshape(1, 3, 30, 30).clamp(0, 1)
    mean, cov = color_stats([color_moments(target)], [1.0])
    px = target.reshape(3, -1).double()
    assert torch.allclose(mean, px.mean(1)) and torch.allclose(cov, torch.cov(px, correction=0))
    full = match_colors(img, mean, cov, 1.0).reshape(3, -1).double()
    assert torch.allclose(full.mean(1), mean, atol=2e-3) and torch.allclose(torch.cov(full, correction=0), cov, atol=2e-4)
    assert torch.equal(match_colors(img, mean, cov, 0.0), img)  # amount 0: untouched
    half = match_colors(img, mean, cov, 0.5)
    assert torch.allclose(half, (img + match_colors(img, mean, cov, 1.0)) / 2, atol=1e-6)
    own = color_stats([color_moments(img)], [1.0])  # its own statistics: the least-displacement map is the identity
    assert torch.allclose(match_colors(img, *own, 1.0), img, atol=1e-4)
    # two paintings pooled with weights: the mixture's statistics (equal sizes, equal weights = all their pixels)
    both_mean, both_cov = color_stats([color_moments(target), color_moments(img[..., :30, :30])], [0.5, 0.5])
    pooled = torch.cat([target.reshape(3, -1), img[..., :30, :30].reshape(3, -1)], 1).double()
    assert torch.allclose(both_mean, pooled.mean(1)) and torch.allclose(both_cov, torch.cov(pooled, correction=0))


def test_colour_match_default_amount_and_effect():
    photo, painting = _photo(96), _painting()
    assert A.AnyStyle("adain", "cpu").color_match == A.COLOR_MATCH["adain"] == 0.5
    assert A.AnyStyle("wct", "cpu", layers=["relu3_1"]).color_match == 0.0
    art = np.asarray(painting, np.float64).reshape(-1, 3)

    def gap(img: Image.Image) -> float:  # distance of the picture's colour mean and covariance from the painting's
        px = np.asarray(img, np.float64).reshape(-1, 3)
        return float(np.linalg.norm(px.mean(0) - art.mean(0)) + np.linalg.norm(np.cov(px.T) - np.cov(art.T)) ** 0.5)

    gaps = [gap(A.AnyStyle("adain", "cpu", color_match=m)(photo, [painting]).image) for m in (0.0, 0.5, 1.0)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.5 * gaps[0]
    a = A.AnyStyle("adain", "cpu", color_match=1.0)  # strength 0 and preserve_colors leave the colours alone
    b = A.AnyStyle("adain", "cpu", color_match=0.0)
    assert np.array_equal(np.asarray(a(photo, [painting], strength=0.0).image),
                          np.asarray(b(photo, [painting], strength=0.0).image))
    assert np.array_equal(np.asarray(a(photo, [painting], preserve_colors=True).image),
                          np.asarray(b(photo, [painting], preserve_colors=True).image))
    with pytest.raises(PerceptError, match=r"^color_match must be between 0 and 1, got 2$"):
        A.AnyStyle("adain", "cpu", color_match=2)


def test_strength_blend_and_colour(tmp_path):
    photo, painting = _photo(96), _painting()
    a = A.AnyStyle("adain", "cpu")
    full = np.asarray(a(photo, [painting]).image, np.float32)
    none = np.asarray(a(photo, [painting], strength=0.0).image, np.float32)
    src = np.asarray(photo, np.float32)
    assert np.abs(none - src).mean() < np.abs(full - src).mean()  # strength 0 is the decoder's reconstruction
    grey = Image.fromarray(np.asarray(_painting().convert("L").convert("RGB")))
    one = np.asarray(a(photo, [painting, grey], weights=[1, 0]).image, np.float32)
    assert np.abs(one - full).max() <= 1  # a weight of 0 takes nothing from that painting
    mixed = np.asarray(a(photo, [painting, grey], weights=[0.5, 0.5]).image, np.float32)
    assert np.abs(mixed - full).mean() > 2
    kept = a(photo, [painting], preserve_colors=True).image.convert("YCbCr")
    assert np.abs(np.asarray(kept, np.float32)[..., 1:] - np.asarray(photo.convert("YCbCr"), np.float32)[..., 1:]).mean() < 3


def test_bad_paintings_and_options():
    a = A.AnyStyle("adain", "cpu")
    photo = _photo(64)
    with pytest.raises(PerceptError, match=r"^style 1: the style image is one flat colour"):
        a(photo, [Image.new("RGB", (100, 80), (120, 30, 30))])
    with pytest.raises(PerceptError, match=r"^style 1: the style image is 20x20 px; give one of at least 32x32 px$"):
        a(photo, [_painting().resize((20, 20))])
    with pytest.raises(PerceptError, match=r"^`style_blend` has 1 weight\(s\) for 2 style image\(s\); give one per `style`$"):
        a(photo, [_painting(), _painting()], weights=[1.0])
    with pytest.raises(PerceptError, match=r"^`style_blend` weights must be 0 or more and not all 0"):
        a(photo, [_painting()], weights=[-1])
    with pytest.raises(PerceptError, match=r"^unknown method 'gatys'; use wct, adain or linear$"):
        A.AnyStyle("gatys")
    with pytest.raises(PerceptError, match=r"^`method` wct needs a decoder for pool5 and none is installed; train one "
                                           r"with `percept train-decoder --layer pool5`$"):
        A.AnyStyle("wct", layers=["relu5_1", "pool5"])
    huge = _painting().resize((3000, 2000))  # a huge painting is read at 512 px: same result as a 512 px one
    small = huge.resize((512, 341), Image.Resampling.LANCZOS)
    assert np.abs(np.asarray(a(photo, [huge]).image, int) - np.asarray(a(photo, [small]).image, int)).max() <= 2


def test_cli(tmp_path, painting_path):
    from skimage import data

    from percept.models.decoder import DECODER_LAYERS

    photo = tmp_path / "p.png"
    Image.fromarray(data.chelsea()).resize((120, 80)).save(photo)
    run = lambda *a: subprocess.run([sys.executable, "-m", "percept", "stylize", str(photo), *a],  # noqa: E731
                                    capture_output=True, text=True)
    r = run("--style", str(painting_path), "--method", "adain", "-o", str(tmp_path / "o.png"))
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "o.png").size == (120, 80) and "adain over relu4_1" in r.stdout
    r = run("--style", str(painting_path), "-o", str(tmp_path / "a.png"))
    assert r.returncode == 0 and "adain over relu4_1, colour match 0.5" in r.stdout, r.stderr  # the default method
    r = run("--style", str(painting_path), "--color-match", "0", "-o", str(tmp_path / "a0.png"))
    assert r.returncode == 0 and "colour match" not in r.stdout, r.stderr
    a, a0 = (np.asarray(Image.open(tmp_path / f), np.float32) for f in ("a.png", "a0.png"))
    assert np.abs(a - a0).mean() > 1  # the default's colour match changed the picture
    r = run("--style", str(painting_path), "--color-match", "1.5", "-o", str(tmp_path / "x.png"))
    assert r.returncode == 2 and r.stderr.strip() == ("percept stylize: error: argument --color-match: must be between 0 "
                                                      "and 1, got 1.5") and not (tmp_path / "x.png").exists()
    r = run("--style", str(painting_path), "--method", "linear", "--color-match", "1", "-o", str(tmp_path / "lc.png"))
    assert r.returncode == 0 and "linear over relu3_1, colour match 1" in r.stdout, r.stderr
    r = run("--style", str(painting_path), "--method", "wct", "--levels", "relu3_1,relu2_1,relu1_1", "-o",
            str(tmp_path / "l.png"))
    assert r.returncode == 0, r.stderr  # the finest level: the shipped linear relu1_1 decoder
    assert "wct over relu3_1, relu2_1, relu1_1" in r.stdout and Image.open(tmp_path / "l.png").size == (120, 80)
    from percept.registry import checkpoints_dir

    r = run("--style", str(painting_path), "--method", "adain", "--decoder", str(checkpoints_dir() / "decoder_relu3_1.pt"),
            "-o", str(tmp_path / "d.png"))
    assert r.returncode == 0, r.stderr  # adain at the given decoder's layer
    assert "adain over relu3_1" in r.stdout and Image.open(tmp_path / "d.png").size == (120, 80)
    for args, msg in (
        (["--style", str(painting_path), "--decoder", "starry_night"],
         "--decoder starry_night: a 'style-transformer' model, not a feature decoder"),
        (["--style", str(painting_path), "--decoder", "decoder_relu2_1", "--decoder", "decoder_relu2_1"],
         "--decoder: two decoders for relu2_1 (decoder_relu2_1, decoder_relu2_1)"),
        (["--style", str(painting_path), "--method", "linear", "--decoder", "decoder_relu3_1"],
         "--decoder is for --method wct or adain (the linear model carries its own decoder, at relu3_1)"),
        (["--style", str(painting_path), "--model", "wave"],
         "give --model (a trained network) or --style (any painting, no training), not both"),
        (["--model", "wave", "--method", "wct"],
         "--method, --style-blend, --levels, --decoder and --color-match are for --style PAINTING (arbitrary style "
         "transfer)"),
        (["--model", "wave", "--color-match", "0.5"],
         "--method, --style-blend, --levels, --decoder and --color-match are for --style PAINTING (arbitrary style "
         "transfer)"),
        (["--style", str(painting_path), "--levels", "relu3_1,relu3_1"],
         "--levels relu3_1,relu3_1: give distinct comma-separated layers, coarse to fine, e.g. relu4_1,relu3_1,relu2_1,relu1_1"),
        (["--style", str(painting_path), "--levels", "conv2_1"],
         "decoders invert relu/pool layers, not 'conv2_1'; valid layers: " + ", ".join(DECODER_LAYERS)),
        (["--style", str(painting_path), "--method", "wct", "--levels", "relu2_2"],
         "--method wct needs a decoder for relu2_2 and none is installed; train one with `percept train-decoder --layer relu2_2`"),
        (["--style", str(painting_path), "--method", "linear", "--levels", "relu3_1"],
         "--levels is for --method wct or adain (the linear model carries its own decoder, at relu3_1)"),
        ([], "give --model NAME (see `percept models`) or --style PAINTING"),
        (["--style", str(painting_path), "--backend", "onnx"],
         "--style runs on PyTorch (the VGG19 encoder and the decoders); drop --backend onnx"),
    ):
        r = run(*args, "-o", str(tmp_path / "x.png"))
        assert r.returncode == 2 and r.stderr.strip() == f"percept: error: {msg}", (args, r.stderr)
    r = run("--style", str(painting_path), "--style-blend", "a,b", "-o", str(tmp_path / "x.png"))  # argparse's line
    assert r.returncode == 2 and r.stderr.strip() == ("percept stylize: error: argument --style-blend: give "
                                                      "comma-separated numbers, e.g. 0.6,0.4, got 'a,b'"), r.stderr
    assert not (tmp_path / "x.png").exists()


def test_compare_page_in_headless_chromium(tmp_path, painting_path):
    """`percept compare`: one self-contained page with the per-style network, the arbitrary method and Gatys,
    each with its losses and seconds, rendered by real headless Chromium."""
    from skimage import data

    from percept.inference.browser import Browser, find_chromium

    photo = tmp_path / "p.png"
    Image.fromarray(data.chelsea()).save(photo)
    out = tmp_path / "cmp"
    r = subprocess.run([sys.executable, "-m", "percept", "compare", str(photo), "--style", str(painting_path), "-o",
                        str(out), "--model", "wave_rt", "--size", "64", "--gatys-steps", "2", "--methods", "adain",
                        "--quiet"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    page = (out / "index.html").read_text()
    assert page.count('data-kind="result"') == 3 and "src=\"http" not in page  # self-contained
    assert sorted(p.name for p in out.iterdir()) == ["index.html"]
    for args, msg in (
        (["--gatys-steps", "0,x"], "--gatys-steps 0,x: give positive whole numbers separated by commas, e.g. 10,30,100"),
        (["--model", "no_such_model"], "unknown model 'no_such_model'"),
    ):
        bad = subprocess.run([sys.executable, "-m", "percept", "compare", str(photo), "--style", str(painting_path),
                              "-o", str(tmp_path / "bad"), *args], capture_output=True, text=True)
        assert bad.returncode == 2 and msg in bad.stderr.strip().splitlines()[-1], bad.stderr
    assert not (tmp_path / "bad").exists()
    if find_chromium() is None:
        pytest.skip("chromium is not installed; the page was checked without a browser")
    with Browser() as b:
        b.open((out / "index.html").as_uri())
        assert b.wait_for_text("summary", 30)
        rows = b.evaluate("[...document.querySelectorAll('#summary tr')].slice(1).map(r => r.cells[1].textContent)")
        assert sorted(rows) == ["arbitrary", "fast", "slow"]
        loaded = b.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
        assert loaded is True
        b.screenshot(tmp_path / "page.png")
    shot = np.asarray(Image.open(tmp_path / "page.png").convert("RGB"))
    assert shot.std() > 20
